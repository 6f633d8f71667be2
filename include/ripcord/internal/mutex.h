// Copyright 2026 The ripcord Authors.
//
// internal/mutex.h: Mutex, MutexLock and CondVar: absl::Mutex and
// absl::CondVar with ThreadSanitizer annotations. Not public API.
//
// Why: Debian's Abseil is not built with -fsanitize=thread, so TSan sees
// neither absl::Mutex's lock/unlock nor the atomics inside it, and reports
// every access protected by one as a data race. Under TSan these wrappers tell
// it what the lock means: __tsan_acquire after locking, __tsan_release before
// unlocking (and around a CondVar wait, which unlocks and relocks). Outside
// TSan they compile to plain absl calls. The layout is the same in both
// builds (one absl::Mutex), so a TSan build of ripcord links with user code
// built without it.
//
// Thread-safety: as absl::Mutex / absl::CondVar. Lock annotations are
// Abseil's, so clang's -Wthread-safety checks users of these types.
#ifndef RIPCORD_INTERNAL_MUTEX_H_
#define RIPCORD_INTERNAL_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__SANITIZE_THREAD__)
#define RIPCORD_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RIPCORD_TSAN 1
#endif
#endif

#ifdef RIPCORD_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace ripcord::internal {

// Tells TSan that `addr` was acquired / released (no-ops without TSan). For
// other synchronization TSan cannot see (absl::Notification in tests).
inline void TsanAcquire([[maybe_unused]] const void* addr) {
#ifdef RIPCORD_TSAN
  __tsan_acquire(const_cast<void*>(addr));
#endif
}
inline void TsanRelease([[maybe_unused]] const void* addr) {
#ifdef RIPCORD_TSAN
  __tsan_release(const_cast<void*>(addr));
#endif
}

class CondVar;

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    TsanAcquire(this);
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    TsanRelease(this);
    mu_.Unlock();
  }
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }

 private:
  friend class CondVar;
  absl::Mutex mu_;
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

class CondVar {
 public:
  // Unlocks *mu, waits for a signal (or a spurious wake-up), relocks.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    TsanRelease(mu);
    cv_.Wait(&mu->mu_);
    TsanAcquire(mu);
  }
  // As Wait, but returns by `deadline`; true if the deadline passed.
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    TsanRelease(mu);
    const bool timed_out = cv_.WaitWithDeadline(&mu->mu_, deadline);
    TsanAcquire(mu);
    return timed_out;
  }
  void Signal() { cv_.Signal(); }
  void SignalAll() { cv_.SignalAll(); }

 private:
  absl::CondVar cv_;
};

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_MUTEX_H_
