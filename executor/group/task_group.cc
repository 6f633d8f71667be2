// Copyright 2026 The ripcord Authors.
//
// task_group.cc: TaskGroup's out-of-line members: construction, the
// destructor's join (stop first when an exception unwinds the owner's
// scope; leak on purpose in a fork child or during exit()), and the accessors
// that read the group's record.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sched.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ripcord/internal/mutex.h"
#include "absl/time/clock.h"
#include "executor/base/check.h"
#include "executor/sync/futex.h"
#include "executor/group/group_limit.h"
#include "executor/group/group_report.h"
#include "executor/group/group_timeout.h"
#include "executor/sync/membarrier.h"
#include "executor/base/process_life.h"
#include "executor/sched/scheduler.h"
#include "executor/time/timer.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/internal/spawn.h"
#include "ripcord/task_group.h"

namespace ripcord {

// ---- TaskGroup --------------------------------------------------------------

TaskGroup::TaskGroup(Executor& executor, GroupOptions options)
    : state_(internal::GroupState::Create(executor.impl(), nullptr,
                                          std::move(options))),
      uncaught_at_construction_(std::uncaught_exceptions()) {}

TaskGroup::TaskGroup(TaskGroup& parent, GroupOptions options)
    : state_(internal::GroupState::Create(parent.state_->executor(),
                                          parent.state_, std::move(options))),
      uncaught_at_construction_(std::uncaught_exceptions()) {}

TaskGroup::~TaskGroup() {
  // Process life (executor/base/process_life.h): in a fork child, or during
  // exit() with work that cannot be joined, stop what runs and leak.
  if (internal::InheritedByFork(state_->executor())) {
    internal::LeakOnPurpose(state_);
    return;
  }
  if ((!state_->Done() || state_->HasChildren()) &&
      internal::ExitingFor(this)) {
    state_->Stop("the process is exiting (exit() called)",
                 internal::StopOrigin::kSelf);
    internal::LeakOnPurpose(state_);
    return;
  }
  // Already joined (the usual case: the owner called Wait()): nothing to
  // stop or wait for, and a task of the group or of a descendant cannot be
  // running on this thread, since it would keep the group busy. (Stopping a
  // joined group during unwinding would change nothing anyone can see: it
  // has no tasks and no children, and it is being destroyed.)
  if (!state_->Done()) {
    if (std::uncaught_exceptions() > uncaught_at_construction_) {
      state_->Stop("an exception is unwinding the scope that owns the group",
                   internal::StopOrigin::kSelf);
    }
    if (state_->CurrentTaskInside()) {
      absl::Status inside = state_->CheckNotInside("~TaskGroup()");
      RIPCORD_CHECK(inside.ok(), "%s", inside.ToString().c_str());
    }
    state_->Wait().IgnoreError();
  }
  // After the join: a child opened by one of our tasks is gone by now, so
  // only a child that outlives the join (owned by code outside the group's
  // tasks) is the programming error the check reports.
  state_->CheckNoChildren();
  state_->Close();
}


absl::Status TaskGroup::Wait() { return state_->Wait(); }

absl::Status TaskGroup::WaitFor(absl::Duration timeout) {
  return state_->WaitFor(timeout);
}

void TaskGroup::RequestStop(std::string_view reason) {
  state_->Stop(reason, internal::StopOrigin::kSelf);
}

StopToken TaskGroup::stop_token() const { return state_->token(); }

bool TaskGroup::stop_requested() const { return state_->stop_requested(); }

bool TaskGroup::shielded() const { return state_->shielded(); }

const std::string& TaskGroup::name() const { return state_->name(); }

GroupStats TaskGroup::stats() const { return state_->Stats(); }

GroupStats TaskGroup::tree_stats() const { return state_->TreeStats(); }

}  // namespace ripcord
