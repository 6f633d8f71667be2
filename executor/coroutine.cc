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
// stop) against the suspending coroutine. One state word, three bits:
//  1. A completer claims the operation (fetch_or CLAIMED); the loser stops.
//  2. The winner writes the result, then sets RESULT (fetch_or, acq_rel). If
//     it saw ARMED, the coroutine is suspended: the winner schedules it.
//  3. The suspending coroutine sets ARMED at the very end of await_suspend.
//     If it saw RESULT, the result is already there: it does not suspend.
// Exactly one of 2 and 3 resumes the coroutine: whichever of the two
// fetch_ors comes second sees the other's bit. The resumed coroutine then
// destroys the StopCallback and cancels the timer, each of which waits for a
// completer still running, so nobody touches the operation after SleepFinish.
#include <coroutine>
#include <optional>
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

// SleepOp is its own timer entry (a base, so OnTimer can static_cast).
class SleepOp : private TimerEntry {
 public:
  explicit SleepOp(CoroContext* ctx)
      : TimerEntry(&OnTimer),
        ctx_(ctx),
        timers_(&ctx->group->executor()->timers()) {}

  TimerEntry* entry() { return this; }

  // Protocol steps 1-2.
  void Complete(absl::Status status) {
    // acq_rel: the claim orders nothing by itself; acq_rel keeps it simple.
    if (state_.fetch_or(kClaimed, std::memory_order_acq_rel) & kClaimed) return;
    result_ = std::move(status);
    // acq_rel: release publishes result_ to the suspender (step 3) or, via
    // the queue, to the resumed coroutine; acquire sees ARMED.
    const uint32_t prev = state_.fetch_or(kResult, std::memory_order_acq_rel);
    if (prev & kArmed) ScheduleResume(ctx_);  // last touch of this op
  }

  // Protocol step 3. Returns true if the coroutine stays suspended.
  bool Arm() {
    // acq_rel: acquire sees the winner's result_ when RESULT is set.
    return (state_.fetch_or(kArmed, std::memory_order_acq_rel) & kResult) == 0;
  }

  struct OnStop {
    SleepOp* op;
    void operator()() noexcept {
      op->Complete(absl::CancelledError("Sleep: the task's group was stopped"));
    }
  };
  std::optional<StopCallback<OnStop>> stop_callback;

  absl::Status Finish() {
    stop_callback.reset();     // waits for a running OnStop
    timers_->Cancel(this);  // waits for a running OnTimer
    return std::move(result_);
  }

 private:
  static constexpr uint32_t kClaimed = 1;
  static constexpr uint32_t kResult = 2;
  static constexpr uint32_t kArmed = 4;

  static void OnTimer(TimerEntry* e) {
    static_cast<SleepOp*>(e)->Complete(absl::OkStatus());
  }

  CoroContext* const ctx_;
  TimerQueue* const timers_;
  std::atomic<uint32_t> state_{0};
  absl::Status result_;
};

bool SleepSuspend(CoroContext* ctx, absl::Duration d, SleepOp** op_out,
                  absl::Status* result) {
  GroupState* group = ctx->group;
  if (group->stop_requested()) {
    *result = absl::CancelledError("Sleep: the task's group was stopped");
    return false;
  }
  if (d <= absl::ZeroDuration()) {
    *result = absl::OkStatus();
    return false;
  }
  auto* op = new SleepOp(ctx);
  *op_out = op;  // before arming: the coroutine may resume elsewhere after
  op->stop_callback.emplace(group->token(), SleepOp::OnStop{op});
  if (d != absl::InfiniteDuration()) {
    group->executor()->timers().Schedule(op->entry(), absl::Now() + d);
  }
  return op->Arm();
}

absl::Status SleepFinish(SleepOp* op) {
  absl::Status s = op->Finish();
  delete op;
  return s;
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
    if (target_->SetWaitersBit()) return true;
    return !exec->RemoveJoinWaiter(target_, this);
  }

 private:
  // Scheduled by ExecutorImpl::WakeWaitersOf when target_ went idle (or,
  // rarely, by a group that reused target_'s address): re-check.
  static void Run(TaskNode* node, bool /*drop*/) {
    auto* op = static_cast<JoinOp*>(node);
    if (!op->target_->Idle() && op->Register()) return;
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
  if (target->Idle()) {
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
