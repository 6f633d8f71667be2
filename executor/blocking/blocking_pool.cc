// Copyright 2026 The ripcord Authors.
//
// The blocking pool's protocol. The shape follows Tokio's blocking pool
// (tokio/src/runtime/blocking/pool.rs: grow on demand, queue beyond the cap,
// retire after keep_alive, each retiring thread joins the one that retired
// before it). Two differences: each idle thread waits on its own CondVar and
// idle threads form a LIFO list, so a job wakes exactly one chosen thread (no
// thundering herd, no notification counter) and the most recently idle
// thread is reused while the longest idle ones time out and retire; and a job
// goes straight into the chosen thread's `handoff` slot rather than through
// the shared queue.
//
// Every step below runs under mu_ unless it says otherwise.
//
//  1. Submit(job):
//     a. If ~BlockingPool has begun (shutting_down_), abort.
//     b. If a thread is idle: take the head of the idle list (the most
//        recently idle), unlink it, put the job in its `handoff` and Signal
//        its CondVar. The Signal is made before mu_ is released: once mu_ is
//        free, that thread may run the job, retire and destroy its Worker.
//     c. Else, if threads_ < max_threads_: create a Worker, put the job
//        in its `handoff` (when jobs wait in queue_ after a failed start:
//        the queue's head, and the job goes to the queue's back), start its
//        thread, which takes the handoff under mu_ as its first job, and
//        count it (threads_, peak_threads_). Its Thread handle is stored
//        before mu_ is released. If the thread cannot start (a thread or
//        memory limit), undo all that and count the failure; then, when
//        threads_ > 0, go on to d (the cap counts as reached for now; a
//        later Submit tries again), and when no thread exists, refuse the
//        job (Submit returns ResourceExhausted and destroys it unlocked).
//     d. Else: append the job to queue_.
//  2. A pool thread runs its job with mu_ released, then destroys the job's
//     callable (still unlocked: a capture's destructor may call Submit), then
//     takes mu_ and counts the job completed. It looks for its next job:
//     a. If queue_ is non-empty: pop its head and go to 2.
//     b. Else, if shutting_down_: exit (step 4 joins it).
//     c. Else, if keep_alive_ is zero: retire (step 3).
//     d. Else: push itself on the idle list and wait on its CondVar until
//        now + keep_alive_. On every return from the wait (a signal, the
//        deadline or a spurious wakeup), in this order:
//          - if `handoff` holds a job: take it and go to 2 (Submit already
//            unlinked this thread from the idle list);
//          - if shutting_down_: unlink itself and exit (step 4 joins it);
//          - if the deadline passed: unlink itself and retire (step 3);
//          - else wait again, with the same deadline.
//  3. Retire: erase the Worker (threads_ - 1), swap the thread's own
//     std::thread handle into last_retired_ and keep the handle that was
//     there. Release mu_, join that previous thread (it released mu_ before
//     it could be joined, and only returns after that), and return.
//  4. ~BlockingPool: abort if called on one of this pool's threads. Set
//     shutting_down_, Signal every idle thread, move out every live thread's
//     handle and last_retired_. Release mu_ and join them all. Threads still
//     running a job finish it, then drain queue_ (2a comes before 2b).
//
// Why no job is lost:
//  - A thread joins the idle list only in 2d, in the same critical section
//    in which it saw queue_ empty, and leaves it (1b or 2d) before it takes a
//    job. Submit queues only when no thread is idle and either threads_ ==
//    max_threads_ or a start just failed with threads_ >= 1 (1c, 1d).
//    Together: while queue_ is non-empty, no thread is idle and none can
//    retire (a retiring thread saw queue_ empty, in 2c, or was idle, in 2d),
//    so every one of the threads_ >= 1 threads is running a job and reaches
//    2a when it returns.
//  - A job submitted just as the last idle thread's keep_alive runs out: the
//    timeout decision (2d) and Submit's choice (1b/1c) are both made under
//    mu_, so one comes first. If Submit does, it unlinks the thread and fills
//    its handoff; the thread checks handoff before the deadline, so it runs
//    the job even though its wait timed out. If the thread does, it unlinks
//    itself and lowers threads_ in one critical section, so Submit finds no
//    idle thread and room under the cap, and starts a new thread (1c).
//  - No lost wakeup: handoff is filled and the CondVar signalled under mu_;
//    the thread checks handoff under mu_ before every wait, and
//    CondVar::WaitWithDeadline releases mu_ atomically with starting to wait.
//  - Shutdown: once shutting_down_ is set, Submit aborts instead of adding
//    work, and no thread exits while queue_ is non-empty (2a before 2b), so
//    every job submitted before it runs. Idle threads have no job (handoff is
//    empty, or they would be busy) and are woken to exit.
//  - No thread is leaked: a live thread's handle is in workers_, a retired
//    thread's is in last_retired_ or held by the next retiree, which joins it
//    before it ends; ~BlockingPool joins workers_ and last_retired_, and
//    joining a retiree waits for the join it makes.
#include "executor/blocking/blocking_pool.h"

#include <exception>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "executor/base/check.h"
#include "ripcord/internal/mutex.h"
#include "executor/base/threads.h"
#include "executor/trace/trace.h"

namespace ripcord::internal {
namespace {

using Job = absl::AnyInvocable<void() &&>;

// The pool whose thread this is, if any. Lets ~BlockingPool refuse to run on
// one of its own threads (it would join itself).
thread_local const BlockingPool* tls_current_pool = nullptr;

// Runs `job`, then destroys its callable. The boundary at which a blocking
// thread catches exceptions (STYLE.md 6): the caller is supposed to have
// caught the user's exceptions already, so one arriving here is a bug.
void RunJob(Job& job, Tracer* tracer) {
  try {
    BlockingTraceScope trace(tracer);  // named by the job, if at all
    std::move(job)();
  } catch (const std::exception& e) {
    RIPCORD_CHECK(false, "exception escaped a blocking job: %s", e.what());
  } catch (...) {
    RIPCORD_CHECK(false, "exception escaped a blocking job: %s",
                  "(not a std::exception)");
  }
  // An rvalue call leaves the callable in place; destroy it here, unlocked.
  job = nullptr;
}

}  // namespace

BlockingPool::BlockingPool(int max_threads, absl::Duration keep_alive,
                           size_t stack_size)
    : max_threads_(max_threads),
      keep_alive_(keep_alive),
      stack_size_(stack_size) {
  RIPCORD_CHECK(max_threads >= 1,
                "ExecutorOptions::max_blocking_threads must be at least 1 "
                "(got %d)",
                max_threads);
  RIPCORD_CHECK(keep_alive >= absl::ZeroDuration(),
                "ExecutorOptions::blocking_keep_alive must not be negative "
                "(got %s)",
                absl::FormatDuration(keep_alive).c_str());
}

BlockingPool::~BlockingPool() {
  RIPCORD_CHECK(tls_current_pool != this,
                "~BlockingPool called from one of its own blocking jobs; it "
                "would join its own thread. Destroy the Executor from a "
                "thread it does not own");
  std::vector<Thread> to_join;
  {
    MutexLock lock(&mu_);
    shutting_down_ = true;
    for (Worker* w = idle_head_; w != nullptr; w = w->idle_next) {
      w->cv.Signal();
    }
    // No thread touches its own handle any more: only retiring (step 3)
    // does, and nobody retires once shutting_down_ is set.
    for (Worker& w : workers_) to_join.push_back(std::move(w.thread));
    if (last_retired_.joinable()) to_join.push_back(std::move(last_retired_));
  }
  for (Thread& t : to_join) t.join();
  // Every thread has exited; workers_ (holding exited Workers) and the empty
  // queue_ are destroyed with the members.
}

absl::Status BlockingPool::Submit(Job job) {
  RIPCORD_CHECK(job != nullptr,
                "BlockingPool::Submit() called with an empty job");
  absl::Status refused;
  {
    MutexLock lock(&mu_);
    RIPCORD_CHECK(!shutting_down_,
                  "BlockingPool::Submit() called after ~BlockingPool began "
                  "(the Executor is being destroyed); blocking work must be "
                  "submitted before the Executor is destroyed");
    if (idle_head_ != nullptr) {  // 1b
      Worker* w = idle_head_;
      UnlinkIdleLocked(w);
      w->handoff = std::move(job);
      w->cv.Signal();  // Under mu_: w may be destroyed once mu_ is released.
      return absl::OkStatus();
    }
    if (threads_ < max_threads_) {  // 1c
      refused = StartWorkerLocked(&job);
      if (refused.ok()) return refused;
      // The start failed: the cap counts as reached for now (1d), unless no
      // thread exists to run the queue.
      if (threads_ > 0) refused = absl::OkStatus();
    }
    if (refused.ok()) {
      queue_.push_back(std::move(job));  // 1d
      return refused;
    }
  }
  job = nullptr;  // destroyed unrun, unlocked: a capture may call Submit
  return absl::ResourceExhaustedError(
      absl::StrCat("blocking pool: no blocking thread could be started: ",
                   refused.message()));
}

absl::Status BlockingPool::StartWorkerLocked(Job* job) {
  Worker& w = workers_.emplace_back();
  w.self = std::prev(workers_.end());
  // Jobs queued after an earlier failed start go first (FIFO).
  const bool from_queue = !queue_.empty();
  if (from_queue) {
    w.handoff = std::move(queue_.front());
    queue_.pop_front();
    queue_.push_back(std::move(*job));
  } else {
    w.handoff = std::move(*job);
  }
  absl::StatusOr<Thread> thread = TryStartThread(
      "ripcord-block", stack_size_, [this, w = &w] { WorkerMain(w); });
  if (!thread.ok()) {
    ++start_failures_;
    if (from_queue) {
      queue_.push_front(std::move(w.handoff));
      *job = std::move(queue_.back());
      queue_.pop_back();
    } else {
      *job = std::move(w.handoff);
    }
    workers_.erase(w.self);
    return thread.status();
  }
  ++threads_;
  if (threads_ > peak_threads_) peak_threads_ = threads_;
  w.thread = *std::move(thread);  // before mu_ is released (steps 3, 4)
  return absl::OkStatus();
}

BlockingPoolStats BlockingPool::stats() const {
  MutexLock lock(&mu_);
  BlockingPoolStats s;
  s.threads = threads_;
  s.idle = idle_;
  s.busy = threads_ - idle_;
  s.queued = static_cast<int64_t>(queue_.size());
  s.completed = completed_;
  s.peak_threads = peak_threads_;
  s.start_failures = start_failures_;
  return s;
}

void BlockingPool::WorkerMain(Worker* w) {
  tls_current_pool = this;
  Thread join_after_unlock;
  mu_.Lock();
  // The job we were started for (1c put it in handoff, under mu_).
  Job job = std::move(w->handoff);
  w->handoff = nullptr;  // A moved-from AnyInvocable need not be empty.
  do {
    mu_.Unlock();
    RunJob(job, tracer_);  // 2: unlocked.
    mu_.Lock();
    ++completed_;
  } while (NextJobLocked(w, &job, &join_after_unlock));
  mu_.Unlock();
  // `w` may be gone (step 3). Join the thread that retired before this one.
  if (join_after_unlock.joinable()) join_after_unlock.join();
}

bool BlockingPool::NextJobLocked(Worker* w, Job* job,
                                 Thread* join_after_unlock) {
  if (!queue_.empty()) {  // 2a
    *job = std::move(queue_.front());
    queue_.pop_front();
    return true;
  }
  if (shutting_down_) {  // 2b
    --threads_;
    return false;
  }
  if (keep_alive_ == absl::ZeroDuration()) {  // 2c
    *join_after_unlock = RetireLocked(w);
    return false;
  }
  PushIdleLocked(w);  // 2d
  // Now + InfiniteDuration() is InfiniteFuture(): the wait has no deadline.
  const absl::Time deadline = absl::Now() + keep_alive_;
  for (;;) {
    const bool timed_out = w->cv.WaitWithDeadline(&mu_, deadline);
    if (w->handoff != nullptr) {
      // Submit (1b) unlinked us. Checked first: a job handed over just as
      // the deadline passed still runs here.
      *job = std::move(w->handoff);
      w->handoff = nullptr;  // A moved-from AnyInvocable need not be empty.
      return true;
    }
    if (shutting_down_) {
      UnlinkIdleLocked(w);
      --threads_;
      return false;
    }
    if (timed_out) {
      UnlinkIdleLocked(w);
      *join_after_unlock = RetireLocked(w);
      return false;
    }
    // Spurious wakeup: wait again for what is left of keep_alive_.
  }
}

Thread BlockingPool::RetireLocked(Worker* w) {
  RIPCORD_CHECK(!w->idle && w->handoff == nullptr,
                "BlockingPool: a thread retired while idle or holding a job");
  --threads_;
  Thread previous = std::exchange(last_retired_, std::move(w->thread));
  workers_.erase(w->self);  // Destroys *w; nobody else points to it.
  return previous;
}

void BlockingPool::PushIdleLocked(Worker* w) {
  w->idle = true;
  w->idle_prev = nullptr;
  w->idle_next = idle_head_;
  if (idle_head_ != nullptr) idle_head_->idle_prev = w;
  idle_head_ = w;
  ++idle_;
}

void BlockingPool::UnlinkIdleLocked(Worker* w) {
  RIPCORD_CHECK(w->idle, "BlockingPool: unlinking a thread that is not idle");
  if (w->idle_prev != nullptr) {
    w->idle_prev->idle_next = w->idle_next;
  } else {
    idle_head_ = w->idle_next;
  }
  if (w->idle_next != nullptr) w->idle_next->idle_prev = w->idle_prev;
  w->idle = false;
  w->idle_prev = nullptr;
  w->idle_next = nullptr;
  --idle_;
}

}  // namespace ripcord::internal
