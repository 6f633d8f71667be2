// Copyright 2026 The ripcord Authors.
//
// group_state.cc: TaskGroup's join, stop and accounting protocols.
//
// Join protocol (pending_):
//  1. Every spawned task, blocking call or coroutine adds 1 to pending_
//     before it can run; a child group adds 1 to its parent's pending_ when
//     its own count goes 0 -> 1, and releases it when the count goes 1 -> 0.
//     So the parent's count is non-zero while any child group has work.
//  2. A finishing task settles its statistics and its error first, then
//     releases pending_ as the very last touch of the group's memory. It reads
//     parent_ and exec_ before that release.
//  3. A waiter loads pending_ (acquire); if the count is non-zero it sets the
//     WAITERS bit (CAS) and sleeps: external threads on the futex of pending_
//     itself, workers in their Parker after publishing waiting_on.
//  4. The release that takes the count to zero sees WAITERS (its fetch_sub
//     reads the bit) and wakes both kinds: FutexWakeAll(&pending_) and
//     ExecutorImpl::WakeWaitersOf(this). Both use the address as a key only,
//     so they are harmless if the waiter has already returned and destroyed
//     the group.
// Why Wait() never returns early: the release in step 2 is an acq_rel RMW and
// the waiter's load is acquire, so all of a task's effects happen-before a
// Wait() that sees the count at zero. Why it never hangs: step 4.
//
// Stop protocol (Stop):
//  0. A shielded group ignores kParent and kExecutor stops. A call that
//     finds step 4's bit for its kind of stop set returns at once.
//  1. The StopState bit first (one CAS; the call that sets it is "first"),
//     so that start gates and Spawn() see the stop as early as possible.
//  2. Then the first reason and time are recorded under mu_: by the first
//     call from inside StopState::RequestStop, before the user's
//     StopCallbacks run (on the first call's thread), or by a later call
//     that gets mu_ before it (exactly one records; RecordStopLocked).
//  3. The children are pinned under children_mu_ and stopped outside it
//     (kParent, or kExecutorAll for a kExecutorAll stop), so a StopCallback
//     may create or destroy groups.
//  4. Then the call sets kStopDone (kForceDone too for kExecutorAll) in
//     stop_done_ with a release fetch_or; step 0 reads it with acquire.
// Every call that does not see step 4's bit runs steps 2-4 itself, also
// when another call set the stop bit: it helps rather than waits, so it
// returns only once this group and its subtree report stop_requested()
// (the API's promise), and two stops cannot wait for each other (as a
// StopCallback stopping its own parent, or the same group, would make
// them). Steps 3 and 4 are idempotent; the helping only happens while a
// stop is in progress, since afterwards step 0 returns.
// A child linked while its parent is stopped is stopped in LinkChild under
// the parent's children_mu_, so no child misses a stop: either it is in the
// list when step 3 copies it, or it sees stopped_ (recorded in step 2,
// before any call copies the list) when it links. It is stopped as kParent
// whatever stopped the parent: a kExecutorAll stop reaches the shielded
// groups that exist at its time, and a shielded child created later starts
// unstopped (ripcord/task_group.h).
//
// Census: how a stopped group's Wait() returns without touching its queued
// tasks (the bar: Wait() within 1 ms of the stop with 10^6 tasks queued).
// A queued plain task whose callable is trivially destructible (kLazy) is
// dropped by whichever worker pops it, whenever that is: dropping it runs no
// user code, so nobody can tell when it happens. Wait() of a stopped group
// therefore returns once every OTHER unit of its count is gone:
//  1. The start gate (ExecutorImpl::RunPlainGated): a worker publishes the
//     task's frame ("starting") on its own cache line, then (compiler
//     barrier only) reads the stop bit; it runs the task (frame "running")
//     only if the bit is clear, else drops it (frame "dropping", or none
//     once the group is frozen, step 5).
//  2. The waiter, having seen the stop bit, runs a heavy fence (membarrier,
//     executor/membarrier.h) once: every worker executes a full barrier, so
//     any worker that read the bit clear in step 1 has its frame visible to
//     us now, and any later gate reads the bit set. No lazy task of the
//     group starts after this point.
//  3. It then checks the markers of everything that is not a lazy queued
//     task: strict_ (non-lazy plain tasks, coroutines, blocking calls), the
//     running_other_ gauge and the workers' "starting" and "running" frames.
//     All clear: the rest of the count is lazy tasks that will be dropped
//     unrun. A group that ever had a child group does not take part (see
//     Census()): its Wait() waits for the drop of every queued task.
//  4. Exactness: a unit removes its marker only AFTER its release of
//     pending_ (ReleasePending), so a census that sees no marker has seen
//     every release: stats() is exact, and everything the tasks did
//     happens-before (acq_rel release, release marker store, acquire census
//     load). Then ReleasePending wakes waiters that set kCensusWaiter.
//     Close() waits for in-flight marker removals before it frees.
//  5. Freezing, so that the counts stop moving: under mu_, the census sets
//     frozen_, fences again, and waits for the "dropping" frames (drops
//     whose gate read frozen_ clear; they run no user code). A gate that
//     reads frozen_ set drops its lazy task with DropFrozen(), which leaves
//     the count alone and touches only frozen_refs_. Then the snapshot: one
//     fetch_or reads the count and sets kFrozenCount in the same word, so
//     every unit was added either before it (counted) or after it (its
//     AddPending sees the bit). A strict unit increments strict_ before its
//     count, so the census then waits for the markers of whatever transient
//     strict units the snapshot holds (a racing Spawn's task being dropped).
//     The rest is lazy tasks: the count is frozen (Stats() reports it as
//     cancelled), added to frozen_refs_, and the parent gets its unit back.
//     Wait() returns.
//  6. Waiting: the waiter sets kWaiters, re-checks, and sleeps on the
//     futex. While strict_ or running_other_ is non-zero (coroutines
//     unwinding, blocking calls), only the release that clears the last of
//     them wakes it. Once they are clear it also sets kCensusWaiter, and
//     every release but a lazy drop (kQuiet) wakes it: running plain tasks
//     finishing. A wake can slip between its check and its sleep (a marker
//     goes after the word changed), so a stopped group's waiter also polls,
//     every 50 us at first and at most every 1 ms.
//  7. Lifetime: a frozen record outlives its TaskGroup while lazy tasks
//     point at it. frozen_refs_ = kOwnerRef + the snapshot's count + one
//     per unit added after the snapshot, minus one per DropFrozen(). Every
//     unit gives one back exactly once: a lazy task dropped by a gate that
//     read frozen_ (before or after the snapshot), or any release that sees
//     kFrozenCount. Close() gives back kOwnerRef; whoever takes it to zero
//     frees the record. A unit added after the snapshot (a Spawn racing the
//     stop, a child group made later) takes no unit in the parent, and a
//     release after it gives none back there: the census did, once.
//  8. Ancestry: a helping wait asks of queued tasks whether their group is
//     within the group it serves (GroupState::IsWithin, which follows
//     parent_ unless census_passed_ is set). Once the census hands the
//     parent its unit back (step 5), the parent's record may be freed while
//     our tasks stay queued. So the walk is tagged (Worker::walking, a
//     relaxed store and a LightFence before IsWithin's acquire load of
//     census_passed_), and the census, after its store of census_passed_,
//     runs a HeavyFence and waits for walks tagged with its group
//     (ExecutorImpl::WaitForWalksOf) before it releases the parent's unit:
//     a walk either shows its tag or reads census_passed_ set. (Found by
//     the TSan stress run of StopDuringRecursiveFib.)
//  9. After an early return. Invariant: anything spawned or linked into a
//     group after a Wait() returned early is waited for by the next Wait().
//     A passed census is sticky, so Joined() (Census(), Done()) then also
//     requires no marker: strict_ and running_other_ at zero. After the
//     stop, every unit added is strict: Spawn() drops its task at once
//     (Submit), a blocking call or a coroutine's sweep counts strict
//     (AddTask), and a child group linked after the census passed
//     (late_child_, read from census_passed_ in LinkChild) adds each unit
//     it holds in us to our strict_ before it, and removes it with
//     kMarkStrict after its release, including the unit its own census
//     hands back (so the parent's Wait() does not return in the window
//     between the child's census and that hand-back: stats() would count
//     the unit twice). Such releases see kFrozenCount: they wake waiters
//     when their marker reaches zero, then DropFrozen. Markers go after
//     their release (step 4), so a Wait() that sees them clear has seen
//     every release, and stats() is exact again; the first Wait()'s speed
//     is unchanged.
// A heavy fence the kernel refuses (no membarrier) makes the census fail:
// Wait() then waits for the workers to drop every queued task, as before.
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
#include "executor/check.h"
#include "executor/futex.h"
#include "executor/group_limit.h"
#include "executor/group_report.h"
#include "executor/membarrier.h"
#include "executor/process_life.h"
#include "executor/scheduler.h"
#include "executor/timer.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/internal/spawn.h"
#include "ripcord/task_group.h"

namespace ripcord {
namespace internal {
// Thread-locals with external linkage on purpose (RIPCORD_FAST_TLS, check.h).
RIPCORD_FAST_TLS constinit thread_local GroupState* tls_current_group = nullptr;
RIPCORD_FAST_TLS constinit thread_local int tls_gate_frame = -1;

// The lists of groups this thread has pinned and is stopping (StopPinned),
// innermost first. Only this thread reads or writes them.
struct PinFrame {
  std::vector<GroupState*>* pinned;
  PinFrame* outer;
};
RIPCORD_FAST_TLS thread_local PinFrame* tls_pin_frames = nullptr;

// Group ids for labels: a per-thread counter under a per-thread prefix.
// Constant-initialised (no TLS init guard).
RIPCORD_FAST_TLS thread_local uint64_t tls_group_id_prefix = 0;
RIPCORD_FAST_TLS thread_local uint64_t tls_group_id_count = 0;

namespace {


// Creating a group touches no shared cache line (fib(30) creates 1.3
// million); the prefix is taken on the thread's first group.
uint64_t NextGroupId() {
  static std::atomic<uint64_t> next_thread{1};
  if (tls_group_id_prefix == 0) {
    // relaxed: only uniqueness matters.
    tls_group_id_prefix =
        next_thread.fetch_add(1, std::memory_order_relaxed) << 40;
  }
  return tls_group_id_prefix | ++tls_group_id_count;
}

// relaxed: a test knob (SetAncestryWalkHookForTesting); the hook is code.
std::atomic<AncestryWalkHook> ancestry_walk_hook{nullptr};

}  // namespace

void SetAncestryWalkHookForTesting(AncestryWalkHook hook) {
  ancestry_walk_hook.store(hook, std::memory_order_relaxed);  // see its load
}

// GroupTimeout: the timer entry that stops a group when its timeout elapses.
class GroupTimeout : private TimerEntry {
 public:
  GroupTimeout(GroupState* group, absl::Duration timeout)
      : TimerEntry(&Fire), group_(group), timeout_(timeout) {}
  TimerEntry* entry() { return this; }
  std::string Reason() const {
    return absl::StrCat("timeout of ", absl::FormatDuration(timeout_),
                        " elapsed in ", group_->Label());
  }

 private:
  static void Fire(TimerEntry* e) {
    auto* self = static_cast<GroupTimeout*>(e);
    self->group_->Stop(self->Reason(), StopOrigin::kSelf);
  }
  GroupState* group_;
  absl::Duration timeout_;
};

absl::Status StatusFromException(std::exception_ptr e, const char* what_ran) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return absl::UnknownError(
        absl::StrCat(what_ran, " threw an exception: ", ex.what()));
  } catch (...) {
    return absl::UnknownError(
        absl::StrCat(what_ran, " threw a non-std::exception"));
  }
}

GroupState::GroupState(ExecutorImpl* exec, GroupState* parent,
                       GroupOptions&& options)
    : exec_(exec),
      parent_(parent),
      depth_(parent == nullptr ? 0 : parent->depth_ + 1),
      shielded_(options.shielded),
      name_(std::move(options.name)),
      id_(NextGroupId()),
      limit_(options.max_concurrency == 0
                 ? nullptr
                 : GroupLimit::Make(options.max_concurrency)) {
  if (parent_ != nullptr) {
    parent_->LinkChild(this);
  } else {
    exec_->RegisterRoot(this);
  }
  if (options.timeout != absl::InfiniteDuration()) {
    timeout_ = std::make_unique<GroupTimeout>(this, options.timeout);
    if (options.timeout <= absl::ZeroDuration()) {
      Stop(timeout_->Reason(), StopOrigin::kSelf);
    } else {
      exec_->timers().Schedule(timeout_->entry(),
                               absl::Now() + options.timeout);
    }
  }
}

GroupState* GroupState::Create(ExecutorImpl* exec, GroupState* parent,
                               GroupOptions&& options) {
  if (InheritedByFork(exec)) CheckNotInherited(exec, "TaskGroup::TaskGroup");
  return new GroupState(exec, parent, std::move(options));
}

void GroupState::CheckNoChildren() const {
  const int children = children_mu_.count();
  RIPCORD_CHECK(children == 0,
                "TaskGroup %s destroyed while %d child group(s) are alive; "
                "children must end before their parent",
                Label().c_str(), children);
}

void GroupState::Close() {
  // ~TaskGroup ran CheckNoChildren() and joined.
  if (timeout_ != nullptr) exec_->timers().Cancel(timeout_->entry());
  if (parent_ != nullptr) {
    parent_->UnlinkChild(this);
  } else {
    exec_->UnregisterRoot(this);
  }
  WaitForUnpinned();
  // Census step 4: markers go right after their release; wait for the few
  // in flight. acquire: pairs with the release decrements in ReleasePending.
  while (strict_.load(std::memory_order_acquire) != 0 ||
         running_other_.load(std::memory_order_acquire) != 0) {
    sched_yield();
  }
  // acquire: pairs with the seq_cst store in Census(). A census that froze
  // the group always passes, under mu_; a release after its snapshot may
  // have made us idle (and let our owner's Wait() return) before it did.
  if (frozen_.load(std::memory_order_acquire)) {
    // Let it finish (it uses only locals once it leaves mu_).
    { MutexLock lock(&mu_); }
    // Census step 7: frozen with lazy tasks still queued; the last of us
    // (this owner or the last DropFrozen) frees the record.
    // acq_rel: release orders our last use before the freeing thread's
    // delete; acquire orders theirs before ours.
    if (frozen_refs_.fetch_sub(kOwnerRef, std::memory_order_acq_rel) ==
        kOwnerRef) {
      delete this;
    }
    return;
  }
  delete this;  // joined: nothing points at us any more
}

void GroupState::WaitForUnpinned() const {
  // Pins held by this thread belong to a StopPinned() frame below us on the
  // stack (a StopCallback destroying a group the same stop pinned): take the
  // group out of that frame and drop the pin, or we would wait for ourselves.
  for (PinFrame* f = tls_pin_frames; f != nullptr; f = f->outer) {
    for (GroupState*& g : *f->pinned) {
      if (g == this) {
        g = nullptr;
        const_cast<GroupState*>(this)->Unpin();
      }
    }
  }
  // acquire: pairs with the release in Unpin(); the stopping thread is done
  // with this group. Short: a pin lasts one Stop() call.
  while (pins_.load(std::memory_order_acquire) != 0) sched_yield();
}

int GroupState::StopPinned(std::vector<GroupState*>& pinned,
                           std::string_view reason, StopOrigin origin) {
  PinFrame frame{&pinned, tls_pin_frames};
  tls_pin_frames = &frame;
  int stopped = 0;
  for (size_t i = 0; i < pinned.size(); ++i) {
    if (pinned[i] == nullptr) continue;  // destroyed by an earlier callback
    stopped += pinned[i]->Stop(reason, origin);
    // Re-read: a callback of that very stop may have destroyed it.
    if (pinned[i] != nullptr) pinned[i]->Unpin();
  }
  tls_pin_frames = frame.outer;
  return stopped;
}

std::string GroupState::Label() const {
  if (!name_.empty()) return absl::StrCat("group '", name_, "'");
  return absl::StrCat("unnamed group #", id_ >> 40, ".", id_ & ((uint64_t{1} << 40) - 1));
}

bool GroupState::IsWithin(const GroupState* ancestor) const {
  // A frozen group (census step 5) may have outlived its parent (its unit
  // there went back at the freeze, its queued tasks keep only it alive):
  // its parent_ must not be followed. Such a record has no live children
  // (its TaskGroup is gone), so only the group a queued task names can be
  // one, never one of its ancestors; a group frozen while its TaskGroup
  // lives has its whole ancestry alive.
  // acquire: pairs with the release store in Census().
  if (census_passed_.load(std::memory_order_acquire)) return this == ancestor;
  // tests/parking_test.cc holds a walk here: census step 8's window.
  const AncestryWalkHook hook =
      ancestry_walk_hook.load(std::memory_order_relaxed);
  if (hook != nullptr) [[unlikely]] hook(this);
  const GroupState* g = this;
  while (g != nullptr && g->depth_ > ancestor->depth_) g = g->parent_;
  return g == ancestor;
}

GroupState* GroupState::Current() { return tls_current_group; }

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
  // pairs with the census's snapshot RMW (census step 5), which then sees
  // their strict_ increment.
  //
  // The 0 -> 1 transition takes a unit in the parent BEFORE our count moves
  // (a CAS, not a fetch_add, so we know which transition we make): a census
  // of this group that counts our unit hands the parent its unit back
  // (census step 5), and that must never come before the parent got it (the
  // parent's count would go below zero; seen in TSan runs of
  // StopAndWaitVsRacingSpawns). If the count moved meanwhile, the extra
  // parent unit goes back (the parent then holds another one of ours, so it
  // does not reach zero).
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
        // Census step 9: strict in the parent. seq_cst: as in AddTask().
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
    // Census step 7: added after the snapshot, so the census did not count
    // this unit into frozen_refs_; it owes the record one reference, given
    // back by its release or drop. relaxed: as in Census(). The parent's
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
  // waiter's acquire load (join step 3); acquire orders the WAITERS bit (and
  // the waiter's waiting_on store before it) before our wake-ups.
  const uint64_t prev = pending_.fetch_add(delta, std::memory_order_acq_rel);
  // Census step 4: the markers go after the release. The record is still
  // alive: Close() waits for strict_ and running_other_, and a frame is only
  // ever compared. release: pairs with the census's acquire loads.
  if ((marks & kMarkFrame) != 0) ExecutorImpl::PopPlainFrame(frame);
  // A marker that reaches zero may let a waiter's census pass: wake a
  // waiter that published itself before our release (census step 6).
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
    // Census step 7: released after the snapshot. The census (or our
    // AddPending) counted this unit into frozen_refs_, which keeps the
    // record alive until we give it back, last. The parent's unit went back
    // at the freeze. The census woke the waiters of the snapshot; a unit
    // added after it (census step 9) wakes them when its marker reaches
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
  // count's increment (census step 5).
  strict_.fetch_add(1, std::memory_order_seq_cst);
  AddPending<std::memory_order_seq_cst>();
}

void GroupState::Submit(TaskNode* task) {
  if (InheritedByFork(exec_)) CheckNotInherited(exec_, "TaskGroup::Spawn");
  if (stop_requested()) {
    // Dropped here and now, counted strict like a non-lazy task: a frozen
    // group's census (step 5) must see it until its release.
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
#ifndef NDEBUG
  if (auto* hook = submit_race_hook_for_testing.load(std::memory_order_relaxed)) {
    hook();
  }
#endif
  bool raced_census;
  if ((task->flags & TaskNode::kLazy) == 0) {
    // seq_cst: a census that saw the stop (and fenced) sees this increment,
    // or the start gate sees the stop and drops the task. Before the count's
    // increment: a snapshot that counts the task sees it strict (census
    // step 5).
    strict_.fetch_add(1, std::memory_order_seq_cst);
    raced_census = AddPending<std::memory_order_seq_cst>();
  } else {
    // A lazy task may be counted by a snapshot as it is: whenever it is
    // dropped, it is dropped unrun.
    raced_census = AddPending();
  }
  if (raced_census) [[unlikely]] {
    // We read the stop clear, but a census has frozen the group since
    // (census step 7) and Wait() may have returned: drop the task here,
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
  // (census step 4).
  if (n > 1) {
    const uint64_t prev = pending_.fetch_sub(static_cast<uint64_t>(n - 1),
                                             std::memory_order_relaxed);
    if ((prev & kFrozenCount) != 0) [[unlikely]] {
      // Census step 7, for the n - 1 units: each gives back its reference.
      // The last unit's (ReleasePending below) is still owed, so this does
      // not reach zero. relaxed: the release below orders it.
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
  // Census step 5: the frozen count keeps this task's unit (Stats() reports
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
  if (absl::IsCancelled(status) && stop_requested()) {
    // It passed on what Sleep/SleepFor told it: not a failure (Trio's rule).
    cancelled_.fetch_add(1, std::memory_order_relaxed);
    ReleasePending(kRelease, marks, frame);
    return;
  }
  failed_.fetch_add(1, std::memory_order_relaxed);
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
  // acquire: pairs with the release decrements in ReleasePending (census
  // step 4).
  return strict_.load(std::memory_order_acquire) == 0 &&
         running_other_.load(std::memory_order_acquire) == 0;
}

bool GroupState::Joined(bool* fenced) {
  if (Done()) return true;
  return stop_requested() && Census(fenced);
}

bool GroupState::Census(bool* fenced) {
  // acquire: pairs with the release store below. Once passed, what is left
  // to wait for is the work added after it (step 9): its markers.
  if (census_passed_.load(std::memory_order_acquire)) return MarkersClear();
  auto markers_clear = [this] { return MarkersClear(); };
  // A child group's unit here is released just after its own count reaches
  // zero, with no marker in between (one would cost every child group an
  // RMW): a group that ever had children is left to the full drain. relaxed:
  // a child linked concurrently is linked by a running task of ours (whose
  // frame we see) or races with the Wait() itself.
  if (had_children_.load(std::memory_order_relaxed)) return false;
  if (!markers_clear()) return false;
  if (!*fenced) {
    // Step 2, once per waiter.
    if (!HeavyFence()) return false;
    *fenced = true;
    if (!markers_clear()) return false;
  }
  // Step 3. Frames of drops before the freeze do not count here: they run
  // no user code, and step 5 waits for them.
  if (exec_->AnyRunningOf(this)) return false;
  // Step 5: freeze. One census at a time (mu_): the snapshot is taken once.
  GroupState* const parent = parent_;
  ExecutorImpl* const exec = exec_;
  const int parent_marks = late_child_ ? kMarkStrict : 0;
  uint64_t count = 0;
  {
    MutexLock lock(&mu_);
    if (census_passed_.load(std::memory_order_relaxed)) return MarkersClear();
    // seq_cst + HeavyFence: as the stop bit in step 2. A gate that reads
    // frozen_ clear has its frame visible to us after the fence.
    frozen_.store(true, std::memory_order_seq_cst);
    HeavyFence();
    // Drops whose gate read frozen_ clear keep their frame tagged until
    // their release (a gate tagged "starting" now may be one of them): wait
    // for them, so that stats() is exact when Wait() returns. They run no
    // user code, so this is short.
    exec_->WaitForGatesOf(this);
    // The snapshot: one RMW reads the count and sets kFrozenCount, so every
    // unit is on exactly one side of it (step 7 keeps the record's
    // references exact whatever the count held). seq_cst: acquire pairs
    // with the release of a strict unit's AddPending, so a strict unit we
    // count has its strict_ increment visible below.
    count = pending_.fetch_or(kFrozenCount, std::memory_order_seq_cst) &
            kCountMask;
    // What else the snapshot may hold besides lazy tasks: units that
    // appeared since step 3, all transient (a racing Spawn that read the
    // stop clear and whose task the gate now drops, a Spawn dropping its
    // task in Submit). Wait for their markers, which go after their release.
    for (int spins = 0; !markers_clear(); ++spins) {
      // As in WaitForGatesOf: let a preempted dropper have a core.
      if (spins > 64) absl::SleepFor(absl::Microseconds(20));
    }
    // relaxed: the RMW order on frozen_refs_ is all that matters. Units of
    // the snapshot released meanwhile have already given theirs back (the
    // owner's kOwnerRef keeps the sum positive).
    frozen_refs_.fetch_add(static_cast<int64_t>(count),
                           std::memory_order_relaxed);
    // release: pairs with the acquire loads in Done(), Close() and above.
    census_passed_.store(true, std::memory_order_release);
    // Step 8: a worker deciding whether a queued task of ours is within the
    // group its helping wait serves (ExecutorImpl::QueuedWithin) may have
    // read census_passed_ clear just before, and be following parent_:
    // wait for it, before the parent gets our unit back and may be freed.
    // After the fence, a walk that is not tagged yet reads the store above.
    if (parent != nullptr) {
      HeavyFence();  // it worked in step 2: the kernel has the command
      exec->WaitForWalksOf(this);
    }
  }
  // The frozen count never reaches zero: hand the parent its unit now (if
  // the snapshot held any: at zero the parent holds none of ours, and units
  // added since take none). Only locals from here: once mu_ is released,
  // our owner may close and free the record (Close() takes mu_ to wait for
  // us).
  if (count != 0 && parent != nullptr) {
    parent->ReleasePending(kRelease, parent_marks);
  }
  WakeWaiters(exec);  // concurrent waiters and Join()ers: we are done
  return true;
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
  // External thread: sleep on the futex of pending_ itself (join step 3).
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
    // Census step 6: a stopped group's waiter also polls.
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

absl::Status GroupState::Wait() {
  if (CurrentTaskInside()) return CheckNotInside("TaskGroup::Wait()");
  bool timed_out = false;
  WaitUntil(absl::InfiniteFuture(), &timed_out).IgnoreError();
  return Outcome();
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
  MutexLock lock(&mu_);
  if (!first_error_.ok()) return first_error_;
  if (stopped_) {
    return absl::CancelledError(
        absl::StrCat(Label(), " stopped: ", StopReasonLocked()));
  }
  return absl::OkStatus();
}

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
  if (shielded_ &&
      (origin == StopOrigin::kParent || origin == StopOrigin::kExecutor)) {
    return 0;
  }
  const bool force = origin == StopOrigin::kExecutorAll;
  const uint32_t need = kStopDone | (force ? kForceDone : 0);
  // Step 4's fast path: a complete stop. acquire: pairs with the release
  // fetch_or below; the subtree's stop bits happen-before our return.
  if ((stop_done_.load(std::memory_order_acquire) & need) == need) return 0;
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
  }
  if (first) {
    // Waiters asleep since before the stop switch to the census (step 6).
    // acquire: as in Idle().
    if ((pending_.load(std::memory_order_acquire) & kWaiters) != 0) {
      WakeWaiters(exec_);
    }
    // tests/wait_contract_test.cc holds the first stop here.
    if (auto* hook = stop_race_hook_for_testing.load(
            std::memory_order_relaxed)) {
      hook();
    }
    if (limit_ != nullptr) limit_->Close(this);  // drops what waits for a slot
  }
  // Step 3: every call that has not seen the stop complete propagates it
  // (a later one helps rather than waits: see step 4).
  const int stopped = (first ? 1 : 0) + StopChildren(reason, force);
  // Step 4. release: pairs with the acquire load above.
  stop_done_.fetch_or(force ? kStopDone | kForceDone : kStopDone,
                      std::memory_order_release);
  return stopped;
}

int GroupState::StopChildren(std::string_view reason, bool force) {
  std::vector<GroupState*> children;
  {
    SpinLockHolder lock(&children_mu_);
    if (first_child_ == nullptr) return 0;
    children.reserve(children_mu_.count());
    for (GroupState* c = first_child_; c != nullptr; c = c->next_sibling_) {
      c->Pin();
      children.push_back(c);
    }
  }
  const StopOrigin child_origin =
      force ? StopOrigin::kExecutorAll : StopOrigin::kParent;
  return StopPinned(children, reason, child_origin);
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

// ---- diagnostics ----------------------------------------------------------

void GroupState::SetCompletedForTesting(int64_t n) {
  const auto field = static_cast<uint64_t>(n) & ((uint64_t{1} << 31) - 1);
  uint64_t v = pending_.load(std::memory_order_relaxed);
  // relaxed: test set-up on a quiet group.
  while (!pending_.compare_exchange_weak(
      v, (v & (kWaiters | kCountMask)) | (field << kCompletedShift),
      std::memory_order_relaxed)) {
  }
  completed_wraps_.store(n >> 31, std::memory_order_relaxed);
}

GroupStats GroupState::Stats() const {
  GroupStats s;
  // Child groups with work each hold 1 of the count; the rest are tasks.
  int64_t busy_children = 0;
  {
    SpinLockHolder lock(&children_mu_);
    for (GroupState* c = first_child_; c != nullptr; c = c->next_sibling_) {
      if (!c->Done()) ++busy_children;
    }
  }
  // relaxed: a snapshot; exact once joined (see the field comment).
  int64_t running = 0;
  // Tasks that finished OK whose release a worker deferred (their units are
  // still in the count): completed, not unsettled.
  int64_t deferred = 0;
  exec_->CountPlain(this, &running, &deferred);
  running += running_other_.load(std::memory_order_relaxed);
  const uint64_t word = pending_.load(std::memory_order_relaxed);
  s.completed =
      deferred +
      static_cast<int64_t>((word & kCompletedMask) >> kCompletedShift) +
      (completed_wraps_.load(std::memory_order_relaxed) +
       ((word & kCompletedCarry) != 0 ? 1 : 0)) *
          (int64_t{1} << 31);
  s.failed = failed_.load(std::memory_order_relaxed);
  s.cancelled = cancelled_.load(std::memory_order_relaxed);
  const int64_t unsettled = std::max<int64_t>(
      0, static_cast<int64_t>(word & kCountMask) - busy_children - deferred);
  s.spawned = s.completed + s.failed + s.cancelled + unsettled;
  s.running = std::clamp<int64_t>(running, 0, unsettled);
  s.queued = unsettled - s.running;
  // After a census passed, nothing of the group runs again, and what the
  // frozen count still holds is dropped unrun: report it as the cancelled
  // tasks it is. (A frame seen now is a start gate dropping a task.)
  // acquire: pairs with the release store in Census().
  // Work added after the census (step 9) is strict, and is reported as
  // what it is.
  if (census_passed_.load(std::memory_order_acquire)) {
    const int64_t late = std::clamp<int64_t>(
        strict_.load(std::memory_order_relaxed), 0, unsettled);
    s.cancelled += unsettled - late;
    s.running = std::min(s.running, late);
    s.queued = late - s.running;
  }
  return s;
}

void GroupState::DescribeTree(std::string* out, int indent, absl::Time now,
                              int64_t* skipped) const {
  // Bounded output (group_report.h): past the size cap, only count. The
  // line is written by a separate frame, so that the recursion's frames
  // stay small (a 10,000-deep chain, under ASan too).
  if (out->size() >= kMaxDescribeBytes) {
    ++*skipped;
  } else {
    DescribeSelf(out, indent, now);
  }
  SpinLockHolder lock(&children_mu_);
  for (GroupState* c = first_child_; c != nullptr; c = c->next_sibling_) {
    c->DescribeTree(out, indent + 1, now, skipped);
  }
}

void GroupState::DescribeSelf(std::string* out, int indent,
                              absl::Time now) const {
  GroupStats s = Stats();
  std::string stop;
  {
    MutexLock lock(&mu_);
    if (stopped_) {
      stop = absl::StrCat(" stopped ", absl::FormatDuration(absl::Trunc(
                                           now - stop_time_, absl::Milliseconds(1))),
                          " ago: ", stop_reason_,
                          stopped_by_parent_ ? " (from the parent)" : "");
    }
  }
  const std::string depth =
      indent > kMaxDescribeIndent ? absl::StrCat("[depth ", indent, "] ") : "";
  absl::StrAppendFormat(
      out,
      "%*s%s%s%s%s: spawned=%lld completed=%lld failed=%lld cancelled=%lld "
      "running=%lld queued=%lld\n",
      2 * std::min(indent, kMaxDescribeIndent), "", depth, Label(),
      shielded_ ? " [shielded]" : "", stop,
      static_cast<long long>(s.spawned), static_cast<long long>(s.completed),
      static_cast<long long>(s.failed), static_cast<long long>(s.cancelled),
      static_cast<long long>(s.running), static_cast<long long>(s.queued));
}

void GroupState::CollectBusy(std::vector<BusyGroup>* out) const {
  GroupStats s = Stats();
  if (s.running + s.queued > 0) {
    BusyGroup b;
    b.label = Label();
    b.shielded = shielded_;
    b.stopped = stop_requested();
    b.running = s.running;
    b.queued = s.queued;
    // relaxed: a report; exactness is not needed.
    b.blocking = blocking_.load(std::memory_order_relaxed);
    out->push_back(std::move(b));
  }
  SpinLockHolder lock(&children_mu_);
  for (GroupState* c = first_child_; c != nullptr; c = c->next_sibling_) {
    c->CollectBusy(out);
  }
}

// ---- blocking calls -------------------------------------------------------

void SubmitBlockingJob(GroupState* group, TaskNode* job) {
  group->AddTask();
  if (group->stop_requested()) {
    // fn never runs: the job's first phase sees the stop and schedules done
    // with CancelledError.
    job->run(job, /*drop=*/false);
    return;
  }
  if (GroupLimit* limit = group->limit()) [[unlikely]] {
    if (!limit->AdmitBlockingCall(job)) return;  // waits for a slot
  }
  absl::Status submitted =
      group->executor()->blocking().Submit([job] { job->run(job, false); });
  // No blocking thread exists and none could start: the fn phase, told so
  // by drop = true, hands done ResourceExhausted without running fn.
  if (!submitted.ok()) job->run(job, /*drop=*/true);
}

void ScheduleContinuation(TaskNode* node) {
  node->group->executor()->Schedule(node);
}

}  // namespace internal

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
  // Process life (executor/process_life.h): in a fork child, or during
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

// ---- Executor ---------------------------------------------------------------

Executor::Executor(ExecutorOptions options)
    : impl_(std::make_unique<internal::ExecutorImpl>(options)) {
  internal::NoteProcessLifeObject();
  internal::RegisterExecutor(impl_.get());
}

Executor::~Executor() {
  // Process life (executor/process_life.h): an inherited executor has no
  // threads to join; during exit() live groups stop and the executor leaks.
  if (internal::InheritedByFork(impl_.get())) {
    internal::LeakOnPurpose(impl_.release());
    return;
  }
  internal::UnregisterExecutor(impl_.get());
  if ((impl_->LiveRootGroups() != 0 || impl_->OnWorkerThread()) &&
      internal::ExitingFor(this)) {
    impl_->RequestStop(StopTarget::kAll,
                       "the process is exiting (exit() called)");
    internal::LeakOnPurpose(impl_.release());
  }
}

int Executor::num_workers() const { return impl_->num_workers(); }

void Executor::RequestStop(StopTarget target, std::string_view reason) {
  impl_->RequestStop(target, reason);
}

std::string Executor::DebugString() const { return impl_->DebugString(); }

}  // namespace ripcord
