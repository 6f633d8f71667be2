// Copyright 2026 The ripcord Authors.
//
// internal/group_state.h: the state of one task group. A TaskGroup owns its
// GroupState, a heap record whose lifetime is the join word: it is freed when
// its TaskGroup is gone AND no queued task points at it any more (a stopped
// group's Wait() may return before its lazily dropped tasks are popped: the
// census). The executor's queues hold TaskNodes that point back to it. The
// algorithms live in executor/group/ (join.cc, census.cc, stop.cc,
// group_state.cc); the protocols are in docs/design/join-and-census.md and
// docs/design/stop.md.
#ifndef RIPCORD_INTERNAL_GROUP_STATE_H_
#define RIPCORD_INTERNAL_GROUP_STATE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "ripcord/internal/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ripcord/internal/group_ref.h"
#include "ripcord/internal/stop_state.h"
#include "ripcord/internal/task_alloc.h"
#include "ripcord/internal/task_node.h"
#include "ripcord/stop_token.h"

namespace ripcord {

struct GroupOptions;
struct GroupStats;

namespace internal {

class ExecutorImpl;
class GroupLimit;
class GroupTimeout;
struct RootShard;
struct RunningTask;  // executor/sched/running_tasks.h

// One group with work left, for shutdown reports (SignalWatcher's lines).
struct BusyGroup {
  std::string label;  // GroupState::Label()
  bool shielded = false;
  bool stopped = false;
  int64_t running = 0;   // tasks started and not finished (incl. blocking)
  int64_t queued = 0;
  int64_t blocking = 0;  // blocking calls whose fn is running
};

// The census wait's poll (docs/design/join-and-census.md): how often a waiter
// of a stopped group re-checks on its own, first and at most.
inline constexpr absl::Duration kCensusFirstPoll = absl::Microseconds(50);
inline constexpr absl::Duration kCensusLastPoll = absl::Milliseconds(1);
// How long an external waiter of a stopped group polls the census before it
// first sleeps, when only running plain tasks are left.
inline constexpr absl::Duration kCensusSpin = absl::Microseconds(200);

// CensusPoll: the growing poll period of one waiter (start at
// kCensusFirstPoll). Until(deadline, stopped) is when the waiter's next
// sleep ends: `deadline` itself unless the group is stopped, else the next
// poll (which then doubles, up to kCensusLastPoll). Thread-compatible.
class CensusPoll {
 public:
  absl::Time Until(absl::Time deadline, bool stopped) {
    if (!stopped) return deadline;
    const absl::Time until = std::min(deadline, absl::Now() + period_);
    period_ = std::min(period_ * 2, kCensusLastPoll);
    return until;
  }

 private:
  absl::Duration period_ = kCensusFirstPoll;
};

// Who asked a group to stop; decides whether a shielded group listens.
enum class StopOrigin {
  kSelf,        // its own RequestStop(), timeout or failing task: always obeyed
  kParent,      // propagated from the parent: a shielded group ignores it
  kExecutor,    // Executor::RequestStop(kUnshielded), first signal: ignored when shielded
  kExecutorAll  // Executor::RequestStop(kAll), second signal, grace period: obeyed
};

// GroupState. Thread-safe: every member may be called from any thread.
// Allocated from the task cache (task_alloc.h): a TaskGroup's record is
// often freed by another thread than the one that created it.
class GroupState final : public CacheAllocated<GroupState> {
 public:
  // Creates the record (TaskGroup's constructor). Thread-safe.
  static GroupState* Create(ExecutorImpl* exec, GroupState* parent,
                            GroupOptions&& options);
  // Ends the owner's use of the record (~TaskGroup, after it joined):
  // unlinks it from its parent (or the root registry) and frees it, or, if
  // lazily dropped tasks still point at it, leaves it to the last of them.
  // The record must not be used by the caller afterwards.
  void Close();
  GroupState(const GroupState&) = delete;
  GroupState& operator=(const GroupState&) = delete;

  // ---- spawn path -------------------------------------------------------
  // Accounts a new task and hands it to the scheduler; if the group is
  // stopped the task is freed unrun and counted cancelled. A task without
  // TaskNode::kLazy is also counted strict (see strict_).
  void Submit(TaskNode* task);
  // Accounts work that is not a queued TaskNode but keeps Wait() waiting (a
  // blocking call, a task that is about to be scheduled later), counted
  // strict. Pair with one Finish*() call other than FinishDropped(true).
  void AddTask();
  // A TaskNode's run function brackets user code with these. Enter makes
  // this group current on the thread and returns the previous current group,
  // to restore with Leave.
  GroupState* Enter() { return GroupRef::Enter(this); }
  static void Leave(GroupState* previous) { GroupRef::Leave(previous); }
  // Settles one task; the last touch of the group by that task.
  // Plain tasks bracket their run with StartPlain()/FinishPlain(): the
  // running count of plain tasks comes from the workers' published frames
  // (ExecutorImpl::CountPlain), not from a counter, so a plain task
  // costs no RMW of the group's line for starting. StartPlain returns the
  // frame the scheduler's start gate opened (tls_gate_frame; -1:
  // untracked, counted in running_other_ by the gate). Call only from the
  // task's run function, on the worker that runs it. `lazy`: the task has TaskNode::kLazy.
  static int StartPlain() { return GroupRef::StartPlain(); }
  // The start gate of a plain task nested too deep for a frame: counts it
  // running (seq_cst: a full barrier of its own), then checks the stop.
  // Returns false, counting nothing, if the group is stopped.
  bool GateUntracked();
  void FinishPlain(absl::Status status, int frame, bool lazy);
  // FinishPlain(OkStatus()), without a Status.
  void FinishPlainOk(int frame, bool lazy);
  // FinishPlainOk(frame, /*lazy=*/true); in a tracked frame the release may
  // be left to the worker (Worker::deferred_n).
  void FinishLazyOk(int frame);
  // Releases `n` lazy plain tasks that finished OK, whose releases a worker
  // deferred (ExecutorImpl::FlushDeferred), as one RMW; then ends the
  // worker's frame `frame` (-1: leave the frames alone). Like FinishPlain,
  // the caller's last touch of the group.
  void ReleaseDeferred(int64_t n, int frame) {
    ReleasePending(static_cast<uint64_t>(n) * kReleaseCompleted,
                   frame >= 0 ? kMarkFrame : 0, frame);
  }
  // A task dropped before it started. `lazy`: it had TaskNode::kLazy (else
  // it was counted strict: a non-lazy plain task, a coroutine's first run, a
  // blocking call whose fn never ran).
  void FinishDropped(bool lazy = false);
  // True once a census froze the group (the freeze): a lazy task the
  // start gate drops from now on leaves the counts alone (DropFrozen).
  bool frozen() const { return frozen_.load(std::memory_order_relaxed); }
  // The start gate drops a lazy task of a frozen group (its node is freed):
  // releases the task's reference to the record, the last one frees it.
  // Also the last step of a release after the census's snapshot (the frozen
  // lifetime).
  void DropFrozen(int64_t units = 1);
  // Other work (coroutines, blocking calls) counts its start with
  // CountStarted() and settles with one of FinishTask, FinishOk or
  // FinishCounted, which count it no longer running.
  void CountStarted();
  void FinishTask(absl::Status status);
  void FinishOk();
  // Settles a task whose outcome is counted (completed/failed/cancelled) but
  // does not fail the group: a blocking call whose done callback returned.
  void FinishCounted(const absl::Status& status);
  // Settles `cancelled` coroutines (each counted by CountStarted) that
  // finished with CancelledError after this group's stop, as that many
  // FinishTask() calls would, plus `uncounted` units of AddTask() that count
  // as no task at all (internal work that only kept the group alive), with
  // one RMW per counter instead of three per coroutine. cancelled +
  // uncounted must be >= 1. Like FinishTask it is the caller's last touch of
  // the group.
  void FinishCancelledMany(int64_t cancelled, int64_t uncounted = 0);

  // Aborts with a message if child groups are still alive.
  void CheckNoChildren() const ABSL_LOCKS_EXCLUDED(children_mu_);
  bool HasChildren() const { return children_mu_.count() != 0; }

  // ---- join -------------------------------------------------------------
  // Inline so that TaskGroup::Wait(), out of line in task_group.cc, is one
  // call deep, as when it inlined this call in user code.
  absl::Status Wait() {
    if (CurrentTaskInside()) return CheckNotInside("TaskGroup::Wait()");
    bool timed_out = false;
    WaitUntil(absl::InfiniteFuture(), &timed_out).IgnoreError();
    return Outcome();
  }
  absl::Status WaitFor(absl::Duration timeout);
  bool Idle() const;             // nothing pending (tasks or busy children)
  // True if the count (tasks not settled, busy children) is at most `n`: a
  // helping waiter that holds n deferred releases of the group is then all
  // the group waits for. A hint (relaxed load).
  bool CountAtMost(int64_t n) const {
    return static_cast<int64_t>(pending_.load(std::memory_order_relaxed) &
                                kCountMask) <= n;
  }
  // Idle(), or a census passed (what is left will be dropped unrun) and
  // nothing added since is left (the late-work step: no marker is set).
  bool Done() const {
    return Idle() ||
           (census_passed_.load(std::memory_order_acquire) && MarkersClear());
  }
  // Idle(), or stopped with nothing left but lazily dropped tasks that will
  // never run (the census: docs/design/join-and-census.md). What Wait() waits
  // for.
  // `*fenced` carries, across calls of one waiter, that the census's heavy
  // fence already ran after the stop was seen (start it false).
  bool Joined(bool* fenced);
  // No strict unit and nothing in running_other_: only plain tasks (running
  // or queued) can keep a census of this stopped group from passing, so a
  // waiter asks for every release (kCensusWaiter); before that, only for
  // the one that clears the last of these markers.
  bool MarkersClear() const;
  // The status Wait() would return now (valid once Idle()).
  absl::Status Outcome() const ABSL_LOCKS_EXCLUDED(mu_);
  // FailedPrecondition if the calling thread runs a task of this group or of
  // a descendant (Wait() would deadlock), else OK.
  absl::Status CheckNotInside(const char* api) const;
  // The test behind CheckNotInside, without building a Status.
  bool CurrentTaskInside() const;

  // ---- stop -------------------------------------------------------------
  // Stops this group (unless shielded from `origin`) and its subtree. The
  // first stop records `reason`. Returns how many groups this call stopped
  // (newly: already stopped ones do not count). When it returns, the group
  // and its subtree (the part `origin` reaches) report stop_requested(),
  // also if a concurrent call made the stop (the helping rule,
  // docs/design/stop.md).
  int Stop(std::string_view reason, StopOrigin origin);
  StopToken token() { return TokenFor(&stop_); }
  // CancelledError naming this group's stop cause ("group 'x' stopped:
  // reason"), for a started task the stop dropped. Valid once stopped.
  absl::Status StopStatus() const ABSL_LOCKS_EXCLUDED(mu_);
  // The stop source itself, for the library's StopEntry registrations.
  StopState* stop_state() { return &stop_; }
  bool stop_requested() const { return stop_.stop_requested(); }

  // ---- accessors --------------------------------------------------------
  const std::string& name() const { return name_; }
  bool shielded() const { return shielded_; }
  GroupState* parent() const { return parent_; }
  ExecutorImpl* executor() const { return exec_; }
  int depth() const { return depth_; }
  uint64_t id() const { return id_; }  // as in Label(); never reused
  GroupStats Stats() const;
  // Stats() of this group plus those of all its descendants (group_report.cc).
  GroupStats TreeStats() const ABSL_LOCKS_EXCLUDED(children_mu_);
  // Adds TreeStats() to *sum.
  void AddTreeStats(GroupStats* sum) const ABSL_LOCKS_EXCLUDED(children_mu_);
  // GroupOptions::max_concurrency's slots (executor/group/group_limit.h); null
  // when the group has no limit.
  GroupLimit* limit() const { return limit_.get(); }
  // Gives back the slot a finishing or suspending piece of work held (its
  // node had TaskNode::kSlot). The caller keeps the group alive.
  void ReleaseSlot();
  // "group 'name'" or "unnamed group #id", for messages.
  std::string Label() const;
  // True if this group is `ancestor` or lies under it.
  bool IsWithin(const GroupState* ancestor) const;
  // The group of the task running on this thread (null outside tasks).
  static GroupState* Current();

  // Appends this group and its subtree to `out` (Executor::DebugString).
  // Once `out` is kMaxDescribeBytes long (executor/group/group_report.h), groups
  // are only counted in `*skipped`.
  // `running` (sorted by group, resolved by ResolveRunning; may be null):
  // each group's running tasks are listed under it, one line each.
  void DescribeTree(std::string* out, int indent, absl::Time now,
                    int64_t* skipped,
                    const std::vector<RunningTask>* running = nullptr) const
      ABSL_LOCKS_EXCLUDED(children_mu_);
  // For each task of `running` (sorted by group) whose group is in this
  // subtree: sets its group's label, resolved, and whether it ignores its
  // group's stop (running_tasks.h).
  void ResolveRunning(std::vector<RunningTask>* running, absl::Time now) const
      ABSL_LOCKS_EXCLUDED(children_mu_);
  // Appends every group of the subtree that has tasks running or queued
  // (for shutdown reports).
  void CollectBusy(std::vector<BusyGroup>* out) const
      ABSL_LOCKS_EXCLUDED(children_mu_);
  // A blocking call's fn starts / returns (for BusyGroup::blocking).
  void BlockingFnStarted() { blocking_.fetch_add(1, std::memory_order_relaxed); }
  void BlockingFnDone() { blocking_.fetch_sub(1, std::memory_order_relaxed); }

  // Sets the WAITERS bit so that the last release wakes waiters (and, with
  // `census`, kCensusWaiter: every release that could end the census wakes
  // them too). Returns false (and sets nothing) if the group is already idle.
  bool SetWaitersBit(bool census = false);
  // Pins keep a group's memory alive while another thread stops it outside
  // the lock of the list it was found in; unlinking waits for pins to drop.
  void Pin() { pins_.fetch_add(1, std::memory_order_relaxed); }
  void Unpin() { pins_.fetch_sub(1, std::memory_order_release); }
  // Stops each of `pinned` (groups Pin()ned under their list's lock) with
  // `origin`, and their subtrees as their parents' stops (kParent, or
  // kExecutorAll for one), then unpins it. Depth first with an explicit
  // stack, not recursion: a chain 100,000 groups deep stops in constant
  // stack. A group destroyed meanwhile on this thread (a StopCallback
  // tearing down a sibling) removes itself from the list instead of waiting
  // for the pin this very thread holds. Returns the number newly stopped.
  static int StopPinned(std::vector<GroupState*>& pinned,
                        std::string_view reason, StopOrigin origin);

  // Root registry links (executor/sched/roots.cc): guarded by the shard's
  // mutex.
  GroupState* next_root_ = nullptr;
  GroupState* prev_root_ = nullptr;
  RootShard* shard_ = nullptr;

 private:
  friend class GroupTimeout;
  friend struct GroupStateTestPeer;  // executor/group/group_test_peer.h
  GroupState(ExecutorImpl* exec, GroupState* parent, GroupOptions&& options);
  ~GroupState() = default;  // via Close() or the last lazily dropped task

  // pending_, one 64-bit word, so that a task's last touch of its group both
  // settles it and counts it completed in ONE atomic RMW:
  //   bits 0..28   count: tasks not yet settled + child groups not idle
  //   bit 29       kFrozenCount: set (sticky) by the census's snapshot
  //                (the freeze); a unit added after it owes the record a
  //                reference, and so does one released after it
  //   bit 30       kCensusWaiter: a waiter of the stopped group wants every
  //                release that may end the census (not lazy drops)
  //   bit 31       kWaiters: someone sleeps in FutexWait on the low half
  //   bits 32..62  tasks completed OK, modulo 2^31
  //   bit 63       kCompletedCarry: the completed field wrapped; AddPending
  //                moves it into completed_wraps_ (see there)
  // The futex works on the low 32 bits (x86-64 and AArch64 Linux are little
  // endian; static_assert in group_state.cc).
  static constexpr uint64_t kCountMask = (uint64_t{1} << 29) - 1;
  static constexpr uint64_t kFrozenCount = uint64_t{1} << 29;
  static constexpr uint64_t kCensusWaiter = uint64_t{1} << 30;
  static constexpr uint64_t kWaiters = uint64_t{1} << 31;
  static constexpr int kCompletedShift = 32;
  static constexpr uint64_t kCompletedOne = uint64_t{1} << kCompletedShift;
  static constexpr uint64_t kCompletedCarry = uint64_t{1} << 63;
  static constexpr uint64_t kCompletedMask =
      (kCompletedCarry - 1) & ~(kCompletedOne - 1);
  // The deltas ReleasePending adds: settle one task, or settle one task and
  // count it completed (count - 1 and completed + 1 in one add: the count is
  // >= 1, so the low half does not borrow from the completed field).
  static constexpr uint64_t kRelease = ~uint64_t{0};  // i.e. -1
  static constexpr uint64_t kReleaseCompleted = kCompletedOne - 1;
  // The units a multiple of either delta releases (fewer than 2^29).
  static constexpr uint32_t Units(uint64_t delta) {
    return static_cast<uint32_t>(-delta);
  }

  // What a releasing unit still shows the census after its release, removed
  // by ReleasePending right after the RMW (markers never vanish before the
  // release, so a census that sees none has seen every release).
  static constexpr int kMarkFrame = 1;    // a plain task's published frame
  static constexpr int kMarkRunning = 2;  // running_other_
  static constexpr int kMarkStrict = 4;   // strict_
  static constexpr int kQuiet = 8;        // a lazy drop: wakes nobody early

  // Adds one unit. `kOrder`: relaxed for a lazy task (its push publishes
  // it); at least release for a strict unit, whose strict_ increment must
  // be seen by a census whose snapshot counts the unit (the freeze).
  // Returns true if the unit was added after a census's snapshot (the
  // frozen lifetime): the group is frozen.
  // (A template: a run-time order would cost a dispatch on every spawn.)
  template <std::memory_order kOrder = std::memory_order_relaxed>
  bool AddPending();
  // AddPending's rare cases, given the count word before its increment: the
  // 2^29 limit (aborts), the completed field's carry, a frozen group.
  [[gnu::noinline, gnu::cold]] bool AddPendingRare(uint64_t prev);
  // AddPending's general case (a child group's 0 -> 1 transition, or a
  // race), from `prev`, the count word last read.
  template <std::memory_order kOrder>
  [[gnu::noinline]] bool AddPendingLoop(uint64_t prev);
  // Releases n units of the count by `delta` (n * kRelease, or n *
  // kReleaseCompleted: either way the low half of -delta is n), then
  // removes the census markers (`marks`:
  // `frame` for kMarkFrame, `running_n` from running_other_, `strict_n` from
  // strict_; units released just before by the caller may share them), then
  // wakes whoever must hear of it. The record may be gone afterwards.
  void ReleasePending(uint64_t delta = kRelease, int marks = 0,
                      int frame = -1, int64_t running_n = 1,
                      int64_t strict_n = 1);
  // The outcome half of FinishTask/FinishPlain: records a failure, then
  // releases with `marks`.
  void Settle(absl::Status status, int marks, int frame);
  // The census (docs/design/join-and-census.md). Call only once
  // stop_requested().
  bool Census(bool* fenced);
  void WakeWaiters(ExecutorImpl* exec) const;
  const std::atomic<uint32_t>* FutexWord() const;
  // The stop's record step: records the first reason (under mu_).
  void RecordStopLocked(std::string_view reason, StopOrigin origin)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The stop's shield, bit and record steps for this group alone (and the
  // first stop's own work). Adds 1 to *stopped if this call made the first
  // stop. Returns false when there is nothing to propagate: shielded from
  // `origin`, or a stop of this kind already complete (the done step). May
  // run StopCallbacks, which may destroy other groups (never this one: a
  // group's owner joins it first).
  bool StopSelf(std::string_view reason, StopOrigin origin, int* stopped);
  // The pin-and-propagate step's list: pins the children under
  // children_mu_ and appends them to `out`.
  void PinChildren(std::vector<GroupState*>* out)
      ABSL_LOCKS_EXCLUDED(children_mu_);
  // The stop's done step: the subtree's stop (of this kind) is complete.
  void MarkStopDone(bool force);
  // The recorded reason as messages show it (the parent, then stop_reason_).
  std::string StopReasonLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // DescribeTree's line for this group alone.
  [[gnu::noinline]] void DescribeSelf(
      std::string* out, int indent, absl::Time now,
      const std::vector<RunningTask>* running) const;
  void LinkChild(GroupState* child) ABSL_LOCKS_EXCLUDED(children_mu_);
  void UnlinkChild(GroupState* child) ABSL_LOCKS_EXCLUDED(children_mu_);
  absl::Status WaitUntil(absl::Time deadline, bool* timed_out);

  ExecutorImpl* const exec_;
  GroupState* const parent_;
  const int depth_;
  const bool shielded_;
  // GroupOptions::on_failure == kCollectAll: a failing task is counted in
  // failed_ but neither recorded in first_error_ nor stops the group.
  const bool collect_all_;
  const std::string name_;
  const uint64_t id_;

  StopState stop_;
  // Null: no max_concurrency. Read by every Submit, right after stop_, and
  // never written: it takes 8 bytes of the padding below, so that the
  // record stays within the task cache's kMaxCachedTaskSize (448).
  const std::unique_ptr<GroupLimit> limit_;

  // Hot: every spawn and every completion touches these. Padding, not
  // alignas: an over-aligned TaskGroup would be misplaced in coroutine frames
  // (gcc allocates them with plain operator new) and in user containers.
  [[maybe_unused]] char pad_before_hot_[64 - sizeof(limit_)];
  std::atomic<uint64_t> pending_{0};
  // Units that are not lazy plain tasks (see Submit and AddTask), released
  // after their unit of pending_: the census waits for it to reach zero.
  std::atomic<int64_t> strict_{0};
  // Statistics, relaxed: counters, read only for reports (exact once joined,
  // when Wait()'s acquire on pending_ orders them). `completed` lives in
  // pending_; `spawned` and `running` are derived (Stats()), so a plain task
  // that completes costs two RMWs of this line: AddPending, ReleasePending.
  // Started and not finished: coroutines and blocking calls (CountStarted),
  // and plain tasks nested too deep to have a published frame.
  std::atomic<int64_t> running_other_{0};
  // Carries out of pending_'s 31-bit completed field (units of 2^31).
  std::atomic<int64_t> completed_wraps_{0};
  std::atomic<int64_t> failed_{0};
  std::atomic<int64_t> cancelled_{0};
  std::atomic<int64_t> blocking_{0};  // blocking fns running now
  // The freeze. frozen_: set (sticky) before the
  // census's second fence; the start gate reads it after its LightFence.
  // census_passed_: set (sticky, release) when the census passed: the count
  // is frozen, and the tasks it still holds are lazily dropped ones, which
  // Stats() reports as cancelled. frozen_refs_: the record's lifetime once
  // frozen: kOwnerRef while the TaskGroup lives, plus the snapshot's count,
  // plus one per unit added after the snapshot, minus one per DropFrozen()
  // (a lazy drop, or a release after the snapshot); whoever takes it to
  // zero frees the record.
  std::atomic<bool> frozen_{false};
  std::atomic<bool> census_passed_{false};
  static constexpr int64_t kOwnerRef = int64_t{1} << 40;
  std::atomic<int64_t> frozen_refs_{kOwnerRef};
  // Set (sticky) by the first LinkChild: such a group skips the census.
  std::atomic<bool> had_children_{false};
  // The late-work step: this group was linked after its parent's census passed,
  // so each unit it holds in the parent is also counted in the parent's
  // strict_. Written once by the parent's LinkChild, in our constructor.
  bool late_child_ = false;

  [[maybe_unused]] char pad_after_hot_[64];
  mutable Mutex mu_;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // The first stop came from the parent: messages name the parent (alive
  // as long as we are) before stop_reason_, so a child's message names its
  // direct parent and the original reason only.
  bool stopped_by_parent_ ABSL_GUARDED_BY(mu_) = false;
  // The stop's done step: kStopDone once a stop's propagation to the
  // unshielded subtree is complete, kForceDone once a kExecutorAll one's
  // (shielded children too) is. Set (sticky) by a release fetch_or after
  // the propagation; Stop() reads it with acquire.
  static constexpr uint32_t kStopDone = 1;
  static constexpr uint32_t kForceDone = 2;
  std::atomic<uint32_t> stop_done_{0};
  // The first stop's reason as given (CapStopReason: cut, escaped).
  std::string stop_reason_ ABSL_GUARDED_BY(mu_);
  absl::Time stop_time_ ABSL_GUARDED_BY(mu_);

  // The child list. Lock order: a parent's children_mu_ before a child's.
  // The lock's counter is the number of live children: LinkChild and
  // UnlinkChild change it in the RMW that takes the lock. CheckNoChildren()
  // reads it without the lock (the destroying thread joined the group, and
  // a child that is still alive was linked by code that happens-before the
  // join).
  mutable SpinLock children_mu_;
  GroupState* first_child_ ABSL_GUARDED_BY(children_mu_) = nullptr;
  // Sibling links, guarded by the parent's children_mu_.
  GroupState* next_sibling_ = nullptr;
  GroupState* prev_sibling_ = nullptr;

  std::unique_ptr<GroupTimeout> timeout_;
  // relaxed increments happen under the list lock the unlinker also takes;
  // release decrements pair with the acquire spin in WaitForUnpinned().
  std::atomic<int> pins_{0};
  void WaitForUnpinned() const;
};

}  // namespace internal
}  // namespace ripcord

#endif  // RIPCORD_INTERNAL_GROUP_STATE_H_
