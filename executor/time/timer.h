// Copyright 2026 The ripcord Authors.
//
// timer.h: the executor's one timer facility. A TimerQueue owns a dedicated
// thread ("ripcord-timer") and a binary min-heap of intrusive TimerEntry
// objects. It serves group timeouts (the callback stops a group) and
// coroutine sleeps (the callback schedules the coroutine's resumption).
//
// Costs: a pending entry costs its own (embedded) bytes plus one 24-byte slot
// in the heap (deadline, schedule order and the entry's address, so that
// ordering never reads an entry), and no CPU while it waits: the thread
// sleeps on a CondVar until the earliest deadline and is woken only when a
// new earliest deadline is scheduled. Schedule is O(log n) and Cancel O(1)
// amortized, each under one mutex: Cancel leaves a cancelled slot in the
// heap, dropped when it reaches the top or the end of the heap's array, or
// when cancelled slots outnumber live ones 8 times over (one O(n)
// compaction per n cancellations).
// Cancelling 100,000 sleeping coroutines at once was O(log n) cache misses
// each under the lock.
//
// Example (an owner embeds the entry and recovers itself in the callback):
//
//   struct Sleeper {
//     TimerEntry entry{&Sleeper::OnTimer};
//     static void OnTimer(TimerEntry* e) {
//       auto* self = reinterpret_cast<Sleeper*>(
//           reinterpret_cast<char*>(e) - offsetof(Sleeper, entry));
//       self->Wake();                       // short, never blocks
//     }
//   };
//   queue.Schedule(&sleeper.entry, absl::Now() + absl::Milliseconds(5));
//   ...
//   if (queue.Cancel(&sleeper.entry)) { /* OnTimer will never run */ }
//
// Deadlines are absl::Time (wall clock), as in the public API: a wall-clock
// step moves every pending deadline with it.
#ifndef RIPCORD_EXECUTOR_TIMER_H_
#define RIPCORD_EXECUTOR_TIMER_H_

#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "ripcord/internal/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ripcord::internal {

class TimerQueue;

// TimerEntry: one timer, embedded in its owner's object (a group, a
// coroutine awaiter). Not copyable or movable: the queue holds its address.
//
// Thread-compatible. While the entry is scheduled or its callback is running,
// the queue owns the private fields (they are read and written only under
// the queue's mutex); the owner must not destroy the entry then: Cancel() it
// first (or let it fire and learn that through the callback).
class TimerEntry {
 public:
  // Runs on the timer thread with no lock held. Must be short and must not
  // block (it delays every other timer). It may call Schedule() and Cancel()
  // on any entry, including Schedule(self) to re-arm. If it did not re-arm,
  // it may end *self's lifetime (or hand it to a thread that does): the queue
  // never touches the entry after fn returns.
  using Fn = void (*)(TimerEntry* self);

  explicit TimerEntry(Fn fn) : fn_(fn) {}
  TimerEntry(const TimerEntry&) = delete;
  TimerEntry& operator=(const TimerEntry&) = delete;
  TimerEntry(TimerEntry&&) = delete;
  TimerEntry& operator=(TimerEntry&&) = delete;
  // Aborts if the entry is still scheduled (a dangling pointer in the heap
  // would otherwise fire into freed memory). Inline: every coroutine Sleep
  // destroys one, 10^5 at a time when a group stops.
  ~TimerEntry() {
    // Unlocked read: if the owner synchronised with Cancel() or with the
    // callback, as it must before destroying a scheduled-or-firing entry,
    // the last write of heap_index_ (under mu_) happens-before this read.
    if (heap_index_ >= 0) [[unlikely]] DieScheduled();
  }

  // TimerEntry::deadline()
  // The deadline of the last Schedule(): the one it was given, or the time
  // of that call if the given one was earlier, rounded up to whole
  // nanoseconds as the queue orders it (absl::InfiniteFuture() if it was
  // never scheduled, and for a deadline past the year 2262).
  // Thread-safety: the owner's thread, or any thread that does not race with
  // a Schedule() of this entry.
  absl::Time deadline() const {
    return deadline_ns_ == INT64_MAX ? absl::InfiniteFuture()
                                     : absl::FromUnixNanos(deadline_ns_);
  }

 private:
  friend class TimerQueue;
  // ~TimerEntry's abort, out of line (it formats the deadline).
  [[noreturn]] void DieScheduled() const;

  // All fields below except fn_ are written only under TimerQueue::mu_ (by
  // Schedule, Cancel and the timer thread) and, while the entry is
  // scheduled, read only under it. (The deadline the heap orders by, and the
  // schedule order, live in the entry's heap slot.)
  // Position of the entry's slot in TimerQueue::heap_, or -1 when not
  // scheduled. First: the one field a cancellation touches, at the start
  // of the entry, so an owner can keep it on one cache line with its own
  // hot fields just before (sleep.cc's SleepOp).
  int64_t heap_index_ = -1;
  const Fn fn_;
  // deadline() in Unix nanoseconds (INT64_MAX: infinite), 8 bytes where an
  // absl::Time takes 16: every sleeping coroutine's frame holds an entry.
  int64_t deadline_ns_ = INT64_MAX;
};

// TimerQueue: a min-heap of TimerEntry by deadline and the thread that fires
// them. One per Executor.
//
// Thread-safe: every member may be called from any thread, including from a
// callback on the timer thread, except the destructor (see there).
class TimerQueue {
 public:
  // Starts the timer thread (internal::StartThread).
  TimerQueue();

  // TimerQueue::~TimerQueue()
  // Stops and joins the timer thread promptly: a callback that is running
  // finishes, no further callback starts. Entries still scheduled are dropped
  // without running and marked unscheduled (so they may be destroyed or
  // scheduled on another queue). Owners are expected to have cancelled them;
  // the Executor destroys its queue only after every group is gone.
  // Thread-safety: not concurrently with any other member; aborts if called
  // from a callback on the timer thread (it would join itself).
  ~TimerQueue();

  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // TimerQueue::Schedule()
  // Schedules `e` to run `e->fn_(e)` once, on the timer thread, at or after
  // `deadline`. A deadline in the past (including absl::InfinitePast())
  // fires promptly: it counts as the time of this call, so entries that were
  // already due fire first and a callback that keeps re-arming for the past
  // cannot starve them. absl::InfiniteFuture() is allowed and never fires
  // (the entry stays pending until cancelled). Entries fire in deadline
  // order, equal deadlines in Schedule() order. O(log n); wakes the timer
  // thread only if `deadline` is earlier than the one it sleeps until.
  // `e` must not be scheduled already (on this or any queue): that is a
  // programming error and aborts with a message. An entry whose callback is
  // running (it was popped) is not scheduled, so a callback may re-arm its
  // own entry.
  // Thread-safety: any thread, including callbacks.
  // Memory ordering: everything the caller did before Schedule()
  // happens-before the callback runs.
  void Schedule(TimerEntry* e, absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  // TimerQueue::Cancel()
  // Takes `e` out of the queue. O(1) amortized (see the file comment).
  // Returns true if it removed a pending schedule of `e` before that
  // schedule's callback started: that callback will never run.
  // Returns false if there was nothing to remove: the callback has already
  // run, is running, or `e` was never scheduled (or already cancelled).
  // If `e`'s callback is running on the timer thread, Cancel() first waits
  // until it has returned (then removes a re-arm the callback made, if any,
  // and returns true for it) -- unless Cancel() is called from inside that
  // very callback, in which case it does not wait (it still removes a re-arm
  // made earlier in the callback, returning true for it, else false).
  // Lifetime: after Cancel() returns on a thread other than the timer
  // thread, `e` is neither scheduled nor running and the queue never touches
  // it again, so the owner may destroy it.
  // Thread-safety: any thread, including callbacks. Callers must not hold a
  // lock that a callback takes (Cancel may wait for that callback).
  // Memory ordering: when Cancel() returns false because the callback ran,
  // everything the callback did happens-before Cancel() returns.
  bool Cancel(TimerEntry* e) ABSL_LOCKS_EXCLUDED(mu_);

  // TimerQueue::CancelMany()
  // Cancel() for each of entries[0, n) under ONE lock acquisition, except
  // that it never waits: an entry whose callback is running is left alone.
  // Sets out[i] to what happened to entries[i]:
  //   kRemoved  its pending schedule was removed before the callback started:
  //             the callback will never run (Cancel() would return true);
  //   kIdle     nothing to remove: never scheduled, already cancelled, or
  //             its callback has run and returned;
  //   kRunning  its callback is running now; call Cancel() on it to wait.
  // After kRemoved or kIdle, as after Cancel() returned, the queue never
  // touches the entry again. For cancelling many entries at once (a stopped
  // group's sleeping coroutines), where one Cancel() each would make the
  // cancelling threads queue up on the lock.
  // Thread-safety: any thread, including callbacks.
  // Memory ordering: as Cancel(); after kIdle for an entry that fired,
  // everything its callback did happens-before CancelMany() returns.
  enum class CancelResult : uint8_t { kRemoved, kIdle, kRunning };
  void CancelMany(TimerEntry* const* entries, size_t n, CancelResult* out)
      ABSL_LOCKS_EXCLUDED(mu_);

  // TimerQueue::pending()
  // The number of scheduled entries (not counting one whose callback is
  // running). A snapshot, for diagnostics and tests.
  // Thread-safety: any thread.
  size_t pending() const ABSL_LOCKS_EXCLUDED(mu_);

  // TimerQueue::wakeups()
  // How many times the timer thread has returned from its sleep (deadline
  // reached, new earliest deadline, or spurious). For tests that check the
  // thread is not polling. Thread-safety: any thread.
  uint64_t wakeups() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // The timer thread's loop.
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  // cv->Wait(&mu_), or WaitWithDeadline for a finite deadline.
  void Wait(CondVar* cv, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // One heap slot: what the heap orders by, and the entry (nullptr once the
  // entry was cancelled: a "cancelled slot", never dereferenced).
  struct Slot {
    // Deadline in Unix nanoseconds, rounded up (so firing at or after it is
    // never early); INT64_MAX for absl::InfiniteFuture().
    int64_t deadline_ns;
    // Tie-break among equal deadlines: entries fire in Schedule() order.
    // Also bounds one firing round (see timer.cc, the firing round).
    uint64_t seq;
    TimerEntry* entry;
  };

  // Heap helpers. SiftUp/SiftDown/PopTop keep heap_index_ of each moved live
  // entry in step.
  static bool Earlier(const Slot& a, const Slot& b) {
    if (a.deadline_ns != b.deadline_ns) return a.deadline_ns < b.deadline_ns;
    return a.seq < b.seq;
  }
  void Place(const Slot& s, size_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SiftUp(size_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SiftDown(size_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the top slot and returns its entry (nullptr: a cancelled slot).
  TimerEntry* PopTop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pops cancelled slots off the top, so that heap_[0] (if any) is live.
  void DropCancelledTop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cancel (atop timer.cc), once any wait is over: if e is scheduled, turns its
  // slot into a cancelled slot and returns true.
  bool RemoveLocked(TimerEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Empties or compacts the heap when cancelled slots warrant it (Cancel, atop
  // timer.cc).
  void TidyAfterCancel() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops every cancelled slot and rebuilds the heap (O(n)).
  void Compact() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;

  // The timer thread sleeps on wake_cv_: until the earliest deadline, or
  // until the last Cancel() waiter has left (timer.cc, the canceller hand-off).
  // Signalled by Schedule() only for a new earliest deadline, by that last
  // waiter, and by the destructor.
  CondVar wake_cv_;
  // Cancel() callers wait on fired_cv_ for the running callback to return.
  // Signalled (all) by the timer thread after a callback when waiters exist.
  CondVar fired_cv_;

  // Min-heap of slots by (deadline_ns, seq). For a live slot,
  // heap_[i].entry->heap_index_ == i.
  std::vector<Slot> heap_ ABSL_GUARDED_BY(mu_);
  // Slots in heap_ whose entry is live (not cancelled): pending().
  size_t live_ ABSL_GUARDED_BY(mu_) = 0;
  // The entry whose callback is running now (popped, not in heap_), or
  // nullptr. Written by the timer thread; read by Cancel(). Compared only,
  // never dereferenced: the callback may have freed it.
  TimerEntry* firing_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Number of Cancel() calls waiting on fired_cv_.
  int cancel_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  // The deadline (Slot::deadline_ns) the timer thread sleeps until; INT64_MIN
  // while it is awake (it re-reads the heap before sleeping, so no signal is
  // needed) or after it has been signalled once. Schedule() signals iff its
  // deadline is earlier.
  int64_t sleeping_until_ns_ ABSL_GUARDED_BY(mu_) = INT64_MIN;
  // Next Slot::seq.
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  // Set once by the destructor; the thread exits at its next check.
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  // Written once by the constructor, joined by the destructor.
  std::thread thread_;
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_TIMER_H_
