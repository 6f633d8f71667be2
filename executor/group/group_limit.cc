// Copyright 2026 The ripcord Authors.
//
// group_limit.cc: GroupLimit (see group_limit.h for the protocol).
#include "executor/group/group_limit.h"

#include <memory>
#include <utility>

#include "executor/blocking/blocking_pool.h"
#include "executor/base/check.h"
#include "executor/sched/scheduler.h"
#include "ripcord/internal/coroutine.h"
#include "ripcord/internal/group_state.h"

namespace ripcord::internal {

void GroupState::ReleaseSlot() { limit_->Release(this); }

std::unique_ptr<GroupLimit> GroupLimit::Make(int max_concurrency) {
  RIPCORD_CHECK(max_concurrency >= 0,
                "GroupOptions::max_concurrency is %d; it must be 0 (no "
                "limit) or the number of tasks that may run at once",
                max_concurrency);
  if (max_concurrency == 0) return nullptr;
  return std::make_unique<GroupLimit>(max_concurrency);
}

bool GroupLimit::Admit(GroupState* group, TaskNode* task) {
  {
    MutexLock lock(&mu_);
    if (closed_) return true;
    if (free_ > 0) {
      --free_;
      task->flags |= TaskNode::kSlot;
      return true;
    }
    // The waiting unit, before the stop check (seq_cst, in AddTask): a
    // census that saw the stop sees this strict unit, or we see the stop.
    group->AddTask();
    const bool lazy = (task->flags & TaskNode::kLazy) != 0;
    task->flags &= ~TaskNode::kLazy;
    if (!group->stop_requested()) {
      waiting_.push_back(Waiter{task, Kind::kStart, lazy, {}});
      return false;
    }
  }
  // The group was stopped since Submit checked: drop here, as Submit would
  // (FinishDropped(false) releases the strict unit, counted cancelled).
  task->run(task, /*drop=*/true);
  return false;
}

bool GroupLimit::AdmitBlockingCall(TaskNode* job) {
  MutexLock lock(&mu_);
  if (closed_) return true;
  if (free_ > 0) {
    --free_;
    job->flags |= TaskNode::kSlot;
    return true;
  }
  waiting_.push_back(Waiter{job, Kind::kBlockingCall, false, {}});
  return false;
}

bool GroupLimit::AdmitResume(CoroContext* ctx, bool back) {
  // The slot of a co_await Blocking goes on with its resumption. Only the
  // resumer touches ctx now (the coroutine is suspended).
  if ((ctx->flags & TaskNode::kBlockingSlot) != 0) {
    ctx->flags = (ctx->flags & ~TaskNode::kBlockingSlot) | TaskNode::kSlot;
    return true;
  }
  MutexLock lock(&mu_);
  if (closed_) return true;
  if (free_ > 0) {
    --free_;
    ctx->flags |= TaskNode::kSlot;
    return true;
  }
  waiting_.push_back(
      Waiter{ctx, back ? Kind::kResumeBack : Kind::kResume, false, {}});
  return false;
}

absl::Status GroupLimit::SubmitBlocking(CoroContext* ctx,
                                        absl::AnyInvocable<void() &&> job) {
  {
    MutexLock lock(&mu_);
    if (!closed_ && free_ == 0) {
      waiting_.push_back(Waiter{ctx, Kind::kCoroBlocking, false,
                                std::move(job)});
      return absl::OkStatus();
    }
    if (!closed_) {
      --free_;
      // The coroutine is inside await_suspend on this thread: nobody else
      // touches its node until the job resumes it.
      ctx->flags |= TaskNode::kBlockingSlot;
    }
  }
  absl::Status submitted =
      ctx->group->executor()->blocking().Submit(std::move(job));
  if (!submitted.ok() && (ctx->flags & TaskNode::kBlockingSlot) != 0) {
    // No blocking thread exists and none could start: the coroutine goes
    // on at once with the error, and the slot goes back.
    ctx->flags &= ~TaskNode::kBlockingSlot;
    Release(ctx->group);
  }
  return submitted;
}

void GroupLimit::Release(GroupState* group) {
  Waiter w;
  {
    MutexLock lock(&mu_);
    // A stop whose Close() has not run yet: it will drop the waiters.
    if (closed_ || waiting_.empty() || group->stop_requested()) {
      ++free_;
      return;
    }
    w = std::move(waiting_.front());
    waiting_.pop_front();
  }
  Start(group, w, /*slot=*/true);  // the slot passes to w
}

void GroupLimit::Start(GroupState* group, Waiter& w, bool slot) {
  ExecutorImpl* const exec = group->executor();
  const uint32_t held = slot ? TaskNode::kSlot : 0;
  switch (w.kind) {
    case Kind::kStart:
      // Submitted as usual (kSlot set: Submit does not come back here), so
      // the task's own unit exists before the waiting unit goes.
      w.node->flags |= held | (w.lazy ? TaskNode::kLazy : 0);
      group->Submit(w.node);
      group->FinishCancelledMany(0, /*uncounted=*/1);
      return;
    case Kind::kBlockingCall: {
      w.node->flags |= held;
      TaskNode* const job = w.node;
      absl::Status submitted =
          exec->blocking().Submit([job] { job->run(job, /*drop=*/false); });
      // No blocking thread exists and none could start: done receives
      // ResourceExhausted without fn running (SubmitBlockingJob's rule).
      if (!submitted.ok()) job->run(job, /*drop=*/true);
      return;
    }
    case Kind::kResume:
      w.node->flags |= held;
      exec->Schedule(w.node);
      return;
    case Kind::kResumeBack:
      w.node->flags |= held;
      exec->ScheduleBack(w.node);
      return;
    case Kind::kCoroBlocking:
      if (slot) w.node->flags |= TaskNode::kBlockingSlot;
      if (absl::Status submitted = exec->blocking().Submit(std::move(w.job));
          !submitted.ok()) {
        // The job was not taken and the coroutine waits for it: with no
        // blocking thread at all and none that can start, this is where
        // its fn would wait forever. Abort with the reason rather than
        // hang (the pool's Submit keeps the job when threads exist).
        RIPCORD_CHECK(false, "co_await Blocking in a group with "
                      "max_concurrency: %s", submitted.ToString().c_str());
      }
      return;
  }
}

void GroupLimit::Close(GroupState* group) {
  std::deque<Waiter> waiting;
  {
    MutexLock lock(&mu_);
    closed_ = true;
    waiting.swap(waiting_);
  }
  for (Waiter& w : waiting) {
    if (w.kind == Kind::kStart) {
      // kLazy is clear: FinishDropped(false) releases the waiting unit.
      w.node->run(w.node, /*drop=*/true);
    } else {
      // A SpawnBlocking call's first phase sees the stop and schedules done
      // with CancelledError; a coroutine goes on and sees it.
      Start(group, w, /*slot=*/false);
    }
  }
}

}  // namespace ripcord::internal
