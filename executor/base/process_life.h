// Copyright 2026 The ripcord Authors.
//
// process_life.h: what the library does when the process calls exit() or
// fork() while ripcord objects are alive.
//
// exit(): exit() runs the destructors of static objects (and of what they
// own) while other threads, tasks and groups may still be alive, possibly on
// a worker thread (exit() called from a task) or on the signal thread (from
// on_signal). The lifetime checks that would abort there ask ExitingFor()
// first: while the process is exiting, a destructor that cannot finish its
// work stops it and leaks instead (the process ends right after), so the
// exit status the program asked for is kept.
//
// fork() without exec: only the forking thread exists in the child, so every
// Executor, group and SignalWatcher inherited from the parent has lost its
// threads. A pthread_atfork child hook marks every Executor alive at the
// fork as inherited: using it aborts with a message, destroying it (or its
// groups) does nothing. Executors created in the child work as usual.
#ifndef RIPCORD_EXECUTOR_PROCESS_LIFE_H_
#define RIPCORD_EXECUTOR_PROCESS_LIFE_H_

#include <atomic>

namespace ripcord::internal {

// Registers the fork hooks (once per process) and the exit flag's handler
// (see ExitingFor). Called by each Executor and SignalWatcher constructor.
// Thread-safe.
void NoteProcessLifeObject();

// True when `obj` is being destroyed because the process is exiting: an
// exit handler registered by NoteProcessLifeObject() has run (exit() began),
// or `obj` itself has static storage duration (its destructor runs only
// from exit()). The exit flag's handler is registered again by every
// Executor and SignalWatcher constructed (up to a cap), so it runs before
// the destructors of static objects created before them.
// Thread-safe; costs a loop over the writable segments of the loaded
// objects (read once, at the first call) when the flag is not set.
bool ExitingFor(const void* obj);

// Keeps `p` reachable for leak checkers: an object leaked on purpose by a
// destructor that skips its work (exit, fork child). Thread-safe.
void LeakOnPurpose(const void* p);

// Executors alive in this process, so that a fork child can tell inherited
// ones from its own. `executor` is the ExecutorImpl. Thread-safe.
void RegisterExecutor(const void* executor);
void UnregisterExecutor(const void* executor);

// Set in a fork child (by the atfork hook); never cleared.
extern std::atomic<bool> g_fork_child;

// InheritedByFork() once this process is known to be a fork child.
bool InheritedByForkSlow(const void* executor);

// True if `executor` was alive when this process was forked from its parent
// (this process is a fork child and the executor was inherited).
// Thread-safe. One relaxed load when the process is not a fork child.
inline bool InheritedByFork(const void* executor) {
  // relaxed: the flag is set in the child's atfork hook, while the child has
  // one thread; every thread that reads it is created after.
  return g_fork_child.load(std::memory_order_relaxed) &&
         InheritedByForkSlow(executor);
}

// Aborts with "<api>: Executor used in a fork() child; create a new
// Executor" if `executor` is inherited from the parent process.
void CheckNotInherited(const void* executor, const char* api);

// Counts fork() calls seen by this process's children: each fork child's
// hook increments it. An object records it at construction; a different
// value later means the object was inherited by a fork child. Thread-safe.
unsigned ForkGeneration();

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_PROCESS_LIFE_H_
