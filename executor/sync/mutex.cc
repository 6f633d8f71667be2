// Copyright 2026 The ripcord Authors.
//
// mutex.cc: the slow paths of internal::Mutex and internal::CondVar (see
// internal/mutex.h for why ripcord has its own).
#include "ripcord/internal/mutex.h"

#include <sched.h>

#include <atomic>
#include <climits>
#include <cstdint>

#include "absl/time/clock.h"
#include "executor/sync/futex.h"

namespace ripcord::internal {

void Mutex::LockSlow() {
  // A short spin: critical sections here are a few dozen instructions.
  for (int i = 0; i < 64; ++i) {
    CpuRelax();
    uint32_t expected = kUnlocked;
    // relaxed load: a hint before the CAS; acquire as in Lock().
    if (state_.load(std::memory_order_relaxed) == kUnlocked &&
        state_.compare_exchange_weak(expected, kLocked,
                                     std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  // Mark contended, then sleep until we take it (Drepper's mutex 3): the
  // exchange both acquires (acquire, as in Lock()) and records that an
  // Unlock() must wake someone.
  uint32_t c = state_.exchange(kContended, std::memory_order_acquire);
  while (c != kUnlocked) {
    FutexWait(&state_, kContended);
    c = state_.exchange(kContended, std::memory_order_acquire);
  }
}

void Mutex::UnlockSlow() {
  // The state was kContended: release it fully and wake one sleeper.
  // release: as in Unlock().
  state_.store(kUnlocked, std::memory_order_release);
  FutexWake(&state_, 1);  // the address is only a key: see the header
}

void SpinLock::LockSlow(int delta) {
  int spins = 0;
  for (;;) {
    // relaxed: spin on a read (no cache-line ping-pong), then retry the RMW.
    uint32_t v;
    while (((v = word_.load(std::memory_order_relaxed)) & kLocked) != 0) {
      if (++spins < 128) {
        CpuRelax();
      } else {
        sched_yield();
      }
    }
    // acquire: as in Lock().
    if (word_.compare_exchange_weak(
            v, (v + static_cast<uint32_t>(delta) * kOne) | kLocked,
            std::memory_order_acquire, std::memory_order_relaxed)) {
      return;
    }
  }
}

void CondVar::Wait(Mutex* mu) { WaitWithDeadline(mu, absl::InfiniteFuture()); }

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  // relaxed: read under mu; a signaller that changes the predicate after we
  // unlock increments seq_ afterwards, so FutexWait sees a different value or
  // is woken. The predicate itself is ordered by mu.
  const uint32_t seq = seq_.load(std::memory_order_relaxed);
  mu->Unlock();
  bool timed_out = false;
  if (deadline == absl::InfiniteFuture()) {
    FutexWait(&seq_, seq);
  } else {
    timed_out = !FutexWaitUntil(&seq_, seq, deadline);
  }
  mu->Lock();
  return timed_out || absl::Now() >= deadline;
}

void CondVar::Signal() {
  // relaxed: the wake-up carries no data; the predicate is ordered by the
  // mutex the waiter relocks.
  seq_.fetch_add(1, std::memory_order_relaxed);
  FutexWake(&seq_, 1);
}

void CondVar::SignalAll() {
  seq_.fetch_add(1, std::memory_order_relaxed);
  FutexWakeAll(&seq_);
}

}  // namespace ripcord::internal
