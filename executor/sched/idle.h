// Copyright 2026 The ripcord Authors.
//
// idle.h: which workers are parked and which are searching for work, and
// whether a newly queued task must wake one (Tokio's idle.rs, Go's spinning
// Ms; the code is ours). The producer's StoreLoad, the searching and parking
// transitions, the re-check rule (a parking worker re-checks the queues only
// when no other worker searches: the heavy fence costs tens of microseconds)
// and why no wake-up is lost: docs/design/parking.md, "The idle protocol".
// tests/parking_test.cc holds a parking worker between its last search
// and the parking RMW (TestHook::kParkWindow).
#ifndef RIPCORD_EXECUTOR_IDLE_H_
#define RIPCORD_EXECUTOR_IDLE_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "ripcord/internal/mutex.h"

namespace ripcord::internal {

// Idle: Thread-safe.
class Idle {
 public:
  explicit Idle(int num_workers);

  // The producer's StoreLoad: should a producer wake a worker? seq_cst load.
  bool ShouldNotify() const;
  // Picks a parked worker to wake and counts it as unparked and searching
  // (the woken worker starts out searching). -1 when none should be woken.
  int WorkerToNotify() ABSL_LOCKS_EXCLUDED(mu_);
  // The searching transition. Returns false when enough workers already search.
  bool TransitionToSearching();
  // Returns true if the caller was the last searcher.
  bool TransitionFromSearching();
  // The parking transition. Returns true if the caller must re-check every
  // queue (the re-check rule): no other worker was searching at its RMW. Also
  // gives back a lent seat (LendParked), with is_searching false.
  bool TransitionToParked(int worker, bool is_searching) ABSL_LOCKS_EXCLUDED(mu_);
  // After a wake-up: kNotified if the worker was woken by WorkerToNotify()
  // (it is now counted unparked and searching); kSpurious if it was still
  // listed as parked (spurious or shutdown wake-up), in which case it is
  // removed from the list and counted unparked, not searching; kLent if its
  // seat is lent (LendParked): it must park again, untouched.
  enum class Wake { kNotified, kSpurious, kLent };
  Wake TransitionFromParked(int worker) ABSL_LOCKS_EXCLUDED(mu_);
  // Lends the seat of a parked worker to a thread outside the executor
  // (ParallelFor's caller, guest_seat.cc): takes a parked
  // worker off the list and counts it unparked, not searching, like a worker
  // waiting in a Wait(); its thread stays parked (kLent) until the seat is
  // given back with TransitionToParked(worker, false). With no worker
  // parked, it lends the seat of a worker that WorkerToNotify picked and
  // whose thread has not called TransitionFromParked yet (its wake-up then
  // says kLent; it stops counting as searching). Returns the worker's
  // index, or -1 when there is no such seat.
  int LendParked() ABSL_LOCKS_EXCLUDED(mu_);
  int num_parked() const ABSL_LOCKS_EXCLUDED(mu_);
  int num_searching() const;
  // Workers not parked now (searching, running, or waiting in a Wait()).
  // seq_cst load: ExecutorImpl::FenceBeforeRecheck's decision, after the
  // caller's seq_cst RMW, is part of the same total order as the producer's
  // StoreLoad.
  int NumUnparked() const;

 private:
  // state_: low 16 bits = workers not parked, next 16 bits = searching.
  static constexpr uint32_t kUnparkedOne = 1;
  static constexpr uint32_t kSearchingOne = 1u << 16;
  static constexpr uint32_t kMask = 0xffff;
  static int Unparked(uint32_t s) { return static_cast<int>(s & kMask); }
  static int Searching(uint32_t s) { return static_cast<int>(s >> 16); }

  const int num_workers_;
  std::atomic<uint32_t> state_;
  mutable Mutex mu_;
  std::vector<int> sleepers_ ABSL_GUARDED_BY(mu_);
  // Per worker: kAwake, kSleeping (listed in sleepers_), kNotified (picked
  // by WorkerToNotify, its thread not yet past TransitionFromParked) or
  // kLent.
  static constexpr char kAwake = 0;
  static constexpr char kSleeping = 1;
  static constexpr char kLent = 2;
  static constexpr char kNotified = 3;
  std::vector<char> seat_state_ ABSL_GUARDED_BY(mu_);
};

inline bool Idle::ShouldNotify() const {
  // seq_cst: the load half of the producer's StoreLoad;
  // pairs with the seq_cst RMW in TransitionToParked + the re-check.
  uint32_t s = state_.load(std::memory_order_seq_cst);
  return Searching(s) == 0 && Unparked(s) < num_workers_;
}

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_IDLE_H_
