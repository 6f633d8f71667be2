// Copyright 2026 The ripcord Authors.
//
// join.cc: the join word (GroupState::pending_): adding and
// releasing units, settling a task's outcome, and Wait(). Why Wait() never
// returns early and never hangs: docs/design/join-and-census.md, "The join
// word". A stopped group's early return is the census (census.cc).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <thread>
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

// ---- accounting -----------------------------------------------------------

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "GroupState's futex word is the low half of pending_");

const std::atomic<uint32_t>* GroupState::FutexWord() const {
  static_assert(sizeof(std::atomic<uint64_t>) == sizeof(uint64_t));
  // Only the kernel reads through this pointer (FutexWait's syscall).
  return reinterpret_cast<const std::atomic<uint32_t>*>(&pending_);
}

template <std::memory_order kOrder>
bool GroupState::AddPending() {
  // relaxed (lazy tasks): an increment publishes nothing; the task it
  // accounts for is published by the queue push that follows, and the
  // decrement that pairs with it is acq_rel. Strict units pass release: it
  // pairs with the census's snapshot RMW (the freeze), which then sees
  // their strict_ increment.
  //
  // The 0 -> 1 transition takes a unit in the parent BEFORE our count moves
  // (a CAS, not a fetch_add, so we know which transition we make): a census
  // of this group that counts our unit hands the parent its unit back
  // (the freeze), and that must never come before the parent got it (the
  // parent's count would go below zero; StopAndWaitVsRacingSpawns covers
  // it). If the count moved meanwhile, the extra parent unit goes back (the
  // parent then holds another one of ours, so it does not reach zero).
  uint64_t prev = pending_.load(std::memory_order_relaxed);
  // The common case, with calls only in tail position (no prologue): not
  // the 0 -> 1 transition of a child group, and no other thread in between.
  if ((prev & (kCountMask | kFrozenCount)) != 0 || parent_ == nullptr)
      [[likely]] {
    // relaxed on failure: the loop below starts over.
    if (pending_.compare_exchange_weak(prev, prev + 1, kOrder,
                                       std::memory_order_relaxed)) [[likely]] {
      if ((prev & (kCompletedCarry | kFrozenCount)) != 0 ||
          (prev & kCountMask) == kCountMask) [[unlikely]] {
        return AddPendingRare(prev);
      }
      return false;
    }
  }
  return AddPendingLoop<kOrder>(prev);
}

template <std::memory_order kOrder>
bool GroupState::AddPendingLoop(uint64_t prev) {
  bool parent_added = false;
  for (;;) {
    const bool first =
        (prev & (kCountMask | kFrozenCount)) == 0 && parent_ != nullptr;
    if (first != parent_added) [[unlikely]] {
      if (!first) {
        parent_->ReleasePending(kRelease, late_child_ ? kMarkStrict : 0);
      } else if (late_child_) {
        // The late-work step: strict in the parent. seq_cst: as in AddTask().
        parent_->strict_.fetch_add(1, std::memory_order_seq_cst);
        parent_->AddPending<std::memory_order_seq_cst>();
      } else {
        parent_->AddPending();
      }
      parent_added = first;
    }
    // relaxed on failure: we only retry.
    if (pending_.compare_exchange_weak(prev, prev + 1, kOrder,
                                       std::memory_order_relaxed)) {
      break;
    }
  }
  if ((prev & (kCompletedCarry | kFrozenCount)) != 0 ||
      (prev & kCountMask) == kCountMask) [[unlikely]] {
    return AddPendingRare(prev);  // out of line: no frame on the hot path
  }
  return false;
}

bool GroupState::AddPendingRare(uint64_t prev) {
  RIPCORD_CHECK((prev & kCountMask) != kCountMask,
                "TaskGroup %s: more than 2^29 unfinished tasks",
                Label().c_str());
  if ((prev & kCompletedCarry) != 0) {
    // The completed field wrapped. Between two wraps lie 2^31 completions,
    // more than the count (2^29) can hold, so some AddPending sees each carry
    // before the next; we hold a count, so the group is alive to update.
    // relaxed: statistics.
    if ((pending_.fetch_and(~kCompletedCarry, std::memory_order_relaxed) &
         kCompletedCarry) != 0) {
      completed_wraps_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if ((prev & kFrozenCount) != 0) {
    // The frozen lifetime: added after the snapshot, so the census did not
    // count this unit into frozen_refs_; it owes the record one reference,
    // given back by its release or drop. relaxed: as in Census(). The parent's
    // unit went back at the freeze, so none is taken there.
    frozen_refs_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  return false;
}

void GroupState::ReleasePending(uint64_t delta, int marks, int frame,
                                int64_t running_n, int64_t strict_n) {
  static_assert(Units(kRelease) == 1 && Units(5 * kReleaseCompleted) == 5);
  // Read before the release: once the count is zero, a waiter may destroy us.
  GroupState* const parent = parent_;
  ExecutorImpl* const exec = exec_;
  const int parent_marks = late_child_ ? kMarkStrict : 0;
  // acq_rel: release publishes the task's effects and counters to the
  // waiter's acquire load (the waiter-publishes step); acquire orders the
  // WAITERS bit (and the waiter's waiting_on store before it) before our
  // wake-ups.
  const uint64_t prev = pending_.fetch_add(delta, std::memory_order_acq_rel);
  // Markers after release (the census's). The record is still
  // alive: Close() waits for strict_ and running_other_, and a frame is only
  // ever compared. release: pairs with the census's acquire loads.
  if ((marks & kMarkFrame) != 0) ExecutorImpl::PopPlainFrame(frame);
  // A marker that reaches zero may let a waiter's census pass: wake a
  // waiter that published itself before our release (the census wait).
  bool marker_cleared = false;
  if ((marks & kMarkRunning) != 0) {
    marker_cleared |= running_other_.fetch_sub(
                          running_n, std::memory_order_release) == running_n;
  }
  if ((marks & kMarkStrict) != 0) {
    marker_cleared |=
        strict_.fetch_sub(strict_n, std::memory_order_release) == strict_n;
  }
  if ((prev & kFrozenCount) != 0) [[unlikely]] {
    // The frozen lifetime: released after the snapshot. The census (or our
    // AddPending) counted this unit into frozen_refs_, which keeps the
    // record alive until we give it back, last. The parent's unit went back
    // at the freeze. The census woke the waiters of the snapshot; a unit
    // added after it (the late-work step) wakes them when its marker reaches
    // zero. acq_rel: a second RMW of the word, after the marker: a waiter
    // (Wait(), a helping wait, a coroutine's Join) sets its bit with an
    // acq_rel RMW and then checks the markers; if its RMW comes first we
    // see its bit here, else it reads from ours and sees the marker at
    // zero. Our unit's reference (DropFrozen below) keeps the record alive.
    if (marker_cleared &&
        (pending_.fetch_or(0, std::memory_order_acq_rel) &
         (kWaiters | kCensusWaiter)) != 0) {
      WakeWaiters(exec);
    }
    DropFrozen(Units(delta));
    return;
  }
  if ((prev & kCountMask) != Units(delta)) {
    if (((prev & kCensusWaiter) != 0 && (marks & kQuiet) == 0) ||
        (marker_cleared && (prev & kWaiters) != 0)) {
      WakeWaiters(exec);
    }
    return;
  }
  if ((prev & (kWaiters | kCensusWaiter)) != 0) WakeWaiters(exec);
  if (parent != nullptr) parent->ReleasePending(kRelease, parent_marks);
}

void GroupState::WakeWaiters(ExecutorImpl* exec) const {
  // Both use our address as a key only: harmless if we are gone.
  FutexWakeAll(FutexWord());
  exec->WakeWaitersOf(this);
}

bool GroupState::SetWaitersBit(bool census) {
  const uint64_t bits = kWaiters | (census ? kCensusWaiter : 0);
  // acquire: as in Idle().
  uint64_t v = pending_.load(std::memory_order_acquire);
  for (;;) {
    if ((v & kCountMask) == 0) return false;
    if ((v & bits) == bits) return true;
    // acq_rel: release orders our waiting_on store before the bit (the last
    // releaser's fetch_sub reads it); acquire as in Idle().
    if (pending_.compare_exchange_weak(v, v | bits,
                                       std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
      return true;
    }
  }
}

bool GroupState::Idle() const {
  // acquire: pairs with the acq_rel fetch_sub in ReleasePending(); after it
  // sees zero, every finished task's effects are visible.
  return (pending_.load(std::memory_order_acquire) & kCountMask) == 0;
}

void GroupState::AddTask() {
  // seq_cst: like Submit's, before any check of the stop; and before the
  // count's increment (the freeze).
  strict_.fetch_add(1, std::memory_order_seq_cst);
  AddPending<std::memory_order_seq_cst>();
}

void GroupState::Submit(TaskNode* task) {
  if (InheritedByFork(exec_)) CheckNotInherited(exec_, "TaskGroup::Spawn");
  if (stop_requested()) {
    // Dropped here and now, counted strict like a non-lazy task: a frozen
    // group's census (the freeze) must see it until its release.
    task->flags &= ~TaskNode::kLazy;
    // seq_cst: before the count's increment, which the census reads.
    strict_.fetch_add(1, std::memory_order_seq_cst);
    AddPending<std::memory_order_seq_cst>();
    task->run(task, /*drop=*/true);
    return;
  }
  // max_concurrency (group_limit.h): a task admitted from the wait already
  // holds its slot.
  if (limit_ != nullptr && (task->flags & TaskNode::kSlot) == 0) [[unlikely]] {
    if (!limit_->Admit(this, task)) return;  // it waits, or was dropped
  }
  // Task group stress tests widen the window between the stop check and
  // the count's increment here.
  RunTestHook(TestHook::kSubmitRace, this);
  bool raced_census;
  if ((task->flags & TaskNode::kLazy) == 0) {
    // seq_cst: a census that saw the stop (and fenced) sees this increment,
    // or the start gate sees the stop and drops the task. Before the count's
    // increment: a snapshot that counts the task sees it strict (the
    // freeze).
    strict_.fetch_add(1, std::memory_order_seq_cst);
    raced_census = AddPending<std::memory_order_seq_cst>();
  } else {
    // A lazy task may be counted by a snapshot as it is: whenever it is
    // dropped, it is dropped unrun.
    raced_census = AddPending();
  }
  if (raced_census) [[unlikely]] {
    // We read the stop clear, but a census has frozen the group since
    // (the frozen lifetime) and Wait() may have returned: drop the task here,
    // before Spawn() returns, rather than let a worker run its destructor
    // later. A lazy task's drop gives back the reference AddPending took
    // (DropFrozen), a strict one's release does.
    task->run(task, /*drop=*/true);
    return;
  }
  exec_->Schedule(task);
}

void GroupState::CountStarted() {
  // relaxed: statistics (a unit counted here is also strict, or a plain
  // task nested too deep for a frame, whose gate uses a seq_cst increment).
  running_other_.fetch_add(1, std::memory_order_relaxed);
}

bool GroupState::GateUntracked() {
  // seq_cst: the census reads running_other_ after its HeavyFence; this RMW
  // is a full barrier, so it sees the increment or we see the stop.
  running_other_.fetch_add(1, std::memory_order_seq_cst);
  if (!stop_requested()) return true;
  running_other_.fetch_sub(1, std::memory_order_release);
  return false;
}

void GroupState::FinishLazyOk(int frame) {
  if (frame >= 0 && ExecutorImpl::DeferRelease(this, frame)) return;
  // Nothing is deferred: DeferRelease would have added us.
  ReleasePending(kReleaseCompleted, frame >= 0 ? kMarkFrame : kMarkRunning,
                 frame);
}

void GroupState::FinishPlainOk(int frame, bool lazy) {
  // Units deferred at this very frame go first (without ending the frame,
  // which is ours).
  ExecutorImpl::FlushDeferred(tls_worker);
  ReleasePending(kReleaseCompleted,
                 (frame >= 0 ? kMarkFrame : kMarkRunning) |
                     (lazy ? 0 : kMarkStrict),
                 frame);
}

void GroupState::FinishPlain(absl::Status status, int frame, bool lazy) {
  ExecutorImpl::FlushDeferred(tls_worker);  // as in FinishPlainOk
  Settle(std::move(status),
         (frame >= 0 ? kMarkFrame : kMarkRunning) | (lazy ? 0 : kMarkStrict),
         frame);
}

void GroupState::FinishCounted(const absl::Status& status) {
  if (status.ok()) {
    ReleasePending(kReleaseCompleted, kMarkRunning | kMarkStrict);
    return;
  }
  // relaxed: statistics.
  if (absl::IsCancelled(status) && stop_requested()) {
    cancelled_.fetch_add(1, std::memory_order_relaxed);
  } else {
    failed_.fetch_add(1, std::memory_order_relaxed);
  }
  ReleasePending(kRelease, kMarkRunning | kMarkStrict);
}

void GroupState::FinishOk() {
  ReleasePending(kReleaseCompleted, kMarkRunning | kMarkStrict);
}

void GroupState::FinishCancelledMany(int64_t cancelled, int64_t uncounted) {
  // relaxed: statistics.
  if (cancelled > 0) cancelled_.fetch_add(cancelled, std::memory_order_relaxed);
  const int64_t n = cancelled + uncounted;
  // relaxed: we still hold one more count, so this cannot reach zero and no
  // waiter concludes anything from it; the acq_rel release below publishes
  // everything before it (this thread settled all n). Every unit settled
  // here is strict (coroutines, the sweep's AddTask); the cancelled
  // coroutines are also running_other_: their markers go after the release
  // (markers after release).
  if (n > 1) {
    const uint64_t prev = pending_.fetch_sub(static_cast<uint64_t>(n - 1),
                                             std::memory_order_relaxed);
    if ((prev & kFrozenCount) != 0) [[unlikely]] {
      // The frozen lifetime, for the n - 1 units: each gives back its
      // reference. The last unit's (ReleasePending below) is still owed, so
      // this does not reach zero. relaxed: the release below orders it.
      frozen_refs_.fetch_sub(n - 1, std::memory_order_relaxed);
    }
  }
  ReleasePending(kRelease, (cancelled > 0 ? kMarkRunning : 0) | kMarkStrict,
                 -1, cancelled, n);
}

void GroupState::FinishDropped(bool lazy) {
  if (lazy && frozen()) {
    DropFrozen();
    return;
  }
  // relaxed: statistics.
  cancelled_.fetch_add(1, std::memory_order_relaxed);
  ReleasePending(kRelease, lazy ? kQuiet : kMarkStrict);
}

void GroupState::DropFrozen(int64_t units) {
  // The freeze: the frozen count keeps this task's unit (Stats() reports
  // it cancelled); only the record's lifetime hears of the drop. acq_rel: as
  // in Close().
  if (frozen_refs_.fetch_sub(units, std::memory_order_acq_rel) == units) {
    delete this;
  }
}

void GroupState::FinishTask(absl::Status status) {
  Settle(std::move(status), kMarkRunning | kMarkStrict, -1);
}

void GroupState::Settle(absl::Status status, int marks, int frame) {
  if (status.ok()) {
    ReleasePending(kReleaseCompleted, marks, frame);
    return;
  }
  if (absl::IsCancelled(status) &&
      (stop_requested() || StoppedByItsHandle(status))) {
    // It passed on what Sleep/SleepFor told it: not a failure (Trio's rule).
    // The same for a started task stopped through its TaskHandle.
    cancelled_.fetch_add(1, std::memory_order_relaxed);
    ReleasePending(kRelease, marks, frame);
    return;
  }
  failed_.fetch_add(1, std::memory_order_relaxed);
  if (collect_all_) {
    // FailurePolicy::kCollectAll: counted, neither recorded nor a stop.
    ReleasePending(kRelease, marks, frame);
    return;
  }
  std::string reason = absl::StrCat("a task failed: ", status.ToString());
  {
    MutexLock lock(&mu_);
    if (first_error_.ok()) first_error_ = std::move(status);
  }
  Stop(reason, StopOrigin::kSelf);
  ReleasePending(kRelease, marks, frame);
}

// ---- join -----------------------------------------------------------------

bool GroupState::CurrentTaskInside() const {
  const GroupState* current = tls_current_group;
  return current != nullptr && current->IsWithin(this);
}

absl::Status GroupState::CheckNotInside(const char* api) const {
  const GroupState* current = tls_current_group;
  if (current != nullptr && current->IsWithin(this)) {
    return absl::FailedPreconditionError(absl::StrCat(
        api, " called from a task of ", Label(),
        current == this ? "" : " (or of one of its descendants)",
        "; it would wait for itself. Use co_await group.Join() in a "
        "coroutine, or wait from outside the group"));
  }
  return absl::OkStatus();
}

bool GroupState::MarkersClear() const {
  // acquire: pairs with the release decrements in ReleasePending (markers
  // after release).
  return strict_.load(std::memory_order_acquire) == 0 &&
         running_other_.load(std::memory_order_acquire) == 0;
}

bool GroupState::Joined(bool* fenced) {
  if (Done()) return true;
  return stop_requested() && Census(fenced);
}


absl::Status GroupState::WaitUntil(absl::Time deadline, bool* timed_out) {
  if (InheritedByFork(exec_)) CheckNotInherited(exec_, "TaskGroup::Wait");
  *timed_out = false;
  bool fenced = false;
  if (Joined(&fenced)) return absl::OkStatus();
  if (exec_->OnWorkerThread()) {
    *timed_out = !exec_->HelpWhileWaiting(this, deadline);
    return absl::OkStatus();
  }
  // Off the executor: Wait() runs our subtree's tasks in a parked worker's
  // seat while there are any, then sleeps (ExecutorImpl::HelpAsCaller).
  // Not WaitFor(): a task it ran could keep it past its deadline.
  if (deadline == absl::InfiniteFuture() && exec_->HelpAsCaller(this)) {
    return absl::OkStatus();
  }
  // External thread: sleep on the futex of pending_ itself (the
  // waiter-publishes step).
  CensusPoll poll;
  bool spun = false;
  for (;;) {
    uint64_t v = pending_.load(std::memory_order_acquire);
    if ((v & kCountMask) == 0) break;
    const bool stopped = stop_requested();
    if (stopped && Census(&fenced)) break;
    if (stopped && !spun && MarkersClear()) {
      // Only plain tasks keep the census from passing, and they are short
      // as a rule: poll for a while before sleeping, since waking up again
      // can take a scheduler tick when the workers keep both cores busy
      // dropping (measured: 1 ms instead of 0.1 ms).
      spun = true;
      const absl::Time until = absl::Now() + kCensusSpin;
      bool passed = false;
      while (!(passed = Census(&fenced)) && absl::Now() < until) {
        for (int i = 0; i < 64; ++i) CpuRelax();
      }
      if (passed) break;
      continue;
    }
    const uint64_t bits =
        kWaiters | (stopped && MarkersClear() ? kCensusWaiter : 0);
    if ((v & bits) != bits) {
      if (!pending_.compare_exchange_weak(v, v | bits,
                                          std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
        continue;
      }
      v |= bits;
      // Again, now that releases see the bits (a marker may have reached
      // zero just before them).
      if (stopped && Census(&fenced)) break;
    }
    // The census wait: a stopped group's waiter also polls.
    const absl::Time until = poll.Until(deadline, stopped);
    // The kernel compares the low half only: a change of the completed
    // field alone is not a reason to wake, and always comes with a count
    // change in the low half anyway.
    const auto low = static_cast<uint32_t>(v);
    if (until == absl::InfiniteFuture()) {
      FutexWait(FutexWord(), low);
    } else if (!FutexWaitUntil(FutexWord(), low, until) &&
               absl::Now() >= deadline) {
      if (!Joined(&fenced)) {
        *timed_out = true;
        return absl::OkStatus();
      }
      break;
    }
  }
  // Best effort: clear WAITERS so later idle transitions skip the wake-up,
  // but only while the count is zero: a waiter that set the bit for new work
  // since must keep it (the release that ends that work wakes it). With the
  // count at zero, every release that could have seen the bit has run.
  // kCensusWaiter stays: the group stays stopped, and only census-relevant
  // releases (few) look at it.
  // relaxed: if the CAS loses, the bit stays and costs one extra wake-up.
  uint64_t v = pending_.load(std::memory_order_relaxed);
  while ((v & kCountMask) == 0 && (v & kWaiters) != 0 &&
         !pending_.compare_exchange_weak(v, v & ~kWaiters,
                                         std::memory_order_relaxed)) {
  }
  return absl::OkStatus();
}

absl::Status GroupState::WaitFor(absl::Duration timeout) {
  RIPCORD_RETURN_IF_ERROR(CheckNotInside("TaskGroup::WaitFor()"));
  bool timed_out = false;
  const absl::Time deadline = timeout <= absl::ZeroDuration()
                                  ? absl::InfinitePast()
                                  : absl::Now() + timeout;
  bool fenced = false;
  if (timeout > absl::ZeroDuration() || Joined(&fenced)) {
    WaitUntil(deadline, &timed_out).IgnoreError();
  } else {
    timed_out = true;
  }
  if (timed_out && !Joined(&fenced)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "TaskGroup::WaitFor(", absl::FormatDuration(timeout), "): ", Label(),
        " still has tasks running or queued"));
  }
  return Outcome();
}

absl::Status GroupState::Outcome() const {
  // Every non-OK outcome sets the stop bit (a failure stops the group), and
  // it is set before the failing task's final release, which the caller's
  // join observed. So an unset bit means OK, without taking mu_.
  if (!stop_.stop_requested()) return absl::OkStatus();
  // The bit is set before the first Stop() records the stop (the stop's
  // bit and record steps): wait for the record, which comes without user
  // code in between, rather than read the unrecorded stop as OK.
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (!first_error_.ok()) return first_error_;
      if (stopped_) {
        return absl::CancelledError(
            absl::StrCat(Label(), " stopped: ", StopReasonLocked()));
      }
    }
    std::this_thread::yield();
  }
}

absl::Status GroupState::StopStatus() const {
  // The first Stop() sets the stop bit before it records its reason
  // (StopState::RequestStop calls on_stop once the bit is visible, with no
  // user code in between): a reader that saw the bit waits for the record
  // instead of naming an empty cause. Without the bit there is no record
  // to wait for.
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stopped_ || !stop_.stop_requested()) {
        return absl::CancelledError(
            absl::StrCat(Label(), " stopped: ", stop_reason_));
      }
    }
    std::this_thread::yield();
  }
}


}  // namespace internal
}  // namespace ripcord
