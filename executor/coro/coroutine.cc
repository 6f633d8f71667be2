// Copyright 2026 The ripcord Authors.
//
// coroutine.cc: driving coroutine tasks (CoroContext::Run, the resumption
// loop), scheduling a resumption, and the awaitables that wait on a group or
// a thread: Join, Yield and Blocking. Sleep and the stop sweep are in
// sleep.cc. Steps and proofs: docs/design/coroutines.md.
#include <coroutine>
#include <cstdlib>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "executor/base/check.h"
#include "executor/group/group_limit.h"
#include "executor/sched/running_tasks.h"
#include "executor/sched/scheduler.h"
#include "executor/trace/trace.h"
#include "ripcord/internal/coroutine.h"

namespace ripcord::internal {

void CoroContext::Run(TaskNode* node, bool drop) {
  auto* ctx = static_cast<CoroContext*>(node);
  GroupState* const group = ctx->group;
  // A slot of max_concurrency (group_limit.h) is held for this run only.
  const bool slot = (ctx->flags & TaskNode::kSlot) != 0;
  if (slot) [[unlikely]] ctx->flags &= ~TaskNode::kSlot;
  if (drop) {
    delete ctx;  // destroys the unstarted frame and the callable
    if (slot) group->ReleaseSlot();
    group->FinishDropped();
    return;
  }
  absl::Status status;
  // If the coroutine suspends, its resumption may finish it elsewhere (and
  // the group's owner close the group) before ReleaseSlot() below: the pin
  // keeps the record (Close() waits for pins).
  if (slot) [[unlikely]] group->Pin();
  if (!Drive(ctx, &status)) {
    // Suspended: an external event owns ctx.
    if (slot) [[unlikely]] {
      group->ReleaseSlot();
      group->Unpin();
    }
    return;
  }
  delete ctx;  // the frame, then the callable and its captures
  if (slot) [[unlikely]] {
    group->ReleaseSlot();
    group->Unpin();
  }
  group->FinishTask(std::move(status));
}

namespace {

// CoroContext::Drive's work.
inline bool DriveChain(CoroContext* ctx, absl::Status* status) {
  GroupState* const group = ctx->group;
  if (!ctx->started) {
    ctx->started = true;
    ctx->flags &= ~TaskNode::kDroppable;  // resumptions must always run
    group->CountStarted();
    ListCoroutine(ctx);
  }
  const CoroContext* const driving = DriveBegin(ctx);
  GroupState* previous = group->Enter();
  DriverFrame frame;
  frame.ctx = ctx;
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
  DriveEnd(driving);
  if (!frame.root_done) return false;
  *status = ctx->RootStatus();
  // Off the running list before the caller deletes ctx: a snapshot
  // (DebugString, the signal lines) reads listed contexts through their
  // virtual members, which a derived destructor (a started coroutine's
  // state) must not race with.
  if (ctx->live_since != 0) UnlistCoroutine(ctx);
  return true;
}

// DriveChain while some executor traces: one run, recorded when this
// coroutine's executor does. The scope captures the group before the run:
// a suspended coroutine may finish elsewhere and its group go meanwhile.
[[gnu::noinline]] bool DriveTraced(CoroContext* ctx, absl::Status* status) {
  GroupState* const g = ctx->group;
  TraceScope trace(g->executor()->tracer(), TraceKind::kTask,
                   LabelText(ctx->site.file, ctx->site.line), g->id(),
                   &g->name());
  return DriveChain(ctx, status);
}

}  // namespace

bool CoroContext::Drive(CoroContext* ctx, absl::Status* status) {
  if (TraceActive()) [[unlikely]] return DriveTraced(ctx, status);
  return DriveChain(ctx, status);
}

void FrameRoomEscaped() {
  RIPCORD_CHECK(false,
                "TaskGroup::Spawn: f created a coroutine with f itself as its "
                "first argument and neither returned its Task nor destroyed "
                "it before returning; the spawned task's memory holds that "
                "frame, so f must return it (or another Task after "
                "destroying it)");
  std::abort();  // not reached
}

void ScheduleResume(CoroContext* ctx) {
  GroupLimit* const limit = ctx->group->limit();
  if (limit != nullptr && !limit->AdmitResume(ctx, false)) return;  // waits
  ctx->group->executor()->Schedule(ctx);
}

void ScheduleResumeBack(CoroContext* ctx) {
  GroupLimit* const limit = ctx->group->limit();
  if (limit != nullptr && !limit->AdmitResume(ctx, true)) return;  // waits
  ctx->group->executor()->ScheduleBack(ctx);
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
    // Locals: once registered, a waker may take us, schedule us and the
    // coroutine may resume and delete us (JoinFinish) before we return, so
    // no member is read after AddJoinWaiter (ASan found a read of target_
    // there), and `this` is only compared. The pin keeps target's record
    // alive until we are done with it: the resumed coroutine's owner may
    // destroy the TaskGroup meanwhile (Close() waits for pins).
    GroupState* const target = target_;
    ExecutorImpl* const exec = target->executor();
    target->Pin();
    exec->AddJoinWaiter(target, this);
    // Done() again after the bit: a census that passed meanwhile woke the
    // waiters before we registered.
    bool registered = target->SetWaitersBit() && !target->Done();
    if (!registered) registered = !exec->RemoveJoinWaiter(target, this);
    target->Unpin();
    return registered;
  }

 private:
  // Scheduled by ExecutorImpl::WakeWaitersOf when target_ went idle (or,
  // rarely, by a group that reused target_'s address): re-check.
  static void Run(TaskNode* node, bool /*drop*/) {
    auto* op = static_cast<JoinOp*>(node);
    if (!op->target_->Done() && op->Register()) return;
    CoroContext* ctx = op->ctx_;
    // A group with max_concurrency: the resumption waits for a slot.
    if (ctx->group->limit() != nullptr) return ScheduleResume(ctx);
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
  if (ctx->stop_requested()) {
    NoteStopSeen();
    return false;  // await_resume: Cancelled
  }
  ScheduleResumeBack(ctx);
  return true;
}

void TraceCoroBlocking(const CoroContext* ctx) {
  if (!TraceActive()) [[likely]] return;
  const GroupState* const g = ctx->group;
  NameBlockingEvent(LabelText(ctx->site.file, ctx->site.line), g->id(),
                    g->name());
}

absl::Status SubmitBlocking(CoroContext* ctx,
                            absl::AnyInvocable<void() &&> job) {
  if (GroupLimit* limit = ctx->group->limit()) {
    return limit->SubmitBlocking(ctx, std::move(job));  // takes a slot
  }
  return ctx->group->executor()->blocking().Submit(std::move(job));
}

}  // namespace ripcord::internal
