// Copyright 2026 The ripcord Authors.
//
// guest_seat.cc: a thread outside the executor runs its work in a parked
// worker's seat: ParallelFor's GuestSeat, and Wait() joining in
// (HelpAsCaller); ParallelFor's split signals. The lend, guest-help and
// return steps: docs/design/parking.md, "Guest seats" and "The caller joins
// in".
#include "absl/time/time.h"
#include "executor/base/check.h"
#include "executor/sched/scheduler.h"
#include "ripcord/parallel_for.h"
#include "ripcord/task_group.h"

namespace ripcord::internal {

// ---- guest seats ----------------------------------------------------------

Worker* ExecutorImpl::LendSeat() {
  RIPCORD_CHECK(tls_worker == nullptr,
                "LendSeat called on a worker thread");
  const int k = idle_.LendParked();
  if (k < 0) return nullptr;
  // The worker's last use of its record (its deque, frames, deferred
  // releases, all settled before it parked) happens-before ours: it listed
  // itself parked under Idle's mutex, and we took it off under the same.
  Worker* w = workers_[k].get();
  tls_worker = w;
  w->lent = true;
  return w;
}

void ExecutorImpl::ReturnSeat(Worker* w) {
  RIPCORD_CHECK(tls_worker == w && w->frame_depth == 0,
                "ReturnSeat: not the thread holding the seat, or inside a "
                "task");
  FlushDeferred(w);
  // Tasks of other groups that the loop's bodies spawned may still sit on
  // the seat's deque: the injection queue's back, for any worker.
  while (TaskNode* t = w->deque.Pop()) {
    inject_.PushBack(t);  // seq_cst RMW of the length
    NotifyAfterPush();
  }
  w->lent = false;
  tls_worker = nullptr;
  // Park the seat as its thread would (WorkerMain, the parking transition):
  // listed parked under Idle's mutex (our uses of the record happen-before its
  // thread's next TransitionFromParked under the same), then the re-check
  // unless another worker still searches. At a loop's end one usually does
  // (the other workers just ran dry), which saves the re-check's heavy
  // fence: a membarrier costs tens of microseconds while another thread of
  // the process runs (docs/perf-notes.md).
  if (!idle_.TransitionToParked(w->index, /*is_searching=*/false)) return;
  FenceBeforeRecheck(/*others_unparked=*/idle_.NumUnparked() > 0);
  if (AnyWorkVisible()) NotifyOne();
}

bool ExecutorImpl::HelpAsCaller(GroupState* group) {
  // A worker of another executor waits as it always does.
  if (tls_worker != nullptr) return false;
  Worker* const w = LendSeat();
  if (w == nullptr) return false;
  const bool joined =
      HelpAsGuest(group);
  ReturnSeat(w);
  return joined;
}

GuestSeat::GuestSeat(TaskGroup& group)
    : group_(group.state_), exec_(group.state_->executor()) {
  // Off the executor only: a worker (of this executor or another one)
  // waits as it always does.
  if (tls_worker == nullptr) worker_ = exec_->LendSeat();
}

GuestSeat::~GuestSeat() {
  if (worker_ != nullptr) exec_->ReturnSeat(worker_);
}

void GuestSeat::Help() {
  if (worker_ == nullptr) return;
  exec_->HelpAsGuest(group_);
  Worker* w = worker_;
  worker_ = nullptr;
  exec_->ReturnSeat(w);
}

// ParallelFor's split signal (include/ripcord/parallel_for.h).
bool LoopShouldSplit() {
  const Worker* w = tls_worker;
  return w != nullptr && w->exec->num_workers() > 1 && w->deque.EmptyHint();
}

int LoopWorkerCount() {
  const Worker* w = tls_worker;
  return w != nullptr ? w->exec->num_workers() : 1;
}

}  // namespace ripcord::internal
