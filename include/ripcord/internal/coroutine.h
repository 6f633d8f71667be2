// Copyright 2026 The ripcord Authors.
//
// internal/coroutine.h: the machinery under ripcord::Task. Not public API.
//
// A spawned coroutine task is one CoroContext (a TaskNode that owns the
// spawned callable and its root Task) plus one frame per Task in the await
// chain. Coroutines never resume each other directly: a transfer of control
// (start an awaited Task, resume the awaiter when it finishes) stores the
// handle in the thread's DriverFrame, and Drive() resumes it from a loop. So
// a chain of 100,000 nested co_awaits runs in constant stack even at -O0,
// where gcc does not promise the tail call of symmetric transfer.
// An awaitable that waits for something outside (a timer, a group, a blocking
// call) records ctx->resume_handle and arranges for the CoroContext to be
// scheduled again; the driver loop then ends without touching the context.
#ifndef RIPCORD_INTERNAL_COROUTINE_H_
#define RIPCORD_INTERNAL_COROUTINE_H_

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/internal/task_node.h"

namespace ripcord::internal {

// The driver state of the thread running a coroutine chain right now.
struct DriverFrame {
  std::coroutine_handle<> next;  // resume this next (an internal transfer)
  bool root_done = false;        // the root Task reached its final suspend
};
inline thread_local DriverFrame* tls_driver = nullptr;

class SleepOp;
// The per-thread state of executor/coroutine.cc, with external linkage
// rather than in an anonymous namespace there: in the sanitizer builds
// (fastbuild, so libcore is a shared library, linked by gold), adding
// internal-linkage thread_locals to libcore left the initial-exec GOT entry
// of scheduler.cc's tls_worker as a TPOFF64 against the null symbol, i.e.
// pointing at whichever variable sits at offset 0 of libcore's TLS block.
// TLS symbols with external linkage, like tls_driver, are relocated against
// themselves.
// While a stop sweep resumes its batch: where Sleep's CancelledError comes
// from (executor/coroutine.cc, SleepFinish). Null otherwise.
struct SleepCancelledSource;
inline thread_local SleepCancelledSource* tls_sleep_cancelled = nullptr;

// CoroContext: one spawned coroutine task. Thread-compatible: owned by the
// queue that holds it, then by the worker driving it; while the coroutine is
// suspended on an external event, by that event's completion.
struct CoroContext : TaskNode {
  explicit CoroContext(GroupState* g)
      : TaskNode(&Run, g, TaskNode::kDroppable) {}
  virtual ~CoroContext() = default;

  // The root Task's outcome once it finished (exception folded in).
  virtual absl::Status RootStatus() noexcept = 0;
  virtual std::coroutine_handle<> RootHandle() noexcept = 0;

  static void Run(TaskNode* node, bool drop);
  // Runs the chain (counting the start on its first run) until it finishes
  // or suspends on an external event. Returns true if the root Task
  // finished: *status is its outcome and the caller owns ctx (deletes it,
  // then settles the task). False: suspended, and an external event owns ctx.
  static bool Drive(CoroContext* ctx, absl::Status* status);

  // Where the chain resumes when an external event completes.
  std::coroutine_handle<> resume_handle;
  bool started = false;
};

// Schedules ctx to resume ctx->resume_handle on a worker: on this worker's
// deque when called from one, else the injection queue.
void ScheduleResume(CoroContext* ctx);
// The same, behind every queued task (Yield).
void ScheduleResumeBack(CoroContext* ctx);

// ---- out-of-line awaitable operations (executor/coroutine.cc) ------------
// Each *Suspend returns true if the coroutine must stay suspended (the
// operation will ScheduleResume(ctx) later), or false if the result is ready
// now (in *result, or from *Finish).

// Sleep's operation lives inside the awaiter, so in the coroutine frame: a
// sleeping coroutine costs no allocation beyond its frame. Its type is
// private to coroutine.cc (it embeds the executor's TimerEntry); the awaiter
// reserves kSleepOpSize bytes for it (coroutine.cc static_asserts the fit).
inline constexpr size_t kSleepOpSize = 80;
// 16, the alignment every frame gets (operator new, the task cache): where
// the stop-time fields of the operation sit within a cache line then
// depends on fewer placements (coroutine.cc, SleepOpFields).
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

// Runs `job` on the blocking pool of ctx's executor.
void SubmitBlocking(CoroContext* ctx, absl::AnyInvocable<void() &&> job);

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_COROUTINE_H_
