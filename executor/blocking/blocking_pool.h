// Copyright 2026 The ripcord Authors.
//
// blocking_pool.h: the executor's pool of threads for blocking work
// (SpawnBlocking, co_await Blocking). Modelled on Tokio's spawn_blocking pool
// (tokio/src/runtime/blocking/pool.rs): it starts with no threads, grows on
// demand up to a cap, queues jobs (FIFO) beyond the cap, and lets a thread
// that has been idle for `keep_alive` retire. The protocol, and why no job is
// ever lost, is written atop blocking_pool.cc.
//
// Example:
//
//   BlockingPool pool(/*max_threads=*/64, /*keep_alive=*/absl::Seconds(10));
//   pool.Submit([&] { ReadWholeFile(path); done.Notify(); });
//   ...
//   // ~BlockingPool runs every job already submitted, then joins.
//
// Jobs must not throw: the caller (SpawnBlocking's adapter) catches the user's
// exceptions and turns them into a status. An exception that escapes anyway
// is a bug; the pool prints it and aborts rather than lose the thread.
#ifndef RIPCORD_EXECUTOR_BLOCKING_POOL_H_
#define RIPCORD_EXECUTOR_BLOCKING_POOL_H_

#include <cstdint>
#include <deque>
#include <list>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "ripcord/internal/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/base/threads.h"

namespace ripcord::internal {

class Tracer;

// A snapshot of BlockingPool's counters, all read under one lock hold, so
// threads == busy + idle always holds within one snapshot.
struct BlockingPoolStats {
  int threads = 0;         // pool threads that have not retired (busy + idle)
  int busy = 0;            // threads running a job, or handed one and waking
  int idle = 0;            // threads waiting for a job (each at most keep_alive)
  int64_t queued = 0;      // jobs waiting for a thread (only when threads == cap)
  int64_t completed = 0;   // jobs that returned and whose callable was destroyed
  int peak_threads = 0;    // the most threads ever alive at once
  int64_t start_failures = 0;  // threads that could not be started
};

// BlockingPool
//
// Thread-safe: every public member may be called from any thread, including
// from inside a job running on the pool (except the destructor; see there).
class BlockingPool {
 public:
  // BlockingPool::BlockingPool()
  //
  // Creates a pool with no threads. At most `max_threads` threads ever run at
  // once; a thread that has waited `keep_alive` without receiving a job
  // retires. keep_alive == 0 retires a thread as soon as it finds the queue
  // empty; absl::InfiniteDuration() keeps threads until destruction.
  //
  // Bad input: max_threads < 1 or a negative keep_alive is a programming
  // error (they come from ExecutorOptions::max_blocking_threads and
  // ExecutorOptions::blocking_keep_alive): prints a message naming the option
  // and aborts.
  //
  // Each thread gets a stack of `stack_size` bytes (0: the C library's
  // default); see ExecutorOptions::blocking_stack_size.
  BlockingPool(int max_threads, absl::Duration keep_alive,
               size_t stack_size = 0);

  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // BlockingPool::~BlockingPool()
  //
  // Runs every job already submitted, the queued ones included, then joins
  // every thread the pool ever started (retired ones too). It waits for jobs
  // that are running; it never interrupts one, so it returns once they do.
  //
  // Thread-safety: call it from a thread that is not one of this pool's
  // threads, once no other thread can call Submit() any more.
  // Bad input: a call from inside one of this pool's jobs (it would join its
  // own thread) prints a message and aborts. A Submit() made once the
  // destructor has begun (for example by a job still running) also aborts.
  ~BlockingPool() ABSL_LOCKS_EXCLUDED(mu_);

  // BlockingPool::Submit()
  //
  // Runs `job` once on a pool thread. Never waits for a thread or a job (it
  // holds the pool's mutex briefly, and starts a thread under it): if a
  // thread is idle, the job is handed to it (the most recently idle one, so
  // surplus threads can retire); else if fewer than max_threads threads exist,
  // a new thread ("ripcord-block", async signals blocked) starts with it;
  // else the job is queued, and queued jobs run in submission order.
  //
  // A thread that cannot be started (a thread or memory limit) is not fatal:
  // the cap counts as reached for now, and the job is queued for the threads
  // that exist (a later Submit tries to start one again). Only when the pool
  // has no thread at all is the job refused: Submit returns
  // ResourceExhausted naming the reason, and `job` is destroyed unrun (on
  // the caller's thread). Returns OkStatus otherwise.
  //
  // `job` must not throw. If it does, the pool prints "ripcord: fatal:
  // exception escaped a blocking job: <what>" and aborts. The job's callable
  // is destroyed on the pool thread, right after it returns.
  //
  // Thread-safety: any thread, including a job of this pool.
  // Memory ordering: everything the caller did before Submit() is visible to
  // the job.
  // Bad input: an empty `job`, or a call once ~BlockingPool has begun, is a
  // programming error: prints a message and aborts.
  [[nodiscard]] absl::Status Submit(absl::AnyInvocable<void() &&> job)
      ABSL_LOCKS_EXCLUDED(mu_);

  // BlockingPool::stats()
  //
  // A consistent snapshot of the pool's counters (see BlockingPoolStats).
  // Thread-safety: any thread. Memory ordering: a job counted in `completed`
  // has returned, and everything it did is visible to the caller.
  BlockingPoolStats stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // BlockingPool::set_tracer(): records each job as a "blocking" event in
  // `tracer` (the flight recorder, executor/trace/trace.h; null: off). Call before
  // the first Submit(); `tracer` must outlive the pool's threads.
  void set_tracer(Tracer* tracer) { tracer_ = tracer; }

 private:
  // One per pool thread. Every field is guarded by the pool's mu_ (clang's
  // annotations cannot name the enclosing object's mutex, hence no
  // ABSL_GUARDED_BY here). A Worker is destroyed by its own thread when it
  // retires, under mu_, after it has left every list: nobody else holds a
  // pointer to it outside a mu_ critical section.
  struct Worker {
    // Written by Submit() when it hands a job to this idle worker (it also
    // unlinks the worker from the idle list in the same critical section),
    // or when it starts the worker (its first job, step 1c); taken by the
    // worker itself. Non-empty means "you have a job": the
    // worker tells a real wakeup from a spurious one or a timeout by it.
    absl::AnyInvocable<void() &&> handoff;
    // This worker waits on it while idle; Submit() and ~BlockingPool signal
    // it. One condvar per worker, so one job wakes exactly one thread.
    CondVar cv;
    // Links in the idle list (most recently idle first). Valid iff `idle`.
    bool idle = false;
    Worker* idle_prev = nullptr;
    Worker* idle_next = nullptr;
    // The thread running this worker. Written by Submit() right after
    // the thread starts (still under mu_); moved out by the worker when it
    // retires, or by ~BlockingPool when shutdown begins.
    Thread thread;
    // This worker's position in workers_, for O(1) removal when it retires.
    std::list<Worker>::iterator self;
  };

  // Step 1c: starts a thread for *job (for the queue's head instead when
  // jobs wait; *job then goes to the queue's back). When the thread cannot
  // start, returns why, with everything as it was (*job still ours).
  absl::Status StartWorkerLocked(absl::AnyInvocable<void() &&>* job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The body of every pool thread; its first job waits in w->handoff.
  void WorkerMain(Worker* w) ABSL_LOCKS_EXCLUDED(mu_);
  // Finds the calling worker's next job: the queue's head, else (after
  // idling up to keep_alive_) a job handed to it. Returns false when the
  // worker must exit: it retired (then *join_after_unlock holds the handle of
  // the previously retired thread, which the caller joins once it has
  // released mu_; `w` is gone) or the pool is shutting down.
  bool NextJobLocked(Worker* w, absl::AnyInvocable<void() &&>* job,
                     Thread* join_after_unlock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `w` from the pool for good and destroys it. Returns the handle of
  // the previously retired thread (maybe empty) for the caller to join.
  Thread RetireLocked(Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushIdleLocked(Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnlinkIdleLocked(Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_threads_;
  const absl::Duration keep_alive_;
  const size_t stack_size_;
  Tracer* tracer_ = nullptr;  // set before any thread starts

  mutable Mutex mu_;
  // Jobs waiting for a thread. Non-empty only while every thread is busy and
  // threads_ == max_threads_ (see the protocol in blocking_pool.cc).
  std::deque<absl::AnyInvocable<void() &&>> queue_ ABSL_GUARDED_BY(mu_);
  // Every thread that has not retired, idle or busy (once shutdown begins,
  // also those that exited; ~BlockingPool destroys them after joining).
  // std::list: a Worker holds a CondVar and never moves.
  std::list<Worker> workers_ ABSL_GUARDED_BY(mu_);
  // Head of the intrusive idle list (most recently idle first); nullptr when
  // no thread is idle.
  Worker* idle_head_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Threads that have neither retired nor exited at shutdown.
  int threads_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_ ABSL_GUARDED_BY(mu_) = 0;     // length of the idle list
  int peak_threads_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  // The handle of the thread that retired last. The next thread to retire
  // joins it (after releasing mu_), and ~BlockingPool joins the last one, so
  // at most one retired thread is ever unjoined and Submit() never joins.
  Thread last_retired_ ABSL_GUARDED_BY(mu_);
  int64_t start_failures_ ABSL_GUARDED_BY(mu_) = 0;
  // Set once by ~BlockingPool. From then on no thread retires (the destructor
  // joins them all) and Submit() aborts.
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_BLOCKING_POOL_H_
