// Copyright 2026 The ripcord Authors.
//
// idle.h: which workers are parked and which are searching for work, and the
// decision whether a newly queued task must wake one. The protocol follows
// Tokio's scheduler/multi_thread/idle.rs (and Go's proc.go: "spinning" Ms);
// the code is ours.
//
// Protocol:
//  1. A producer makes a task visible (deque Push's store of bottom,
//     or the injection queue's seq_cst fetch_add of its length), then calls
//     ShouldNotify(), a seq_cst load of state_. It wakes a parked worker only
//     when no worker is searching and some worker is parked: a searching
//     worker will find the task, and waking more would be a thundering herd.
//  2. A worker that runs out of local work becomes searching (at most half
//     the workers search at once) and tries to steal. When it finds work it
//     stops searching; if it was the last searcher it wakes one more worker,
//     so the work it found can keep spreading (Go: "wakep after we found
//     work while spinning").
//  3. A worker with nothing to do parks: TransitionToParked() (a seq_cst RMW
//     under the mutex). If no other worker was searching at that RMW, it
//     re-checks every queue with seq_cst loads and wakes a worker if it
//     sees work. (A worker that was refused searching, because enough
//     others searched, did not look at the other deques: meanwhile the last
//     searcher may have found work, seen this worker still unparked, woken
//     nobody, and pushed a task whose producer saw no parked worker either.
//     Found by the stress test PushFromABusyWorkerWakesAParkingWorker. But
//     while another worker still searches at the RMW, no re-check is
//     needed, whether the parking worker searched or not: the last searcher
//     to stop, after our RMW in the total order, either finds work and
//     wakes a parked worker (step 2), or parks and re-checks itself. Since
//     session 7: a worker refused searching used to re-check always, and
//     its re-check's heavy fence, a membarrier, costs ~50 us on a VM while
//     another thread runs. A lent seat given back (LendParked) is parked
//     by the same rule.) tests/parking_test.cc holds a parking worker
//     between its last search and this RMW (TestHook::kParkWindow)
//     until another worker has pushed: without the re-check, its first
//     repetition loses the wake-up.
// Why no wake-up is lost: in step 1 the producer's store and load are seq_cst,
// and so are the last searcher's RMW and re-check in step 3. In the single
// total order either the producer's load sees the worker still searching (and
// the worker's re-check, which comes later, sees the task), or the producer
// sees no searcher and wakes a parked worker. A worker's own deque push is
// lighter (WsDeque::UseLightPublish: a release store and a compiler barrier
// before the load): then the last searcher runs a HeavyFence() between its
// RMW and its re-check whenever another worker is unparked (one that could
// be pushing), which gives the same either-or (executor/sync/membarrier.h).
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

  // Step 1: should a producer wake a worker? seq_cst load.
  bool ShouldNotify() const;
  // Picks a parked worker to wake and counts it as unparked and searching
  // (the woken worker starts out searching). -1 when none should be woken.
  int WorkerToNotify() ABSL_LOCKS_EXCLUDED(mu_);
  // Step 2. Returns false when enough workers already search.
  bool TransitionToSearching();
  // Returns true if the caller was the last searcher.
  bool TransitionFromSearching();
  // Step 3. Returns true if the caller must re-check every queue: no
  // other worker was searching at its RMW. Also gives back a lent seat
  // (LendParked), with is_searching false.
  bool TransitionToParked(int worker, bool is_searching) ABSL_LOCKS_EXCLUDED(mu_);
  // After a wake-up: kNotified if the worker was woken by WorkerToNotify()
  // (it is now counted unparked and searching); kSpurious if it was still
  // listed as parked (spurious or shutdown wake-up), in which case it is
  // removed from the list and counted unparked, not searching; kLent if its
  // seat is lent (LendParked): it must park again, untouched.
  enum class Wake { kNotified, kSpurious, kLent };
  Wake TransitionFromParked(int worker) ABSL_LOCKS_EXCLUDED(mu_);
  // Lends the seat of a parked worker to a thread outside the executor
  // (ParallelFor's caller, scheduler.cc "Guest seats"): takes a parked
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
  // caller's seq_cst RMW, is part of the same total order as step 1.
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
  // seq_cst: the load half of the producer's StoreLoad (protocol step 1);
  // pairs with the seq_cst RMW in TransitionToParked + the re-check.
  uint32_t s = state_.load(std::memory_order_seq_cst);
  return Searching(s) == 0 && Unparked(s) < num_workers_;
}

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_IDLE_H_
