// Copyright 2026 The ripcord Authors.
//
// The timer protocol. One mutex (mu_) guards the heap, every scheduled
// entry's private fields, live_, firing_, cancel_waiters_,
// sleeping_until_ns_ and stop_. There are no atomics: every cross-thread
// hand-off below is a release/acquire of mu_.
//
// The heap holds slots by value: (deadline_ns, seq, entry). Ordering reads
// only slots, never entries. A cancelled entry leaves its slot behind with
// entry == nullptr (a "cancelled slot"): the queue never dereferences it.
//
// An entry is in exactly one of three states, and every transition happens
// under mu_:
//   idle       heap_index_ == -1 and firing_ != e
//   scheduled  heap_index_ >= 0  (heap_[heap_index_].entry == e)
//   firing     firing_ == e      (popped; its callback runs without mu_)
// (A callback that re-arms its entry makes it "scheduled" while it is still
// "firing"; Cancel() handles that combination in step 6.)
//
// 1. Schedule(e, d): raise d to Now() if it is in the past, so that entries
//    already due fire first, in order (one that keeps re-arming itself with
//    a past deadline cannot starve the others); round it up to whole
//    nanoseconds. Under mu_, check e is idle, set deadline_ns_, push the slot
//    (sift up) with seq = next_seq_++, ++live_. If its deadline is before
//    sleeping_until_ns_, the thread sleeps past the new earliest deadline:
//    set sleeping_until_ns_ = INT64_MIN and Signal wake_cv_. Otherwise no
//    signal: the thread will wake for an earlier slot, or is awake and
//    re-reads the heap before sleeping (step 5).
// 2. The timer thread, holding mu_, reads now = Now() and end = next_seq_.
// 3. Firing round: drop cancelled slots off the top; while the top is due
//    (deadline_ns <= now) and was scheduled before the round began
//    (seq < end), pop it, mark e idle, set firing_ = e, unlock, run fn(e),
//    relock, set firing_ = nullptr, and drop cancelled slots off the top
//    again. stop_ is checked before each pop. The seq bound keeps one round
//    finite even if the wall clock steps back while a callback keeps
//    re-arming its entry for "now"; such entries fire in the next round,
//    after a fresh Now().
// 4. After each callback, if Cancel() callers wait for it (cancel_waiters_ >
//    0): SignalAll fired_cv_, then wait on wake_cv_ until cancel_waiters_ ==
//    0 (the last one to leave signals). firing_ is nullptr meanwhile, so
//    every waiter can leave, and no new Cancel() starts waiting. Without
//    this, a callback that keeps re-arming for "now" could be popped again
//    before its canceller reacquired mu_, starving it forever.
// 5. When the top is not due (or the heap is empty): if it became due since
//    step 2, go back to step 2 without sleeping. Otherwise set
//    sleeping_until_ns_ to its deadline (INT64_MAX if none), wait on
//    wake_cv_ until then (Wait() releases mu_ atomically), and on return set
//    sleeping_until_ns_ = INT64_MIN and go to step 2. (The top is live here:
//    step 3 dropped cancelled slots. A Cancel() while the thread sleeps may
//    leave a cancelled slot on top; the thread then wakes at its deadline,
//    finds nothing due and sleeps again: one spare wake-up, as when Cancel()
//    removed the top outright, which never signalled either.)
// 6. Cancel(e): under mu_, if firing_ == e and the caller is not the timer
//    thread, count itself in cancel_waiters_ and wait on fired_cv_ while
//    firing_ == e; on leaving, uncount and signal wake_cv_ if it was the
//    last. Then if e is scheduled (never fired, or re-armed by the callback
//    we waited for, or by the running callback that is calling us), clear
//    its slot's entry (the slot stays, cancelled), mark e idle, --live_,
//    and return true; else return false. Cancelled slots at the end of
//    the array are popped at once (removing a heap's last slot keeps it a
//    heap): a stop cancels its sleepers newest first (stop_state.cc claims
//    the newest entry segments first), and sleeps scheduled in order of
//    deadline sit in the heap's array in about that order, so a mass stop
//    shrinks the heap from its end instead of leaving cancelled slots for
//    compactions (which touched every surviving entry, a cold line each).
//    When no live slot is left the heap is emptied; when cancelled slots outnumber live ones
//    kCompactRatio times over (and there are at least kMinCompaction of
//    them), Compact() drops them all and rebuilds the heap in O(n): at
//    least 8n/9 cancellations pay for each compaction of n slots, so Cancel
//    is O(1) amortized and the heap holds at most about 9 times the live
//    slots (24 bytes each). After either, spare capacity
//    beyond 4x the slots left is given back (shrink_to_fit).
//    CancelMany(entries) does step 6 for many entries under one lock
//    acquisition, without the wait: a firing entry is reported, not waited
//    for (its owner calls Cancel() for it).
// 7. ~TimerQueue: under mu_, set stop_ and Signal wake_cv_; join; then mark
//    entries left in the heap idle and drop them.
//
// Why nothing is lost:
// - No missed wake-up: the thread reads the top and publishes
//   sleeping_until_ns_ in one critical section (step 5), and CondVar waits
//   release mu_ atomically. A Schedule() that ran before that critical
//   section is seen in the heap; one that runs after it sees
//   sleeping_until_ns_ and signals if its deadline is earlier. A spurious or
//   early return from the wait only re-runs steps 2-5: an entry fires only
//   when its rounded-up deadline_ns <= Now(), so never early.
// - No lost firing: a due live slot leaves the heap (or stops being live)
//   only by being fired (step 3) or by a Cancel() that returns true, both
//   under mu_, so exactly one of them wins. Cancel() returning false means
//   the entry was not scheduled when it looked, i.e. idle (the callback has
//   returned: step 6 waited for it) or it is the caller's own running
//   callback. Dropping cancelled slots and compaction never touch a live
//   slot's entry except to update its heap_index_.
// - No use after free: the queue dereferences e only while e is scheduled
//   (its live slot, under mu_) or between pop and the call of fn. A
//   cancelled slot has no entry pointer left. After fn returns the queue
//   only compares the pointer. An owner may destroy e once Cancel() returned
//   (step 6 waited for the callback) or once the callback told it so.
// - No deadlock: callbacks run without mu_; the thread waits for Cancel()
//   callers (step 4) only while none of them can be waiting on it.
// - Prompt destruction: stop_ is checked before every callback, and the
//   destructor's signal wakes a sleeping thread.
#include "executor/time/timer.h"

#include <algorithm>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/base/thread_annotations.h"
#include "executor/base/check.h"
#include "executor/base/prefetch.h"
#include "executor/base/threads.h"

namespace ripcord::internal {
namespace {

// The queue whose timer thread is the current thread, or nullptr. Lets
// Cancel() recognise a call from inside the firing callback (step 6) and
// ~TimerQueue a call from any callback.
thread_local const TimerQueue* tls_timer_thread_of = nullptr;

// Compaction waits for at least this many cancelled slots (step 6), so that
// a small queue does not rebuild on every other Cancel().
constexpr size_t kMinCompaction = 64;

// Compaction waits until cancelled slots outnumber live ones this many times
// (step 6). Compact() writes the new index into every live entry, each on a
// cold line: when a stop cancelled 100,000 sleeping coroutines at a ratio of
// 1, the compactions at 50,000, 25,000, ... live entries touched 100,000
// entries under the lock (~7% of the stop's CPU time); at 8, about 12,500.
constexpr size_t kCompactRatio = 8;

// `t` in Unix nanoseconds, rounded up (so a slot is due no earlier than its
// entry's deadline); INT64_MAX for InfiniteFuture() and beyond the range.
int64_t CeilNanos(absl::Time t) {
  if (t == absl::InfiniteFuture()) return INT64_MAX;
  const int64_t ns = absl::ToUnixNanos(t);  // rounds down, saturates
  if (ns != INT64_MAX && absl::FromUnixNanos(ns) < t) return ns + 1;
  return ns;
}

// Now() in Unix nanoseconds, rounded down.
int64_t NowNanos() { return absl::ToUnixNanos(absl::Now()); }

}  // namespace

void TimerEntry::DieScheduled() const {
  RIPCORD_CHECK(heap_index_ < 0,
                "TimerEntry destroyed while scheduled (deadline %s); "
                "TimerQueue::Cancel() it first",
                absl::FormatTime(deadline()).c_str());
  __builtin_unreachable();
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
  for (const Slot& s : heap_) {
    if (s.entry != nullptr) s.entry->heap_index_ = -1;
  }
  heap_.clear();
  live_ = 0;
}

void TimerQueue::Schedule(TimerEntry* e, absl::Time deadline) {
  // Step 1: a past deadline counts as now (read before locking, to keep the
  // critical section short).
  deadline = std::max(deadline, absl::Now());
  const int64_t deadline_ns = CeilNanos(deadline);
  MutexLock lock(&mu_);
  RIPCORD_CHECK(e->heap_index_ < 0,
                "TimerQueue::Schedule() called on a TimerEntry that is "
                "already scheduled (deadline %s); Cancel() it first",
                absl::FormatTime(e->deadline()).c_str());
  e->deadline_ns_ = deadline_ns;
  heap_.push_back(Slot{deadline_ns, next_seq_++, e});
  SiftUp(heap_.size() - 1);
  ++live_;
  if (deadline_ns < sleeping_until_ns_) {
    // Step 1: a new earliest deadline. Only one signal per sleep: later
    // Schedule() calls see INT64_MIN and leave the thread alone.
    sleeping_until_ns_ = INT64_MIN;
    wake_cv_.Signal();
  }
}

// Inline: CancelMany calls it for every entry of a stop's batch.
inline bool TimerQueue::RemoveLocked(TimerEntry* e) {
  if (e->heap_index_ < 0) return false;
  const size_t i = static_cast<size_t>(e->heap_index_);
  RIPCORD_CHECK(i < heap_.size() && heap_[i].entry == e,
                "TimerQueue::Cancel() called with a TimerEntry that is "
                "scheduled on another TimerQueue");
  heap_[i].entry = nullptr;  // a cancelled slot from now on
  e->heap_index_ = -1;
  --live_;
  return true;
}

bool TimerQueue::Cancel(TimerEntry* e) {
  MutexLock lock(&mu_);
  if (firing_ == e && tls_timer_thread_of != this) {
    // Step 6: wait for the running callback to return.
    ++cancel_waiters_;
    while (firing_ == e) Wait(&fired_cv_, absl::InfiniteFuture());
    if (--cancel_waiters_ == 0) wake_cv_.Signal();
  }
  if (!RemoveLocked(e)) return false;
  TidyAfterCancel();
  return true;
}

void TimerQueue::CancelMany(TimerEntry* const* entries, size_t n,
                            CancelResult* out) {
  MutexLock lock(&mu_);
  // The entries' slots lie anywhere in a heap of up to millions of slots:
  // fetch them together instead of one miss per removal under the lock.
  for (size_t i = 0; i < n; ++i) {
    const int64_t index = entries[i]->heap_index_;
    if (index >= 0 && static_cast<size_t>(index) < heap_.size()) {
      PrefetchForWrite(&heap_[static_cast<size_t>(index)]);
    }
  }
  bool removed_any = false;
  for (size_t i = 0; i < n; ++i) {
    TimerEntry* const e = entries[i];
    // Step 6 without the wait: a firing entry is the caller's to Cancel().
    if (firing_ == e) {
      out[i] = CancelResult::kRunning;
    } else if (RemoveLocked(e)) {
      out[i] = CancelResult::kRemoved;
      removed_any = true;
    } else {
      out[i] = CancelResult::kIdle;
    }
  }
  if (removed_any) TidyAfterCancel();
}

void TimerQueue::TidyAfterCancel() {
  while (!heap_.empty() && heap_.back().entry == nullptr) heap_.pop_back();
  const size_t cancelled = heap_.size() - live_;
  if (live_ == 0) {
    heap_.clear();
  } else if (cancelled > kCompactRatio * live_ && cancelled >= kMinCompaction) {
    Compact();
  } else {
    return;
  }
  // Give back what a burst of timers left: a queue that once held a million
  // entries would otherwise keep 24 MB forever. Amortized like the growth.
  if (heap_.capacity() > 4 * heap_.size() + kMinCompaction) {
    heap_.shrink_to_fit();
  }
}

size_t TimerQueue::pending() const {
  MutexLock lock(&mu_);
  return live_;
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
    const int64_t now_ns = NowNanos();
    const uint64_t round_end = next_seq_;
    // Step 3.
    DropCancelledTop();
    while (!stop_ && !heap_.empty() && heap_[0].deadline_ns <= now_ns &&
           heap_[0].seq < round_end) {
      TimerEntry* e = PopTop();
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
      DropCancelledTop();
    }
    if (stop_) break;
    // Step 5.
    if (!heap_.empty() && heap_[0].deadline_ns <= NowNanos()) continue;
    const int64_t wake_at_ns = heap_.empty() ? INT64_MAX : heap_[0].deadline_ns;
    sleeping_until_ns_ = wake_at_ns;
    Wait(&wake_cv_, wake_at_ns == INT64_MAX ? absl::InfiniteFuture()
                                            : absl::FromUnixNanos(wake_at_ns));
    sleeping_until_ns_ = INT64_MIN;
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

void TimerQueue::Place(const Slot& s, size_t i) {
  heap_[i] = s;
  if (s.entry != nullptr) s.entry->heap_index_ = static_cast<int64_t>(i);
}

void TimerQueue::SiftUp(size_t i) {
  const Slot s = heap_[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (!Earlier(s, heap_[parent])) break;
    Place(heap_[parent], i);
    i = parent;
  }
  Place(s, i);
}

void TimerQueue::SiftDown(size_t i) {
  const Slot s = heap_[i];
  const size_t n = heap_.size();
  while (true) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && Earlier(heap_[child + 1], heap_[child])) ++child;
    if (!Earlier(heap_[child], s)) break;
    Place(heap_[child], i);
    i = child;
  }
  Place(s, i);
}

TimerEntry* TimerQueue::PopTop() {
  TimerEntry* const e = heap_[0].entry;
  if (e != nullptr) {
    e->heap_index_ = -1;
    --live_;
  }
  const Slot last = heap_.back();
  heap_.pop_back();
  if (!heap_.empty()) {
    heap_[0] = last;
    SiftDown(0);
  }
  return e;
}

void TimerQueue::DropCancelledTop() {
  while (!heap_.empty() && heap_[0].entry == nullptr) PopTop();
}

void TimerQueue::Compact() {
  size_t n = 0;
  for (const Slot& s : heap_) {
    if (s.entry != nullptr) heap_[n++] = s;
  }
  heap_.resize(n);
  // Floyd's heap construction on the slots alone, then one pass to give each
  // live entry its final index (rather than one write per move).
  for (size_t i = n / 2; i-- > 0;) {
    const Slot s = heap_[i];
    size_t j = i;
    while (true) {
      size_t child = 2 * j + 1;
      if (child >= n) break;
      if (child + 1 < n && Earlier(heap_[child + 1], heap_[child])) ++child;
      if (!Earlier(heap_[child], s)) break;
      heap_[j] = heap_[child];
      j = child;
    }
    heap_[j] = s;
  }
  // One store per live entry, each on its own cold line: keep a few misses
  // in flight.
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) PrefetchForWrite(heap_[i + kAhead].entry);
    heap_[i].entry->heap_index_ = static_cast<int64_t>(i);
  }
}

}  // namespace ripcord::internal
