// Copyright 2026 The ripcord Authors.
//
// executor.h: ExecutorOptions, StopTarget and Executor, the owner of the
// work-stealing workers, the blocking pool and the timer thread.
//
//   ripcord::Executor executor({.num_workers = 4});
//   {
//     ripcord::TaskGroup group(executor);
//     group.Spawn([] { Compute(); });
//     absl::Status s = group.Wait();
//   }  // every group must be gone before the executor is destroyed
#ifndef RIPCORD_EXECUTOR_H_
#define RIPCORD_EXECUTOR_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ripcord {

namespace internal {
class ExecutorImpl;
}  // namespace internal

class TaskGroup;

// ExecutorOptions: sizes of the executor's thread pools. Invalid values are
// programming errors: a message on stderr and abort at construction.
struct ExecutorOptions {
  // Work-stealing threads; 0 = std::thread::hardware_concurrency(). < 0 aborts.
  int num_workers = 0;
  // Cap of the separate blocking pool (grows on demand, idle threads retire).
  // < 1 aborts.
  int max_blocking_threads = 64;
  // How long an idle blocking thread lingers before it retires. < 0 aborts.
  absl::Duration blocking_keep_alive = absl::Seconds(10);

  // The flight recorder's file. Empty: the environment variable
  // RIPCORD_TRACE, read once by the constructor; still empty: tracing is
  // off, and costs one predictable branch per task run. Set, the executor
  // records into a bounded ring per thread (the newest 65,536 events of
  // each thread are kept; the file's "metadata" counts the others as
  // "dropped_events"): one complete event per run of a task (each
  // resumption of a coroutine is a run) and per blocking call, an instant
  // per group's first stop (with its reason) and per stop signal. The file
  // (Trace Event JSON: ui.perfetto.dev, chrome://tracing, speedscope) is
  // written when the Executor is destroyed, by Executor::WriteTrace(), and
  // by a SignalWatcher before the last stop signal ends the process. An
  // unwritable path is reported on stderr then, never an abort.
  std::string trace_path = {};
};

// Which root groups Executor::RequestStop reaches.
enum class StopTarget {
  kUnshielded,  // skips shielded groups and everything under them
  kAll          // reaches shielded groups too
};

// Executor: a work-stealing thread pool with a blocking pool and a timer.
//
// Worker, blocking and timer threads block SIGINT, SIGTERM, SIGHUP, SIGQUIT,
// SIGUSR1 and SIGUSR2 from birth (the mask is set in the creating thread
// around thread creation), so a process-directed signal never lands on them.
// Idle workers park on a futex after a short search: an idle executor uses no
// measurable CPU.
// Thread-safety: every member may be called from any thread, including tasks.
class Executor {
 public:
  explicit Executor(ExecutorOptions options = {});
  // Executor::~Executor(): stops and joins every thread it owns. Destroying an
  // Executor while task groups of it still exist is a programming error: a
  // message naming how many groups are alive on stderr, then abort (never a
  // hang, never silent memory corruption). Destroying it from one of its own
  // worker threads aborts too.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Executor::num_workers(): the number of work-stealing threads.
  int num_workers() const;

  // Executor::RequestStop(target, reason): requests stop on every root group
  // of this executor (and so on their subtrees): kUnshielded skips shielded
  // groups and everything under them; kAll reaches them too. `reason` ends up
  // in the stopped groups' Wait() status. Groups created afterwards start
  // unstopped. Thread-safety: any thread; O(number of groups).
  void RequestStop(StopTarget target = StopTarget::kUnshielded,
                   std::string_view reason = "executor stop requested");

  // Executor::DebugString(): the live tree of groups, one line each (name,
  // shielded, stop reason and how long ago, stats), the blocking pool's size
  // and occupancy, and the number of pending timers. Safe at any time from any
  // thread; costs nothing when nobody calls it.
  std::string DebugString() const;

  // Executor::WriteTrace(path): writes what the flight recorder holds now
  // (see ExecutorOptions::trace_path) to `path`, truncating it, as Trace
  // Event JSON: {"traceEvents": [...], "displayTimeUnit": "ms",
  // "metadata": {"dropped_events": N, ...}}, timestamps in microseconds of
  // CLOCK_MONOTONIC. Tasks still running are not in it (an event is
  // recorded when its run ends). Called within 20 ms of the Executor's
  // creation, it first waits until those 20 ms have passed (the clock's
  // calibration).
  // Thread-safety: any thread, including tasks, concurrently with
  // recording and with other WriteTrace() calls; each call writes a
  // consistent snapshot of each thread's ring.
  // Returns: OkStatus() once the file is written; FailedPrecondition when
  // tracing is off; the file system's error when `path` cannot be opened or
  // written (e.g. NotFound for a missing folder, PermissionDenied), its
  // message naming the path.
  [[nodiscard]] absl::Status WriteTrace(std::string_view path) const;

  // For the library's own use.
  internal::ExecutorImpl* impl() const { return impl_.get(); }

 private:
  std::unique_ptr<internal::ExecutorImpl> impl_;
};

}  // namespace ripcord

#endif  // RIPCORD_EXECUTOR_H_
