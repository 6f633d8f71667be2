// Copyright 2026 The ripcord Authors.
//
// coroutine.cc: driving coroutine tasks and the awaitables that wait outside.
//
// Driving (CoroContext::Run): resume the handle, then keep resuming whatever
// the chain hands to the thread's DriverFrame (internal transfers), in a
// loop. When the loop ends the chain either finished (root_done: settle the
// task) or is suspended on an external event, which owns the context now:
// the driver must not touch it again.
//
// External waits (Sleep) race two completers (the timer and the group's
// stop) against the suspending coroutine. One state word, three bits, each
// set by exactly one party with one fetch_or (acq_rel):
//   TIMED_OUT  set by the timer callback (OnTimer)
//   STOPPED    set by the StopCallback (OnStop)
//   ARMED      set by the suspending coroutine at the very end of
//              await_suspend (SleepOp::Arm)
//  1. A completer sets its bit. If it saw the other completer's bit it lost
//     and stops there. Otherwise, if it saw ARMED, the coroutine is
//     suspended and nobody else will resume it: the completer schedules it
//     (ScheduleResume, its last touch of the operation).
//  2. The suspender sets ARMED. If it saw either completer bit, it does not
//     suspend (await_suspend returns false).
// Exactly one of "first completer" and "suspender" resumes the coroutine:
// of their two RMWs the later one sees the earlier one's bit. The second
// completer always sees the first one's bit, so it never resumes anything.
//  3. The resumed coroutine (SleepFinish) cancels the timer, which waits for
//     an OnTimer still running; reads the state (CancelledError iff STOPPED
//     is set: the stop won, or arrived before this read, which Trio would
//     report at this checkpoint too); then destroys the StopCallback, which
//     waits for an OnStop still running. After that no completer runs or
//     ever will, so the awaiter (and the frame around it) may go away.
//
// Resuming a stopped group (ResumeBatch, ResumeCarrier):
//  1. StopState::RequestStop() opens a ResumeBatch on its thread for the
//     duration of its callbacks. A Sleep whose stop completer must schedule
//     its coroutine (step 1 above) appends its SleepOp to that batch instead
//     (SleepOp::batch_next_ links the chain). All of a batch's sleeps belong
//     to the group being stopped.
//  2. Every kFlushEvery sleeps, and when the last callback has returned,
//     the batch is flushed: up to four coroutines are scheduled one by one;
//     more go into ONE ResumeCarrier task of their group. (Flushing along
//     the way lets the workers resume coroutines while this thread still
//     runs the stop's other callbacks: measured on 2 workers with 100,000
//     sleepers, the stop took ~19 ms instead of ~27 ms.)
//  3. A worker running a carrier cuts the first kResumeSlice sleeps off its
//     chain and queues the carrier with the rest on its own deque (idle
//     workers steal it from there and do the same). Then it takes the
//     slice's timers out of the timer queue under one lock
//     (TimerQueue::CancelMany), and resumes the slice's coroutines one by
//     one; their SleepFinish skips the timer (unless its callback was
//     running, which SleepFinish waits for) and copies a CancelledError the
//     carrier built once for the slice. The whole stop costs the requesting
//     thread one queue push per kFlushEvery sleeps and the workers one deque
//     push and one timer lock per slice, instead of one locked
//     injection-queue push and pop and one timer lock per coroutine.
// Why nothing is lost: a sleep in a batch or carrier is owned by it (its
// completion already ran, step 1, and nothing else schedules its coroutine),
// and the batch is flushed on every path out of RequestStop() (its
// destructor). Every coroutine in a carrier still counts in its group's
// pending count, so the group outlives every use the carrier makes of it; a
// carrier touches neither itself nor its group after queuing its rest, and
// reads each SleepOp (in the coroutine's frame) only before resuming it.
// A flush along the way happens inside the OnStop of the sleep that filled
// the batch, so that coroutine may resume (and destroy its SleepOp,
// StopCallback included) while the requesting thread is still inside its
// OnStop: ~StopCallback then waits for the callback to return, as for any
// callback destroyed while another thread runs it (stop_state.cc, step 4).
#include <atomic>
#include <coroutine>
#include <cstdint>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "executor/scheduler.h"
#include "executor/timer.h"
#include "ripcord/internal/coroutine.h"
#include "ripcord/stop_token.h"

namespace ripcord::internal {

void CoroContext::Run(TaskNode* node, bool drop) {
  auto* ctx = static_cast<CoroContext*>(node);
  GroupState* const group = ctx->group;
  if (drop) {
    delete ctx;  // destroys the unstarted frame and the callable
    group->FinishDropped();
    return;
  }
  if (!ctx->started) {
    ctx->started = true;
    ctx->flags &= ~TaskNode::kDroppable;  // resumptions must always run
    group->CountStarted();
  }
  GroupState* previous = group->Enter();
  DriverFrame frame;
  DriverFrame* const saved = tls_driver;
  tls_driver = &frame;
  if (!ctx->resume_handle) {
    frame.next = ctx->RootHandle();  // first run: creates the frame
    if (!frame.next) frame.root_done = true;  // f threw or returned no Task
  } else {
    frame.next = std::exchange(ctx->resume_handle, {});
  }
  while (frame.next) {
    std::coroutine_handle<> h = std::exchange(frame.next, {});
    h.resume();
  }
  tls_driver = saved;
  GroupState::Leave(previous);
  if (!frame.root_done) return;  // suspended: an external event owns ctx
  absl::Status status = ctx->RootStatus();
  delete ctx;  // the frame, then the callable and its captures
  group->FinishTask(std::move(status));
}

void ScheduleResume(CoroContext* ctx) { ctx->group->executor()->Schedule(ctx); }

void ScheduleResumeBack(CoroContext* ctx) {
  ctx->group->executor()->ScheduleBack(ctx);
}

// ---- Sleep ------------------------------------------------------------------

namespace {

constexpr const char kSleepCancelled[] = "Sleep: the task's group was stopped";

// Coroutines a carrier's runner resumes before it lets others take the rest.
// Small enough that a coroutine with a long cleanup after its cancellation
// holds back few others, large enough that the deque push and the timer lock
// per slice are noise.
constexpr int kResumeSlice = 32;

absl::Status SleepCancelledError() {
  if (tls_sleep_cancelled != nullptr) return *tls_sleep_cancelled;
  return absl::CancelledError(kSleepCancelled);
}

}  // namespace

// SleepOp: one pending Sleep, constructed in the awaiter's storage (so in the
// coroutine frame). It is its own timer entry (a base, so OnTimer can
// static_cast). Thread-safety: state_ is the protocol word atop this file;
// the other fields are written by the suspending coroutine before Arm() and
// then read by a completer, or by whoever owns the suspended coroutine (a
// ResumeBatch, a ResumeCarrier), or by the resumed coroutine.
class SleepOp : private TimerEntry {
 public:
  // Registers the stop callback, which runs at once (STOPPED) if the group
  // was stopped meanwhile.
  explicit SleepOp(CoroContext* ctx)
      : TimerEntry(&OnTimer),
        ctx_(ctx),
        stop_callback_(ctx->group->token(), OnStop{this}) {}

  CoroContext* ctx() const { return ctx_; }

  // True if the stop already completed the operation (it ran inline above).
  bool Stopped() const {
    // relaxed: a shortcut only. Our own constructor ran the callback when it
    // matters (same thread); a stop on another thread that this load misses
    // is handled by the protocol.
    return (state_.load(std::memory_order_relaxed) & kStopped) != 0;
  }

  void ScheduleTimer(absl::Time deadline) {
    timer_scheduled_ = true;
    timers().Schedule(this, deadline);
  }

  // Protocol step 2. Returns true if the coroutine stays suspended.
  bool Arm() {
    // acq_rel: release publishes the suspended coroutine (resume_handle and
    // this operation) to the completer whose acquire RMW (step 1) sees ARMED
    // and schedules it; acquire pairs with a completer's release when we see
    // its bit and continue without suspending.
    return (state_.fetch_or(kArmed, std::memory_order_acq_rel) &
            (kStopped | kTimedOut)) == 0;
  }

  // Protocol step 3, first half (the destructor is the second). Returns true
  // for CancelledError.
  bool Finish() {
    if (timer_scheduled_) timers().Cancel(this);  // waits for a running OnTimer
    // relaxed: the bit that resumed us happens-before this load (through the
    // scheduler's queue, or Cancel()'s lock for OnTimer), so it is seen; a
    // stop that is still racing in may or may not be, and either answer is
    // right.
    return (state_.load(std::memory_order_relaxed) & kStopped) != 0;
  }
  // ~SleepOp: stop_callback_ (declared last) unregisters first, waiting for
  // an OnStop still running; ~TimerEntry then checks it is not scheduled.

  // For a ResumeCarrier that owns the suspended coroutines of ops[0, n): takes
  // their timers out of the queue under one lock, so that their Finish()
  // skips Cancel() (except for a timer whose callback is running right now,
  // which Finish() still waits for).
  static void ReleaseTimers(SleepOp* const* ops, int n) {
    TimerEntry* entries[kResumeSlice];
    bool idle[kResumeSlice];
    int m = 0;
    for (int i = 0; i < n; ++i) {
      if (ops[i]->timer_scheduled_) entries[m++] = ops[i];
    }
    if (m == 0) return;
    ops[0]->timers().CancelMany(entries, m, idle);
    for (int i = 0; i < m; ++i) {
      if (idle[i]) static_cast<SleepOp*>(entries[i])->timer_scheduled_ = false;
    }
  }

  // Link in a ResumeBatch's or ResumeCarrier's chain (their owner only).
  SleepOp* batch_next_ = nullptr;

 private:
  static constexpr uint32_t kTimedOut = 1;
  static constexpr uint32_t kStopped = 2;
  static constexpr uint32_t kArmed = 4;

  // Protocol step 1.
  void Complete(uint32_t bit) {
    const uint32_t other = (kTimedOut | kStopped) & ~bit;
    // acq_rel: acquire pairs with the release in Arm() (the suspended
    // coroutine is published to us before we schedule it); release pairs
    // with Arm()'s acquire when the suspender sees our bit first.
    const uint32_t prev = state_.fetch_or(bit, std::memory_order_acq_rel);
    if ((prev & kArmed) == 0 || (prev & other) != 0) return;
    // Last touch of this operation: it belongs to the batch or the queue now.
    if (!ResumeBatch::Add(this)) ScheduleResume(ctx_);
  }

  struct OnStop {
    SleepOp* op;
    void operator()() noexcept { op->Complete(kStopped); }
  };
  static void OnTimer(TimerEntry* e) {
    static_cast<SleepOp*>(e)->Complete(kTimedOut);
  }

  TimerQueue& timers() { return ctx_->group->executor()->timers(); }

  CoroContext* const ctx_;
  std::atomic<uint32_t> state_{0};
  bool timer_scheduled_ = false;
  // Last: constructed after the fields its callback uses, destroyed first.
  StopCallback<OnStop> stop_callback_;
};

static_assert(sizeof(SleepOp) <= kSleepOpSize,
              "raise kSleepOpSize in ripcord/internal/coroutine.h");
static_assert(alignof(SleepOp) <= kSleepOpAlign,
              "raise kSleepOpAlign in ripcord/internal/coroutine.h");

bool SleepSuspend(CoroContext* ctx, absl::Duration d, void* storage,
                  SleepOp** op_out, bool* cancelled) {
  GroupState* group = ctx->group;
  if (group->stop_requested()) {
    *cancelled = true;
    return false;
  }
  if (d <= absl::ZeroDuration()) return false;  // OK at once
  // *op_out before arming: the coroutine may resume elsewhere right after.
  auto* op = new (storage) SleepOp(ctx);
  *op_out = op;
  if (d != absl::InfiniteDuration() && !op->Stopped()) {
    op->ScheduleTimer(absl::Now() + d);
  }
  return op->Arm();
}

absl::Status SleepFinish(SleepOp* op, bool cancelled) {
  if (op != nullptr) {
    cancelled = op->Finish();
    op->~SleepOp();
  }
  if (cancelled) return SleepCancelledError();
  return absl::OkStatus();
}

// ---- Resuming a stopped group -----------------------------------------------

namespace {

// A batch hands over its sleeps (as one carrier) every this many.
constexpr int64_t kFlushEvery = 1024;

// A flush of at most this many sleeps schedules their coroutines one by one.
constexpr int64_t kDirectResumes = 4;

// Resumes a chain of cancelled sleeps of one group (linked through
// SleepOp::batch_next_), a slice at a time, leaving the rest stealable
// (steps 2-3 above). Thread-compatible: owned by the queue holding it, then
// by its runner.
class ResumeCarrier final : public TaskNode {
 public:
  ResumeCarrier(GroupState* group, SleepOp* head)
      : TaskNode(&Run, group, /*flags=*/0), head_(head) {}

 private:
  // Not droppable (flags 0): every coroutine in the chain must be resumed.
  static void Run(TaskNode* node, bool /*drop*/) {
    auto* self = static_cast<ResumeCarrier*>(node);
    SleepOp* slice[kResumeSlice];
    int n = 0;
    SleepOp* op = self->head_;
    for (; op != nullptr && n < kResumeSlice; op = op->batch_next_) {
      slice[n++] = op;
    }
    if (op != nullptr) {
      // The rest's coroutines keep the group (and its executor) alive.
      ExecutorImpl* const exec = self->group->executor();
      self->head_ = op;
      exec->Schedule(self);  // may run elsewhere at once: self is gone to us
    } else {
      delete self;
    }
    SleepOp::ReleaseTimers(slice, n);
    const absl::Status cancelled = absl::CancelledError(kSleepCancelled);
    const absl::Status* const saved =
        std::exchange(tls_sleep_cancelled, &cancelled);
    for (int i = 0; i < n; ++i) {
      CoroContext* const ctx = slice[i]->ctx();  // slice[i] dies in the run
      ctx->run(ctx, /*drop=*/false);             // CoroContext::Run
    }
    tls_sleep_cancelled = saved;
  }

  SleepOp* head_;
};

}  // namespace

ResumeBatch::ResumeBatch() : outer_(tls_resume_batch) {
  tls_resume_batch = this;
}

ResumeBatch::~ResumeBatch() {
  Flush();
  tls_resume_batch = outer_;
}

bool ResumeBatch::Add(SleepOp* op) noexcept {
  ResumeBatch* const b = tls_resume_batch;
  if (b == nullptr) return false;
  // Every op in a batch belongs to the group being stopped: only the
  // callbacks of the RequestStop() that opened the batch add to it (a nested
  // stop has its own), and a SleepOp registers on its own group's token.
  op->batch_next_ = nullptr;
  if (b->tail_ == nullptr) {
    b->head_ = op;
  } else {
    b->tail_->batch_next_ = op;
  }
  b->tail_ = op;
  // Hand over what we have every kFlushEvery sleeps: the workers start
  // resuming while this thread runs the rest of the stop's callbacks.
  if (++b->size_ == kFlushEvery) b->Flush();
  return true;
}

void ResumeBatch::Flush() noexcept {
  SleepOp* head = std::exchange(head_, nullptr);
  if (head == nullptr) return;
  const int64_t n = std::exchange(size_, 0);
  tail_ = nullptr;
  GroupState* const group = head->ctx()->group;
  if (n > kDirectResumes) {
    auto* carrier = new (std::nothrow) ResumeCarrier(group, head);
    if (carrier != nullptr) {
      group->executor()->Schedule(carrier);
      return;
    }
  }
  while (head != nullptr) {  // few, or no memory for a carrier
    SleepOp* const next = head->batch_next_;
    ScheduleResume(head->ctx());  // head may be gone once scheduled
    head = next;
  }
}

// ---- Join -------------------------------------------------------------------

class JoinOp : public TaskNode {
 public:
  JoinOp(CoroContext* ctx, GroupState* target)
      : TaskNode(&Run, ctx->group, 0), ctx_(ctx), target_(target) {}

  // Registers as a waiter of target_. Returns false if target_ is idle and
  // we are not registered (the caller resumes at once); true if we stay
  // registered or a waker already took us (it will schedule us).
  bool Register() {
    ExecutorImpl* exec = target_->executor();
    exec->AddJoinWaiter(target_, this);
    // Done() again after the bit: a census that passed meanwhile woke the
    // waiters before we registered.
    if (target_->SetWaitersBit() && !target_->Done()) return true;
    return !exec->RemoveJoinWaiter(target_, this);
  }

 private:
  // Scheduled by ExecutorImpl::WakeWaitersOf when target_ went idle (or,
  // rarely, by a group that reused target_'s address): re-check.
  static void Run(TaskNode* node, bool /*drop*/) {
    auto* op = static_cast<JoinOp*>(node);
    if (!op->target_->Done() && op->Register()) return;
    CoroContext* ctx = op->ctx_;
    ctx->run(ctx, false);  // resumes the coroutine; it deletes op (JoinFinish)
  }

  CoroContext* const ctx_;
  GroupState* const target_;
};

bool JoinSuspend(CoroContext* ctx, GroupState* target, JoinOp** op_out,
                 absl::Status* result) {
  if (ctx->group->IsWithin(target)) {
    *result = absl::FailedPreconditionError(absl::StrCat(
        "TaskGroup::Join() awaited from a task of ", target->Label(),
        " or of one of its descendants; it would wait for itself"));
    return false;
  }
  if (target->Done()) {
    *result = target->Outcome();
    return false;
  }
  auto* op = new JoinOp(ctx, target);
  *op_out = op;  // before registering: the coroutine may resume elsewhere
  if (op->Register()) return true;
  // Not registered and nobody else holds op.
  return false;
}

absl::Status JoinFinish(JoinOp* op, GroupState* target) {
  delete op;
  return target->Outcome();
}

// ---- Yield and Blocking -----------------------------------------------------

bool YieldSuspend(CoroContext* ctx) {
  if (ctx->group->stop_requested()) return false;  // await_resume: Cancelled
  ScheduleResumeBack(ctx);
  return true;
}

void SubmitBlocking(CoroContext* ctx, absl::AnyInvocable<void() &&> job) {
  ctx->group->executor()->blocking().Submit(std::move(job));
}

}  // namespace ripcord::internal
