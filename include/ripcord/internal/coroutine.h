// Copyright 2026 The ripcord Authors.
//
// internal/coroutine.h: the machinery under ripcord::Task. Not public API.
//
// A spawned coroutine task is one CoroContext (a TaskNode that owns the
// spawned callable and its root Task) plus one frame per Task in the await
// chain; the root frame usually lives in the CoroContext's own block
// (FrameRoom below). Coroutines never resume each other directly: a transfer of control
// (start an awaited Task, resume the awaiter when it finishes) stores the
// handle in the thread's DriverFrame, and Drive() resumes it from a loop. So
// a chain of 100,000 nested co_awaits runs in constant stack even at -O0,
// where gcc does not promise the tail call of symmetric transfer.
// An awaitable that waits for something outside (a timer, a group, a blocking
// call) records ctx->resume_handle and arranges for the CoroContext to be
// scheduled again; the driver loop then ends without touching the context.
#ifndef RIPCORD_INTERNAL_COROUTINE_H_
#define RIPCORD_INTERNAL_COROUTINE_H_

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ripcord/internal/group_ref.h"
#include "ripcord/internal/task_node.h"

namespace ripcord::internal {

struct CoroContext;
// executor/sched/running_tasks.cc: takes a listed coroutine off the list.
void UnlistCoroutine(CoroContext* ctx);

// The driver state of the thread running a coroutine chain right now.
struct DriverFrame {
  std::coroutine_handle<> next;  // resume this next (an internal transfer)
  bool root_done = false;        // the root Task reached its final suspend
  // The task being driven (TaskHandle::Wait() compares it with its own
  // task's, to refuse a wait for itself).
  const CoroContext* ctx = nullptr;
};
inline thread_local DriverFrame* tls_driver = nullptr;

class SleepOp;
// The per-thread state of executor/coro/, with external linkage
// rather than in an anonymous namespace there: in the sanitizer builds
// (fastbuild, so libcore is a shared library, linked by gold), adding
// internal-linkage thread_locals to libcore left the initial-exec GOT entry
// of scheduler.cc's tls_worker as a TPOFF64 against the null symbol, i.e.
// pointing at whichever variable sits at offset 0 of libcore's TLS block.
// TLS symbols with external linkage, like tls_driver, are relocated against
// themselves.
// While a stop sweep resumes its batch: where Sleep's CancelledError comes
// from (executor/coro/sleep.cc, SleepFinish). Null otherwise.
struct SleepCancelledSource;
inline thread_local SleepCancelledSource* tls_sleep_cancelled = nullptr;

// FrameRoom: the room a spawned coroutine's node reserves after itself for
// its root frame (SpawnedCoroutine, task.h), so that node and frame are one
// block: a stop of 10^5 sleeping coroutines is bound by the cold cache lines
// it touches per coroutine, and two blocks straddle about one line more than
// one. Thread-compatible: lives on the stack of the thread that calls the
// spawned callable f (the offer) or destroys the node (the release);
// tls_frame_room points to it meanwhile, and every Task promise's operator
// new and delete look at it:
//  - operator new(size, self, ...) gives the frame the room only when `self`
//    (the coroutine's first argument: the implicit object of a lambda's or
//    a callable's operator()) is the callable f itself, the room is free and
//    the frame fits. It records the size for the next spawn of F (`learnt`).
//  - operator delete(p, size) frees nothing when p is the room: the node's
//    block is freed with the node. Inside f's call it marks the room free
//    again (FrameRoom::in_use); when the node is destroyed, the room is
//    named by tls_room_release instead.
// Only a frame created inside f's call can take the room, and only f's
// returned root Task may keep it (checked after the call: the node, and so
// the room, dies with that Task); a frame destroyed inside f's call
// releases it.
struct FrameRoom {
  const void* closure;  // &f, the callable in the node
  void* room;           // 16-aligned, room_bytes long; null if none
  uint32_t room_bytes;
  bool in_use;          // a frame lives in the room
  // The frame size last seen for this callable type (SpawnedCoroutine<F>'s
  // static). relaxed loads and stores: a sizing hint only, read by Spawn on
  // any thread; a stale value costs a separate frame allocation (too small)
  // or unused room (too large), never correctness.
  std::atomic<uint32_t>* learnt;

  // For operator new, when `self` is f: the room, or null.
  void* Take(size_t size) noexcept {
    // relaxed, both: a hint (see learnt); loaded first so that spawns of
    // one type on several workers do not write its line each time.
    if (learnt->load(std::memory_order_relaxed) != size) {
      learnt->store(static_cast<uint32_t>(size), std::memory_order_relaxed);
    }
    if (in_use || size > room_bytes) return nullptr;
    in_use = true;
    return room;
  }
};
inline constinit thread_local FrameRoom* tls_frame_room = nullptr;
// While ~SpawnedCoroutine destroys a root frame that lives in its room: that
// room (the frame's operator delete frees nothing there). A bare pointer,
// not a FrameRoom, to keep the stop's per-coroutine path short.
inline constinit thread_local void* tls_room_release = nullptr;

// Aborts: a frame that f created with f as its first argument took the
// node's room, and f returned without destroying it or returning it as the
// root Task (it would outlive the node that holds it).
[[noreturn]] void FrameRoomEscaped();

// CoroContext: one spawned coroutine task. Thread-compatible: owned by the
// queue that holds it, then by the worker driving it; while the coroutine is
// suspended on an external event, by that event's completion.
struct CoroContext : TaskNode {
  explicit CoroContext(GroupState* g)
      : TaskNode(&Run, g, TaskNode::kDroppable) {}
  virtual ~CoroContext() {
    if (live_since != 0) UnlistCoroutine(this);
  }

  // The root Task's outcome once it finished (exception folded in).
  virtual absl::Status RootStatus() noexcept = 0;
  virtual std::coroutine_handle<> RootHandle() noexcept = 0;

  static void Run(TaskNode* node, bool drop);
  // Runs the chain (counting the start on its first run) until it finishes
  // or suspends on an external event. Returns true if the root Task
  // finished: *status is its outcome and the caller owns ctx (deletes it,
  // then settles the task). False: suspended, and an external event owns ctx.
  static bool Drive(CoroContext* ctx, absl::Status* status);

  // The stop state this task's checkpoints read (Sleep, Yield, Blocking):
  // its group's, or, for a task started with TaskGroup::Start
  // (TaskNode::kOwnStop), its own, a child of its group's
  // (internal/task_handle_state.h). Called by the thread driving the task,
  // or by a thread the suspended task waits for (Blocking's fn).
  StopState* stop_state() noexcept {
    return (flags & TaskNode::kOwnStop) != 0 ? OwnStopState()
                                             : GroupRef::stop_state(group);
  }
  bool stop_requested() noexcept { return stop_state()->stop_requested(); }
  StopToken token() noexcept { return TokenFor(stop_state()); }
  // The task's own stop state; overridden by the nodes that set kOwnStop.
  virtual StopState* OwnStopState() noexcept {
    return GroupRef::stop_state(group);
  }
  // With kOwnStop: the CancelledError a checkpoint (Sleep, Yield) returns
  // after the task's own stop, naming its cause ("task 'x' stopped: ...",
  // or the group's stop cause).
  virtual absl::Status OwnStopStatus() noexcept {
    return absl::CancelledError("the task was stopped");
  }

  // started and room_bytes first: they fill TaskNode's tail padding, so the
  // node is 8 bytes smaller and, rounded to 16 for the room behind it, a
  // spawned coroutine's block is 16 bytes smaller (a quarter of a cache
  // line per stopped coroutine, on average over the block's placements).
  bool started = false;
  // Bytes reserved after the node for the root frame (FrameRoom); 0: none.
  // Set at construction (the node's block size depends on it); at most
  // kMaxCachedTaskSize.
  uint16_t room_bytes = 0;
  // Where the chain resumes when an external event completes.
  std::coroutine_handle<> resume_handle;
  // The spawn site (the label) and the running-task record's links and
  // state (executor/running_tasks.h; written there).
  SpawnSite site{nullptr, 0};
  CoroContext* live_prev = nullptr;
  CoroContext* live_next = nullptr;
  uint64_t live_since = 0;               // RunTick() at the first run; 0: unlisted
  std::atomic<uint64_t> looked_stop{0};  // RunTick() it last saw its stop
};

// Schedules ctx to resume ctx->resume_handle on a worker: on this worker's
// deque when called from one, else the injection queue.
void ScheduleResume(CoroContext* ctx);
// The same, behind every queued task (Yield).
void ScheduleResumeBack(CoroContext* ctx);
// Called by a co_await Blocking job on its blocking thread: names that
// call's trace event after the awaiting coroutine (its spawn site) and
// group. Nothing unless some executor traces.
void TraceCoroBlocking(const CoroContext* ctx);

// ---- out-of-line awaitable operations (executor/coro/) ------------------------
// Each *Suspend returns true if the coroutine must stay suspended (the
// operation will ScheduleResume(ctx) later), or false if the result is ready
// now (in *result, or from *Finish).

// Sleep's operation lives inside the awaiter, so in the coroutine frame: a
// sleeping coroutine costs no allocation beyond its frame. Its type is
// private to sleep.cc (it embeds the executor's TimerEntry); the awaiter
// reserves kSleepOpSize bytes for it (sleep.cc static_asserts the fit).
inline constexpr size_t kSleepOpSize = 64;
// 16, the alignment every frame gets (operator new, the task cache): where
// the stop-time fields of the operation sit within a cache line then
// depends on fewer placements (sleep.cc, SleepOpFields).
inline constexpr size_t kSleepOpAlign = 16;
// Constructs the operation in `storage` (and sets *op) only if it suspends
// or may still be completed; otherwise *op stays null and *cancelled tells
// the result.
bool SleepSuspend(CoroContext* ctx, absl::Duration d, void* storage,
                  SleepOp** op, bool* cancelled);
// Destroys *op (when non-null) and returns Sleep's result.
absl::Status SleepFinish(SleepOp* op, bool cancelled);

class JoinOp;
bool JoinSuspend(CoroContext* ctx, GroupState* group, JoinOp** op,
                 absl::Status* result);
absl::Status JoinFinish(JoinOp* op, GroupState* group);

bool YieldSuspend(CoroContext* ctx);

// Runs `job` on the blocking pool of ctx's executor. ResourceExhausted (job
// destroyed unrun) when the pool has no thread and cannot start one.
[[nodiscard]] absl::Status SubmitBlocking(CoroContext* ctx,
                                          absl::AnyInvocable<void() &&> job);

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_COROUTINE_H_
