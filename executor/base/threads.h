// Copyright 2026 The ripcord Authors.
//
// threads.h: starting the executor's own threads (workers, blocking threads,
// the timer thread, the signal thread).
//
// Signal masks: no ripcord thread blocks any signal. A new thread inherits
// the mask of the thread that creates it (POSIX), which is the program's
// own, so a child process started from any ripcord thread (system, popen,
// posix_spawn, fork+exec in a task or a blocking fn) starts with the mask
// the program had. The SignalWatcher catches its signals with a handler
// instead (signal_handler.cc), so a signal may land on any thread.
#ifndef RIPCORD_EXECUTOR_THREADS_H_
#define RIPCORD_EXECUTOR_THREADS_H_

#include <pthread.h>
#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <thread>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"

namespace ripcord::internal {

// The signals a SignalWatcher may watch: SIGINT, SIGTERM, SIGHUP, SIGQUIT,
// SIGUSR1, SIGUSR2 (the asynchronous control signals, all of which end the
// process by default).
sigset_t AsyncSignalSet();

// Starts a std::thread running `fn`, with the calling thread's signal mask.
// `name` (at most 15 chars) is set with pthread_setname_np for gdb and perf.
// Thread-safe. Aborts with a message if the thread cannot be created.
std::thread StartThread(const char* name, absl::AnyInvocable<void() &&> fn);

// The `name` StartThread or TryStartThread gave the calling thread
// ("ripcord-worker", ...), or null on a thread they did not start. For the
// flight recorder's thread names.
const char* ThreadRole();

// ---- threads with a chosen stack, whose start may fail -------------------

// Thread: a joinable thread started by TryStartThread (std::thread cannot
// choose its stack size). Like std::thread, a Thread must be joined before
// it is destroyed or assigned to; otherwise the process aborts with a
// message. Thread-compatible.
class Thread {
 public:
  Thread() = default;
  Thread(Thread&& other) noexcept;
  Thread& operator=(Thread&& other) noexcept;
  ~Thread();

  bool joinable() const { return joinable_; }
  // Waits for the thread to end. Aborts if !joinable().
  void join();

 private:
  friend absl::StatusOr<Thread> TryStartThread(
      const char*, size_t, absl::AnyInvocable<void() &&>);
  pthread_t id_{};
  bool joinable_ = false;
};

// Starts a thread running `fn` with a stack of `stack_size` bytes (0: the
// C library's default, which glibc takes from `ulimit -s`), with the
// calling thread's signal mask like StartThread's, named `name` (at most 15
// chars). Returns ResourceExhausted naming the thread and the system's
// reason when it cannot be created (a thread or memory limit: ulimit -u,
// ulimit -v, a container's pids limit); `fn` is then destroyed unrun.
// Thread-safe.
absl::StatusOr<Thread> TryStartThread(const char* name, size_t stack_size,
                                      absl::AnyInvocable<void() &&> fn);

// TryStartThread and StartThread run TestHook::kThreadStart first
// (test_hooks.h): a hook that returns true makes the start fail.

// The lowest address of the calling thread's stack that a helping wait may
// reach before it must stop nesting tasks (help.cc, the stack guard):
// its stack's low end plus a reserve of a quarter of the stack, at least
// 64 KiB. Computed once per thread (pthread_getattr_np); 0 if unknown (no
// guard then). Thread-safety: about the calling thread only.
uintptr_t StackGuardLimit();

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_THREADS_H_
