// Copyright 2026 The ripcord Authors.
//
// The timer protocol. One mutex (mu_) guards the heap, every scheduled
// entry's private fields, firing_, cancel_waiters_, sleeping_until_ and
// stop_. There are no atomics: every cross-thread hand-off below is a
// release/acquire of mu_.
//
// An entry is in exactly one of three states, and every transition happens
// under mu_:
//   idle       heap_index_ == -1 and firing_ != e
//   scheduled  heap_index_ >= 0  (heap_[heap_index_] == e)
//   firing     firing_ == e      (popped; its callback runs without mu_)
// (A callback that re-arms its entry makes it "scheduled" while it is still
// "firing"; Cancel() handles that combination in step 6.)
//
// 1. Schedule(e, d): raise d to Now() if it is in the past, so that entries
//    already due fire first, in order (one that keeps re-arming itself with
//    a past deadline cannot starve the others). Under mu_, check e is idle,
//    set deadline_ and seq_, push it (sift up). If d < sleeping_until_, the
//    thread sleeps past the new earliest deadline: set sleeping_until_ =
//    InfinitePast() and Signal wake_cv_. Otherwise no signal: the thread
//    will wake for an earlier entry, or is awake and re-reads the heap
//    before sleeping (step 5).
// 2. The timer thread, holding mu_, reads now = Now() and end = next_seq_.
// 3. Firing round: while the top is due (deadline_ <= now) and was scheduled
//    before the round began (seq_ < end), pop it, set firing_ = e, unlock,
//    run fn(e), relock, set firing_ = nullptr. stop_ is checked before each
//    pop. The seq_ bound keeps one round finite even if the wall clock steps
//    back while a callback keeps re-arming its entry for "now"; such entries
//    fire in the next round, after a fresh Now().
// 4. After each callback, if Cancel() callers wait for it (cancel_waiters_ >
//    0): SignalAll fired_cv_, then wait on wake_cv_ until cancel_waiters_ ==
//    0 (the last one to leave signals). firing_ is nullptr meanwhile, so
//    every waiter can leave, and no new Cancel() starts waiting. Without
//    this, a callback that keeps re-arming for "now" could be popped again
//    before its canceller reacquired mu_, starving it forever.
// 5. When the top is not due (or the heap is empty): if it became due since
//    step 2, go back to step 2 without sleeping. Otherwise set
//    sleeping_until_ to its deadline (InfiniteFuture() if none), wait on
//    wake_cv_ with that deadline (Wait() releases mu_ atomically), and on
//    return set sleeping_until_ = InfinitePast() and go to step 2.
// 6. Cancel(e): under mu_, if firing_ == e and the caller is not the timer
//    thread, count itself in cancel_waiters_ and wait on fired_cv_ while
//    firing_ == e; on leaving, uncount and signal wake_cv_ if it was the
//    last. Then if e is scheduled (never fired, or re-armed by the callback
//    we waited for, or by the running callback that is calling us), remove
//    it and return true; else return false.
// 7. ~TimerQueue: under mu_, set stop_ and Signal wake_cv_; join; then mark
//    entries left in the heap idle and drop them.
//
// Why nothing is lost:
// - No missed wake-up: the thread reads the top and publishes
//   sleeping_until_ in one critical section (step 5), and CondVar waits
//   release mu_ atomically. A Schedule() that ran before that critical
//   section is seen in the heap; one that runs after it sees
//   sleeping_until_ and signals if its deadline is earlier. A spurious or
//   early return from the wait only re-runs steps 2-5: an entry fires only
//   when deadline_ <= Now(), so never early.
// - No lost firing: a due entry leaves the heap only by being fired (step 3)
//   or by a Cancel() that returns true, both under mu_, so exactly one of
//   them wins. Cancel() returning false means the entry was not scheduled
//   when it looked, i.e. idle (the callback has returned: step 6 waited for
//   it) or it is the caller's own running callback.
// - No use after free: the queue dereferences e only while it is scheduled
//   or between pop and the call of fn (under mu_). After fn returns it only
//   compares the pointer. An owner may destroy e once Cancel() returned
//   (step 6 waited for the callback) or once the callback told it so.
// - No deadlock: callbacks run without mu_; the thread waits for Cancel()
//   callers (step 4) only while none of them can be waiting on it.
// - Prompt destruction: stop_ is checked before every callback, and the
//   destructor's signal wakes a sleeping thread.
#include "executor/timer.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "absl/base/thread_annotations.h"
#include "executor/check.h"
#include "executor/threads.h"

namespace ripcord::internal {
namespace {

// The queue whose timer thread is the current thread, or nullptr. Lets
// Cancel() recognise a call from inside the firing callback (step 6) and
// ~TimerQueue a call from any callback.
thread_local const TimerQueue* tls_timer_thread_of = nullptr;

}  // namespace

TimerEntry::~TimerEntry() {
  // Unlocked read: if the owner synchronised with Cancel() or with the
  // callback, as it must before destroying a scheduled-or-firing entry, the
  // last write of heap_index_ (under mu_) happens-before this read.
  RIPCORD_CHECK(heap_index_ < 0,
                "TimerEntry destroyed while scheduled (deadline %s); "
                "TimerQueue::Cancel() it first",
                absl::FormatTime(deadline_).c_str());
}

TimerQueue::TimerQueue()
    : thread_(StartThread("ripcord-timer", [this] { Run(); })) {}

TimerQueue::~TimerQueue() {
  RIPCORD_CHECK(tls_timer_thread_of != this,
                "TimerQueue destroyed from inside one of its own timer "
                "callbacks; the timer thread cannot join itself");
  {
    MutexLock lock(&mu_);
    stop_ = true;
    wake_cv_.Signal();
  }
  thread_.join();
  MutexLock lock(&mu_);
  for (TimerEntry* e : heap_) e->heap_index_ = -1;
  heap_.clear();
}

void TimerQueue::Schedule(TimerEntry* e, absl::Time deadline) {
  // Step 1: a past deadline counts as now (read before locking, to keep the
  // critical section short).
  deadline = std::max(deadline, absl::Now());
  MutexLock lock(&mu_);
  RIPCORD_CHECK(e->heap_index_ < 0,
                "TimerQueue::Schedule() called on a TimerEntry that is "
                "already scheduled (deadline %s); Cancel() it first",
                absl::FormatTime(e->deadline_).c_str());
  e->deadline_ = deadline;
  e->seq_ = next_seq_++;
  Push(e);
  if (deadline < sleeping_until_) {
    // Step 1: a new earliest deadline. Only one signal per sleep: later
    // Schedule() calls see InfinitePast() and leave the thread alone.
    sleeping_until_ = absl::InfinitePast();
    wake_cv_.Signal();
  }
}

bool TimerQueue::Cancel(TimerEntry* e) {
  MutexLock lock(&mu_);
  if (firing_ == e && tls_timer_thread_of != this) {
    // Step 6: wait for the running callback to return.
    ++cancel_waiters_;
    while (firing_ == e) Wait(&fired_cv_, absl::InfiniteFuture());
    if (--cancel_waiters_ == 0) wake_cv_.Signal();
  }
  if (e->heap_index_ < 0) return false;
  RIPCORD_CHECK(static_cast<size_t>(e->heap_index_) < heap_.size() &&
                    heap_[e->heap_index_] == e,
                "TimerQueue::Cancel() called with a TimerEntry that is "
                "scheduled on another TimerQueue");
  Remove(e);
  return true;
}

size_t TimerQueue::pending() const {
  MutexLock lock(&mu_);
  return heap_.size();
}

uint64_t TimerQueue::wakeups() const {
  MutexLock lock(&mu_);
  return wakeups_;
}

void TimerQueue::Run() {
  tls_timer_thread_of = this;
  mu_.Lock();
  while (!stop_) {
    // Step 2.
    const absl::Time now = absl::Now();
    const uint64_t round_end = next_seq_;
    // Step 3.
    while (!stop_ && !heap_.empty() && heap_[0]->deadline_ <= now &&
           heap_[0]->seq_ < round_end) {
      TimerEntry* e = heap_[0];
      Remove(e);
      firing_ = e;
      const TimerEntry::Fn fn = e->fn_;
      mu_.Unlock();
      fn(e);  // may free e (if it did not re-arm): don't touch it after.
      mu_.Lock();
      firing_ = nullptr;
      // Step 4.
      if (cancel_waiters_ > 0) {
        fired_cv_.SignalAll();
        while (cancel_waiters_ > 0 && !stop_) {
          Wait(&wake_cv_, absl::InfiniteFuture());
        }
      }
    }
    if (stop_) break;
    // Step 5.
    if (!heap_.empty() && heap_[0]->deadline_ <= absl::Now()) continue;
    const absl::Time wake_at =
        heap_.empty() ? absl::InfiniteFuture() : heap_[0]->deadline_;
    sleeping_until_ = wake_at;
    Wait(&wake_cv_, wake_at);
    sleeping_until_ = absl::InfinitePast();
    ++wakeups_;
  }
  mu_.Unlock();
}

void TimerQueue::Wait(CondVar* cv, absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    cv->Wait(&mu_);
  } else {
    cv->WaitWithDeadline(&mu_, deadline);
  }
}

// ---- Heap (all under mu_) ----

bool TimerQueue::Earlier(const TimerEntry* a, const TimerEntry* b) const {
  if (a->deadline_ != b->deadline_) return a->deadline_ < b->deadline_;
  return a->seq_ < b->seq_;
}

void TimerQueue::Place(TimerEntry* e, size_t i) {
  heap_[i] = e;
  e->heap_index_ = static_cast<int64_t>(i);
}

void TimerQueue::SiftUp(size_t i) {
  TimerEntry* e = heap_[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (!Earlier(e, heap_[parent])) break;
    Place(heap_[parent], i);
    i = parent;
  }
  Place(e, i);
}

void TimerQueue::SiftDown(size_t i) {
  TimerEntry* e = heap_[i];
  const size_t n = heap_.size();
  while (true) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && Earlier(heap_[child + 1], heap_[child])) ++child;
    if (!Earlier(heap_[child], e)) break;
    Place(heap_[child], i);
    i = child;
  }
  Place(e, i);
}

void TimerQueue::Push(TimerEntry* e) {
  heap_.push_back(e);
  SiftUp(heap_.size() - 1);
}

void TimerQueue::Remove(TimerEntry* e) {
  const size_t i = static_cast<size_t>(e->heap_index_);
  TimerEntry* last = heap_.back();
  heap_.pop_back();
  e->heap_index_ = -1;
  if (last == e) return;  // e was the last element.
  Place(last, i);
  // The moved element may belong above or below its new slot.
  if (i > 0 && Earlier(last, heap_[(i - 1) / 2])) {
    SiftUp(i);
  } else {
    SiftDown(i);
  }
}

}  // namespace ripcord::internal
