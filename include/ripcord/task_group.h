// Copyright 2026 The ripcord Authors.
//
// task_group.h: GroupOptions, GroupStats and TaskGroup, the structured scope
// every task lives in (Trio's nursery, asyncio's TaskGroup, tbb::task_group).
//
//   ripcord::Executor executor;
//   ripcord::TaskGroup group(executor, {.name = "ingest"});
//   for (const auto& file : files) {
//     group.Spawn([&file](ripcord::StopToken token) -> absl::Status {
//       return Ingest(file, token);    // the first error stops the siblings
//     });
//   }
//   absl::Status status = group.Wait();  // OK, the first error, or Cancelled
//
// A group never detaches its tasks: ~TaskGroup joins. Child groups
// (TaskGroup child(parent)) are stopped with their parent unless shielded,
// and the parent's Wait() waits for them.
#ifndef RIPCORD_TASK_GROUP_H_
#define RIPCORD_TASK_GROUP_H_

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ripcord/executor.h"
#include "ripcord/internal/group_ref.h"
#include "ripcord/internal/spawn.h"
#include "ripcord/stop_token.h"

namespace ripcord {

namespace internal {
class GuestSeat;
class JoinAwaitable;
template <class F>
void SpawnCoroutine(GroupState* group, F&& f,
                    SpawnSite site);  // defined in ripcord/task.h
}  // namespace internal

// FailurePolicy: what a failing task (an error status, or an exception) does
// to its group.
//   kFailFast (the default): the first failure is recorded, stops the group
//     and cancels the siblings; Wait() returns it (asyncio.TaskGroup, Trio).
//   kCollectAll: a failure is counted in stats().failed and, for a started
//     task, kept in its TaskHandle; it neither stops the group nor cancels
//     the siblings, and Wait() returns OkStatus() unless the group was
//     stopped (then the stop's cause). gather(return_exceptions=True),
//     Kotlin's supervisorScope, Java's Joiner.awaitAll. A stop still reaches
//     every task as usual.
enum class FailurePolicy { kFailFast, kCollectAll };

// TaskOptions: how TaskGroup::Start creates one task (task_handle.h).
struct TaskOptions {
  // The task's name, kept with the task for diagnostics; a handle's stop
  // reason names it ("task 'fetch' stopped: ...").
  std::string name = {};
};

template <class T>
class TaskHandle;

// GroupOptions: how a group is created.
struct GroupOptions {
  // Shows up in diagnostics and in stop reasons ("group 'flush' stopped: ...").
  std::string name = {};  // an initializer: `{.shielded = true}` compiles
                          // under -Wextra -Werror (-Wmissing-field-initializers)
  // A shielded group ignores stop requests that come from its parent, from
  // Executor::RequestStop(StopTarget::kUnshielded) and from the first
  // interrupt signal. Its own RequestStop(), its own timeout, a failing task
  // of its own and Executor::RequestStop(StopTarget::kAll) still stop it.
  // A child group created under a stopped parent starts stopped unless it
  // is shielded, whatever stopped the parent: also after
  // Executor::RequestStop(StopTarget::kAll) or a second signal. kAll reaches
  // the shielded groups that exist at the time of the stop; a shielded
  // clean-up group opened after it (after the second Ctrl-C) starts
  // unstopped and runs.
  bool shielded = false;
  // The group is stopped this long after its creation, as if RequestStop()
  // were called with a reason that names the timeout and the group. Zero or
  // less: the deadline has passed, the group starts stopped. Not an error.
  absl::Duration timeout = absl::InfiniteDuration();
  // At most this many tasks and blocking calls of this group (not counting
  // its child groups' work) run at once; 0: no limit. The others wait in the
  // group, in spawn order, and count as `queued` in stats(); a waiting task
  // holds no worker and no blocking thread. When the group stops, they are
  // dropped at once on the stopping thread: tasks are destroyed unrun and
  // counted cancelled, waiting SpawnBlocking calls deliver CancelledError to
  // their done (exactly once, on a worker, as for any stopped call).
  // A suspended coroutine holds no slot while it waits (Sleep, Join, Yield);
  // it takes one again to resume, and waits for it in the same queue. Its
  // `co_await Blocking(fn)` holds a slot while fn runs, which its resumption
  // keeps. After a stop the limit is off: coroutines resume at once to
  // unwind (a co_await Blocking that was waiting runs fn, which sees the
  // stopped token). Like Trio's CapacityLimiter or asyncio's Semaphore, it
  // can deadlock only by design: a task that blocks until another task of
  // the same group has run, with every slot taken by such tasks. Waiting on
  // a child group is fine (its tasks need no slot of ours).
  // Cost: none for groups without a limit. With a limit, each spawn, finish
  // and coroutine resumption takes the group's limiter lock.
  // Bad input: a negative value is a programming error (message, abort).
  int max_concurrency = 0;
  // What a failing task does to the group: see FailurePolicy.
  FailurePolicy on_failure = FailurePolicy::kFailFast;
};

// GroupStats: counters of one group (stats()), or of a group and all its
// descendants summed (tree_stats()).
struct GroupStats {
  int64_t spawned = 0;    // tasks and blocking calls ever spawned into the group
  int64_t completed = 0;  // finished with OK (or void)
  int64_t failed = 0;     // finished with a non-OK status or an exception
  int64_t cancelled = 0;  // dropped unrun because the group was stopped, or
                          // returned CancelledError after the group was stopped
  int64_t running = 0;    // started and not finished (incl. suspended coroutines)
  int64_t queued = 0;     // waiting to run right now
};

// TaskGroup: a structured scope of tasks.
//
// Thread-safety: every member may be called from any thread, including from
// tasks of this and other groups. The object itself must outlive every call
// (it is not movable).
class TaskGroup {
 public:
  // TaskGroup(executor, options): a root group. A root group created after
  // Executor::RequestStop() or after a signal starts unstopped, so a program
  // can open a fresh group for its clean-up work.
  // Cost: no global lock (root groups register in a sharded list) and no
  // allocation unless options.timeout is finite.
  explicit TaskGroup(Executor& executor, GroupOptions options = {});
  // TaskGroup(parent, options): a child group. It starts stopped if the
  // parent is stopped (unless shielded). Creating, spawning into and joining a
  // child group costs about what a tbb::task_group costs: no global lock and
  // no allocation beyond its tasks. The child must be destroyed before the
  // parent (else: abort with a message).
  explicit TaskGroup(TaskGroup& parent, GroupOptions options = {});

  // ~TaskGroup(): joins, like Wait() (the status is dropped: call Wait()
  // first to see it). A group never detaches its tasks. Run during stack
  // unwinding (an exception leaves the scope that owns the group), it first
  // stops the group, like an error in a Trio nursery's body, then joins.
  // Destroying a group whose child groups are still alive after that join
  // is a programming error: a message on stderr, then abort (a child opened
  // by one of the group's tasks is gone by then). During exit() and in a
  // fork() child it neither joins nor aborts: it stops what runs and lets
  // the process end (executor.h, "Process life").
  ~TaskGroup();

  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // TaskGroup::Spawn(f): runs f on a work-stealing worker.
  //
  // f is callable as one of void(StopToken), absl::Status(StopToken), void(),
  // absl::Status(), or returns a ripcord::Task<> / Task<absl::Status> (a
  // coroutine task; see task.h). f may be move-only; an lvalue callable is
  // copied, never moved from. Called from a worker, the task goes to that
  // worker's own deque; from any other thread, to the injection queue.
  //
  // If the group is stopped, f is destroyed without running and counted as
  // cancelled; a task still queued when the group is stopped is dropped the
  // same way when a worker pops it. A non-OK status (or an exception, which
  // becomes UnknownError carrying what()) fails the group: it records the
  // first such error and stops the group, cancelling the siblings. A task
  // that returns CancelledError after the group was stopped is not a failure.
  // A coroutine task's root frame usually shares the task's allocation (from
  // the second spawn of the same callable type on), so a coroutine costs one
  // allocation plus one per nested Task frame. Bad input: if f is not itself
  // a coroutine but calls one that takes f as its first argument (a member
  // coroutine of f's type), f must return that Task or destroy it before
  // returning; keeping it elsewhere aborts with a message saying so.
  // Thread-safety: any thread. Cost: one allocation (the task).
  // `site` (leave it defaulted) is the caller's file and line: the task's
  // label in Executor::DebugString() and the stop-signal lines.
  template <class F>
  void Spawn(F&& f,
             internal::SpawnSite site = internal::SpawnSite::Here()) {
    using Fn = std::decay_t<F>;
    if constexpr (internal::IsTaskType<
                      typename internal::CallResult<Fn>::type>::value) {
      internal::SpawnCoroutine(state_, std::forward<F>(f), site);
    } else {
      internal::SpawnPlain(state_, std::forward<F>(f), site);
    }
  }

  // TaskGroup::Start(f, options): Spawn(f) that returns a TaskHandle to the
  // task: stop it alone, wait for it, read its outcome (defined in
  // ripcord/task_handle.h, which documents it; include that header or
  // ripcord/ripcord.h to call it).
  // `site` (leave it defaulted): as in Spawn; options.name wins over it.
  template <class F>
  auto Start(F&& f, TaskOptions options = {},
             internal::SpawnSite site = internal::SpawnSite::Here());

  // TaskGroup::SpawnBlocking(fn, done): runs fn on the blocking pool (never on
  // a work-stealing worker), then calls done exactly once, on a worker.
  //
  // fn is callable as R(StopToken) or R(); done is callable as
  // void(absl::Status) when R is void or absl::Status, and as
  // void(absl::StatusOr<T>) when R is T or absl::StatusOr<T>. done receives
  // fn's result; an exception thrown by fn arrives as UnknownError with its
  // what(); if the group was stopped before fn started, fn never runs and done
  // receives CancelledError. A running fn is never interrupted: it sees its
  // token and may return early. A failing fn does not fail the group by
  // itself (done decides); an exception thrown by done fails the group like a
  // task's. Wait() waits for fn and done both.
  // Thread-safety: any thread. `site`: as in Spawn.
  template <class Fn, class Done>
  void SpawnBlocking(Fn&& fn, Done&& done,
                     internal::SpawnSite site = internal::SpawnSite::Here()) {
    internal::SpawnBlocking(state_, std::forward<Fn>(fn),
                            std::forward<Done>(done), site);
  }

  // TaskGroup::Wait(): blocks until every task of the group and of its child
  // groups has finished (queued tasks of a stopped group are dropped).
  //
  // A stopped group's Wait() returns as soon as nothing of it runs any more:
  // it does not wait for the workers to pop and drop its queued tasks when
  // dropping them runs no user code (the callable is trivially
  // destructible). Those tasks can never start (each worker checks the stop
  // after publishing what it starts), stats() counts them cancelled, and
  // they are freed later by whichever worker pops them. Queued tasks whose
  // callable has a destructor are dropped before Wait() returns, so that no
  // capture destructor runs after it. Groups that have had child groups, and
  // kernels without membarrier(2), wait for every drop. Work added after
  // such an early return (a SpawnBlocking, a child group and its tasks) is
  // waited for by the next Wait(), as any other.
  //
  // Called on a worker thread it runs other work while it waits, but only
  // tasks of this group and its descendants (wherever they are queued): an
  // unrelated long task can never make Wait() return late (oneTBB issue 942),
  // and a nested task can never wait for the frame beneath it. Unrelated
  // tasks it meets are handed to the other workers. With no such task to run
  // it parks until the group is idle.
  //
  // Called on any other thread (one that is no executor's worker), Wait()
  // (not WaitFor()) joins in, as oneTBB's task_group::wait() does: while a
  // worker is parked, it takes that worker's place and runs plain tasks of
  // this group and of its descendants (never unrelated ones, never more
  // tasks at once in the process than num_workers), then, once none is left
  // to run, it sleeps until the group is idle. What you may notice:
  //   - a plain task may run on the thread that waits for it, so a small
  //     call (a few tasks, then Wait()) costs no thread hand-off;
  //   - such a task runs under that thread's signal mask, not a worker's
  //     (signals the thread blocks stay blocked while the task runs), and
  //     sees that thread's thread_local variables;
  //   - a task that blocks or runs long on the waiting thread holds this
  //     Wait() until it ends, as it would on a worker the group waits for
  //     anyway (WaitFor() never runs a task, so it keeps its timeout);
  //   - coroutine tasks and SpawnBlocking's done callbacks are left to the
  //     workers (but a Wait() inside a task that runs on this thread helps
  //     as a worker's does, with any task of its subtree); StopCallbacks
  //     still run on the thread that requests the stop (or registers the
  //     callback), as always;
  //   - a stop reaches the tasks the waiting thread runs like any other:
  //     their token reports it, and queued ones are dropped unrun.
  //
  // Returns:
  //   OkStatus() when every task succeeded and no stop was requested;
  //   the first non-OK status returned by a task (other than CancelledError
  //     after a stop); such an error outranks a stop, even one before it;
  //   CancelledError when the group was stopped, with a message naming the
  //     cause: the RequestStop() reason (a parent's reason for a child stopped
  //     by its parent), "timeout" and the group's name, or the signal name;
  //   FailedPrecondition when called from a task of this group or of one of
  //     its descendants (that would deadlock); nothing is waited then.
  // Concurrent calls return the same status, and so does a later call when
  // nothing was spawned in between. The group may be spawned into again and
  // waited again (a stopped group stays stopped).
  // Memory ordering: everything a task did before finishing happens-before
  // Wait() returns.
  // Thread-safety: any thread.
  [[nodiscard]] absl::Status Wait();

  // TaskGroup::WaitFor(timeout): Wait() for at most `timeout`.
  // Returns DeadlineExceededError if tasks are still running or queued then
  // (nothing is stopped by it), else what Wait() returns. A timeout of zero or
  // less polls. Off the executor it only waits: it runs no task on the
  // calling thread (one could keep it past its timeout).
  // Thread-safety: any thread.
  [[nodiscard]] absl::Status WaitFor(absl::Duration timeout);

  // TaskGroup::RequestStop(reason): stops the group and, recursively, every
  // child group that is not shielded. Running tasks see
  // stop_token().stop_requested() and finish on their own; queued tasks are
  // dropped. StopCallbacks registered on the token run on this thread.
  // The first stop of a group records its reason; of concurrent calls exactly
  // one records it; later stops (its own, a parent's, a signal's) change
  // nothing. Every call returns only once the group and its unshielded
  // subtree report stop_requested(), also a call that finds another one's
  // stop under way (it helps that stop along, it does not wait for it or
  // for its StopCallbacks). Cost: O(number of groups in the subtree), never
  // O(queued tasks).
  // Thread-safety: any thread.
  void RequestStop(std::string_view reason = "stop requested");

  // TaskGroup::stop_token(): the token every task of this group receives.
  // Valid while the group lives.
  StopToken stop_token() const;
  bool stop_requested() const;
  bool shielded() const;
  const std::string& name() const;

  // TaskGroup::stats(): this group's counters (not its children's). Exact once
  // the group is joined: spawned == completed + failed + cancelled.
  // Thread-safety: any thread; a snapshot while tasks run.
  GroupStats stats() const;

  // TaskGroup::tree_stats(): stats() of this group and of all its
  // descendants (child groups alive now, recursively), summed. A child group
  // that was destroyed no longer counts. Exact once the group is joined and
  // its descendants are idle.
  // Thread-safety: any thread, as stats(); each group is read on its own, so
  // while tasks run the sum is a snapshot of snapshots. Cost: O(number of
  // groups in the subtree); it holds each group's child-list lock while it
  // reads that group's children.
  GroupStats tree_stats() const;

  // TaskGroup::Join(): `co_await group.Join()` inside a coroutine task is
  // Wait() without holding a worker (see task.h).
  internal::JoinAwaitable Join();

 private:
  friend class internal::GuestSeat;  // reads state_ (ripcord/parallel_for.h)

  // The group's record (executor/group/): owned, freed by Close() in
  // ~TaskGroup or, after a stop, by the last lazily dropped task.
  internal::GroupState* const state_;
  const int uncaught_at_construction_;
};

}  // namespace ripcord

#endif  // RIPCORD_TASK_GROUP_H_
