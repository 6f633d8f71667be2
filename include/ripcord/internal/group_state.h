// Copyright 2026 The ripcord Authors.
//
// internal/group_state.h: the state of one task group. A TaskGroup holds its
// GroupState inline (no allocation per group); the executor's queues hold
// TaskNodes that point back to it. Algorithms live in executor/group_state.cc,
// whose file comment describes the join and stop protocols.
#ifndef RIPCORD_INTERNAL_GROUP_STATE_H_
#define RIPCORD_INTERNAL_GROUP_STATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "ripcord/internal/mutex.h"
#include "absl/time/time.h"
#include "ripcord/internal/stop_state.h"
#include "ripcord/internal/task_node.h"
#include "ripcord/stop_token.h"

namespace ripcord {

struct GroupOptions;
struct GroupStats;

namespace internal {

class ExecutorImpl;
class GroupTimeout;
struct RootShard;

// One group with work left, for shutdown reports (SignalWatcher's lines).
struct BusyGroup {
  std::string label;  // GroupState::Label()
  bool shielded = false;
  bool stopped = false;
  int64_t running = 0;   // tasks started and not finished (incl. blocking)
  int64_t queued = 0;
  int64_t blocking = 0;  // blocking calls whose fn is running
};

// Who asked a group to stop; decides whether a shielded group listens.
enum class StopOrigin {
  kSelf,        // its own RequestStop(), timeout or failing task: always obeyed
  kParent,      // propagated from the parent: a shielded group ignores it
  kExecutor,    // Executor::RequestStop(kUnshielded), first signal: ignored when shielded
  kExecutorAll  // Executor::RequestStop(kAll), second signal, grace period: obeyed
};

// GroupState. Thread-safe: every member may be called from any thread.
class GroupState {
 public:
  GroupState(ExecutorImpl* exec, GroupState* parent, GroupOptions&& options);
  // Programming-error checks (live children), then unlinks. The caller
  // (~TaskGroup) joins first.
  ~GroupState();
  GroupState(const GroupState&) = delete;
  GroupState& operator=(const GroupState&) = delete;

  // ---- spawn path -------------------------------------------------------
  // Accounts a new task and hands it to the scheduler; if the group is
  // stopped the task is freed unrun and counted cancelled.
  void Submit(TaskNode* task);
  // Accounts work that is not a queued TaskNode but keeps Wait() waiting (a
  // blocking call, a task that is about to be scheduled later). Pair with
  // one Finish*() call.
  void AddTask();
  // A TaskNode's run function brackets user code with these. Enter makes
  // this group current on the thread and returns the previous current group,
  // to restore with Leave.
  GroupState* Enter();
  static void Leave(GroupState* previous);
  // Settles one task; the last touch of the group by that task.
  // Plain tasks bracket their run with StartPlain()/FinishPlain(): the
  // running count of plain tasks comes from the workers' published frames
  // (ExecutorImpl::CountRunningPlain), not from a counter, so a plain task
  // costs no RMW of the group's line for starting.
  int StartPlain();
  void FinishPlain(absl::Status status, int frame);
  void FinishPlainOk(int frame);  // FinishPlain(OkStatus()), without a Status
  void FinishDropped();          // dropped before it started
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

  // ---- join -------------------------------------------------------------
  absl::Status Wait();
  absl::Status WaitFor(absl::Duration timeout);
  bool Idle() const;             // nothing pending (tasks or busy children)
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
  // (newly: already stopped ones do not count).
  int Stop(std::string_view reason, StopOrigin origin);
  StopToken token() { return StopToken(&stop_); }
  // The stop source itself, for the library's StopEntry registrations.
  StopState* stop_state() { return &stop_; }
  bool stop_requested() const { return stop_.stop_requested(); }

  // ---- accessors --------------------------------------------------------
  const std::string& name() const { return name_; }
  bool shielded() const { return shielded_; }
  GroupState* parent() const { return parent_; }
  ExecutorImpl* executor() const { return exec_; }
  int depth() const { return depth_; }
  GroupStats Stats() const;
  // Tests only: sets the completed count to `n`, to reach the 2^31 carry of
  // pending_'s completed field without running 2^31 tasks. Call it from the
  // group's only running task.
  void SetCompletedForTesting(int64_t n);
  // "group 'name'" or "unnamed group #id", for messages.
  std::string Label() const;
  // True if this group is `ancestor` or lies under it.
  bool IsWithin(const GroupState* ancestor) const;
  // The group of the task running on this thread (null outside tasks).
  static GroupState* Current();

  // Appends this group and its subtree to `out` (Executor::DebugString).
  void DescribeTree(std::string* out, int indent, absl::Time now) const
      ABSL_LOCKS_EXCLUDED(children_mu_);
  // Appends every group of the subtree that has tasks running or queued
  // (for shutdown reports).
  void CollectBusy(std::vector<BusyGroup>* out) const
      ABSL_LOCKS_EXCLUDED(children_mu_);
  // A blocking call's fn starts / returns (for BusyGroup::blocking).
  void BlockingFnStarted() { blocking_.fetch_add(1, std::memory_order_relaxed); }
  void BlockingFnDone() { blocking_.fetch_sub(1, std::memory_order_relaxed); }

  // Sets the WAITERS bit so that the last release wakes waiters. Returns
  // false (and sets nothing) if the group is already idle.
  bool SetWaitersBit();
  // Pins keep a group's memory alive while another thread stops it outside
  // the lock of the list it was found in; unlinking waits for pins to drop.
  void Pin() { pins_.fetch_add(1, std::memory_order_relaxed); }
  void Unpin() { pins_.fetch_sub(1, std::memory_order_release); }
  // Stops each of `pinned` (groups Pin()ned under their list's lock) and
  // unpins it. A group destroyed meanwhile on this thread (a StopCallback
  // tearing down a sibling) removes itself from the list instead of waiting
  // for the pin this very thread holds. Returns the number newly stopped.
  static int StopPinned(std::vector<GroupState*>& pinned,
                        std::string_view reason, StopOrigin origin);

  // Root registry links (executor/scheduler.cc): guarded by the shard's mutex.
  GroupState* next_root_ = nullptr;
  GroupState* prev_root_ = nullptr;
  RootShard* shard_ = nullptr;

 private:
  friend class GroupTimeout;
  // pending_, one 64-bit word, so that a task's last touch of its group both
  // settles it and counts it completed in ONE atomic RMW:
  //   bits 0..30   count: tasks not yet settled + child groups not idle
  //   bit 31       kWaiters: someone sleeps in FutexWait on the low half
  //   bits 32..62  tasks completed OK, modulo 2^31
  //   bit 63       kCompletedCarry: the completed field wrapped; AddPending
  //                moves it into completed_wraps_ (see there)
  // The futex works on the low 32 bits (x86-64 and AArch64 Linux are little
  // endian; static_assert in group_state.cc).
  static constexpr uint64_t kWaiters = uint64_t{1} << 31;
  static constexpr uint64_t kCountMask = kWaiters - 1;
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

  void AddPending();
  void ReleasePending(uint64_t delta = kRelease);
  // The outcome half of FinishTask/FinishPlain.
  void Settle(absl::Status status);
  const std::atomic<uint32_t>* FutexWord() const;
  void StopLocked(std::string_view reason, bool force);
  void LinkChild(GroupState* child) ABSL_LOCKS_EXCLUDED(children_mu_);
  void UnlinkChild(GroupState* child) ABSL_LOCKS_EXCLUDED(children_mu_);
  absl::Status WaitUntil(absl::Time deadline, bool* timed_out);

  ExecutorImpl* const exec_;
  GroupState* const parent_;
  const int depth_;
  const bool shielded_;
  const std::string name_;
  const uint64_t id_;

  StopState stop_;

  // Hot: every spawn and every completion touches these. Padding, not
  // alignas: an over-aligned TaskGroup would be misplaced in coroutine frames
  // (gcc allocates them with plain operator new) and in user containers.
  [[maybe_unused]] char pad_before_hot_[64];
  std::atomic<uint64_t> pending_{0};
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

  [[maybe_unused]] char pad_after_hot_[64];
  mutable Mutex mu_;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool forced_ ABSL_GUARDED_BY(mu_) = false;  // a kExecutorAll stop passed
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
