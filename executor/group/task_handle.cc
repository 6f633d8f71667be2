// Copyright 2026 The ripcord Authors.
//
// task_handle.cc: the untyped half of a started task's shared state
// (internal/task_handle_state.h has the ending and taking protocol).
//
// Stop of a started task, in two ways, each ending in the task's own
// StopState::RequestStop() (which runs the StopCallbacks on the task's
// token and completes a pending Sleep of its coroutine):
//  - the handle's RequestStop(reason): records the reason under mu_ unless
//    the task already ended (then nothing) or another stop came first;
//  - the group's stop: the chain callback (registered on the group's stop
//    source when the task starts running, removed at its end, which waits
//    for a run in progress) records "the group" as the source. A queued
//    task has no callback: the scheduler drops it when the group stops.
// The first of them names the outcome's cause (StopCause). A task ended
// before a racing RequestStop takes mu_ keeps its outcome; one that ends
// after it sees its token stopped, or is never started.
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "executor/sched/running_tasks.h"
#include "executor/sched/scheduler.h"
#include "executor/trace/trace.h"
#include "ripcord/internal/coroutine.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/internal/spawn.h"
#include "ripcord/internal/task_handle_state.h"

namespace ripcord::internal {

void TaskStateBase::RequestStop(std::string_view reason) {
  {
    MutexLock lock(&mu_);
    if (done()) return;
    if (source_ == StopSource::kNone) {
      source_ = StopSource::kHandle;
      reason_ = std::string(reason);
    }
  }
  // The caller's reference keeps stop_ alive; a task that ends meanwhile
  // has removed its own callbacks and entries, so this runs nothing then.
  stop_.RequestStop();
}

bool TaskStateBase::HandleStopRequested() const {
  if (stop_requested()) return true;
  MutexLock lock(&mu_);
  // Not ended: the task holds a unit of its group, which is alive.
  return !done() && group_->stop_requested();
}

void TaskStateBase::StopFromGroup() {
  {
    MutexLock lock(&mu_);
    if (source_ == StopSource::kNone) source_ = StopSource::kGroup;
  }
  stop_.RequestStop();
}

void TaskStateBase::WaitDone() {
  if (done()) return;
  MutexLock lock(&mu_);
  ++waiters_;
  while (!done()) done_cv_.Wait(&mu_);
  --waiters_;
}

bool TaskStateBase::SuspendJoiner(CoroContext* ctx, std::coroutine_handle<> h) {
  MutexLock lock(&mu_);
  if (done()) return false;
  ctx->resume_handle = h;
  joiner_ = ctx;
  return true;
}

bool TaskStateBase::RunningHere() const noexcept {
  if (done()) return false;
  for (const TaskStateBase* s = tls_started_task; s != nullptr; s = s->below_) {
    if (s == this) return true;
  }
  return coroutine_ != nullptr && tls_driver != nullptr &&
         tls_driver->ctx == coroutine_;
}

absl::Status TaskStateBase::StopCause(GroupState* group) const {
  {
    MutexLock lock(&mu_);
    if (source_ == StopSource::kHandle) {
      return absl::CancelledError(absl::StrCat(Label(), " stopped: ", reason_));
    }
  }
  return group->StopStatus();
}

absl::Status TaskStateBase::ForGroup(absl::Status s) const {
  if (absl::IsCancelled(s) && stop_requested()) {
    s.SetPayload(kTaskStoppedPayload, absl::Cord("1"));
  }
  return s;
}

std::string TaskStateBase::Label() const {
  if (name_.empty()) return "an unnamed task";
  return absl::StrCat("task '", name_, "'");
}

TaskStateBase::RunningScope::RunningScope(TaskStateBase* s) noexcept
    : state_(s) {
  state_->below_ = tls_started_task;
  tls_started_task = state_;
}

TaskStateBase::RunningScope::~RunningScope() {
  tls_started_task = state_->below_;
  state_->below_ = nullptr;
}

// ---- the flight recorder's events for started tasks and blocking calls --

StartedTrace::StartedTrace(const GroupState* group, const char* file,
                           uint32_t line) {
  if (!TraceActive()) [[likely]] return;
  Tracer* const tracer = group->executor()->tracer();
  if (tracer == nullptr) return;  // another executor traces, not this one
  tracer_ = tracer;
  label_ = LabelText(file, line);
  group_id_ = group->id();
  group_name_ = tracer->GroupName(group_id_, group->name());
  start_ = Tracer::Now();
  TraceThreadState& t = tls_trace_state;
  ++t.depth;
  t.last_tick = start_;
}

StartedTrace::~StartedTrace() {
  if (tracer_ == nullptr) [[likely]] return;
  const uint64_t end = Tracer::Now();
  TraceThreadState& t = tls_trace_state;
  --t.depth;
  t.last_tick = end;
  tracer_->Complete(TraceKind::kTask, label_, group_id_, group_name_, start_,
                    end);
}

void TraceSpawn(TaskNode* node) {
  Tracer* const tracer = node->group->executor()->tracer();
  if (tracer == nullptr) return;
  node->flags |= tracer->Spawn() << kTraceFlowShift;
}

void TraceBlockingCall(const TaskNode* call) {
  if (!TraceActive()) [[likely]] return;
  const GroupState* const group = call->group;
  NameBlockingEvent(LabelText(call->site_file, call->site_line), group->id(),
                    group->name());
}

}  // namespace ripcord::internal
