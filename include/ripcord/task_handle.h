// Copyright 2026 The ripcord Authors.
//
// task_handle.h: TaskGroup::Start, TaskHandle<T> and WaitAll: stop, await and
// read one task (asyncio's Task, Tokio's JoinHandle, Java's Subtask).
//
//   ripcord::TaskGroup group(executor, {.name = "mirrors"});
//   ripcord::TaskHandle<std::string> a = group.Start(
//       [](ripcord::StopToken token) -> absl::StatusOr<std::string> {
//         return Download("https://a.example/file", token);
//       },
//       {.name = "mirror a"});
//   a.RequestStop("another mirror won");   // asyncio: task.cancel()
//   absl::StatusOr<std::string> r = a.Wait();  // await task: Cancelled here
//   absl::Status s = group.Wait();         // OK: stopping a did not fail it
//
// Spawn stays the cheap fire-and-forget path; Start costs one allocation
// more (the handle's shared state).
#ifndef RIPCORD_TASK_HANDLE_H_
#define RIPCORD_TASK_HANDLE_H_

#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ripcord/internal/spawn.h"
#include "ripcord/internal/task_handle_state.h"
#include "ripcord/task.h"
#include "ripcord/task_group.h"

namespace ripcord {

// TaskHandle<T>: the handle of one task started with TaskGroup::Start.
//
// The outcome is absl::StatusOr<T> (absl::Status when T is void): the value
// the task returned; its error status; UnknownError carrying what() for an
// exception; CancelledError whose message contains the reason when the task
// was stopped through this handle before it started (or reported that stop
// by returning CancelledError), or naming its group's stop cause ("group 'x'
// stopped: reason") when the group's stop dropped it. Wait(), Join() and
// OnDone() each take the outcome, once: so a move-only T works.
//
// Lifetime: the task belongs to its group, never to the handle: destroying
// the handle drops only the handle, and the group's Wait() and destructor
// join the task as any other. A handle may outlive its group and its
// executor (the outcome lives in a shared, reference-counted state); done()
// and taking the outcome still work then.
// Thread-safety: every member except assignment and destruction may be
// called from any thread, concurrently (an OnDone callback may stop the
// other handles of a vector while their owner registers callbacks); of
// concurrent takes (Wait, Join, OnDone) exactly one gets the outcome.
// Assigning or destroying a handle must not race with other calls on it.
template <class T = void>
class TaskHandle {
 public:
  using Outcome = typename internal::OutcomeOf<T>::type;
  using JoinAwaitable = internal::HandleJoinAwaitable<T>;

  // An empty handle: valid() == false.
  TaskHandle() noexcept = default;
  TaskHandle(TaskHandle&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)) {}
  TaskHandle& operator=(TaskHandle&& other) noexcept {
    if (this != &other) {
      Reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  // Drops the handle only: the task goes on; its group owns and joins it.
  ~TaskHandle() { Reset(); }
  TaskHandle(const TaskHandle&) = delete;
  TaskHandle& operator=(const TaskHandle&) = delete;

  // TaskHandle::valid(): false when empty, moved from, or its outcome was
  // taken (by Wait, Join or OnDone).
  bool valid() const { return state_ != nullptr && !state_->taken(); }

  // TaskHandle::done(): the task has ended (finished, failed, or dropped
  // unrun), including its OnDone callback if one was registered before.
  // False for an empty handle. Memory ordering: a true result
  // happens-after everything the task did.
  bool done() const { return state_ != nullptr && state_->done(); }

  // TaskHandle::RequestStop(reason): stops this task only. Not started yet:
  // f never runs, the outcome is CancelledError("task 'name' stopped:
  // reason"), and the task counts as cancelled. Running: its StopToken
  // reports stop, StopCallbacks on that token run (on this thread), and its
  // coroutine checkpoints (Sleep, Yield, a Blocking not yet started) return
  // CancelledError; if the task then returns CancelledError it counts as
  // cancelled, while any other error counts as failed (and, under
  // kFailFast, fails the group: an error outranks a stop). Either way the
  // group and the siblings go on: the group is neither stopped nor failed
  // by it. The first stop (this one or the group's) names the cause; no
  // effect once done or on an empty handle.
  // Thread-safety: any thread, concurrently with the task.
  void RequestStop(std::string_view reason = "stop requested") {
    if (state_ != nullptr) state_->RequestStop(reason);
  }

  // TaskHandle::stop_requested(): this task's own stop, or its group's.
  // False for an empty handle.
  bool stop_requested() const {
    return state_ != nullptr && state_->HandleStopRequested();
  }

  // TaskHandle::Wait(): blocks until the task has ended, then takes the
  // outcome (valid() becomes false).
  // Returns: the outcome (see the class comment), or FailedPrecondition at
  // once when the handle is empty, its outcome was already taken, or Wait()
  // is called from inside the task itself (or from a task nested in it on
  // the same thread), which would wait forever.
  // Blocks the calling thread, even a worker (as std::future::get): inside
  // a coroutine use `co_await handle.Join()`; in a plain task, a wait for a
  // task that cannot start until a worker frees up can deadlock, as with
  // any blocking call. Memory ordering: everything the task did
  // happens-before Wait() returns.
  [[nodiscard]] Outcome Wait() {
    if (state_ == nullptr) {
      return Outcome(absl::FailedPreconditionError(
          "TaskHandle::Wait() on an empty handle"));
    }
    if (state_->RunningHere()) {
      return Outcome(absl::FailedPreconditionError(
          absl::StrCat("TaskHandle::Wait() called from inside ",
                       state_->Label(), " itself; it would wait for itself")));
    }
    if (!state_->TryTake()) return Taken("TaskHandle::Wait()");
    state_->WaitDone();
    return state_->TakeOutcome();
  }

  // TaskHandle::Join(): `co_await handle.Join()` inside a coroutine task is
  // Wait() without holding a worker: the awaiting coroutine is resumed on a
  // worker when the task ends. It yields the outcome, or FailedPrecondition
  // at once as Wait() does. Not a checkpoint: a stop of the awaiting task
  // does not end the wait (stop the awaited task through its handle).
  // Call it on a handle that outlives the co_await.
  [[nodiscard]] JoinAwaitable Join() {
    if (state_ == nullptr) {
      return JoinAwaitable(nullptr,
                           absl::FailedPreconditionError(
                               "TaskHandle::Join() on an empty handle"));
    }
    if (state_->RunningHere()) {
      return JoinAwaitable(
          nullptr, absl::FailedPreconditionError(absl::StrCat(
                       "TaskHandle::Join() awaited from inside ",
                       state_->Label(), " itself; it would wait for itself")));
    }
    if (!state_->TryTake()) {
      return JoinAwaitable(nullptr, TakenStatus("TaskHandle::Join()"));
    }
    return JoinAwaitable(state_, absl::OkStatus());
  }

  // TaskHandle::OnDone(f): f(outcome) runs exactly once and takes the
  // outcome: on the thread that ends the task, before the group counts the
  // task finished (so the group's Wait() returns after f has run), or at
  // once on the calling thread if the task has already ended. On an empty
  // handle, or one whose outcome was taken, f receives FailedPrecondition at
  // once. f is callable as void(Outcome); it may be move-only.
  // Exceptions: thrown by f on the task's thread, an exception counts the
  // task as failed with UnknownError carrying what() (and, under kFailFast,
  // fails the group), as an exception thrown by SpawnBlocking's done does:
  // f is the task's last step, and its failure must not vanish. Thrown by f
  // run at once on the calling thread, it propagates to the caller of
  // OnDone (the handle stays taken). f runs inside the task's group, so its
  // own group's Wait() from f returns FailedPrecondition.
  // Thread-safety: as the handle; f may run concurrently with the caller.
  template <class F>
  void OnDone(F&& f) {
    static_assert(std::is_invocable_v<std::decay_t<F>&, Outcome>,
                  "TaskHandle::OnDone: f must be callable as void(Outcome)");
    if (state_ == nullptr) {
      f(Outcome(absl::FailedPreconditionError(
          "TaskHandle::OnDone() on an empty handle")));
      return;
    }
    if (!state_->TryTake()) {
      f(Taken("TaskHandle::OnDone()"));
      return;
    }
    absl::AnyInvocable<void(Outcome)> callback(std::forward<F>(f));
    if (state_->RegisterOnDone(callback)) return;
    std::move(callback)(state_->TakeOutcome());
  }

 private:
  template <class U>
  friend class TaskHandle;
  friend class TaskGroup;
  explicit TaskHandle(internal::TaskState<T>* state) : state_(state) {}

  static absl::Status TakenStatus(const char* api) {
    return absl::FailedPreconditionError(
        absl::StrCat(api,
                     ": the outcome was already taken (by Wait, Join "
                     "or OnDone)"));
  }
  static Outcome Taken(const char* api) { return Outcome(TakenStatus(api)); }
  void Reset() {
    if (state_ != nullptr) std::exchange(state_, nullptr)->Unref();
  }

  internal::TaskState<T>* state_ = nullptr;
};

// TaskGroup::Start(f, options): runs f as a task of this group, like
// Spawn(f), and returns a handle to it.
//
// f is callable as for Spawn, with or without a StopToken, plain or
// coroutine; T is what f yields: void and absl::Status -> TaskHandle<void>;
// U and absl::StatusOr<U> -> TaskHandle<U>; Task<>, Task<absl::Status> ->
// TaskHandle<void>; Task<U>, Task<absl::StatusOr<U>> -> TaskHandle<U>.
// f may be move-only; an lvalue callable is copied, never moved from.
//
// Belonging: the task is one of the group's like a spawned one: the group's
// Wait() waits for it, stats() count it (running, then completed, failed or
// cancelled), a stop of the group stops it (before it starts: it never runs
// and its outcome names the group's stop cause), and under kFailFast its
// error fails the group and stops the siblings. The token f receives (and
// every coroutine checkpoint of it) is the task's own: it reports stop when
// the handle's RequestStop() or the group's stop happened. It is valid
// while the task runs.
// Cost: one allocation more than Spawn (the handle's shared state), and,
// while the task runs, a StopCallback on the group's stop source.
// Thread-safety: any thread, like Spawn.
template <class F>
auto TaskGroup::Start(F&& f, TaskOptions options, internal::SpawnSite site) {
  using Fn = std::decay_t<F>;
  static_assert(internal::CallResult<Fn>::kValid,
                "TaskGroup::Start: f must be callable as R(StopToken) or R()");
  using R = typename internal::CallResult<Fn>::type;
  using T = typename internal::StartValue<R>::type;
  auto* state = new internal::TaskState<T>(state_, std::move(options.name));
  TaskHandle<T> handle(state);
  internal::TaskNode* node;
  try {
    if constexpr (internal::IsTaskType<R>::value) {
      node = internal::StartedCoroutine<Fn, T>::New(state_, state,
                                                    std::forward<F>(f));
    } else {
      node =
          new internal::StartedTask<Fn, T>(state_, state, std::forward<F>(f));
    }
  } catch (...) {
    // No node: end the state as never started; its Wait() would say so.
    state
        ->Complete(state_, absl::InternalError(
                               "TaskGroup::Start: f could not be stored"))
        .IgnoreError();
    state->Unref();  // the node's reference
    throw;
  }
  const internal::SpawnSite label = internal::LabelFor(site, state->name());
  if constexpr (internal::IsTaskType<R>::value) {
    static_cast<internal::CoroContext*>(node)->site = label;
  } else {
    node->site_file = label.file;
    node->site_line = label.line;
  }
  internal::GroupRef::Submit(state_, node);
  return handle;
}

// WaitAll(handles): asyncio's gather(..., return_exceptions=True): waits for
// every handle, in order, and takes each outcome (an empty or already taken
// handle gives FailedPrecondition in its place). Returns one outcome per
// handle, in the handles' order. Thread-safety: as TaskHandle::Wait().
template <class T>
std::vector<typename TaskHandle<T>::Outcome> WaitAll(
    std::vector<TaskHandle<T>>& handles) {
  std::vector<typename TaskHandle<T>::Outcome> outcomes;
  outcomes.reserve(handles.size());
  for (TaskHandle<T>& h : handles) outcomes.push_back(h.Wait());
  return outcomes;
}

}  // namespace ripcord

#endif  // RIPCORD_TASK_HANDLE_H_
