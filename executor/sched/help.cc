// Copyright 2026 The ripcord Authors.
//
// help.cc: helping waits. TaskGroup::Wait() on a worker runs only tasks of
// the waited group's subtree (with a stack guard that hands a low-stack
// wait's seat to a fresh thread); the join waiters' lists and wake-ups.
// Steps, and why a helping wait never deadlocks or hangs:
// docs/design/parking.md, "Helping waits".
#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/base/check.h"
#include "executor/base/threads.h"
#include "executor/sched/scheduler.h"
#include "executor/sync/membarrier.h"

namespace ripcord::internal {
namespace {

// A helping wait on a stopped group runs the census every this many tasks.
constexpr uint32_t kCensusEvery = 256;

}  // namespace

// The ways of waiting once the waited subtree has nothing for us to run
// (oneTBB's waiters.h: one small class per way, with the same members).
// Spin() is called after each empty search: true to search again at once,
// false when spinning is over. kParks says what comes next: park until a
// subtree task appears, the group ends or the deadline passes (true), or
// end the help (false).

// A worker's Wait(), or one nested in a task on a lent seat.
class WorkerWaiter {
 public:
  static constexpr bool kParks = true;
  bool Spin() {
    if (++rounds_ < kRounds) {
      CpuRelax();
      return true;
    }
    rounds_ = 0;
    return false;
  }
  void Reset() { rounds_ = 0; }

 private:
  static constexpr int kRounds = 32;
  int rounds_ = 0;
};

// A thread outside the executor in a lent seat (ParallelFor's GuestSeat,
// Wait() joining in): it holds the seat only while it has work, so it never
// parks there. It spins longer (tens of microseconds, as a searching
// worker: the seat's core has nothing else to run meanwhile, and the end of
// a loop is usually that close), then gives the seat back.
class GuestWaiter {
 public:
  static constexpr bool kParks = false;
  bool Spin() {
    if (++rounds_ < kRounds) {
      CpuRelax();
      return true;
    }
    return false;
  }
  void Reset() { rounds_ = 0; }

 private:
  static constexpr int kRounds = 1024;
  int rounds_ = 0;
};


void ExecutorImpl::WakeOneParkedWaiter() {
  for (auto& w : workers_) {
    if (w->parked_waiter.load(std::memory_order_relaxed) &&
        w->parked_waiter.exchange(false, std::memory_order_acq_rel)) {
      parked_waiters_.fetch_sub(1, std::memory_order_seq_cst);
      w->wait_parker.Unpark();
      return;
    }
  }
}

void ExecutorImpl::AddJoinWaiter(const GroupState* group, TaskNode* waiter) {
  MutexLock lock(&join_mu_);
  TaskNode*& head = join_waiters_[group];
  waiter->next = head;
  head = waiter;
  num_join_waiters_.fetch_add(1, std::memory_order_seq_cst);
}

bool ExecutorImpl::RemoveJoinWaiter(const GroupState* group,
                                    TaskNode* waiter) {
  MutexLock lock(&join_mu_);
  auto it = join_waiters_.find(group);
  if (it == join_waiters_.end()) return false;
  for (TaskNode** p = &it->second; *p != nullptr; p = &(*p)->next) {
    if (*p != waiter) continue;
    *p = waiter->next;
    waiter->next = nullptr;
    if (it->second == nullptr) join_waiters_.erase(it);
    num_join_waiters_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }
  return false;
}

void ExecutorImpl::WakeWaitersOf(const GroupState* group) {
  // seq_cst: pairs with the seq_cst increment in AddJoinWaiter, which comes
  // before the waiter sets the WAITERS bit our caller saw.
  if (num_join_waiters_.load(std::memory_order_seq_cst) > 0) {
    TaskNode* chain = nullptr;
    {
      MutexLock lock(&join_mu_);
      auto it = join_waiters_.find(group);
      if (it != join_waiters_.end()) {
        chain = it->second;
        join_waiters_.erase(it);
      }
    }
    while (chain != nullptr) {
      TaskNode* next = chain->next;
      chain->next = nullptr;
      num_join_waiters_.fetch_sub(1, std::memory_order_relaxed);
      Schedule(chain);
      chain = next;
    }
  }
  for (auto& w : workers_) {
    // acquire: pairs with the release store of waiting_on in
    // HelpWhileWaiting (ordered before the WAITERS bit our caller saw).
    if (w->waiting_on.load(std::memory_order_acquire) == group) {
      if (w->parked_waiter.exchange(false, std::memory_order_acq_rel)) {
        parked_waiters_.fetch_sub(1, std::memory_order_seq_cst);
      }
      w->wait_parker.Unpark();
    }
  }
}

bool ExecutorImpl::HelpWhileWaiting(GroupState* group, absl::Time deadline) {
  return Help<WorkerWaiter>(group, deadline);
}

bool ExecutorImpl::HelpAsGuest(GroupState* group) {
  return Help<GuestWaiter>(group, absl::InfiniteFuture());
}

template <class Waiter>
bool ExecutorImpl::Help(GroupState* group, absl::Time deadline) {
  // The stack guard: too little stack left to nest another task.
  if (reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) <
      StackGuardLimit()) [[unlikely]] {
    return HelpOnFreshStack<Waiter>(group, deadline);
  }
  return HelpLoop<Waiter>(group, deadline);
}

template <class Waiter>
bool ExecutorImpl::HelpLoop(GroupState* group, absl::Time deadline) {
  Worker* w = tls_worker;
  // We return with no release deferred (the caller's frame must not find
  // any above it): every return below either follows a search that found
  // nothing (which flushes), or found the group joined, which our deferred
  // units of it or of its subtree would prevent (the count holds them, and
  // their frame keeps a census from passing).
  Waiter waiter;
  uint32_t ran = 0;
  bool fenced = false;  // GroupState::Joined's census state
  CensusPoll poll;
  for (;;) {
    // Releases we deferred of a group below the waited one go at once (the
    // group's own release may be what the waited group waits for); those
    // of the waited group itself go when they are all it waits for. Else
    // the search below would take (and move away) outer tasks of our own
    // deque while the wait is in fact over.
    // relaxed: owner-written (Worker::deferred_n).
    if (const int64_t n = w->deferred_n.load(std::memory_order_relaxed);
        n != 0 && (w->deferred_group.load(std::memory_order_relaxed) != group ||
                   group->CountAtMost(n))) {
      FlushDeferred(w);
    }
    if (group->Done()) {
      assert(w->deferred_n.load(std::memory_order_relaxed) == 0);
      return true;
    }
    TaskNode* t = FindWork(w, group, /*last_search=*/false);
    if (t != nullptr) {
      RunTask(w, t);
      waiter.Reset();
      // A stopped group: what we find is mostly tasks to drop. Every so
      // often, see whether only lazily dropped ones are left (the census).
      if (++ran % kCensusEvery == 0 && group->stop_requested() &&
          group->Joined(&fenced)) {
        assert(w->deferred_n.load(std::memory_order_relaxed) == 0);
        return true;
      }
      continue;
    }
    // No work for us: the releases we deferred may be what the group (or a
    // group of its subtree) still waits for.
    if (w->deferred_n.load(std::memory_order_relaxed) != 0) {
      FlushDeferred(w);
      continue;
    }
    const bool stopped = group->stop_requested();
    if (stopped && group->Joined(&fenced)) {
      assert(w->deferred_n.load(std::memory_order_relaxed) == 0);
      return true;
    }
    if (waiter.Spin()) continue;
    if constexpr (!Waiter::kParks) {
      assert(w->deferred_n.load(std::memory_order_relaxed) == 0);
      return false;
    }
    if (deadline != absl::InfiniteFuture() && absl::Now() >= deadline) {
      assert(w->deferred_n.load(std::memory_order_relaxed) == 0);
      return group->Joined(&fenced);
    }
    // The waiter-parks step. release: pairs with the acquire load in
    // WakeWaitersOf().
    w->waiting_on.store(group, std::memory_order_release);
    if (group->SetWaitersBit(/*census=*/stopped && group->MarkersClear())) {
      RunParkWindowHook(ParkSite::kHelpingWait);
      w->parked_waiter.store(true, std::memory_order_seq_cst);
      // seq_cst: the RMW half of our StoreLoad; the re-check follows.
      parked_waiters_.fetch_add(1, std::memory_order_seq_cst);
      // We count as unparked ourselves.
      FenceBeforeRecheck(/*others_unparked=*/idle_.NumUnparked() > 1);
      t = FindWork(w, group, /*last_search=*/true);
      if (t == nullptr && !group->Done()) {
        // A stopped group's waiter also polls (the census wait).
        w->wait_parker.ParkUntil(poll.Until(deadline, stopped));
      }
      if (w->parked_waiter.exchange(false, std::memory_order_acq_rel)) {
        parked_waiters_.fetch_sub(1, std::memory_order_seq_cst);
      }
    }
    w->waiting_on.store(nullptr, std::memory_order_relaxed);
    if (t != nullptr) RunTask(w, t);
  }
}

template <class Waiter>
bool ExecutorImpl::HelpOnFreshStack(GroupState* group, absl::Time deadline) {
  Worker* const w = tls_worker;
  GroupState* const current = tls_current_group;
  bool helped = false;
  // Thread creation and join order everything between the two threads:
  // the seat's record is used by one thread at a time.
  absl::StatusOr<Thread> t = TryStartThread(
      "ripcord-worker", worker_stack_size_, [&] {
        tls_worker = w;
        tls_current_group = current;
        // Not Help: a fresh stack runs at least one task even
        // when the C library's TLS (large under TSan) leaves less than the
        // guard's reserve, or the threads would only hand over.
        helped = HelpLoop<Waiter>(group, deadline);
        tls_current_group = nullptr;
        tls_worker = nullptr;
      });
  if (!t.ok()) return WaitWithoutHelping<Waiter>(w, group, deadline);
  t->join();  // parks this thread until the wait is over
  return helped;
}

template <class Waiter>
bool ExecutorImpl::WaitWithoutHelping(Worker* w, GroupState* group,
                                      absl::Time deadline) {
  // Nothing may stay with us that the group waits for: our deferred
  // releases, and the tasks the waiting task spawned onto our deque.
  FlushDeferred(w);
  while (w->deque.Bottom() > w->base) {
    TaskNode* t = w->deque.Pop();
    if (t == nullptr) break;
    inject_.PushBack(t);  // seq_cst RMW of the length
    NotifyAfterPush();
  }
  // A guest's caller then waits on the futex.
  if constexpr (!Waiter::kParks) return false;
  bool fenced = false;  // GroupState::Joined's census state
  for (;;) {
    if (group->Done()) return true;
    if (group->stop_requested() && group->Joined(&fenced)) return true;
    if (deadline != absl::InfiniteFuture() && absl::Now() >= deadline) {
      return group->Joined(&fenced);
    }
    // A poll: this path runs only when no thread can be started, and
    // WakeWaitersOf wakes only waiters that set the WAITERS bit.
    w->wait_parker.ParkUntil(
        std::min(deadline, absl::Now() + absl::Milliseconds(1)));
  }
}

}  // namespace ripcord::internal
