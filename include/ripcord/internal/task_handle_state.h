// Copyright 2026 The ripcord Authors.
//
// internal/task_handle_state.h: what TaskGroup::Start builds. Not public API.
//
// A started task is one ordinary task node of its group (StartedTask for a
// plain callable, StartedCoroutine for a coroutine; both go through the
// generic run path, like a spawned coroutine: CountStarted, then FinishTask
// or FinishDropped) plus one shared, reference-counted TaskState<T>:
//  - the task's own stop source (StopState), a child of its group's: a
//    StopCallback on the group's stop source (`chain_`, registered when the
//    task starts running, removed by its end) stops it, as tokio-util's
//    CancellationToken::child_token; its own stop reaches nobody else. A
//    queued task is not registered (the scheduler drops it if its group
//    stops), so Start does not touch the group's stop source;
//  - the outcome slot, the OnDone callback or the coroutine awaiting Join(),
//    and the task's name.
// References: one for the handle, one for the node (dropped right after the
// task's end, before its group hears of it). So a handle outlives its group
// and executor, and the task's end never waits for the handle.
//
// Ending (TaskState<T>::Complete, once, on the thread that ends the task,
// while the task still holds its unit of the group's count):
//  1. remove `chain_` (waits for a group stop running it right now);
//  2. under mu_: set kDone; hand the outcome to the OnDone callback if one
//     is registered, else store it and take the Join() waiter if any; wake
//     blocked Wait()ers;
//  3. outside mu_: schedule the Join() waiter, or run the callback (inside
//     the group, as a task: its Wait() from there is FailedPrecondition).
// Taking (Wait, Join, OnDone) first sets kTaken (one RMW: exactly one
// taker); the taker then reads the slot once kDone is set, or registers
// (OnDone, Join) under mu_ before kDone, for step 2 to find.
#ifndef RIPCORD_INTERNAL_TASK_HANDLE_STATE_H_
#define RIPCORD_INTERNAL_TASK_HANDLE_STATE_H_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ripcord/internal/coroutine.h"
#include "ripcord/internal/group_ref.h"
#include "ripcord/internal/mutex.h"
#include "ripcord/internal/spawn.h"
#include "ripcord/internal/stop_state.h"
#include "ripcord/internal/task_alloc.h"
#include "ripcord/internal/task_node.h"
#include "ripcord/stop_token.h"
#include "ripcord/task.h"

namespace ripcord::internal {

// ---- result types ----------------------------------------------------------

// What a handle's outcome is for a task yielding T.
template <class T>
struct OutcomeOf {
  using type = absl::StatusOr<T>;
};
template <>
struct OutcomeOf<void> {
  using type = absl::Status;
};

// StartValue<R>::type: the T of TaskHandle<T> for a callable returning R.
// void, absl::Status -> void; U, absl::StatusOr<U> -> U; Task<V> -> as V.
template <class R>
struct StartValue {
  using type = R;
};
template <>
struct StartValue<void> {
  using type = void;
};
template <>
struct StartValue<absl::Status> {
  using type = void;
};
template <class U>
struct StartValue<absl::StatusOr<U>> {
  using type = U;
};
template <class V>
struct StartValue<Task<V>> {
  using type = typename StartValue<V>::type;
};

// Folds a value of the callable's result type into the outcome.
template <class T, class R>
typename OutcomeOf<T>::type ToOutcome(R&& r) {
  return typename OutcomeOf<T>::type(std::forward<R>(r));
}

// ---- the shared state
// --------------------------------------------------------

// TaskStateBase: the untyped half of a started task's shared state.
// Thread-safe; fields say who touches them.
class TaskStateBase {
 public:
  TaskStateBase(const TaskStateBase&) = delete;
  TaskStateBase& operator=(const TaskStateBase&) = delete;

  void Ref() noexcept {
    // relaxed: the caller already holds a reference.
    refs_.fetch_add(1, std::memory_order_relaxed);
  }
  void Unref() noexcept {
    // acq_rel: the last owner's delete sees every other owner's writes.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // The task's own stop source and its token.
  StopState* stop_state() noexcept { return &stop_; }
  StopToken token() noexcept { return TokenFor(&stop_); }
  // The task's own stop source: its handle's stop, or, once the task
  // runs, its group's (which sets it through chain_).
  bool stop_requested() const noexcept { return stop_.stop_requested(); }
  // TaskHandle::stop_requested(): the task's own stop, or its group's
  // (read under mu_ while the task has not ended, so the group is alive).
  bool HandleStopRequested() const ABSL_LOCKS_EXCLUDED(mu_);
  bool done() const noexcept {
    // acquire: pairs with the release fetch_or of kDone in Publish(); a
    // caller that sees done also sees the outcome stored before it.
    return (phase_.load(std::memory_order_acquire) & kDone) != 0;
  }
  bool taken() const noexcept {
    // relaxed: a hint for valid(); taking itself is the RMW in TryTake().
    return (phase_.load(std::memory_order_relaxed) & kTaken) != 0;
  }
  // Marks the outcome taken. False if it already was (Wait, Join, OnDone).
  bool TryTake() noexcept {
    // relaxed: one RMW decides who takes; the slot is read under mu_ or
    // after the acquire of kDone.
    return (phase_.fetch_or(kTaken, std::memory_order_relaxed) & kTaken) == 0;
  }

  // TaskHandle::RequestStop: the first stop records `reason` (unless the
  // group's stop came first); no effect once the task ended.
  void RequestStop(std::string_view reason) ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until the task ended.
  void WaitDone() ABSL_LOCKS_EXCLUDED(mu_);
  // True if the calling thread runs this task right now (a plain task, or
  // a coroutine being driven), or runs a task nested in it (a helping wait).
  bool RunningHere() const noexcept;
  // The CancelledError for a task stopped before it ran or that reports
  // its stop: "task 'x' stopped: reason" for a stop through the handle,
  // else the group's stop cause. `group` must be alive (the task's).
  absl::Status StopCause(GroupState* group) const ABSL_LOCKS_EXCLUDED(mu_);
  // The status the group settles the task with: the outcome's, marked
  // (kTaskStoppedPayload) when a CancelledError follows the task's own stop.
  absl::Status ForGroup(absl::Status s) const;
  const std::string& name() const noexcept { return name_; }
  // "task 'name'" or "an unnamed task".
  std::string Label() const;

  // Task side, when the task starts running: chains its stop to the
  // group's (a stopped group stops it at once). Before that the scheduler's
  // own check of the group's stop drops it, so a queued task costs the
  // group's stop source nothing.
  void ChainToGroup() {
    chain_.emplace(GroupRef::token(group_), Chain{this});
  }
  // Task side: for RunningHere() (coroutines; set before the node is queued).
  void set_coroutine(const CoroContext* ctx) noexcept { coroutine_ = ctx; }

  // RunningScope: brackets a plain task's call of f on its thread.
  class RunningScope {
   public:
    explicit RunningScope(TaskStateBase* s) noexcept;
    ~RunningScope();
    RunningScope(const RunningScope&) = delete;
    RunningScope& operator=(const RunningScope&) = delete;

   private:
    TaskStateBase* const state_;
  };

 protected:
  TaskStateBase(GroupState* group, std::string name)
      : group_(group), name_(std::move(name)) {}
  virtual ~TaskStateBase() = default;

  // Ending steps 1-2 (see the file comment): removes the chain, sets kDone
  // under mu_ and wakes Wait()ers. `publish` runs under mu_ first (it stores
  // the outcome or takes the callback). Returns the Join() waiter to
  // schedule, if any.
  template <class Publish>
  CoroContext* End(Publish&& publish) ABSL_LOCKS_EXCLUDED(mu_) {
    chain_.reset();
    MutexLock lock(&mu_);
    publish();
    CoroContext* const joiner = std::exchange(joiner_, nullptr);
    // release: pairs with the acquire load in done().
    phase_.fetch_or(kDone, std::memory_order_release);
    if (waiters_ > 0) done_cv_.SignalAll();
    return joiner;
  }
  // Registers `ctx` (suspended at `h`) to be scheduled by End. False if the
  // task already ended (resume at once).
  bool SuspendJoiner(CoroContext* ctx, std::coroutine_handle<> h)
      ABSL_LOCKS_EXCLUDED(mu_);

  static constexpr uint32_t kDone = 1;   // the task ended; set once
  static constexpr uint32_t kTaken = 2;  // a taker claimed the outcome

  mutable Mutex mu_;

 private:
  struct Chain {
    TaskStateBase* state;
    void operator()() noexcept { state->StopFromGroup(); }
  };
  void StopFromGroup() ABSL_LOCKS_EXCLUDED(mu_);

  enum class StopSource : uint8_t { kNone, kHandle, kGroup };

  std::atomic<int> refs_{2};  // the handle's and the node's
  std::atomic<uint32_t> phase_{0};
  StopState stop_;
  // Emplaced by Start (before the node is queued), reset by End (the task's
  // thread): never touched concurrently.
  std::optional<StopCallback<Chain>> chain_;
  CondVar done_cv_;
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;
  StopSource source_ ABSL_GUARDED_BY(mu_) = StopSource::kNone;
  std::string reason_ ABSL_GUARDED_BY(mu_);
  CoroContext* joiner_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The started coroutine's node (null for a plain task): compared, never
  // dereferenced, by RunningHere() before the task ended. Written before
  // the node is queued.
  const CoroContext* coroutine_ = nullptr;
  // While a plain task runs: the started task that ran on its thread
  // beneath it (tls_started_task before it). Its thread only.
  TaskStateBase* below_ = nullptr;
  // The task's group: used only while the task has not ended.
  GroupState* const group_;
  const std::string name_;
};

// The innermost plain started task running on this thread (null if none).
inline thread_local TaskStateBase* tls_started_task = nullptr;

// TaskState<T>: the typed half: the outcome slot and the OnDone callback.
// Thread-safe. Allocated from the task cache (often freed on another thread).
template <class T>
class TaskState final : public TaskStateBase,
                        public CacheAllocated<TaskState<T>> {
 public:
  using Outcome = typename OutcomeOf<T>::type;
  using CacheAllocated<TaskState<T>>::operator new;
  using CacheAllocated<TaskState<T>>::operator delete;

  TaskState(GroupState* group, std::string name)
      : TaskStateBase(group, std::move(name)) {}

  // Ends the task with `outcome` (see the file comment). Called once, by the
  // task's thread, while the task holds its unit of `group`. Returns the
  // status of an exception the OnDone callback threw (UnknownError), else
  // OK. Never throws.
  absl::Status Complete(GroupState* group, Outcome outcome) noexcept {
    absl::AnyInvocable<void(Outcome)> callback;
    CoroContext* const joiner = End([&] {
      mu_.AssertHeld();
      if (on_done_) {
        callback = std::move(on_done_);
      } else {
        outcome_.emplace(std::move(outcome));
      }
    });
    if (joiner != nullptr) ScheduleResume(joiner);
    if (!callback) return absl::OkStatus();
    GroupState* const previous = GroupRef::Enter(group);
    absl::Status status;
    try {
      std::move(callback)(std::move(outcome));
    } catch (...) {
      status = StatusFromException(std::current_exception(),
                                   "TaskHandle::OnDone callback");
    }
    GroupRef::Leave(previous);
    return status;
  }

  // The outcome, once done() and taken by the caller.
  Outcome TakeOutcome() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    Outcome o = std::move(*outcome_);
    outcome_.reset();
    return o;
  }

  // OnDone: registers `f` or, when the task has ended, returns false and
  // leaves f alone (the caller runs it). The caller took the outcome.
  template <class F>
  bool RegisterOnDone(F& f) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (done()) return false;
    on_done_ = std::move(f);
    return true;
  }

  bool SuspendJoiner(CoroContext* ctx, std::coroutine_handle<> h) {
    return TaskStateBase::SuspendJoiner(ctx, h);
  }

 private:
  std::optional<Outcome> outcome_ ABSL_GUARDED_BY(mu_);
  absl::AnyInvocable<void(Outcome)> on_done_ ABSL_GUARDED_BY(mu_);
};

// A reference to a TaskState (the node's).
template <class T>
struct StateRef {
  explicit StateRef(TaskState<T>* s) noexcept : state(s) {}
  StateRef(StateRef&& o) noexcept : state(std::exchange(o.state, nullptr)) {}
  StateRef& operator=(StateRef&&) = delete;
  ~StateRef() {
    if (state != nullptr) state->Unref();
  }
  TaskState<T>* state;
};

// Runs a plain started callable and folds every outcome into the handle's.
template <class T, class F>
typename OutcomeOf<T>::type RunStarted(F& f, StopToken token) noexcept {
  using R = typename CallResult<F>::type;
  try {
    if constexpr (std::is_void_v<R>) {
      CallWithToken(f, token);
      return absl::OkStatus();
    } else {
      return ToOutcome<T>(CallWithToken(f, token));
    }
  } catch (...) {
    return typename OutcomeOf<T>::type(
        StatusFromException(std::current_exception(), "task"));
  }
}

// A started task dropped unrun (its group was stopped first): ends it with
// its stop cause, then settles it with the group. `state` is the node's
// reference, already out of the freed node.
template <class T>
void SettleDropped(GroupState* group, StateRef<T> ref) {
  // The group is stopped: chaining now stops the task's own source too, so
  // stop_requested() stays true after the end (nothing stays registered).
  ref.state->ChainToGroup();
  absl::Status callback_error =
      ref.state->Complete(group, ref.state->StopCause(group));
  { StateRef<T> drop = std::move(ref); }
  if (callback_error.ok()) {
    GroupRef::FinishDropped(group);
    return;
  }
  // An OnDone callback that threw fails the task (SpawnBlocking's done).
  GroupRef::CountStarted(group);
  GroupRef::FinishTask(group, std::move(callback_error));
}

// StartedTask<F, T>: a started plain callable. Not a kPlain node: it takes
// the generic path (CountStarted, FinishTask), so Spawn's gate is untouched.
template <class F, class T>
struct StartedTask final : TaskNode, CacheAllocated<StartedTask<F, T>> {
  template <class G>
  StartedTask(GroupState* g, TaskState<T>* s, G&& fn)
      : TaskNode(&Run, g, TaskNode::kDroppable),
        ref(s),
        f(std::forward<G>(fn)) {}

  static void Run(TaskNode* node, bool drop) {
    auto* self = static_cast<StartedTask*>(node);
    GroupState* const group = self->group;
    StateRef<T> ref = std::move(self->ref);
    TaskState<T>* const state = ref.state;
    // max_concurrency (executor/group/group_limit.h): set only in limited
    // groups; given back as a spawned task's (PlainTask::Run, spawn.h).
    const bool slot = (self->flags & TaskNode::kSlot) != 0;
    if (drop) {
      delete self;
      if (slot) GroupRef::ReleaseSlot(group);
      SettleDropped(group, std::move(ref));
      return;
    }
    GroupRef::CountStarted(group);
    // A placeholder without a heap message (an empty one is inline).
    typename OutcomeOf<T>::type outcome =
        absl::Status(absl::StatusCode::kUnknown, "");
    GroupState* const previous = GroupRef::Enter(group);
    state->ChainToGroup();
    if (state->stop_requested()) {
      // Stopped (by its handle, or its group just now) before it started.
      outcome = state->StopCause(group);
    } else {
      TaskStateBase::RunningScope running(state);
      StartedRun listed(self, state->stop_state());  // for reports
      outcome = RunStarted<T>(self->f, state->token());
    }
    // The callable (and its captures) dies before the group hears the task
    // finished, as a spawned task's.
    delete self;
    GroupRef::Leave(previous);
    if (slot) [[unlikely]] GroupRef::ReleaseSlot(group);
    absl::Status for_group = state->ForGroup(StatusOf(outcome));
    absl::Status callback_error = state->Complete(group, std::move(outcome));
    { StateRef<T> drop = std::move(ref); }
    if (!callback_error.ok()) for_group = std::move(callback_error);
    GroupRef::FinishTask(group, std::move(for_group));
  }

  StateRef<T> ref;
  F f;
};

// StartedCoroutine<F, T>: a started coroutine callable, with its root frame
// in the node's block when it fits (CoroutineRoot, task.h): one allocation
// like a Spawn, plus the state. Its checkpoints read its own stop state
// (TaskNode::kOwnStop).
template <class F, class T>
struct StartedCoroutine final : CoroutineRoot<StartedCoroutine<F, T>> {
  using Root = CoroutineRoot<StartedCoroutine>;
  using TaskType = typename CallResult<F>::type;
  using V = typename TaskType::value_type;
  using Outcome = typename OutcomeOf<T>::type;

  static void operator delete(StartedCoroutine* p,
                              std::destroying_delete_t) noexcept {
    Root::Free(p);
  }

  // The frame first: ref (a member) is released after it and the callable.
  ~StartedCoroutine() override { this->DestroyFrameInRoom(); }

  StopState* OwnStopState() noexcept override {
    return ref.state->stop_state();
  }
  absl::Status OwnStopStatus() noexcept override {
    return ref.state->StopCause(this->group);
  }

  // Dropped unrun, or run: CoroContext::Run (which calls RootStatus()).
  static void Run(TaskNode* node, bool drop) {
    if (!drop) return CoroContext::Run(node, false);
    auto* self = static_cast<StartedCoroutine*>(node);
    GroupState* const group = self->group;
    StateRef<T> ref = std::move(self->ref);
    const bool slot = (self->flags & TaskNode::kSlot) != 0;  // as above
    delete self;
    if (slot) GroupRef::ReleaseSlot(group);
    SettleDropped(group, std::move(ref));
  }

  std::coroutine_handle<> RootHandle() noexcept override {
    if (!task.handle()) {
      ref.state->ChainToGroup();
      if (ref.state->stop_requested()) {
        // Stopped before it started: f is never called.
        this->create_error = ref.state->StopCause(this->group);
        return {};
      }
      return this->CreateRoot(ref.state->token(),
                              "Start: f returned an empty Task");
    }
    return task.handle();
  }

  // The task ended (CoroContext::Drive): ends the handle's side (OnDone
  // runs here) and returns the status the group settles with.
  absl::Status RootStatus() noexcept override {
    Outcome outcome = absl::Status(absl::StatusCode::kUnknown, "");
    if (!this->create_error.ok()) {
      outcome = Outcome(this->create_error);
    } else {
      try {
        if constexpr (std::is_void_v<V>) {
          task.handle().promise().Take();
          outcome = absl::OkStatus();
        } else {
          outcome = ToOutcome<T>(task.handle().promise().Take());
        }
      } catch (...) {
        outcome = Outcome(
            StatusFromException(std::current_exception(), "coroutine task"));
      }
    }
    TaskState<T>* const state = ref.state;
    absl::Status for_group = state->ForGroup(StatusOf(outcome));
    absl::Status callback_error =
        state->Complete(this->group, std::move(outcome));
    if (!callback_error.ok()) return callback_error;
    return for_group;
  }

  StateRef<T> ref;  // first: released after the frame and the callable
  F f;              // before task: destroyed after the frame
  TaskType task;

 private:
  friend Root;
  template <class G>
  StartedCoroutine(GroupState* g, TaskState<T>* s, G&& fn, uint32_t room)
      : Root(g, room), ref(s), f(std::forward<G>(fn)) {
    this->run = &Run;
    this->flags |= TaskNode::kOwnStop;
    s->set_coroutine(this);
  }
};

// JoinAwaitable of a TaskHandle: `co_await handle.Join()`.
template <class T>
class HandleJoinAwaitable {
 public:
  using Outcome = typename OutcomeOf<T>::type;
  // `state` null: `result` is the outcome at once.
  HandleJoinAwaitable(TaskState<T>* state, absl::Status result)
      : state_(state), result_(std::move(result)) {
    if (state_ != nullptr) state_->Ref();
  }
  HandleJoinAwaitable(HandleJoinAwaitable&& o) noexcept
      : state_(std::exchange(o.state_, nullptr)), result_(o.result_) {}
  HandleJoinAwaitable& operator=(HandleJoinAwaitable&&) = delete;
  ~HandleJoinAwaitable() {
    if (state_ != nullptr) state_->Unref();
  }

  bool await_ready() noexcept { return state_ == nullptr || state_->done(); }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    return state_->SuspendJoiner(ContextOf(h), h);
  }
  Outcome await_resume() {
    if (state_ == nullptr) return Outcome(result_);
    return state_->TakeOutcome();
  }

 private:
  TaskState<T>* state_;
  absl::Status result_;
};

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_TASK_HANDLE_STATE_H_
