// Copyright 2026 The ripcord Authors.
//
// internal/spawn.h: how TaskGroup::Spawn and SpawnBlocking adapt the callable
// shapes the contract allows into one TaskNode each.
#ifndef RIPCORD_INTERNAL_SPAWN_H_
#define RIPCORD_INTERNAL_SPAWN_H_

#include <atomic>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ripcord/internal/group_ref.h"
#include "ripcord/internal/task_alloc.h"
#include "ripcord/internal/task_node.h"
#include "ripcord/stop_token.h"

namespace ripcord {

template <class T>
class Task;

namespace internal {

// A blocking thread's running-task record: fn of `call` starts / returns
// (executor/sched/running_tasks.h).
void BlockingRunBegin(const TaskNode* call);
void BlockingRunEnd();

// The flight recorder (executor/trace/trace.h), from task_handle.cc.
class Tracer;
// The number of live Tracers (trace.h's TraceActive()).
extern std::atomic<int> g_live_tracers;
// Records the spawn of plain task `node` (the start of its flow arrow)
// when its executor traces. Thread-safe; call before submitting `node`.
[[gnu::cold]] void TraceSpawn(TaskNode* node);
// Names the blocking pool's trace event of the job running on this thread
// after blocking call `call` (its label and group); nothing when tracing
// is off. Thread-safe.
void TraceBlockingCall(const TaskNode* call);

// StartedTrace: the flight recorder's complete event ("cat":"task") for
// one run of a started plain task, from construction to destruction; it
// records nothing when tracing is off. A member of StartedRun.
class StartedTrace {
 public:
  StartedTrace(const GroupState* group, const char* file, uint32_t line);
  ~StartedTrace();
  StartedTrace(const StartedTrace&) = delete;
  StartedTrace& operator=(const StartedTrace&) = delete;

 private:
  Tracer* tracer_ = nullptr;  // null: not recording
  const char* label_ = nullptr;
  const char* group_name_ = nullptr;
  uint64_t group_id_ = 0;
  uint64_t start_ = 0;
};

// A task's label for reports (executor/sched/running_tasks.h): `site`, or,
// when `name` is not empty, the name (wins), as {copy, 0}. The copy is kept
// for the life of the process (one per distinct name, up to a cap; past
// it, names share one "(more names)" label). Thread-safe.
SpawnSite LabelFor(SpawnSite site, std::string_view name);

// StartedRun: one run of a started plain task (TaskGroup::Start), listed
// for reports while f runs. `own_stop`: the task's own stop source. A stack
// object, on the thread that runs f.
class StartedRun {
 public:
  StartedRun(const TaskNode* node, const StopState* own_stop);
  ~StartedRun();
  StartedRun(const StartedRun&) = delete;
  StartedRun& operator=(const StartedRun&) = delete;

  // Fields for running_tasks.cc (its registry's lock guards the links).
  const GroupState* const group;
  const char* const file;
  const uint32_t line;
  const StopState* const own_stop;
  const uint64_t start;
  std::atomic<uint64_t> looked{0};
  StartedRun* prev = nullptr;
  StartedRun* next = nullptr;
  StartedRun* const below;  // the thread's enclosing StartedRun
  // Last: built from the fields above, after them.
  StartedTrace trace{group, file, line};
};

template <class>
inline constexpr bool kAlwaysFalse = false;

template <class T>
struct IsTaskType : std::false_type {};
template <class T>
struct IsTaskType<Task<T>> : std::true_type {};

// The result type of calling F with a StopToken if it accepts one, else with
// no arguments.
template <class F, class = void>
struct CallResult {
  using type = void;
  static constexpr bool kValid = false;
};
template <class F>
struct CallResult<F, std::enable_if_t<std::is_invocable_v<F&, StopToken>>> {
  using type = std::invoke_result_t<F&, StopToken>;
  static constexpr bool kValid = true;
};
template <class F>
struct CallResult<F, std::enable_if_t<!std::is_invocable_v<F&, StopToken> &&
                                      std::is_invocable_v<F&>>> {
  using type = std::invoke_result_t<F&>;
  static constexpr bool kValid = true;
};

template <class F>
decltype(auto) CallWithToken(F& f, StopToken token) {
  if constexpr (std::is_invocable_v<F&, StopToken>) {
    return f(token);
  } else {
    return f();
  }
}

// The status for an exception caught at a task boundary.
absl::Status StatusFromException(std::exception_ptr e, const char* what_ran);

// Runs a plain task's callable and folds every outcome into a Status.
template <class F>
absl::Status RunPlain(F& f, StopToken token) noexcept {
  using R = typename CallResult<F>::type;
  try {
    if constexpr (std::is_void_v<R>) {
      CallWithToken(f, token);
      return absl::OkStatus();
    } else {
      return CallWithToken(f, token);
    }
  } catch (...) {
    return StatusFromException(std::current_exception(), "task");
  }
}

// The token a plain task's f is called with: its group's if f takes one;
// otherwise none, without the call GroupRef::token costs.
template <class F>
StopToken TokenIfTaken(GroupState* group) {
  if constexpr (std::is_invocable_v<F&, StopToken>) {
    return GroupRef::token(group);
  } else {
    return StopToken();
  }
}

// PlainTask<F>: a spawned callable and its TaskNode in one allocation, from
// the per-thread task cache (task_alloc.h) unless F is over-aligned.
template <class F>
struct PlainTask final : TaskNode, CacheAllocated<PlainTask<F>> {
  // A callable without a destructor can be dropped lazily (TaskNode::kLazy).
  static constexpr bool kLazy = std::is_trivially_destructible_v<F>;

  template <class G>
  PlainTask(GroupState* g, G&& fn, SpawnSite site)
      : TaskNode(&Run, g,
                 TaskNode::kDroppable | TaskNode::kPlain |
                     (kLazy ? TaskNode::kLazy : 0),
                 site),
        f(std::forward<G>(fn)) {}

  static void Run(TaskNode* node, bool drop) {
    auto* self = static_cast<PlainTask*>(node);
    GroupState* group = self->group;
    if (drop) {
      // Read the flag, not kLazy: Submit clears it for a task it drops.
      const bool lazy = (self->flags & TaskNode::kLazy) != 0;
      const bool slot = (self->flags & TaskNode::kSlot) != 0;
      delete self;
      if (slot) GroupRef::ReleaseSlot(group);
      GroupRef::FinishDropped(group, lazy);
      return;
    }
    // The frame the scheduler's start gate opened for this task.
    const int frame = GroupRef::StartPlain();
    GroupState* previous = GroupRef::Enter(group);
    absl::Status status = RunPlain(self->f, TokenIfTaken<F>(group));
    // max_concurrency (executor/group/group_limit.h): set only in limited groups.
    const bool slot = (self->flags & TaskNode::kSlot) != 0;
    // The callable (and its captures) dies before the group hears the task
    // finished: after Wait() returns, no capture destructor is still running.
    delete self;
    GroupRef::Leave(previous);
    if (slot) [[unlikely]] GroupRef::ReleaseSlot(group);
    if (status.ok()) {
      if constexpr (kLazy) {
        GroupRef::FinishLazyOk(group, frame);
      } else {
        GroupRef::FinishPlainOk(group, frame, /*lazy=*/false);
      }
    } else {
      GroupRef::FinishPlain(group, std::move(status), frame, kLazy);
    }
  }

  F f;
};

template <class F>
void SpawnPlain(GroupState* group, F&& f, SpawnSite site) {
  using Fn = std::decay_t<F>;
  using R = typename CallResult<Fn>::type;
  static_assert(CallResult<Fn>::kValid,
                "TaskGroup::Spawn: f must be callable as void(StopToken), "
                "absl::Status(StopToken), void() or absl::Status(), or return "
                "a ripcord::Task");
  static_assert(std::is_void_v<R> || std::is_same_v<R, absl::Status>,
                "TaskGroup::Spawn: f must return void, absl::Status or a "
                "ripcord::Task<...>");
  auto* const node = new PlainTask<Fn>(group, std::forward<F>(f), site);
  // relaxed: trace.h's active check.
  if (g_live_tracers.load(std::memory_order_relaxed) != 0) [[unlikely]] {
    TraceSpawn(node);
  }
  GroupRef::Submit(group, node);
}

// ---- SpawnBlocking -----------------------------------------------------

// What done receives for a blocking fn returning R.
template <class R>
struct BlockingResult {
  using type = absl::StatusOr<R>;
};
template <>
struct BlockingResult<void> {
  using type = absl::Status;
};
template <>
struct BlockingResult<absl::Status> {
  using type = absl::Status;
};
template <class T>
struct BlockingResult<absl::StatusOr<T>> {
  using type = absl::StatusOr<T>;
};

template <class Result>
Result CancelledResult(const char* what) {
  return Result(absl::CancelledError(what));
}

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <class T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// Runs fn on the calling (blocking) thread and folds every outcome into the
// result type done expects.
template <class Fn>
typename BlockingResult<typename CallResult<Fn>::type>::type RunBlockingFn(
    Fn& fn, StopToken token) noexcept {
  using R = typename CallResult<Fn>::type;
  using Result = typename BlockingResult<R>::type;
  try {
    if constexpr (std::is_void_v<R>) {
      CallWithToken(fn, token);
      return absl::OkStatus();
    } else {
      return Result(CallWithToken(fn, token));
    }
  } catch (...) {
    return Result(StatusFromException(std::current_exception(), "blocking fn"));
  }
}

// Submits `job` to the executor's blocking pool (executor/group/group_state.cc).
void SubmitBlockingJob(GroupState* group, TaskNode* job);
// Schedules a continuation (a non-droppable TaskNode) on a worker.
void ScheduleContinuation(TaskNode* node);

// BlockingCall<Fn, Done>: one SpawnBlocking call. It travels as a TaskNode
// twice: first to the blocking pool (phase kRunFn), then back to a worker as
// a continuation that calls done (phase kRunDone).
template <class Fn, class Done>
struct BlockingCall final : TaskNode {
  using R = typename CallResult<Fn>::type;
  using Result = typename BlockingResult<R>::type;

  template <class F, class D>
  BlockingCall(GroupState* g, F&& f, D&& d)
      : TaskNode(&RunFnPhase, g, 0),
        fn(std::forward<F>(f)),
        done(std::forward<D>(d)),
        result(absl::UnknownError("unset")) {}

  // Phase 1, on a blocking thread; with drop = true, on the submitting
  // thread when the blocking pool has no thread and cannot start one: fn
  // does not run, done receives ResourceExhausted (counted failed).
  static void RunFnPhase(TaskNode* node, bool drop) {
    auto* self = static_cast<BlockingCall*>(node);
    GroupState* group = self->group;
    if (drop) {
      GroupRef::CountStarted(group);
      self->result = Result(absl::ResourceExhaustedError(
          "SpawnBlocking: no blocking thread could be started (a thread or "
          "memory limit); fn did not run"));
    } else if (GroupRef::stop_requested(group)) {
      self->result = CancelledResult<Result>(
          "SpawnBlocking: group stopped before fn started");
      self->started = false;
    } else {
      GroupRef::CountStarted(group);
      GroupRef::BlockingFnStarted(group);
      BlockingRunBegin(self);
      TraceBlockingCall(self);
      self->result = RunBlockingFn(self->fn, GroupRef::token(group));
      BlockingRunEnd();
      GroupRef::BlockingFnDone(group);
    }
    self->run = &RunDonePhase;
    ScheduleContinuation(self);
  }

  // Phase 2, on a worker.
  static void RunDonePhase(TaskNode* node, bool /*drop*/) {
    auto* self = static_cast<BlockingCall*>(node);
    GroupState* group = self->group;
    // Read fn's outcome first: done may take the result by value and leave
    // a moved-from Status behind (regression: StatsCountByFnOutcome).
    const bool started = self->started;
    const bool slot = (self->flags & TaskNode::kSlot) != 0;
    absl::Status fn_status = StatusOf(self->result);
    GroupState* previous = GroupRef::Enter(group);
    absl::Status done_status;
    try {
      self->done(std::move(self->result));
    } catch (...) {
      done_status =
          StatusFromException(std::current_exception(), "SpawnBlocking done");
    }
    delete self;
    GroupRef::Leave(previous);
    // The call ends: fn and done both ran.
    if (slot) GroupRef::ReleaseSlot(group);
    if (!done_status.ok()) {
      // An exception thrown by done fails the group like a task's. A call
      // whose fn never ran still counts as started (and failed) then, so
      // that stats() shows nothing queued after the join.
      if (!started) GroupRef::CountStarted(group);
      GroupRef::FinishTask(group, std::move(done_status));
      return;
    }
    if (!started) {
      GroupRef::FinishDropped(group);
      return;
    }
    GroupRef::FinishCounted(group, fn_status);
  }

  Fn fn;
  Done done;
  Result result;
  bool started = true;
};

template <class Fn, class Done>
void SpawnBlocking(GroupState* group, Fn&& fn, Done&& done, SpawnSite site) {
  using F = std::decay_t<Fn>;
  using D = std::decay_t<Done>;
  static_assert(CallResult<F>::kValid,
                "TaskGroup::SpawnBlocking: fn must be callable as R(StopToken) "
                "or R()");
  using Result = typename BlockingResult<typename CallResult<F>::type>::type;
  static_assert(std::is_invocable_v<D&, Result>,
                "TaskGroup::SpawnBlocking: done must be callable as "
                "void(absl::Status) when fn returns void or absl::Status, and "
                "as void(absl::StatusOr<T>) when fn returns T or "
                "absl::StatusOr<T>");
  auto* call = new BlockingCall<F, D>(group, std::forward<Fn>(fn),
                                      std::forward<Done>(done));
  call->site_file = site.file;
  call->site_line = site.line;
  SubmitBlockingJob(group, call);
}

}  // namespace internal
}  // namespace ripcord

#endif  // RIPCORD_INTERNAL_SPAWN_H_
