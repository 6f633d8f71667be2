// Copyright 2026 The ripcord Authors.
//
// threads.h: starting the executor's own threads (workers, blocking threads,
// the timer thread) with the asynchronous signals blocked.
//
// The mask is blocked in the *creating* thread around pthread_create and then
// restored, so the new thread is born with it: blocking at the top of the
// thread function would leave a window in which a SIGINT sent right after the
// Executor was built lands on the new thread and kills the process.
#ifndef RIPCORD_EXECUTOR_THREADS_H_
#define RIPCORD_EXECUTOR_THREADS_H_

#include <signal.h>

#include <thread>

#include "absl/functional/any_invocable.h"

namespace ripcord::internal {

// The signals no executor-owned thread ever receives: SIGINT, SIGTERM,
// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2.
sigset_t AsyncSignalSet();

// Starts a std::thread running `fn`, born with AsyncSignalSet() blocked.
// `name` (at most 15 chars) is set with pthread_setname_np for gdb and perf.
// Thread-safe. Aborts with a message if the thread cannot be created.
std::thread StartThread(const char* name, absl::AnyInvocable<void() &&> fn);

// The `name` StartThread gave the calling thread ("ripcord-worker", ...), or
// null on a thread it did not start. For the flight recorder's thread names.
const char* ThreadRole();

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_THREADS_H_
