// Copyright 2026 The ripcord Authors.
//
// scheduler.h: ExecutorImpl, the machinery behind ripcord::Executor: the
// work-stealing workers, the injection queue, parking, helping waits, the
// root-group registry, the blocking pool and the timer. The protocols are
// described in docs/design/parking.md.
#ifndef RIPCORD_EXECUTOR_SCHEDULER_H_
#define RIPCORD_EXECUTOR_SCHEDULER_H_

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "ripcord/internal/mutex.h"
#include "absl/time/time.h"
#include "executor/blocking/blocking_pool.h"
#include "executor/sched/idle.h"
#include "executor/sched/inject_queue.h"
#include "executor/sched/running_tasks.h"
#include "executor/sync/parker.h"
#include "executor/base/threads.h"
#include "executor/time/timer.h"
#include "executor/sched/ws_deque.h"
#include "executor/trace/trace.h"
#include "ripcord/executor.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/internal/task_node.h"

namespace ripcord::internal {

struct CoroContext;

class ExecutorImpl;

// Worker: one work-stealing thread.
// Thread-safety: deque_'s owner end, base_, rng_ and searching_ belong to the
// worker's thread; Steal(), parker_.Unpark() and the atomics any thread.
struct Worker {
  Worker(ExecutorImpl* e, int i) : exec(e), index(i) {}

  ExecutorImpl* const exec;
  const int index;
  WsDeque<TaskNode> deque;
  // The run loop parks on `parker` (woken by NotifyOne and shutdown); a
  // helping wait on `wait_parker` (woken by WakeWaitersOf,
  // WakeOneParkedWaiter and shutdown). Two tokens, because a lent seat's
  // thread sleeps on the first while its borrower may wait on the second.
  Parker parker;
  Parker wait_parker;
  Thread thread;
  // Owner only: the deque's bottom when the task now running started. While
  // that task waits, the worker pops only tasks above it (the task's own
  // spawns), never older ones queued beneath by outer frames.
  int64_t base = 0;
  uint64_t rng = 0;
  // The group whose Wait() this worker is parked in (null otherwise).
  // Written by the worker (release) before it sets the group's WAITERS bit;
  // read by the thread that finishes the group's last task (acquire), which
  // unparks it. Compared only, never dereferenced by other threads.
  std::atomic<const GroupState*> waiting_on{nullptr};
  // True while parked inside a Wait(): producers wake such a worker when no
  // ordinary worker is parked (it may want the new task). exchange()d to
  // false by whoever wakes it.
  std::atomic<bool> parked_waiter{false};
  // The groups of the plain tasks running on this worker, innermost last
  // (helping waits nest them): frames[i] for i < frame_depth. Written by the
  // worker to its own cache line: the start gate's store (relaxed, then a
  // LightFence) and the release store that ends a task (after its release of
  // the group's count). Read by Stats() (relaxed: a snapshot) and by the
  // census (acquire, after a HeavyFence). Compared, never dereferenced: a
  // frame may outlive its group by a few instructions.
  // A frame is the group's address, tagged in its low bits with what the
  // start gate is doing (GroupState is at least 8-aligned):
  //   kFrameStarting  published, the stop bit not read yet
  //   kFrameDropping  the stop was seen before the freeze: the task is being
  //                   dropped and still changes the group's counts
  //   untagged        the task runs
  static constexpr int kTrackedFrames = 32;
  static constexpr uintptr_t kFrameStarting = 1;
  static constexpr uintptr_t kFrameDropping = 2;
  static constexpr uintptr_t kFrameTags = 3;
  std::atomic<uintptr_t> frames[kTrackedFrames] = {};
  // runs[i]: the label and start of the task in frames[i]
  // (executor/sched/running_tasks.h).
  RunRecord runs[kTrackedFrames];
  // The coroutine this worker drives now (null: none); running_tasks.h.
  std::atomic<const CoroContext*> driving{nullptr};
  int frame_depth = 0;  // owner only
  // The group of a queued task whose ancestry this worker is reading
  // (ExecutorImpl::QueuedWithin: is it within the group a helping wait
  // serves?), null otherwise. A stopped group's census waits for it before
  // it gives its parent the group's unit back, which may let the parent's
  // record be freed (the census's tag-walks step). Written by the
  // owner (relaxed, then a LightFence; release to clear it), read by the
  // census (acquire, after a HeavyFence). Compared, never dereferenced.
  std::atomic<const GroupState*> walking{nullptr};
  // Deferred releases: `deferred_n` lazy plain tasks of `deferred_group`
  // that finished OK one after another at frame slot `deferred_slot`, whose
  // unit of the group's count this worker has not released yet. The frame
  // frames[deferred_slot] keeps showing the group until the release, so a
  // census sees the units as running (markers after release, in
  // docs/design/join-and-census.md). Released with one RMW by
  // ExecutorImpl::FlushDeferred before anything could wait for the group:
  // before a task of another group or slot, a task that is not a lazy plain
  // one, a drop, a search for work, a park, or the end of a helping wait.
  // While a task of the group runs (this worker's next one), nothing can
  // tell the difference: the group cannot be joined. Written by the owner
  // (relaxed); Stats() reads both (relaxed: a snapshot).
  std::atomic<GroupState*> deferred_group{nullptr};
  std::atomic<int64_t> deferred_n{0};
  int deferred_slot = -1;  // owner only
  // Owner only: the seat is lent to a thread that is not a worker (guest
  // seats, guest_seat.cc). Its own helping wait (outside any task) then
  // runs plain tasks only: coroutines and SpawnBlocking's done callbacks
  // run on workers, as task.h and task_group.h promise. A wait inside a
  // task it runs helps with anything of its subtree, as on a worker: it
  // may park holding the seat, and with one worker nobody else could run
  // what it waits for.
  bool lent = false;
  // Owner only, compared only: the group of the last lazy plain task this
  // worker released at once. Deferring starts with a group's second task
  // in a row: a group that gets one task at a time (fib's, and most child
  // groups that end right after their task) would only pay for it.
  const GroupState* last_released = nullptr;
};

// RootShard: one slice of the root-group registry. Root groups register in
// the shard of the creating thread, so threads creating root groups (a group
// per request in a server) rarely share a lock.
struct alignas(64) RootShard {
  Mutex mu;
  GroupState* head ABSL_GUARDED_BY(mu) = nullptr;
  int64_t count ABSL_GUARDED_BY(mu) = 0;
};

// ExecutorImpl: Thread-safe.
class ExecutorImpl {
 public:
  explicit ExecutorImpl(const ExecutorOptions& options);
  ~ExecutorImpl();

  int num_workers() const { return static_cast<int>(workers_.size()); }

  // Queues a task: on one of this executor's workers, at the bottom of its
  // own deque (LIFO, runs next); from any other thread, at the back of the
  // injection queue. Wakes a parked worker when one is needed.
  void Schedule(TaskNode* task);
  // Queues a task at the back of the injection queue, behind everything
  // queued (Yield, continuations from blocking threads and the timer).
  void ScheduleBack(TaskNode* task);
  // Schedule's rare cases: from another thread, or a deque that must grow.
  [[gnu::noinline]] void ScheduleSlow(TaskNode* task);
  // Helps while `group` is not idle, then returns true; returns false at
  // `deadline`. Called only on this executor's worker threads (or on a
  // lent seat). The stack guard (docs/design/parking.md): called with less
  // than a quarter of the thread's stack left, it parks and a fresh thread
  // with a stack of worker_stack_size takes the seat for the whole wait.
  bool HelpWhileWaiting(GroupState* group, absl::Time deadline);
  // The same for a thread in a lent seat (guest seats), which never parks
  // there: returns true once the group is idle, false once it has found
  // nothing to run for a while (help.cc's GuestWaiter). The caller must
  // then give the seat back.
  bool HelpAsGuest(GroupState* group);
  // Guest seats (docs/design/parking.md): lends the calling thread, which must
  // not be a worker, the seat of a parked worker (tls_worker points to it
  // until ReturnSeat). Null when no worker is parked.
  Worker* LendSeat();
  // Gives back the seat LendSeat returned, from the same thread, outside
  // any task: moves what is left on its deque to the injection queue.
  void ReturnSeat(Worker* w);
  // The caller joins in (TaskGroup::Wait() off the executor; guest_seat.cc,
  // docs/design/parking.md): on a thread that is no executor's worker, runs
  // plain tasks of `group`'s subtree (and only those) in a parked worker's
  // seat while it finds any, then gives the seat back. Returns true if the
  // group is joined (GroupState::Joined), false if the caller must still
  // wait: no seat was free, or nothing of the group was left to run for a
  // few tens of microseconds.
  bool HelpAsCaller(GroupState* group);
  // Unparks the workers parked in a Wait() on `group` (compared, never
  // dereferenced: the group may already be gone).
  void WakeWaitersOf(const GroupState* group);
  // Coroutines awaiting group.Join(): `waiter` is scheduled when `group`'s
  // last release wakes its waiters. RemoveJoinWaiter returns false if a
  // waker already took it (and will schedule it).
  void AddJoinWaiter(const GroupState* group, TaskNode* waiter)
      ABSL_LOCKS_EXCLUDED(join_mu_);
  bool RemoveJoinWaiter(const GroupState* group, TaskNode* waiter)
      ABSL_LOCKS_EXCLUDED(join_mu_);
  // True on one of this executor's worker threads.
  bool OnWorkerThread() const;
  // Ends the frame `slot` of this worker thread (release store).
  static inline void PopPlainFrame(int slot);
  // A lazy plain task of `group` that ran in frame `slot` of this worker
  // thread finished OK: keeps its release for later (Worker::deferred_n)
  // and returns true, or returns false if the caller should release now.
  // Call only from the task's run function, on its worker.
  static inline bool DeferRelease(GroupState* group, int slot);
  // Releases w's deferred units, if any (one RMW), and ends their frame
  // unless a running task still owns it or `keep_frame` (a start gate that
  // already wrote the frame). Owner thread only.
  static inline void FlushDeferred(Worker* w, bool keep_frame = false);
  // FlushDeferred's work, out of line, once there is something to release.
  [[gnu::noinline]] static void FlushDeferredNow(Worker* w, bool keep_frame);
  // Plain tasks of `group` running on the workers now, and units of it the
  // workers hold in deferred releases (a snapshot).
  void CountPlain(const GroupState* group, int64_t* running,
                  int64_t* deferred) const;
  // True if a worker runs a task of `group` (an untagged frame). A gate
  // still "starting" is waited for until it decides (the census's marker
  // check: after the census's fence, it runs its task only if it
  // read the stop bit clear before). Acquire loads.
  bool AnyRunningOf(const GroupState* group) const;
  // The freeze: returns once every start gate of `group` that was
  // "starting" or "dropping" when called has moved on (a slot is watched
  // until it shows anything else once; later gates of the group read the
  // freeze and need no waiting). Spins: a gate runs no user code.
  void WaitForGatesOf(const GroupState* group) const;
  // The tag-walks step: returns once no worker reads the ancestry of a queued
  // task of `group` (Worker::walking), after the caller's HeavyFence.
  void WaitForWalksOf(const GroupState* group) const;

  TimerQueue& timers() { return *timers_; }
  BlockingPool& blocking() { return *blocking_; }
  // The flight recorder (executor/trace/trace.h); null when tracing is off.
  Tracer* tracer() const { return tracer_.get(); }

  // Root registry (no global lock: sharded by creating thread).
  void RegisterRoot(GroupState* group);
  void UnregisterRoot(GroupState* group);
  // How many root groups are alive now.
  int64_t LiveRootGroups() const;
  // Returns how many groups this call newly stopped.
  int RequestStop(StopTarget target, std::string_view reason);
  std::string DebugString() const;
  // Every live group with tasks running or queued, parents before children.
  std::vector<BusyGroup> BusyGroups() const;
  // The plain tasks running on the workers now, and the coroutines they
  // drive (running_tasks.h).
  void SnapshotPlainRunning(std::vector<RunningTask>* out,
                            std::vector<const CoroContext*>* driving) const;
  // Every task running now, with `ignoring` resolved, longest first.
  std::vector<RunningTask> RunningTasks() const;

 private:
  friend struct WorkerLoop;
  void WorkerMain(Worker* w);
  // Takes a batch from the injection queue: returns the first task and
  // pushes the rest onto w's deque (where other workers can steal them).
  TaskNode* PopInjected(Worker* w);
  // Runs or drops (group stopped) one task on worker `w`.
  void RunTask(Worker* w, TaskNode* t);
  // RunTask for a plain task: the census's start gate
  // (docs/design/join-and-census.md).
  void RunPlainGated(Worker* w, TaskNode* t);
  // RunPlainGated's rare cases (it jumps to them): releases deferred for
  // another group or slot; a frame nested too deep to publish; a task whose
  // group is stopped (`deferred`: releases of the group deferred at `slot`).
  [[gnu::noinline]] void FlushThenRunPlainGated(Worker* w, TaskNode* t);
  [[gnu::noinline]] void RunPlainUntracked(TaskNode* t);
  [[gnu::noinline]] void DropAtGate(Worker* w, TaskNode* t, int slot,
                                    bool deferred);
  // RunPlainGated's last step while some executor traces: the run, recorded
  // when this one does.
  // `r`: the run's record, whose start it reuses.
  [[gnu::noinline]] void RunPlainTraced(const RunRecord& r, TaskNode* t);
  // A helping wait's search (the own-deque, search and drain-below steps): only
  // tasks inside filter's subtree; others it meets move to the injection queue.
  TaskNode* FindWork(Worker* w, const GroupState* filter, bool last_search);
  // FindWork after its first pop (`popped`, not of the filter group
  // itself, or null).
  [[gnu::noinline]] TaskNode* FindWorkAfter(Worker* w,
                                            const GroupState* filter,
                                            TaskNode* popped,
                                            bool last_search = false);
  // Steals one task from another worker; with a filter, a stolen task outside
  // filter's subtree moves to the injection queue's front instead.
  TaskNode* StealFromOthers(Worker* w, const GroupState* filter);
  // t->group->IsWithin(filter) for a queued task t (one that w holds or
  // the injection queue's lock keeps), under w's walking tag: a stopped
  // group's census may pass meanwhile and let the group's parent record go
  // (the census's tag-walks step).
  bool QueuedWithin(Worker* w, const TaskNode* t, const GroupState* filter);
  // QueuedWithin, and for a lent seat's own wait (outside any task) only
  // for plain tasks (Worker::lent).
  bool MayHelpWith(Worker* w, const TaskNode* t, const GroupState* filter) {
    if (!GuestMayRun(w, t)) [[unlikely]] return false;
    return QueuedWithin(w, t, filter);
  }
  static bool GuestMayRun(const Worker* w, const TaskNode* t) {
    return !w->lent || w->frame_depth != 0 ||
           (t->flags & TaskNode::kPlain) != 0;
  }
  // The producer's StoreLoad (idle.h), after a task became visible. Inline,
  // with calls only in tail position.
  void NotifyAfterPush() {
    if (idle_.ShouldNotify()) [[unlikely]] return NotifyAfterPushSlow();
    // seq_cst: the load half of the producer's StoreLoad towards parked
    // waiters; pairs with the seq_cst fetch_add of HelpWhileWaiting's
    // waiter-parks step.
    if (parked_waiters_.load(std::memory_order_seq_cst) > 0) [[unlikely]] {
      return WakeOneParkedWaiter();
    }
  }
  // NotifyAfterPush when some worker may have to be woken.
  [[gnu::noinline]] void NotifyAfterPushSlow();
  bool NotifyOne();
  bool AnyWorkVisible() const;
  // Between a parking worker's seq_cst RMW and its re-check of the deques:
  // HeavyFence() if the deques use light pushes and `others_unparked` (some
  // other worker may be pushing).
  void FenceBeforeRecheck(bool others_unparked) const;
  void WakeOneParkedWaiter();
  // The stack guard's two ways out: a fresh thread that helps in our place
  // (the calling thread parks in join), or, if none can start, a wait that
  // runs nothing.
  // Defined and instantiated in help.cc only; Waiter is one of its ways of
  // waiting (WorkerWaiter, GuestWaiter).
  template <class Waiter>
  bool HelpOnFreshStack(GroupState* group, absl::Time deadline);
  template <class Waiter>
  bool WaitWithoutHelping(Worker* w, GroupState* group, absl::Time deadline);
  // HelpWhileWaiting and HelpAsGuest, with the stack guard.
  template <class Waiter>
  bool Help(GroupState* group, absl::Time deadline);
  // Help without the stack guard.
  template <class Waiter>
  bool HelpLoop(GroupState* group, absl::Time deadline);

  // ExecutorOptions::worker_stack_size: the workers' and the stack guard's
  // fresh threads' stacks.
  size_t worker_stack_size_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  InjectQueue inject_;
  Idle idle_;
  std::atomic<bool> shutdown_{false};
  // The deques publish with a release store and a compiler barrier; parking
  // workers supply the heavy half (FenceBeforeRecheck). Set before the
  // workers start when the kernel has expedited membarriers.
  bool light_pushes_ = false;
  // Workers parked inside a Wait(): seq_cst, the RMW half of the waiter's
  // StoreLoad; producers read it after publishing a task (seq_cst).
  std::atomic<int> parked_waiters_{0};

  // Join waiters by group address; chains linked through TaskNode::next.
  Mutex join_mu_;
  absl::flat_hash_map<const GroupState*, TaskNode*> join_waiters_
      ABSL_GUARDED_BY(join_mu_);
  // relaxed hint: skips join_mu_ in WakeWaitersOf when nobody joins.
  std::atomic<int> num_join_waiters_{0};

  std::vector<std::unique_ptr<RootShard>> shards_;
  // Before timers_ and blocking_: destroyed after their threads are joined.
  std::unique_ptr<Tracer> tracer_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<BlockingPool> blocking_;
  const absl::Time created_;
};

// Where a thread about to park runs TestHook::kParkWindow (test_hooks.h),
// between its last look at the queues and its parking RMW (the parking
// transition, and a helping wait's waiter-parks step; docs/design/
// parking.md): a worker of WorkerMain before Idle::TransitionToParked
// (kWorker), a helping waiter before its parked_waiters_ increment
// (kHelpingWait). A task pushed in that window is found only by the
// re-check that follows the RMW; a hook that blocks there until another
// thread has pushed makes that window, a few hundred nanoseconds wide in
// production, as wide as a test needs (tests/parking_test.cc). The hook's
// arg is a const ParkSite*.
enum class ParkSite { kWorker, kHelpingWait };
// Runs TestHook::kParkWindow with `site` (nothing unless a test set it).
void RunParkWindowHook(ParkSite site);

// The worker running on this thread (null on other threads). External
// linkage on purpose (RIPCORD_FAST_TLS, executor/base/check.h). constinit: other
// files then read it directly, without a call to check for a dynamic
// initializer (the TLS wrapper).
extern __attribute__((tls_model("initial-exec"))) constinit thread_local
    Worker* tls_worker;

inline void ExecutorImpl::PopPlainFrame(int slot) {
  Worker* w = tls_worker;
  // release: pairs with the census's acquire load in AnyRunningOf (the task's
  // release of its group's count came first).
  w->frames[slot].store(0, std::memory_order_release);
  w->frame_depth = slot;
}

inline bool ExecutorImpl::DeferRelease(GroupState* group, int slot) {
  Worker* w = tls_worker;
  // relaxed: owner-written; Stats() snapshots read them.
  const int64_t n = w->deferred_n.load(std::memory_order_relaxed);
  if (n == 0) {
    if (w->last_released != group) {
      w->last_released = group;
      return false;
    }
    w->deferred_group.store(group, std::memory_order_relaxed);
    w->deferred_slot = slot;
  }
  // Else the units are this group's at this slot: the start gate flushed
  // any others before the task started.
  w->deferred_n.store(n + 1, std::memory_order_relaxed);
  w->frame_depth = slot;  // the frame itself stays (see Worker::deferred_n)
  return true;
}

inline void ExecutorImpl::FlushDeferred(Worker* w, bool keep_frame) {
  // relaxed: owner-written (see Worker::deferred_n).
  if (w->deferred_n.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    FlushDeferredNow(w, keep_frame);
  }
}

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_SCHEDULER_H_
