// Copyright 2026 The ripcord Authors.
//
// stop.cc: GroupState::Stop and its propagation: the stop bit
// first, the first reason recorded once, children stopped outside the
// list's lock, later concurrent calls helping rather than waiting, and
// children linked under a stopped parent. docs/design/stop.md.
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
#include "executor/base/test_hooks.h"
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
namespace internal {

// ---- stop -----------------------------------------------------------------

namespace {
// What the call of Stop() that sets the bit records, from inside
// StopState::RequestStop (stop protocol step 2).
struct StopRecord {
  GroupState* group;
  std::string_view reason;
  StopOrigin origin;
};
}  // namespace

void GroupState::RecordStopLocked(std::string_view reason,
                                  StopOrigin origin) {
  if (stopped_) return;
  stopped_ = true;
  stop_reason_ = CapStopReason(reason);
  stopped_by_parent_ = origin == StopOrigin::kParent;
  stop_time_ = absl::Now();
}

int GroupState::Stop(std::string_view reason, StopOrigin origin) {
  int stopped = 0;
  if (!StopSelf(reason, origin, &stopped)) return 0;
  const bool force = origin == StopOrigin::kExecutorAll;
  // Step 3: every call that has not seen the stop complete propagates it
  // (a later one helps rather than waits: see step 4). StopPinned walks the
  // subtree without recursion and marks each child's step 4.
  std::vector<GroupState*> children;
  PinChildren(&children);
  if (!children.empty()) {
    stopped += StopPinned(
        children, reason,
        force ? StopOrigin::kExecutorAll : StopOrigin::kParent);
  }
  MarkStopDone(force);
  return stopped;
}

bool GroupState::StopSelf(std::string_view reason, StopOrigin origin,
                          int* stopped) {
  if (shielded_ &&
      (origin == StopOrigin::kParent || origin == StopOrigin::kExecutor)) {
    return false;
  }
  const bool force = origin == StopOrigin::kExecutorAll;
  const uint32_t need = kStopDone | (force ? kForceDone : 0);
  // Step 4's fast path: a complete stop. acquire: pairs with the release
  // fetch_or in MarkStopDone(); the subtree's stop bits happen-before our
  // return.
  if ((stop_done_.load(std::memory_order_acquire) & need) == need) {
    return false;
  }
  // Step 1: the bit, before anything else.
  StopRecord record{this, reason, origin};
  const bool first = stop_.RequestStop(
      [](void* arg) {
        auto* r = static_cast<StopRecord*>(arg);
        MutexLock lock(&r->group->mu_);
        r->group->RecordStopLocked(r->reason, r->origin);
      },
      &record);
  if (!first) {
    // Step 2 for a later call: the first may not have recorded yet.
    MutexLock lock(&mu_);
    RecordStopLocked(reason, origin);
    return true;
  }
  ++*stopped;
  if (Tracer* t = exec_->tracer()) {
    t->GroupStopped(id_, name_, CapStopReason(reason));
  }
  // Waiters asleep since before the stop switch to the census (step 6).
  // acquire: as in Idle().
  if ((pending_.load(std::memory_order_acquire) & kWaiters) != 0) {
    WakeWaiters(exec_);
  }
  // tests/wait_contract_test.cc holds the first stop here.
  RunTestHook(TestHook::kStopRace, this);
  if (limit_ != nullptr) limit_->Close(this);  // drops what waits for a slot
  return true;
}

void GroupState::PinChildren(std::vector<GroupState*>* out) {
  SpinLockHolder lock(&children_mu_);
  if (first_child_ == nullptr) return;
  out->reserve(out->size() + children_mu_.count());
  for (GroupState* c = first_child_; c != nullptr; c = c->next_sibling_) {
    c->Pin();
    out->push_back(c);
  }
}

void GroupState::MarkStopDone(bool force) {
  // Step 4. release: pairs with the acquire load in StopSelf().
  stop_done_.fetch_or(force ? kStopDone | kForceDone : kStopDone,
                      std::memory_order_release);
}

void GroupState::LinkChild(GroupState* child) {
  std::string reason;
  bool stopped = false;
  SpinLockHolder lock(&children_mu_, +1);  // counts the child
  // relaxed: see Census().
  if (!had_children_.load(std::memory_order_relaxed)) {
    had_children_.store(true, std::memory_order_relaxed);
  }
  child->prev_sibling_ = nullptr;
  child->next_sibling_ = first_child_;
  if (first_child_ != nullptr) first_child_->prev_sibling_ = child;
  first_child_ = child;
  // The stop bit is set (in Stop) before the child list is copied, both
  // under children_mu_'s ordering, so checking the bit here is enough; mu_ is
  // taken only when it is set, to read the reason.
  if (stop_requested()) {
    MutexLock status_lock(&mu_);
    stopped = stopped_;
    if (stopped) reason = stop_reason_;
  }
  // Census step 9: a child linked after our census passed counts its units
  // here as strict too. acquire: pairs with the release store in Census().
  child->late_child_ = census_passed_.load(std::memory_order_acquire);
  // Under children_mu_, so a concurrent Stop() either copied the child or we
  // see its stopped_ here (stopped_ is recorded before a Stop() copies the
  // list). The child is new: it has no StopCallbacks and no children yet,
  // so stopping it here runs no user code. kParent also after a kExecutorAll
  // stop: that reaches the shielded groups that exist at its time, and a
  // shielded child created later starts unstopped (ripcord/task_group.h).
  if (stopped) child->Stop(reason, StopOrigin::kParent);
}

void GroupState::UnlinkChild(GroupState* child) {
  SpinLockHolder lock(&children_mu_, -1);  // uncounts the child
  if (child->prev_sibling_ != nullptr) {
    child->prev_sibling_->next_sibling_ = child->next_sibling_;
  } else {
    first_child_ = child->next_sibling_;
  }
  if (child->next_sibling_ != nullptr) {
    child->next_sibling_->prev_sibling_ = child->prev_sibling_;
  }
}


}  // namespace internal
}  // namespace ripcord
