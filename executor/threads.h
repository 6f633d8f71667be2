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
// instead (signal_watcher.cc), so a signal may land on any thread.
#ifndef RIPCORD_EXECUTOR_THREADS_H_
#define RIPCORD_EXECUTOR_THREADS_H_

#include <signal.h>

#include <thread>

#include "absl/functional/any_invocable.h"

namespace ripcord::internal {

// The signals a SignalWatcher may watch: SIGINT, SIGTERM, SIGHUP, SIGQUIT,
// SIGUSR1, SIGUSR2 (the asynchronous control signals, all of which end the
// process by default).
sigset_t AsyncSignalSet();

// Starts a std::thread running `fn`, with the calling thread's signal mask.
// `name` (at most 15 chars) is set with pthread_setname_np for gdb and perf.
// Thread-safe. Aborts with a message if the thread cannot be created.
std::thread StartThread(const char* name, absl::AnyInvocable<void() &&> fn);

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_THREADS_H_
