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

#include <cstddef>
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
  // Work-stealing threads. 0 = the CPUs this process may use: those in the
  // constructing thread's affinity mask (sched_getaffinity), capped by its
  // cgroup's CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us,
  // of its cgroup and every ancestor), rounded up; never less than 1. So a
  // container given 1.5 CPUs gets 2 workers, not one per host core. < 0
  // aborts, and so does 65,535 or more (after resolving 0): worker indices
  // are 16-bit.
  int num_workers = 0;
  // Cap of the separate blocking pool (grows on demand, idle threads retire).
  // < 1 aborts. A blocking thread that cannot be started (a thread or memory
  // limit) is not fatal: the pool counts its cap as reached for now and the
  // call waits for a running blocking thread; only when no blocking thread
  // exists does the call fail with ResourceExhausted (SpawnBlocking's done
  // receives it; so does co_await Blocking).
  int max_blocking_threads = 64;
  // How long an idle blocking thread lingers before it retires. < 0 aborts.
  absl::Duration blocking_keep_alive = absl::Seconds(10);
  // Stack size of each worker thread, in bytes: 8 MiB by default (glibc's
  // usual default, but fixed rather than taken from `ulimit -s`). Only
  // address space is reserved; pages are committed as the stack grows. A
  // helping Wait() (TaskGroup::Wait() on a worker runs the group's tasks
  // meanwhile, nested on the same stack) that finds less than a quarter of
  // its stack left (at least 64 KiB) does not nest another task: it parks,
  // and the worker's seat goes on helping on a fresh thread with a stack of
  // this size until the wait ends. So plain tasks that each wait on a child
  // group nest as deep as memory allows (100,000 levels need about ten
  // extra stacks), never overflowing one; a task itself must fit in a
  // quarter of the stack. Below 64 KiB or above 1 GiB aborts.
  size_t worker_stack_size = size_t{8} << 20;
  // Stack size of each blocking thread, in bytes: 2 MiB by default (Tokio's
  // and Rust's default for such threads), a quarter of glibc's usual 8 MiB,
  // so a full pool of 64 reserves 128 MiB of address space rather than 512
  // MiB (this matters under `ulimit -v`). Raise it for blocking functions
  // with deep recursion or large stack arrays. Below 64 KiB or above 1 GiB
  // aborts.
  size_t blocking_stack_size = size_t{2} << 20;

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
// Signals and child processes: the executor's threads (workers, blocking
// threads, the timer thread) block no signal; each starts with the mask of
// the thread that created it (the program's own mask when the Executor is
// built in main). So a child process started from a task or a blocking fn
// (system, popen, posix_spawn, fork+exec) inherits that mask, and Ctrl-C
// and SIGTERM reach it. A process-directed signal may land on any thread:
// without a SignalWatcher it takes its disposition (SIGINT's default ends
// the process); with one, its handler counts it and the watcher's thread
// acts (signal_watcher.h). The executor's own waits retry when a signal
// interrupts them. It opens no file descriptor.
//
// Process life:
// - exit(n) while groups are alive (from main, a task or on_signal; static
//   or local objects) ends the process with status n. exit() destroys only
//   static objects: a static Executor or TaskGroup whose work has not
//   finished then stops it (reason "the process is exiting (exit()
//   called)"), does not join it, and leaks what it owns; the threads end
//   with the process. An Executor or group already idle is destroyed as
//   usual. "Static" includes an object owned by a static smart pointer
//   (the exit flag is set by a handler each Executor and SignalWatcher
//   registers, which runs before the destructors of statics created
//   earlier). Local objects are not destroyed by exit(): their threads run
//   on until the process ends.
// - fork() without exec: only the forking thread exists in the child, so an
//   Executor alive at the fork is unusable there: creating a group on it,
//   spawning into or waiting on one of its groups aborts with "Executor used
//   in a fork() child; create a new Executor", and destroying it or its
//   groups does nothing (no hang). A new Executor created in the child
//   works as usual.
//
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
  // worker threads aborts too. Except while the process is exiting, and
  // for an Executor inherited by a fork() child: see "Process life" above.
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
