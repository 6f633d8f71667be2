// Copyright 2026 The ripcord Authors.
//
// futex.h: the one place ripcord talks to the kernel to sleep on a 32-bit
// word. Linux only (FUTEX_PRIVATE_FLAG: waiters and wakers share one process).
//
// Why not std::atomic<T>::wait/notify: a group's join word is woken by the
// thread that finishes its last task, and the waiter may destroy the group the
// moment it sees the count reach zero. FutexWake() takes the word's address
// only as a key and never dereferences it, so waking a word whose memory was
// just freed is harmless (the kernel finds no waiter, or wakes an unrelated
// waiter spuriously, which every futex user must tolerate). libstdc++'s
// notify_all makes no such promise in writing.
//
// Thread-safe: every function may be called from any thread.
#ifndef RIPCORD_EXECUTOR_FUTEX_H_
#define RIPCORD_EXECUTOR_FUTEX_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ripcord::internal {

// Sleeps while `*word == expected`. Returns on a wake, on a spurious wake-up,
// on a signal, or at once if the word already differs. Callers loop.
void FutexWait(const std::atomic<uint32_t>* word, uint32_t expected);

// Like FutexWait, but returns no later than `deadline` (absolute, wall time
// converted to a relative timeout). Returns false if the deadline passed.
bool FutexWaitUntil(const std::atomic<uint32_t>* word, uint32_t expected,
                    absl::Time deadline);

// Wakes at most `count` threads sleeping in FutexWait on `word`. `word` is
// used only as a key: it may point to memory that has been freed.
void FutexWake(const void* word, int count);
void FutexWakeAll(const void* word);

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_FUTEX_H_
