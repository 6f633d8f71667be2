// Copyright 2026 The ripcord Authors.
//
// task.h: coroutine tasks. Plain tasks hold their worker while they run,
// which is right for compute; tasks that wait (for time, for a child group,
// for blocking work) are coroutines, so thousands of them can wait at once on
// a few workers.
//
//   group.Spawn([](ripcord::StopToken token) -> ripcord::Task<absl::Status> {
//     for (int i = 0; i < 10; ++i) {
//       absl::Status s = co_await ripcord::Sleep(absl::Milliseconds(100));
//       if (!s.ok()) co_return s;          // CancelledError: the group stopped
//       absl::StatusOr<std::string> page =
//           co_await ripcord::Blocking([] { return Fetch(); });
//       if (!page.ok()) co_return page.status();
//     }
//     co_return absl::OkStatus();
//   });
//
// Every co_await below is a checkpoint, as in Trio: when the awaiting task's
// group is stopped (a shielded group is not stopped by its parent), a pending
// Sleep or Yield resumes at once with CancelledError; Join still waits for the
// children (they are stopped too, unless shielded); Blocking waits for fn,
// which cannot be interrupted, and hands back fn's result. Each awaitable
// frees the worker while it waits and resumes on a work-stealing worker.
// A coroutine's frame is destroyed on the thread that finishes it; nothing
// leaks when a group is stopped while its coroutines are suspended (a stopped
// group's suspended coroutines resume with CancelledError and unwind).
//
// The awaitables are valid only inside a ripcord::Task that runs under
// TaskGroup::Spawn (directly, or awaited by such a Task).
#ifndef RIPCORD_TASK_H_
#define RIPCORD_TASK_H_

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ripcord/internal/coroutine.h"
#include "ripcord/internal/spawn.h"
#include "ripcord/internal/task_alloc.h"
#include "ripcord/stop_token.h"
#include "ripcord/task_group.h"

namespace ripcord {

template <class T>
class Task;

namespace internal {

// PromiseBase: what every Task's promise shares. Thread-compatible.
struct PromiseBase {
  CoroContext* ctx = nullptr;              // the spawned task this runs under
  std::coroutine_handle<> continuation;    // who co_awaited us (null: root)
  std::exception_ptr exception;

  // Frames come from the executor's per-thread task cache (task_alloc.h),
  // like spawned tasks: a frame is usually freed by another worker than the
  // one that created it, and a stop frees many at once, where glibc's
  // per-thread cache overflows and the workers queue up on its arena locks.
  // A spawned callable's own coroutine (its first argument, the implicit
  // object of its operator(), is the callable kept in the node) goes into
  // the room the node reserved for it, when it fits (FrameRoom,
  // coroutine.h). Every other frame takes its own block.
  //
  // The two forms Spawn calls f in, f() and f(StopToken), are the only ones
  // that can take the room: a coroutine with other parameters finds no
  // viable overload below and gets operator new(size) (the coroutine
  // rules' fallback). They are not templates on purpose: gcc 12 pairs a
  // template operator new with the (non-template) operator delete the
  // frame is freed with and reports -Wmismatched-new-delete in the users'
  // code, at every coroutine; SelfAddress's converting constructor takes
  // the template's place.
  struct SelfAddress {
    template <class Self>
    SelfAddress(const Self& self) noexcept  // NOLINT: implicit on purpose
        : address(std::addressof(self)) {}
    const void* address;
  };
  static void* operator new(size_t size) { return AllocateTask(size); }
  static void* operator new(size_t size, SelfAddress self) {
    return AllocateFrame(size, self.address);
  }
  static void* operator new(size_t size, SelfAddress self, const StopToken&) {
    return AllocateFrame(size, self.address);
  }
  // A frame's block: the room when `self` is the callable the room is
  // offered to (FrameRoom), else one of its own.
  static void* AllocateFrame(size_t size, const void* self) {
    if (FrameRoom* const r = tls_frame_room;
        r != nullptr && r->closure == self) {
      if (void* const p = r->Take(size)) return p;
    }
    return AllocateTask(size);
  }
  static void operator delete(void* p, size_t size) noexcept {
    if (p == tls_room_release) return;  // freed with its node
    if (FrameRoom* const r = tls_frame_room; r != nullptr && r->room == p) {
      r->in_use = false;  // the room is part of the node's block
      return;
    }
    FreeTask(p, size);
  }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      PromiseBase& p = h.promise();
      if (p.continuation) {
        tls_driver->next = p.continuation;  // resume the awaiter (driver loop)
      } else {
        tls_driver->root_done = true;
      }
      return true;
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <class T>
struct Promise : PromiseBase {
  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T Take() {
    if (exception) std::rethrow_exception(exception);
    return std::move(*value);
  }
  std::optional<T> value;
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void Take() {
    if (exception) std::rethrow_exception(exception);
  }
};

// The awaiting coroutine's context, for awaitables.
template <class P>
CoroContext* ContextOf(std::coroutine_handle<P> h) {
  static_assert(std::is_base_of_v<PromiseBase, P>,
                "ripcord awaitables are valid only inside a ripcord::Task");
  CoroContext* ctx = h.promise().ctx;
  return ctx;
}

}  // namespace internal

// Task<T>: a lazily started coroutine that co_returns T (void, a value,
// absl::Status or absl::StatusOr<U>). Move-only; owns its frame.
//
// `co_await task` inside another Task runs it inline on the same worker (no
// new task) and yields what it co_returns; an exception escaping it is
// rethrown at the co_await. Pass a Task to TaskGroup::Spawn through a
// callable: `group.Spawn([]() -> Task<> { ... })`.
// Thread-safety: Thread-compatible.
template <class T = void>
class [[nodiscard]] Task {
 public:
  using promise_type = internal::Promise<T>;
  using value_type = T;

  Task() noexcept = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  ~Task() {
    if (handle_) handle_.destroy();
  }

  struct Awaiter {
    std::coroutine_handle<promise_type> child;
    bool await_ready() noexcept { return !child; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> parent) noexcept {
      child.promise().ctx = internal::ContextOf(parent);
      child.promise().continuation = parent;
      internal::tls_driver->next = child;  // start the child (driver loop)
      return true;
    }
    T await_resume() { return child.promise().Take(); }
  };
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }
  Awaiter operator co_await() & noexcept { return Awaiter{handle_}; }

  // For the library: the frame's handle.
  std::coroutine_handle<promise_type> handle() const noexcept {
    return handle_;
  }

 private:
  friend struct internal::Promise<T>;
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

namespace internal {

template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

// CoroutineRoot<Self>: the block a spawned or started coroutine lives in:
// its node and, when it fits, its root frame after it (FrameRoom,
// coroutine.h), as many bytes as the frame took the last time one was
// created, so from the second spawn of a callable on, node and frame are
// usually one allocation. Shared by SpawnedCoroutine (below) and
// StartedCoroutine (task_handle_state.h). Self is final, derives from
// CoroutineRoot<Self>, has members `f` (the callable, declared before
// `task`, so destroyed after the frame) and `task` (its root Task), a
// constructor Self(GroupState*, Args..., uint32_t room) that befriends us,
// a destructor that calls DestroyFrameInRoom() first, and a destroying
// operator delete that calls Free(). Thread-compatible, as CoroContext.
template <class Self>
struct CoroutineRoot : CoroContext {
  // Self's frame size as last seen (FrameRoom::learnt); 0 before the first.
  static inline std::atomic<uint32_t> learnt{0};

  // A new Self(g, args..., room) with room for its frame (as learnt).
  // Throws what allocation or Self's constructor throws, leaking nothing.
  template <class... Args>
  static Self* New(GroupState* g, Args&&... args) {
    if constexpr (!kTaskAllocatable<Self>) {
      void* const p =
          ::operator new(sizeof(Self), std::align_val_t{alignof(Self)});
      try {
        return ::new (p) Self(g, std::forward<Args>(args)..., 0);
      } catch (...) {
        ::operator delete(p, std::align_val_t{alignof(Self)});
        throw;
      }
    } else {
      // relaxed: see FrameRoom::learnt. A frame too large for a cached
      // block gets no room: one block beyond kMaxCachedTaskSize would go to
      // malloc, where the node and the frame apart are cached.
      uint32_t room = learnt.load(std::memory_order_relaxed);
      if (room > kMaxCachedTaskSize - NodeBytes()) room = 0;
      const size_t bytes = NodeBytes() + room;
      void* const p = AllocateTask(bytes);
      try {
        return ::new (p) Self(g, std::forward<Args>(args)..., room);
      } catch (...) {
        FreeTask(p, bytes);
        throw;
      }
    }
  }

  // Self's destroying operator delete: `delete ctx` (a CoroContext*)
  // destroys *p and frees the whole block, room included.
  static void Free(Self* p) noexcept {
    const size_t bytes = NodeBytes() + p->room_bytes;
    p->~Self();
    if constexpr (!kTaskAllocatable<Self>) {
      (void)bytes;
      ::operator delete(static_cast<void*>(p), std::align_val_t{alignof(Self)});
    } else {
      FreeTask(p, bytes);
    }
  }

  // The node's size rounded up to the frame alignment: the room starts there.
  static constexpr size_t NodeBytes() {
    constexpr size_t kAlign = __STDCPP_DEFAULT_NEW_ALIGNMENT__;
    return (sizeof(Self) + kAlign - 1) / kAlign * kAlign;
  }
  // Where the root frame goes when it fits in room_bytes.
  void* Room() noexcept { return reinterpret_cast<char*>(this) + NodeBytes(); }

  // The first run: calls f with `token` (which creates the frame, suspended
  // at its start), offering it our room, and returns the frame's handle.
  // Without a room, no address: a frame allocated apart may start where the
  // room would, and its operator delete must free it. Returns null, with
  // create_error set, if f threw, or returned an empty Task (then
  // create_error is InternalError(empty_task_error)).
  std::coroutine_handle<> CreateRoot(StopToken token,
                                     const char* empty_task_error) noexcept {
    Self& self = static_cast<Self&>(*this);
    FrameRoom offer{std::addressof(self.f), room_bytes != 0 ? Room() : nullptr,
                    room_bytes, false, &learnt};
    FrameRoom* const saved = std::exchange(tls_frame_room, &offer);
    try {
      self.task = CallWithToken(self.f, std::move(token));
    } catch (...) {
      tls_frame_room = saved;
      create_error = StatusFromException(std::current_exception(), "task");
      if (offer.in_use) FrameRoomEscaped();
      return {};
    }
    tls_frame_room = saved;
    if (offer.in_use && self.task.handle().address() != offer.room) {
      FrameRoomEscaped();
    }
    if (!self.task.handle()) {
      create_error = absl::InternalError(empty_task_error);
      return {};
    }
    self.task.handle().promise().ctx = this;
    return self.task.handle();
  }

  // Called first by ~Self: destroys the root frame if it lives in our room
  // (its operator delete must not free it: the block goes with the node).
  // Both tests: without a room, a frame allocated apart may still start
  // right where the room would (the next block).
  void DestroyFrameInRoom() noexcept {
    Self& self = static_cast<Self&>(*this);
    if (room_bytes == 0 || self.task.handle().address() != Room()) return;
    void* const saved = std::exchange(tls_room_release, Room());
    self.task = typename Self::TaskType();  // destroys the frame
    tls_room_release = saved;
  }

  // Why the frame was not created (f threw, returned an empty Task, or the
  // task was stopped first); OK otherwise.
  absl::Status create_error;

 protected:
  CoroutineRoot(GroupState* g, uint32_t room) : CoroContext(g) {
    static_assert(kMaxCachedTaskSize <= UINT16_MAX);
    room_bytes = static_cast<uint16_t>(room);
  }
};

// SpawnedCoroutine<F>: the callable (kept alive until the coroutine finished)
// and its root Task, in one CoroutineRoot block.
template <class F>
struct SpawnedCoroutine final : CoroutineRoot<SpawnedCoroutine<F>> {
  using Root = CoroutineRoot<SpawnedCoroutine>;
  using TaskType = typename CallResult<F>::type;
  using T = typename TaskType::value_type;
  static_assert(std::is_void_v<T> || std::is_same_v<T, absl::Status>,
                "TaskGroup::Spawn: a coroutine task must be a Task<> or a "
                "Task<absl::Status>");

  static void operator delete(SpawnedCoroutine* p,
                              std::destroying_delete_t) noexcept {
    Root::Free(p);
  }

  ~SpawnedCoroutine() override { this->DestroyFrameInRoom(); }

  std::coroutine_handle<> RootHandle() noexcept override {
    if (task.handle()) return task.handle();
    return this->CreateRoot(GroupRef::token(this->group),
                            "Spawn: f returned an empty Task");
  }

  absl::Status RootStatus() noexcept override {
    if (!this->create_error.ok()) return this->create_error;
    try {
      if constexpr (std::is_void_v<T>) {
        task.handle().promise().Take();
        return absl::OkStatus();
      } else {
        return task.handle().promise().Take();
      }
    } catch (...) {
      return StatusFromException(std::current_exception(), "coroutine task");
    }
  }

  F f;  // declared before task: destroyed after the frame
  TaskType task;

 private:
  friend Root;
  template <class G>
  SpawnedCoroutine(GroupState* g, G&& fn, uint32_t room)
      : Root(g, room), f(std::forward<G>(fn)) {}
};

template <class F>
void SpawnCoroutine(GroupState* group, F&& f, SpawnSite site) {
  auto* ctx = SpawnedCoroutine<std::decay_t<F>>::New(group, std::forward<F>(f));
  ctx->site = site;
  GroupRef::Submit(group, ctx);
}

// ---- awaiters ---------------------------------------------------------------

// Holds Sleep's operation (SleepOp, sleep.cc) in place: the awaiter lives
// in the coroutine frame while it is suspended, so a sleep allocates nothing.
// Not copyable or movable once constructed in the frame (the timer and the
// stop source hold the operation's address while it is pending).
// The duration waits in `storage` until await_suspend, which reads it
// before SleepSuspend builds the operation there: 16 bytes less per frame
// (a spawned coroutine's block shrinks by a quarter of a cache line on
// average).
struct SleepAwaiter {
  static_assert(sizeof(absl::Duration) <= kSleepOpSize &&
                std::is_trivially_destructible_v<absl::Duration>);
  explicit SleepAwaiter(absl::Duration d) { ::new (storage) absl::Duration(d); }
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;

  SleepOp* op = nullptr;   // constructed in `storage` by SleepSuspend
  bool cancelled = false;  // the result when op stays null
  // The duration until await_suspend, then the operation (if any).
  alignas(kSleepOpAlign) unsigned char storage[kSleepOpSize];

  bool await_ready() noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    CoroContext* ctx = ContextOf(h);
    ctx->resume_handle = h;
    const absl::Duration d =
        *std::launder(reinterpret_cast<absl::Duration*>(storage));
    return SleepSuspend(ctx, d, storage, &op, &cancelled);
  }
  absl::Status await_resume() { return SleepFinish(op, cancelled); }
};

struct YieldAwaiter {
  CoroContext* ctx = nullptr;
  bool await_ready() noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    ctx = ContextOf(h);
    ctx->resume_handle = h;
    return YieldSuspend(ctx);
  }
  absl::Status await_resume() {
    if (ctx->stop_requested()) {
      NoteStopSeen();
      if ((ctx->flags & TaskNode::kOwnStop) != 0) return ctx->OwnStopStatus();
      return absl::CancelledError("Yield: the task's group was stopped");
    }
    return absl::OkStatus();
  }
};

class JoinAwaitable {
 public:
  explicit JoinAwaitable(GroupState* group) : group_(group) {}
  bool await_ready() noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    CoroContext* ctx = ContextOf(h);
    ctx->resume_handle = h;
    return JoinSuspend(ctx, group_, &op_, &result_);
  }
  absl::Status await_resume() {
    if (op_ != nullptr) return JoinFinish(op_, group_);
    return result_;
  }

 private:
  GroupState* group_;
  JoinOp* op_ = nullptr;
  absl::Status result_;
};

// Blocking's gcc guard: the argument comes wrapped in a maker that returns it.
struct BlockingMakerTag {
  explicit BlockingMakerTag() = default;
};
inline constexpr BlockingMakerTag kBlockingMaker{};

template <class Fn>
class BlockingAwaiter {
 public:
  using R = typename CallResult<Fn>::type;
  using Result = typename BlockingResult<R>::type;

  template <class F>
  explicit BlockingAwaiter(F&& f) : fn_(std::forward<F>(f)) {}
  // Builds fn_ from what make() returns (a prvalue goes straight into fn_):
  // the gcc guard's path (Blocking, below).
  template <class Make>
  BlockingAwaiter(BlockingMakerTag, Make& make) : fn_(make()) {}

  bool await_ready() noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    CoroContext* ctx = ContextOf(h);
    if (ctx->stop_requested()) {
      result_.emplace(absl::CancelledError(
          "Blocking: the task's group was stopped before fn started"));
      return false;
    }
    ctx->resume_handle = h;
    absl::Status submitted = SubmitBlocking(ctx, [this, ctx]() {
      TraceCoroBlocking(ctx);
      result_.emplace(RunBlockingFn(fn_, ctx->token()));
      // Last touch of this awaiter on the blocking thread.
      ScheduleResume(ctx);
    });
    if (!submitted.ok()) {
      // No blocking thread exists and none could start: fn does not run.
      result_.emplace(std::move(submitted));
      return false;
    }
    return true;
  }
  Result await_resume() { return std::move(*result_); }

 private:
  Fn fn_;
  std::optional<Result> result_;
};

}  // namespace internal

// Sleep(d): `co_await Sleep(d)` -> absl::Status: OkStatus after d, or
// CancelledError as soon as the task's group is stopped. Zero or less is a
// checkpoint (CancelledError if stopped, else OkStatus at once, without
// suspending). Holds no worker while it waits; 100,000 sleeping tasks cost one
// timer entry each.
inline internal::SleepAwaiter Sleep(absl::Duration d) {
  return internal::SleepAwaiter(d);
}

// Yield(): `co_await Yield()` -> absl::Status: a checkpoint; the task goes
// behind the tasks already queued (not into a LIFO slot), so on one worker two
// yielding tasks alternate. CancelledError if the group is stopped.
inline internal::YieldAwaiter Yield() { return {}; }

// Blocking(fn): `co_await Blocking(fn)` runs fn on the blocking pool, frees
// the worker meanwhile, and yields absl::Status (fn returns void or Status) or
// absl::StatusOr<T> (fn returns T or StatusOr<T>). fn is callable as R() or
// R(StopToken) (the task's group token). An exception thrown by fn arrives as
// UnknownError. If the group is already stopped, fn does not run and the
// result is CancelledError; once running, fn is never interrupted. When no
// blocking thread exists and none can be started (a thread or memory
// limit), fn does not run and the result is ResourceExhausted; when some
// exist, fn waits for one of them. fn is
// copied or moved into the awaiter (which lives in the coroutine frame) and
// destroyed when the co_await expression ends.
//
// With gcc, Blocking is also a function-like macro (below); with clang, or
// with RIPCORD_NO_BLOCKING_MACRO defined, it is only this function.
// Thread-safety: call it only inside a ripcord::Task, and co_await the
// result there (see the file comment).
template <class Fn>
internal::BlockingAwaiter<std::decay_t<Fn>> Blocking(Fn&& fn) {
  return internal::BlockingAwaiter<std::decay_t<Fn>>(std::forward<Fn>(fn));
}

// Blocking(kBlockingMaker, make): the form the macro below expands to:
// Blocking(make()), with make() called here, outside the co_await operand.
// make must be an lvalue; it is called once, before Blocking returns.
template <class Make>
internal::BlockingAwaiter<std::decay_t<std::invoke_result_t<Make&>>> Blocking(
    internal::BlockingMakerTag tag, Make&& make) {
  return internal::BlockingAwaiter<std::decay_t<std::invoke_result_t<Make&>>>(
      tag, make);
}

// The gcc guard. gcc (12.2, our default compiler, at every -O level; clang is
// right) destroys twice a temporary that has a destructor and is built by
// aggregate initialization inside a co_await operand: a lambda with captures
// (`co_await Blocking([s] { ... })`) or any `Agg{...}` prvalue. It builds the
// object in one frame slot, copies its bytes to a second, passes the second
// on and destroys both: a captured std::string is freed twice. Nothing the
// callee does with its argument can repair that, so with gcc `Blocking(...)`
// is a macro that wraps its argument, as written, in a lambda that captures
// only references (`[&]() -> decltype(auto) { return (ARG); }`; destroying
// it twice is harmless) and passes that maker to the overload above, which
// builds fn inside the library: the user's closure is then the prvalue
// result of a call, which gcc handles. The line users write first is safe;
// named callables, `std::move(fn)` and function names work as before.
// Costs, all at compile time: every `Blocking(` token after this header is
// rewritten (a function or method of your own named Blocking needs
// RIPCORD_NO_BLOCKING_MACRO, or parentheses: `(Blocking)(x)`); the argument
// must not contain `co_await`, nor a top-level comma outside brackets and
// braces (`Blocking(a, b)` would take `b` only); and it must be called
// inside a function body (the maker captures by reference). We chose the
// macro over the alternatives: switching the build to clang 14 (its
// libstdc++ 12 lacks std::source_location, which the library needs) or an
// overload taking fn's arguments apart (tremotesf2's workaround; users would
// still write the natural line and crash). Any other co_await operand that
// builds such a temporary is still hit, outside the library's reach: with a
// Task-returning function of your own, `co_await Run([s] { ... })`, name the
// lambda first (`auto fn = [s] { ... }; co_await Run(std::move(fn));`).
// RIPCORD_NO_BLOCKING_MACRO turns the macro off (for a gcc without the bug,
// or code that cannot live with its costs).
#if defined(__GNUC__) && !defined(__clang__) && \
    !defined(RIPCORD_NO_BLOCKING_MACRO)
#define Blocking(...)                                        \
  Blocking(::ripcord::internal::kBlockingMaker,              \
           [&]() -> decltype(auto) { return (__VA_ARGS__); })
#endif

// TaskGroup::Join(): `co_await group.Join()` -> absl::Status: Wait() without
// holding a worker. Returns FailedPrecondition when awaited from a task of
// the group itself or of one of its descendants.
inline internal::JoinAwaitable TaskGroup::Join() {
  return internal::JoinAwaitable(state_);
}

}  // namespace ripcord

#endif  // RIPCORD_TASK_H_
