// Copyright 2026 The ripcord Authors.
//
// parker.h: one thread's park/unpark token (Rust's thread::park, on a futex).
// Thread-safety: Park()/ParkUntil() only by the owning thread; Unpark() by any
// thread. An Unpark() before Park() makes the next Park() return at once.
#ifndef RIPCORD_EXECUTOR_PARKER_H_
#define RIPCORD_EXECUTOR_PARKER_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "executor/sync/futex.h"

namespace ripcord::internal {

class Parker {
 public:
  // Returns after an Unpark() (possibly one that came before the call) or a
  // spurious wake-up; callers re-check their condition.
  void Park() {
    // acquire: pairs with the release exchange in Unpark(); what the
    // unparker wrote before unparking is visible after Park() returns.
    if (state_.exchange(kEmpty, std::memory_order_acquire) == kNotified) return;
    FutexWait(&state_, kEmpty);
    state_.exchange(kEmpty, std::memory_order_acquire);
  }
  // As Park(), but returns by `deadline` at the latest.
  void ParkUntil(absl::Time deadline) {
    if (state_.exchange(kEmpty, std::memory_order_acquire) == kNotified) return;
    if (deadline == absl::InfiniteFuture()) {
      FutexWait(&state_, kEmpty);
    } else {
      FutexWaitUntil(&state_, kEmpty, deadline);
    }
    state_.exchange(kEmpty, std::memory_order_acquire);
  }
  void Unpark() {
    // release: pairs with the acquire exchange in Park().
    if (state_.exchange(kNotified, std::memory_order_release) != kNotified) {
      FutexWake(&state_, 1);
    }
  }

 private:
  static constexpr uint32_t kEmpty = 0;
  static constexpr uint32_t kNotified = 1;
  std::atomic<uint32_t> state_{kEmpty};
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_PARKER_H_
