// Copyright 2026 The ripcord Authors.
//
// signal_handler.h: the async-signal-safe half of the SignalWatcher: the
// handler that counts each watched signal and writes an eventfd, the
// dispositions it replaces and puts back, and the fork child hook.
// The install, restore and close steps: docs/design/signals.md.
#ifndef RIPCORD_EXECUTOR_SIGNAL_SIGNAL_HANDLER_H_
#define RIPCORD_EXECUTOR_SIGNAL_SIGNAL_HANDLER_H_

#include <signal.h>

#include <cstdint>

namespace ripcord::internal {

// Every function here is called by the SignalWatcher's constructor,
// destructor or signal thread; at most one watcher is alive at a time
// (ClaimWatcherSlot), which serialises them.

// The install step's claim: returns true, and marks a watcher alive, if no
// other watcher is alive. Thread-safe.
[[nodiscard]] bool ClaimWatcherSlot();
// The end of the close step: the next ClaimWatcherSlot() may succeed and
// sees this watcher's dispositions restored. Thread-safe.
void ReleaseWatcherSlot();

// Registers the fork child hook once per process: in a child the watcher's
// thread does not exist, so the hook restores the replaced dispositions,
// drops the parent's eventfd and releases the slot. Thread-safe.
void InstallForkHook();

// True for the signals a watcher may watch (AsyncSignalSet()); false for
// anything else, including numbers out of range. Thread-safe.
bool IsWatchable(int signo);

// The install step: publishes `wake_fd` to the handler, zeroes the counts of
// and installs the handler for every signal in `watched`, saving the
// dispositions it replaces. Aborts if sigaction fails or more than 8 signals
// are watched. Called by the slot's owner only.
void InstallHandlers(int wake_fd, const sigset_t& watched);

// The restore step: puts back the dispositions InstallHandlers replaced,
// those still ours only (one the program changed meanwhile is the
// program's). Called by the slot's owner only; a second call does nothing.
void RestoreDispositions();

// Returns the count of `signo` received since the last call and zeroes it.
// Called by the signal thread only.
uint32_t TakeSignalCount(int signo);

// The close step: unpublishes the wake fd, waits until no handler is
// between its increment and decrement, then closes `wake_fd`. Called by the
// slot's owner only, after RestoreDispositions().
void CloseWakeFd(int wake_fd);

// Restores signo's default action, unblocks it in the calling thread and
// raises it there; _exit(128 + signo) if the process survives that.
[[noreturn]] void RaiseWithDefaultAction(int signo);

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_SIGNAL_SIGNAL_HANDLER_H_
