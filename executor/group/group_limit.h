// Copyright 2026 The ripcord Authors.
//
// group_limit.h: GroupLimit, the slots of GroupOptions::max_concurrency
// (Trio's CapacityLimiter, asyncio's Semaphore, Taskflow's Semaphore).
//
// A group with max_concurrency = N owns one GroupLimit; a group without a
// limit has none, and its spawn path pays one predictable branch (Submit's
// `limit_ != nullptr`), its finish paths one flag test (TaskNode::kSlot).
//
// Slots. A slot is held by one piece of the group's own work (not its child
// groups'), marked on its TaskNode:
//  - TaskNode::kSlot on a plain task, a coroutine's node or a SpawnBlocking
//    call: held from its admission (it is then scheduled, so it runs or is
//    queued on a worker) until it ends (a plain task returns or is dropped;
//    a SpawnBlocking call's done returns), or, for a coroutine, until it
//    suspends: CoroContext::Run releases the slot when Drive() returns, and
//    a resumption (ScheduleResume, ScheduleResumeBack, a Join's wake-up)
//    takes one again.
//  - TaskNode::kBlockingSlot on a coroutine's node: its `co_await Blocking`
//    fn holds a slot while it runs; the resumption that follows inherits it.
// Everything else waits in the FIFO, in arrival order. Release() hands the
// freed slot to the oldest waiter.
//
// Waiting work and the join count. A waiting new task (Admit) is counted as
// one strict unit (GroupState::AddTask) with TaskNode::kLazy cleared, so a
// census of the stopped group waits until the FIFO is drained; when it is
// admitted it is submitted as usual (its own unit, kLazy restored) and the
// waiting unit goes, uncounted (FinishCancelledMany(0, 1)). stats() shows it
// as queued meanwhile (for an instant during the hand-over, `spawned` may
// read one high). A waiting SpawnBlocking call already holds its unit
// (SubmitBlockingJob's AddTask), and a waiting resumption or co_await
// Blocking belongs to a started coroutine, which holds its own.
//
// Stop. GroupState::Stop() calls Close() right after the group's first stop
// sets the stop bit: the FIFO is emptied at once on that thread. New tasks
// are dropped (counted cancelled, their callables destroyed there), waiting
// SpawnBlocking calls deliver CancelledError to done (on a worker), and
// waiting resumptions and co_await Blocking calls of coroutines go on
// without a slot (a coroutine must run to unwind; its fn sees the stopped
// token). From then on the limit is off: nothing waits, and slot releases
// only count. A Release() that sees the stop bit before Close() ran admits
// nothing (Close() is about to drop it all).
//
// Lifetime. Every Release() is called by work that still holds a unit of
// the group's count (a plain task or SpawnBlocking call before it settles)
// or a pin (a coroutine that just suspended: its resumption may finish the
// coroutine on another worker before Release() returns, so Run pins the
// group for the call), so the record is alive throughout.
#ifndef RIPCORD_EXECUTOR_GROUP_LIMIT_H_
#define RIPCORD_EXECUTOR_GROUP_LIMIT_H_

#include <cstdint>
#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "ripcord/internal/mutex.h"
#include "ripcord/internal/task_node.h"

namespace ripcord::internal {

class GroupState;
struct CoroContext;

// GroupLimit: Thread-safe. Owned by its GroupState.
class GroupLimit {
 public:
  // A limiter for max_concurrency, or null for 0 (no limit). Aborts with a
  // message naming GroupOptions::max_concurrency if it is negative.
  static std::unique_ptr<GroupLimit> Make(int max_concurrency);

  explicit GroupLimit(int slots) : free_(slots) {}
  GroupLimit(const GroupLimit&) = delete;
  GroupLimit& operator=(const GroupLimit&) = delete;

  // GroupState::Submit, for a task without kSlot, after its stop check.
  // Returns true if Submit must go on as usual (a slot was taken, kSlot is
  // set; or the limit is closed); false if the task waits in the FIFO or
  // was dropped here (a stop raced), and Submit must not touch it again.
  bool Admit(GroupState* group, TaskNode* task) ABSL_LOCKS_EXCLUDED(mu_);
  // SubmitBlockingJob, after its AddTask and stop check: true if the job
  // goes to the blocking pool now (kSlot set when a slot was taken), false
  // if it waits.
  bool AdmitBlockingCall(TaskNode* job) ABSL_LOCKS_EXCLUDED(mu_);
  // ScheduleResume / ScheduleResumeBack: true if ctx is to be scheduled now
  // (kSlot set when a slot was taken: the one its co_await Blocking held,
  // or a free one), false if it waits.
  bool AdmitResume(CoroContext* ctx, bool back) ABSL_LOCKS_EXCLUDED(mu_);
  // A coroutine's co_await Blocking: submits `job` to the blocking pool now
  // (kBlockingSlot set when a slot was taken) or queues it. Returns the
  // pool's error when no blocking thread exists and none could start (the
  // slot is given back; the coroutine goes on with the error), else OK.
  [[nodiscard]] absl::Status SubmitBlocking(CoroContext* ctx,
                                            absl::AnyInvocable<void() &&> job)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Gives one slot back: to the oldest waiter (admitted, then scheduled, or
  // submitted to the blocking pool, on this thread), or to the free count.
  // Called only by the holder of the slot, which keeps the group alive.
  void Release(GroupState* group) ABSL_LOCKS_EXCLUDED(mu_);

  // The group's first stop (GroupState::Stop, after the stop bit is set):
  // closes the limit and empties the FIFO as described atop this file.
  void Close(GroupState* group) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  enum class Kind : uint8_t {
    kStart,         // a new plain task or coroutine (Submit)
    kBlockingCall,  // a SpawnBlocking call's first phase
    kResume,        // a coroutine's resumption, at the front
    kResumeBack,    // ... behind the queued tasks (Yield)
    kCoroBlocking,  // a coroutine's co_await Blocking fn
  };
  struct Waiter {
    TaskNode* node;
    Kind kind;
    bool lazy;  // kStart: the task had TaskNode::kLazy
    absl::AnyInvocable<void() &&> job;  // kCoroBlocking only
  };
  // Starts `w` holding the slot it was handed (or none, `slot` false).
  static void Start(GroupState* group, Waiter& w, bool slot);

  Mutex mu_;
  int free_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Waiter> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_GROUP_LIMIT_H_
