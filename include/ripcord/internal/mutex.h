// Copyright 2026 The ripcord Authors.
//
// internal/mutex.h: Mutex, MutexLock and CondVar for ripcord's internals. Not
// public API.
//
// Why not absl::Mutex, measured: Debian's Abseil (20220623) is built in a
// mode where every absl::Mutex destructor runs its deadlock-detection
// bookkeeping (GraphCycles::GetId/RemoveNode under one process-wide
// spinlock), which serialized the workers of a fib that destroys a million
// groups (docs/perf-notes.md, "Figures behind constants and layouts").
// And that build is not TSan-instrumented, so TSan could not see
// absl::Mutex at all.
// These are the classic futex mutex (Drepper, "Futexes Are Tricky", mutex 3:
// 0 unlocked, 1 locked, 2 locked with waiters; a short spin first) and a
// sequence-number condition variable. Both are made of std::atomic, which
// TSan sees, and cost nothing to construct or destroy.
//
// Thread-safety: Thread-safe. A Mutex may be destroyed as soon as no thread
// holds it, even while the thread that unlocked it last is still inside
// Unlock() (the wake-up uses the address only as a futex key).
#ifndef RIPCORD_INTERNAL_MUTEX_H_
#define RIPCORD_INTERNAL_MUTEX_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace ripcord::internal {

// A spin-wait hint (x86 PAUSE): spinning threads yield the core's resources
// to its sibling hyper-thread and leave the spin loop without a memory-order
// mis-speculation.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class CondVar;

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    uint32_t expected = kUnlocked;
    // acquire: pairs with the release in Unlock(); the critical section
    // sees what the previous holder wrote.
    if (state_.compare_exchange_strong(expected, kLocked,
                                       std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return;
    }
    LockSlow();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    // release: publishes the critical section to the next Lock().
    if (state_.fetch_sub(1, std::memory_order_release) != kLocked) {
      UnlockSlow();
    }
  }
  // For lock annotations only: does not check anything at run time.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  static constexpr uint32_t kUnlocked = 0;
  static constexpr uint32_t kLocked = 1;
  static constexpr uint32_t kContended = 2;
  void LockSlow();
  void UnlockSlow();
  std::atomic<uint32_t> state_{kUnlocked};
};

// SpinLock: test-and-test-and-set, for critical sections of a few dozen
// instructions that are almost never contended (a group's child list: link,
// unlink). One RMW to lock and a plain release store to unlock, where Mutex
// needs two RMWs. Spins, then yields the CPU; never sleeps.
// The lock word also carries a counter that only the lock holder changes
// (Lock(delta) adds delta as it locks, in the same RMW) and that anyone may
// read without the lock (count()): a group's number of children costs no
// RMW of its own.
class ABSL_LOCKABLE SpinLock {
 public:
  SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  // Locks, and adds `delta` to the counter.
  void Lock(int delta = 0) ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    // relaxed load: only a guess for the CAS, which re-checks it.
    uint32_t v = word_.load(std::memory_order_relaxed) & ~kLocked;
    // acquire: pairs with the release store in Unlock().
    if (word_.compare_exchange_strong(
            v, (v + static_cast<uint32_t>(delta) * kOne) | kLocked,
            std::memory_order_acquire, std::memory_order_relaxed)) {
      return;
    }
    LockSlow(delta);
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    // Only lockers write the word and they CAS from an unlocked value, so
    // while we hold it the word is ours: relaxed read, plain store.
    const uint32_t v = word_.load(std::memory_order_relaxed);
    // release: publishes the critical section to the next Lock().
    word_.store(v & ~kLocked, std::memory_order_release);
  }
  // The counter. relaxed: a snapshot unless the caller synchronised with
  // the last holder otherwise.
  int count() const {
    return static_cast<int>(word_.load(std::memory_order_relaxed) / kOne);
  }

 private:
  static constexpr uint32_t kLocked = 1;
  static constexpr uint32_t kOne = 2;
  void LockSlow(int delta);
  std::atomic<uint32_t> word_{0};
};

class ABSL_SCOPED_LOCKABLE SpinLockHolder {
 public:
  explicit SpinLockHolder(SpinLock* mu, int delta = 0)
      ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock(delta);
  }
  ~SpinLockHolder() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  SpinLockHolder(const SpinLockHolder&) = delete;
  SpinLockHolder& operator=(const SpinLockHolder&) = delete;

 private:
  SpinLock* const mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// CondVar: waits are woken by Signal/SignalAll issued after the waiter
// started waiting (with or without the mutex held); spurious wake-ups
// happen, so callers loop on their predicate.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Unlocks *mu, waits for a signal (or a spurious wake-up), relocks.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // As Wait, but returns by `deadline`. Returns true if the deadline passed.
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Signal();
  void SignalAll();

 private:
  std::atomic<uint32_t> seq_{0};
};

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_MUTEX_H_
