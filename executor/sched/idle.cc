// Copyright 2026 The ripcord Authors.
#include "executor/sched/idle.h"

#include <atomic>

namespace ripcord::internal {

Idle::Idle(int num_workers)
    : num_workers_(num_workers),
      state_(static_cast<uint32_t>(num_workers) * kUnparkedOne),
      seat_state_(num_workers, kAwake) {
  sleepers_.reserve(num_workers);
}

int Idle::WorkerToNotify() {
  if (!ShouldNotify()) return -1;
  MutexLock lock(&mu_);
  // Re-check under the lock: another producer may have woken the worker.
  if (!ShouldNotify() || sleepers_.empty()) return -1;
  int w = sleepers_.back();
  sleepers_.pop_back();
  seat_state_[w] = kNotified;
  // seq_cst: keeps the state in the single total order of the producer's
  // StoreLoad and the parking transition.
  state_.fetch_add(kUnparkedOne + kSearchingOne, std::memory_order_seq_cst);
  return w;
}

int Idle::LendParked() {
  MutexLock lock(&mu_);
  if (sleepers_.empty()) {
    // A worker woken whose thread has not run yet: its wake-up was for
    // work the borrower is about to run (a caller's own spawns, most
    // often), so the seat serves that work at once, without the wait for
    // its thread to be scheduled.
    for (int w = 0; w < num_workers_; ++w) {
      if (seat_state_[w] != kNotified) continue;
      seat_state_[w] = kLent;
      // seq_cst: as below. It stays unparked; it no longer searches.
      state_.fetch_sub(kSearchingOne, std::memory_order_seq_cst);
      return w;
    }
    return -1;
  }
  const int w = sleepers_.back();
  sleepers_.pop_back();
  seat_state_[w] = kLent;
  // seq_cst: as in WorkerToNotify (the borrower counts as an unparked
  // worker that is not searching).
  state_.fetch_add(kUnparkedOne, std::memory_order_seq_cst);
  return w;
}

bool Idle::TransitionToSearching() {
  uint32_t s = state_.load(std::memory_order_seq_cst);
  if (2 * Searching(s) >= num_workers_) return false;
  state_.fetch_add(kSearchingOne, std::memory_order_seq_cst);
  return true;
}

bool Idle::TransitionFromSearching() {
  uint32_t prev = state_.fetch_sub(kSearchingOne, std::memory_order_seq_cst);
  return Searching(prev) == 1;
}

bool Idle::TransitionToParked(int worker, bool is_searching) {
  MutexLock lock(&mu_);
  uint32_t dec = kUnparkedOne + (is_searching ? kSearchingOne : 0);
  // seq_cst: the RMW half of the parking worker's StoreLoad (the parking
  // transition).
  uint32_t prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
  sleepers_.push_back(worker);
  seat_state_[worker] = kSleeping;
  return Searching(prev) == (is_searching ? 1 : 0);
}

Idle::Wake Idle::TransitionFromParked(int worker) {
  MutexLock lock(&mu_);
  if (seat_state_[worker] == kNotified) {
    seat_state_[worker] = kAwake;
    return Wake::kNotified;
  }
  if (seat_state_[worker] == kLent) return Wake::kLent;
  for (size_t i = 0; i < sleepers_.size(); ++i) {
    if (sleepers_[i] == worker) {
      sleepers_[i] = sleepers_.back();
      sleepers_.pop_back();
      break;
    }
  }
  seat_state_[worker] = kAwake;
  state_.fetch_add(kUnparkedOne, std::memory_order_seq_cst);
  return Wake::kSpurious;
}

int Idle::num_parked() const {
  MutexLock lock(&mu_);
  return static_cast<int>(sleepers_.size());
}

int Idle::NumUnparked() const {
  return Unparked(state_.load(std::memory_order_seq_cst));
}

int Idle::num_searching() const {
  return Searching(state_.load(std::memory_order_relaxed));
}

}  // namespace ripcord::internal
