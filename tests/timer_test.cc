// Copyright 2026 The ripcord Authors.
//
// Tests for executor/time/timer.h: firing time and order, Cancel's contract
// (true => never runs; false => ran exactly once and has returned), re-arming,
// 100,000 timers, destruction with pending entries, and a concurrent stress.
//
// Latency bounds here are deliberately generous (50 ms where the requirement
// is 2 ms): CI machines are shared and sanitizers slow everything by 5-20x,
// so a tight bound would test the machine, not the code. Speed belongs in
// benchmarks.
#include "executor/time/timer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

#if defined(RIPCORD_SANITIZER) || defined(__SANITIZE_THREAD__) || \
    defined(__SANITIZE_ADDRESS__)
#define RIPCORD_TIMER_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define RIPCORD_TIMER_TEST_SANITIZED 1
#endif
#endif

namespace ripcord::internal {
namespace {

#ifdef RIPCORD_TIMER_TEST_SANITIZED
constexpr int kScale = 5;  // sanitizers: a fifth of the work
#else
constexpr int kScale = 1;
#endif

// Generous: see the file comment.
constexpr absl::Duration kLateBound = absl::Milliseconds(50);

// A one-shot event like Event, but built on std::mutex so that
// TSan sees its happens-before edge: Debian's Abseil is not TSan-instrumented
// (Notify() lives in the prebuilt library), so a test relying on
// Event for ordering would report false races.
class Event {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
    cv_.notify_all();
  }
  // Returns true once notified (everything before Notify() is visible), or
  // false after `timeout`.
  bool WaitFor(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [this] { return notified_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// A timer whose callback records when and how often it ran.
struct Probe : TimerEntry {
  Probe() : TimerEntry(&Probe::OnFire) {}

  static void OnFire(TimerEntry* self) {
    auto* p = static_cast<Probe*>(self);
    p->fired_at.store(absl::ToUnixNanos(absl::Now()),
                      std::memory_order_relaxed);
    // release: publishes fired_at; pairs with the acquire loads in tests.
    p->runs.fetch_add(1, std::memory_order_release);
    if (p->done != nullptr) p->done->Notify();
  }

  std::atomic<int> runs{0};
  std::atomic<int64_t> fired_at{0};
  Event* done = nullptr;
};

TEST(TimerQueue, FiresOnceAtOrAfterDeadline) {
  // An entry fires exactly once, never before its deadline, and within
  // kLateBound after it; it no longer counts as pending afterwards.
  TimerQueue q;
  Event done;
  Probe p;
  p.done = &done;
  const absl::Time deadline = absl::Now() + absl::Milliseconds(20);
  q.Schedule(&p, deadline);
  ASSERT_TRUE(done.WaitFor(absl::Seconds(10)));
  // Equal unless this thread was preempted for 20 ms before Schedule() (then
  // the deadline had passed and counts as the time of the call).
  EXPECT_GE(p.deadline(), deadline);
  const absl::Time fired = absl::FromUnixNanos(p.fired_at.load());
  EXPECT_GE(fired, p.deadline());
  EXPECT_LT(fired - p.deadline(), kLateBound);
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(p.runs.load(std::memory_order_acquire), 1);
  EXPECT_EQ(q.pending(), 0u);
  EXPECT_FALSE(q.Cancel(&p));  // already fired: nothing to remove
}

TEST(TimerQueue, PendingAndDeadline) {
  // pending() counts scheduled entries; deadline() is the deadline given, or
  // the time of the Schedule() call when the given one had already passed.
  TimerQueue q;
  Probe far, never, past;
  EXPECT_EQ(q.pending(), 0u);
  EXPECT_EQ(far.deadline(), absl::InfiniteFuture());
  const absl::Time far_deadline = absl::Now() + absl::Hours(1);
  q.Schedule(&far, far_deadline);
  q.Schedule(&never, absl::InfiniteFuture());
  EXPECT_EQ(q.pending(), 2u);
  EXPECT_EQ(far.deadline(), far_deadline);
  EXPECT_EQ(never.deadline(), absl::InfiniteFuture());
  const absl::Time before = absl::Now();
  q.Schedule(&past, absl::InfinitePast());
  const absl::Time after = absl::Now();
  EXPECT_GE(past.deadline(), before);
  EXPECT_LE(past.deadline(), after);
  q.Cancel(&past);  // fired already, or not yet: either way it is gone now
  EXPECT_EQ(q.pending(), 2u);
  EXPECT_TRUE(q.Cancel(&far));
  EXPECT_EQ(q.pending(), 1u);
  EXPECT_TRUE(q.Cancel(&never));
  EXPECT_EQ(q.pending(), 0u);
}

TEST(TimerQueue, LatencyOnIdleQueue) {
  // Each of a sequence of timers on an otherwise idle queue fires at or after
  // its deadline, the median within kLateBound; the median and worst
  // lateness are printed (the 2 ms requirement is checked by eye and in
  // benchmarks, not asserted: a loaded CI machine may preempt any one wake).
  TimerQueue q;
  std::vector<absl::Duration> lateness;
  for (int i = 0; i < 21; ++i) {
    Event done;
    Probe p;
    p.done = &done;
    const absl::Time deadline = absl::Now() + absl::Milliseconds(3);
    q.Schedule(&p, deadline);
    ASSERT_TRUE(done.WaitFor(absl::Seconds(10)));
    const absl::Duration late =
        absl::FromUnixNanos(p.fired_at.load()) - deadline;
    EXPECT_GE(late, absl::ZeroDuration());
    lateness.push_back(late);
    ASSERT_FALSE(q.Cancel(&p));
  }
  std::sort(lateness.begin(), lateness.end());
  const absl::Duration median = lateness[lateness.size() / 2];
  EXPECT_LT(median, kLateBound);
  std::printf("lateness over %zu timers: median %s, worst %s\n",
              lateness.size(), absl::FormatDuration(median).c_str(),
              absl::FormatDuration(lateness.back()).c_str());
}

TEST(TimerQueue, FiresInDeadlineOrderThenScheduleOrder) {
  // Entries fire in deadline order, whatever order they were scheduled in;
  // entries with equal deadlines fire in Schedule() order.
  TimerQueue q;
  struct Ordered : TimerEntry {
    Ordered() : TimerEntry(&Ordered::OnFire) {}
    static void OnFire(TimerEntry* self) {
      auto* o = static_cast<Ordered*>(self);
      std::lock_guard<std::mutex> lock(*o->mu);
      o->order->push_back(o->id);
    }
    int id = 0;
    std::mutex* mu = nullptr;
    std::vector<int>* order = nullptr;
  };
  std::mutex mu;
  std::vector<int> order;
  constexpr int kN = 8;
  Ordered entries[kN];
  const absl::Time base = absl::Now() + absl::Milliseconds(100);
  // Deadline slot per entry: 3, 0, 2, 1, 1, 1, 4, 0 (times 5 ms).
  const int slot[kN] = {3, 0, 2, 1, 1, 1, 4, 0};
  for (int i = 0; i < kN; ++i) {
    entries[i].id = i;
    entries[i].mu = &mu;
    entries[i].order = &order;
    q.Schedule(&entries[i], base + slot[i] * absl::Milliseconds(5));
  }
  // Also one that is already due and one that never fires.
  Ordered past, never;
  past.id = -1;
  never.id = 99;
  past.mu = never.mu = &mu;
  past.order = never.order = &order;
  q.Schedule(&never, absl::InfiniteFuture());
  q.Schedule(&past, absl::InfinitePast());
  // Until every callback has recorded itself: pending() stops counting an
  // entry when it is popped, before its callback runs, so waiting for
  // pending() == 1 alone could read `order` one entry short.
  const absl::Time limit = absl::Now() + absl::Seconds(10);
  auto recorded = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return order.size();
  };
  while (recorded() < kN + 1 && absl::Now() < limit) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(order, (std::vector<int>{-1, 1, 7, 3, 4, 5, 2, 0, 6}));
  }
  EXPECT_EQ(q.pending(), 1u);  // `never`
  EXPECT_TRUE(q.Cancel(&never));
  EXPECT_EQ(q.pending(), 0u);
}

TEST(TimerQueue, CancelBeforeFiringNeverRuns) {
  // Cancel() of a pending entry returns true and its callback never runs;
  // cancelling again, or cancelling a never-scheduled entry, returns false.
  TimerQueue q;
  Probe p, unscheduled;
  q.Schedule(&p, absl::Now() + absl::Milliseconds(100));
  EXPECT_TRUE(q.Cancel(&p));
  EXPECT_EQ(q.pending(), 0u);
  EXPECT_FALSE(q.Cancel(&p));
  EXPECT_FALSE(q.Cancel(&unscheduled));
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_EQ(p.runs.load(std::memory_order_acquire), 0);
  // A cancelled entry can be scheduled again and then fires normally.
  Event done;
  p.done = &done;
  q.Schedule(&p, absl::InfinitePast());
  ASSERT_TRUE(done.WaitFor(absl::Seconds(10)));
  EXPECT_EQ(p.runs.load(std::memory_order_acquire), 1);
}

// A timer whose callback takes a little while, so Cancel() often lands while
// it runs. It lives on the heap so the test can free it right after Cancel()
// (ASan then catches any later touch by the queue).
struct SlowProbe : TimerEntry {
  SlowProbe(std::atomic<int>* runs, std::atomic<bool>* running,
            int spin_us)
      : TimerEntry(&SlowProbe::OnFire),
        runs(runs),
        running(running),
        spin_us(spin_us) {}

  static void OnFire(TimerEntry* self) {
    auto* p = static_cast<SlowProbe*>(self);
    // Copy what we need: after `running` is cleared the owner may free *p.
    std::atomic<int>* runs = p->runs;
    std::atomic<bool>* running = p->running;
    running->store(true, std::memory_order_relaxed);
    const absl::Time until = absl::Now() + absl::Microseconds(p->spin_us);
    while (absl::Now() < until) {
    }
    runs->fetch_add(1, std::memory_order_relaxed);
    running->store(false, std::memory_order_relaxed);
  }

  std::atomic<int>* runs;
  std::atomic<bool>* running;
  int spin_us;
};

TEST(TimerQueue, CancelRacingFiring) {
  // With Cancel() racing the deadline: the callback ran exactly once iff
  // Cancel() returned false, and when Cancel() returns the callback is not
  // running (so the entry may be freed at once).
  TimerQueue q;
  const int kIters = 3000 / kScale;
  std::vector<std::atomic<int>> runs(kIters);
  std::vector<std::atomic<bool>> running(kIters);
  std::vector<char> cancelled(kIters);
  std::mt19937 rng(42);
  int n_true = 0, n_false = 0;
  for (int i = 0; i < kIters; ++i) {
    auto* p = new SlowProbe(&runs[i], &running[i],
                            static_cast<int>(rng() % 30));
    q.Schedule(p, absl::Now() + absl::Microseconds(rng() % 100));
    const absl::Time cancel_at = absl::Now() + absl::Microseconds(rng() % 150);
    while (absl::Now() < cancel_at) {
    }
    cancelled[i] = q.Cancel(p);
    // Relaxed loads suffice: Cancel() returned, and mu_ orders the
    // callback's writes before that return when it ran.
    ASSERT_FALSE(running[i].load(std::memory_order_relaxed)) << i;
    if (cancelled[i]) {
      ++n_true;
      ASSERT_EQ(runs[i].load(std::memory_order_relaxed), 0) << i;
    } else {
      ++n_false;
      ASSERT_EQ(runs[i].load(std::memory_order_relaxed), 1) << i;
    }
    delete p;  // the queue must not touch it any more
  }
  // Nothing runs late (a cancelled entry firing anyway would show up here).
  absl::SleepFor(absl::Milliseconds(20));
  for (int i = 0; i < kIters; ++i) {
    ASSERT_EQ(runs[i].load(std::memory_order_relaxed), cancelled[i] ? 0 : 1)
        << i;
  }
  EXPECT_EQ(q.pending(), 0u);
  std::printf("cancel won %d times, firing won %d times\n", n_true, n_false);
}

TEST(TimerQueue, CancelFromInsideOwnCallback) {
  // Cancel(self) from inside the callback returns false at once (no
  // deadlock); from inside a callback, cancelling another pending entry
  // returns true and that entry never runs.
  TimerQueue q;
  struct SelfCanceller : TimerEntry {
    SelfCanceller() : TimerEntry(&SelfCanceller::OnFire) {}
    static void OnFire(TimerEntry* self) {
      auto* s = static_cast<SelfCanceller*>(self);
      s->self_result = s->q->Cancel(s);
      s->other_result = s->q->Cancel(s->other);
      s->done.Notify();
    }
    TimerQueue* q = nullptr;
    TimerEntry* other = nullptr;
    bool self_result = true;
    bool other_result = false;
    Event done;
  };
  Probe other;
  SelfCanceller s;
  s.q = &q;
  s.other = &other;
  const absl::Time other_deadline = absl::Now() + absl::Milliseconds(100);
  q.Schedule(&other, other_deadline);
  q.Schedule(&s, absl::InfinitePast());
  ASSERT_TRUE(s.done.WaitFor(absl::Seconds(10)));
  EXPECT_FALSE(s.self_result);
  EXPECT_TRUE(s.other_result);
  absl::SleepFor(other_deadline + absl::Milliseconds(30) - absl::Now());
  EXPECT_EQ(other.runs.load(std::memory_order_acquire), 0);
  EXPECT_FALSE(q.Cancel(&s));
  EXPECT_EQ(q.pending(), 0u);
}

// Re-arms itself `limit` times (period `period`), counting runs.
struct Rearmer : TimerEntry {
  Rearmer() : TimerEntry(&Rearmer::OnFire) {}
  static void OnFire(TimerEntry* self) {
    auto* r = static_cast<Rearmer*>(self);
    const int n = r->runs.fetch_add(1, std::memory_order_relaxed) + 1;
    r->running.store(true, std::memory_order_relaxed);
    if (n < r->limit) {
      r->q->Schedule(r, absl::Now() + r->period);
    } else if (r->done != nullptr) {
      r->done->Notify();
    }
    r->running.store(false, std::memory_order_relaxed);
  }
  TimerQueue* q = nullptr;
  absl::Duration period;
  int limit = 0;
  std::atomic<int> runs{0};
  std::atomic<bool> running{false};
  Event* done = nullptr;
};

TEST(TimerQueue, RearmFromInsideCallback) {
  // A callback that re-arms its own entry fires once per arming: `limit`
  // runs, then nothing pending.
  TimerQueue q;
  Event done;
  Rearmer r;
  r.q = &q;
  r.period = absl::Milliseconds(1);
  r.limit = 10;
  r.done = &done;
  q.Schedule(&r, absl::Now());
  ASSERT_TRUE(done.WaitFor(absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(r.runs.load(), 10);
  EXPECT_EQ(q.pending(), 0u);
}

TEST(TimerQueue, CancelStopsSelfRearmingEntry) {
  // Cancel() of an entry that keeps re-arming itself with a zero period, or
  // with a deadline already in the past, returns (is not starved), and
  // afterwards the entry is neither pending nor running and never runs again.
  // Other timers keep firing meanwhile (the re-arming entry does not starve
  // them either).
  TimerQueue q;
  for (int iter = 0; iter < 20; ++iter) {
    Rearmer r;
    r.q = &q;
    r.period = iter % 2 == 0 ? absl::ZeroDuration() : -absl::Seconds(1);
    r.limit = 1 << 30;
    Probe bystander;
    Event bystander_done;
    bystander.done = &bystander_done;
    q.Schedule(&r, absl::InfinitePast());
    q.Schedule(&bystander, absl::Now() + absl::Milliseconds(1));
    while (r.runs.load(std::memory_order_relaxed) < 100) {
    }
    ASSERT_TRUE(
        bystander_done.WaitFor(absl::Seconds(10)));
    q.Cancel(&r);  // true (removed a re-arm) or false: either is fine here
    EXPECT_FALSE(r.running.load(std::memory_order_relaxed));
    EXPECT_EQ(q.pending(), 0u);
    const int runs = r.runs.load(std::memory_order_relaxed);
    absl::SleepFor(absl::Milliseconds(2));
    EXPECT_EQ(r.runs.load(std::memory_order_relaxed), runs);
  }
}

TEST(TimerQueue, ManyTimersAllFireOnce) {
  // 100,000 entries with random deadlines in [now, now+200ms] each fire
  // exactly once, none before its deadline.
  const int kN = 100000 / kScale;
  TimerQueue q;
  struct Counted : TimerEntry {
    Counted() : TimerEntry(&Counted::OnFire) {}
    static void OnFire(TimerEntry* self) {
      auto* c = static_cast<Counted*>(self);
      if (absl::Now() < c->deadline()) c->early = true;
      ++c->runs;  // only the timer thread writes it; read after join point
      if (c->total->fetch_add(1, std::memory_order_acq_rel) + 1 == c->n) {
        c->all_done->Notify();
      }
    }
    int runs = 0;
    bool early = false;
    int n = 0;
    std::atomic<int>* total = nullptr;
    Event* all_done = nullptr;
  };
  std::vector<Counted> entries(kN);
  std::atomic<int> total{0};
  Event all_done;
  std::mt19937 rng(7);
  const absl::Time base = absl::Now();
  for (Counted& c : entries) {
    c.n = kN;
    c.total = &total;
    c.all_done = &all_done;
    q.Schedule(&c, base + absl::Microseconds(rng() % 200000));
  }
  ASSERT_TRUE(all_done.WaitFor(absl::Seconds(30)));
  // The Event orders every callback (each fetch_add is acq_rel, and
  // the last one notifies) before these reads.
  absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(total.load(std::memory_order_acquire), kN);
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(entries[i].runs, 1) << i;
    ASSERT_FALSE(entries[i].early) << i;
  }
  EXPECT_EQ(q.pending(), 0u);
}

TEST(TimerQueue, ManyTimersAllCancelled) {
  // 100,000 entries scheduled, then all cancelled in random order: every
  // Cancel() returns true, pending() drops to 0, and none ever fires.
  const int kN = 100000 / kScale;
  TimerQueue q;
  std::vector<Probe> entries(kN);
  std::mt19937 rng(11);
  // An hour out: cancelling them all finishes first however loaded the
  // machine is (the test asserts no timing).
  const absl::Time base = absl::Now() + absl::Hours(1);
  for (Probe& p : entries) {
    q.Schedule(&p, base + absl::Microseconds(rng() % 100000));
  }
  EXPECT_EQ(q.pending(), static_cast<size_t>(kN));
  std::vector<int> order(kN);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  int removed = 0;
  for (int i : order) removed += q.Cancel(&entries[i]) ? 1 : 0;
  EXPECT_EQ(removed, kN);
  EXPECT_EQ(q.pending(), 0u);
  // The queue still works: an entry scheduled now fires, and none of the
  // cancelled ones did.
  Probe sentinel;
  q.Schedule(&sentinel, absl::Now());
  for (int i = 0; i < 20000 && sentinel.runs.load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(sentinel.runs.load(), 1);
  q.Cancel(&sentinel);  // if it never fired: out of the queue before it dies
  int fired = 0;
  for (Probe& p : entries) fired += p.runs.load(std::memory_order_acquire);
  EXPECT_EQ(fired, 0);
}

// An entry that appends its id to `order` when it fires (on the timer
// thread) and notifies `done` once `expect` ids are there.
struct OrderedEntry : TimerEntry {
  OrderedEntry() : TimerEntry(&OrderedEntry::OnFire) {}
  static void OnFire(TimerEntry* self) {
    auto* o = static_cast<OrderedEntry*>(self);
    o->order->push_back(o->id);  // timer thread only
    if (o->order->size() == o->expect) o->done->Notify();
  }
  int id = 0;
  size_t expect = 0;
  std::vector<int>* order = nullptr;
  Event* done = nullptr;
};

// kN OrderedEntry timers, of which keep[i] are expected to fire, with
// coarse random deadlines (many equal, so the schedule-order tie-break
// matters). Everything is decided before Schedule(), so the test thread
// writes no field a callback reads once the entries are in the queue.
struct OrderedRun {
  OrderedRun(const std::vector<char>& keep, std::mt19937& rng,
             absl::Duration delay, int spread_ms)
      : entries(keep.size()), deadline(keep.size()) {
    order.reserve(keep.size());
    for (size_t i = 0; i < keep.size(); ++i) {
      if (keep[i]) expected.push_back(static_cast<int>(i));
    }
    const absl::Time base = absl::Now() + delay;
    for (size_t i = 0; i < keep.size(); ++i) {
      entries[i].id = static_cast<int>(i);
      entries[i].expect = expected.size();
      entries[i].order = &order;
      entries[i].done = &done;
      deadline[i] = base + absl::Milliseconds(rng() % spread_ms);
    }
    std::stable_sort(expected.begin(), expected.end(), [&](int a, int b) {
      return deadline[a] < deadline[b];
    });
  }
  void ScheduleAll(TimerQueue& q) {
    for (size_t i = 0; i < entries.size(); ++i) {
      q.Schedule(&entries[i], deadline[i]);
    }
  }
  // The kept entries fired exactly once each, in (deadline, schedule order)
  // order, and nothing is left pending.
  void ExpectFiredInOrder(TimerQueue& q) {
    ASSERT_FALSE(expected.empty());
    ASSERT_TRUE(done.WaitFor(absl::Seconds(30)));
    // The Event: the timer thread's writes to `order` happen-before here.
    EXPECT_EQ(order, expected);
    EXPECT_EQ(q.pending(), 0u);
  }

  std::vector<OrderedEntry> entries;
  std::vector<absl::Time> deadline;
  std::vector<int> order;
  std::vector<int> expected;
  Event done;
};

TEST(TimerQueue, CancelHalfRestFireInOrder) {
  // After cancelling a random half of many pending entries (exercising
  // removal from the middle of the heap), the rest fire exactly once each, in
  // (deadline, schedule order) order.
  const int kN = 20000 / kScale;
  TimerQueue q;
  std::mt19937 rng(3);
  std::vector<char> keep(kN);
  for (int i = 0; i < kN; ++i) keep[i] = rng() % 2 != 0;
  OrderedRun run(keep, rng, absl::Milliseconds(300), 50);
  run.ScheduleAll(q);
  for (int i = 0; i < kN; ++i) {
    if (!keep[i]) {
      ASSERT_TRUE(q.Cancel(&run.entries[i])) << i;
    }
  }
  run.ExpectFiredInOrder(q);
}

TEST(TimerQueue, MostlyCancelledCompactsAndRestFireInOrder) {
  // Cancelling nine in ten of many pending entries, in random order, leaves
  // cancelled slots that outnumber the live ones several times over (each
  // time the heap is compacted): pending() counts only live entries, and
  // the rest fire exactly once each, in (deadline, schedule order) order.
  const int kN = 20000 / kScale;
  TimerQueue q;
  std::mt19937 rng(5);
  std::vector<char> keep(kN);
  for (int i = 0; i < kN; ++i) keep[i] = rng() % 10 == 0;
  OrderedRun run(keep, rng, absl::Milliseconds(400), 20);
  run.ScheduleAll(q);
  std::vector<int> cancel_order;
  for (int i = 0; i < kN; ++i) {
    if (!keep[i]) cancel_order.push_back(i);
  }
  std::shuffle(cancel_order.begin(), cancel_order.end(), rng);
  size_t left = kN;
  for (int i : cancel_order) {
    ASSERT_TRUE(q.Cancel(&run.entries[i])) << i;
    ASSERT_FALSE(q.Cancel(&run.entries[i])) << i;  // already idle
    --left;
    if (left % 997 == 0) {
      ASSERT_EQ(q.pending(), left);
    }
  }
  EXPECT_EQ(q.pending(), run.expected.size());
  run.ExpectFiredInOrder(q);
}

TEST(TimerQueue, NewestFirstCancelManyShrinksFromTheEndAndRestFireInOrder) {
  // A stop cancels its sleepers newest first, in batches (CancelMany), so
  // cancelled slots keep reaching the end of the heap's array and are popped
  // there at once, between live ones that stay. The kept entries (1 in 50,
  // scattered) still fire exactly once each, in schedule order (all have the
  // same deadline), and entries scheduled afterwards fire too.
  const int kN = 20000 / kScale;
  TimerQueue q;
  std::mt19937 rng(7);
  std::vector<char> keep(kN);
  for (int i = 0; i < kN; ++i) keep[i] = i % 50 == 17;
  OrderedRun run(keep, rng, absl::Milliseconds(300), /*spread_ms=*/1);
  run.ScheduleAll(q);
  using Result = TimerQueue::CancelResult;
  std::vector<TimerEntry*> batch;
  std::vector<Result> out(28);
  for (int i = kN - 1; i >= 0;) {
    batch.clear();
    for (; i >= 0 && batch.size() < 28; --i) {
      if (!keep[i]) batch.push_back(&run.entries[i]);
    }
    q.CancelMany(batch.data(), batch.size(), out.data());
    for (size_t j = 0; j < batch.size(); ++j) {
      ASSERT_EQ(out[j], Result::kRemoved) << i;
    }
  }
  EXPECT_EQ(q.pending(), run.expected.size());
  Probe late;
  Event late_done;
  late.done = &late_done;
  q.Schedule(&late, absl::Now() + absl::Milliseconds(1));
  ASSERT_TRUE(late_done.WaitFor(absl::Seconds(30)));
  run.ExpectFiredInOrder(q);
}

TEST(TimerQueue, RescheduleAfterCancelFiresOnce) {
  // An entry cancelled (leaving a cancelled slot behind) and scheduled again
  // fires exactly once, at its new deadline, whether that is earlier, equal
  // or later than the cancelled one; the cancelled slot never fires it.
  TimerQueue q;
  for (int variant = 0; variant < 3; ++variant) {
    Probe p;
    Event fired;
    p.done = &fired;
    const absl::Time first = absl::Now() + absl::Milliseconds(30);
    q.Schedule(&p, first);
    ASSERT_TRUE(q.Cancel(&p));
    const absl::Time second =
        first + absl::Milliseconds(variant == 0 ? -20 : variant == 1 ? 0 : 20);
    q.Schedule(&p, second);
    ASSERT_TRUE(fired.WaitFor(absl::Seconds(10)));
    // Past both deadlines: a second run would have happened by now.
    absl::SleepFor(first + absl::Milliseconds(40) - absl::Now());
    EXPECT_EQ(p.runs.load(std::memory_order_acquire), 1) << variant;
    EXPECT_GE(absl::FromUnixNanos(p.fired_at.load(std::memory_order_relaxed)),
              second - absl::Microseconds(1))
        << variant;  // fired_at has ns resolution
    EXPECT_FALSE(q.Cancel(&p));
    EXPECT_EQ(q.pending(), 0u);
  }
}

TEST(TimerQueue, CancelManyRemovesPendingAndReportsRunning) {
  // CancelMany() takes pending entries out (they never run) and reports
  // them removed, reports entries with nothing to remove (never scheduled,
  // or already fired) as idle, and reports an entry whose callback is
  // running as running without waiting for it; Cancel() then waits for that
  // callback.
  struct Blocker : TimerEntry {
    Blocker() : TimerEntry(&Blocker::OnFire) {}
    static void OnFire(TimerEntry* self) {
      auto* b = static_cast<Blocker*>(self);
      b->started.Notify();
      b->release.WaitFor(absl::Seconds(30));
      b->finished.store(true, std::memory_order_relaxed);
    }
    Event started, release;
    std::atomic<bool> finished{false};
  };
  TimerQueue q;
  constexpr int kPending = 50;
  std::vector<Probe> pending(kPending);
  Probe never_scheduled, fired;
  Event fired_done;
  fired.done = &fired_done;
  q.Schedule(&fired, absl::InfinitePast());
  ASSERT_TRUE(fired_done.WaitFor(absl::Seconds(10)));
  Blocker blocker;
  q.Schedule(&blocker, absl::InfinitePast());
  ASSERT_TRUE(blocker.started.WaitFor(absl::Seconds(10)));
  const absl::Time later = absl::Now() + absl::Milliseconds(50);
  for (Probe& p : pending) q.Schedule(&p, later);
  std::vector<TimerEntry*> entries;
  for (Probe& p : pending) entries.push_back(&p);
  entries.push_back(&never_scheduled);
  entries.push_back(&blocker);
  entries.push_back(&fired);
  using Result = TimerQueue::CancelResult;
  Result out[kPending + 3];
  q.CancelMany(entries.data(), entries.size(), out);
  for (int i = 0; i < kPending; ++i) EXPECT_EQ(out[i], Result::kRemoved) << i;
  EXPECT_EQ(out[kPending], Result::kIdle);         // never scheduled
  EXPECT_EQ(out[kPending + 1], Result::kRunning);  // not waited for
  EXPECT_EQ(out[kPending + 2], Result::kIdle);     // fired and returned
  // A second call finds nothing left to remove.
  q.CancelMany(entries.data(), kPending, out);
  for (int i = 0; i < kPending; ++i) EXPECT_EQ(out[i], Result::kIdle) << i;
  EXPECT_FALSE(blocker.finished.load(std::memory_order_relaxed));
  EXPECT_EQ(q.pending(), 0u);
  std::thread releaser([&] {
    absl::SleepFor(absl::Milliseconds(20));
    blocker.release.Notify();
  });
  EXPECT_FALSE(q.Cancel(&blocker));  // waits for the callback
  EXPECT_TRUE(blocker.finished.load(std::memory_order_relaxed));
  releaser.join();
  absl::SleepFor(later + absl::Milliseconds(30) - absl::Now());
  for (Probe& p : pending) EXPECT_EQ(p.runs.load(), 0);
  EXPECT_EQ(fired.runs.load(), 1);
}

TEST(TimerQueue, DestructionWithPendingEntriesIsPromptAndRunsNothing) {
  // Destroying a queue with pending entries (an hour out and infinitely far)
  // returns without waiting for them (a destructor that waited would hang
  // the test: no timing assertion needed), runs none of them, and leaves
  // them unscheduled: they can be scheduled on another queue and cancelled
  // there.
  const int kN = 10000 / kScale;
  std::vector<Probe> entries(kN);
  auto q = std::make_unique<TimerQueue>();
  const absl::Time later = absl::Now() + absl::Hours(1);
  for (int i = 0; i < kN; ++i) {
    q->Schedule(&entries[i], i % 2 == 0 ? later : absl::InfiniteFuture());
  }
  q.reset();
  for (Probe& p : entries) ASSERT_EQ(p.runs.load(), 0);
  TimerQueue q2;
  for (Probe& p : entries) q2.Schedule(&p, absl::InfiniteFuture());
  for (Probe& p : entries) ASSERT_TRUE(q2.Cancel(&p));
}

TEST(TimerQueue, DestructionWaitsForRunningCallback) {
  // A callback that is running when the destructor starts has returned when
  // the destructor returns; due entries behind it never start.
  struct Blocker : TimerEntry {
    Blocker() : TimerEntry(&Blocker::OnFire) {}
    static void OnFire(TimerEntry* self) {
      auto* b = static_cast<Blocker*>(self);
      b->started.Notify();
      // Keep running until the test is about to destroy the queue, and then
      // long enough (generous, as in the file comment) for the destructor to
      // have set its stop flag before we return.
      b->destroying.WaitFor(absl::Seconds(30));
      absl::SleepFor(absl::Milliseconds(100));
      b->finished.store(true, std::memory_order_relaxed);
    }
    Event started, destroying;
    std::atomic<bool> finished{false};
  };
  auto q = std::make_unique<TimerQueue>();
  Blocker blocker;
  Probe after;
  q->Schedule(&blocker, absl::InfinitePast());
  ASSERT_TRUE(blocker.started.WaitFor(absl::Seconds(10)));
  q->Schedule(&after, absl::InfinitePast());  // due, behind the blocker
  blocker.destroying.Notify();
  q.reset();  // joins the thread: synchronizes with everything it did
  EXPECT_TRUE(blocker.finished.load(std::memory_order_relaxed));
  EXPECT_EQ(after.runs.load(), 0);
}

TEST(TimerQueue, NoPollingWhileWaiting) {
  // The thread sleeps while entries wait: scheduling later deadlines does not
  // wake it (only a new earliest deadline does), and pending timers cost no
  // wake-ups.
  TimerQueue q;
  std::vector<Probe> entries(100);
  const absl::Time base = absl::Now() + absl::Seconds(60);
  absl::SleepFor(absl::Milliseconds(5));  // let the thread go to sleep
  const uint64_t before = q.wakeups();
  for (size_t i = 0; i < entries.size(); ++i) {
    q.Schedule(&entries[i], base + absl::Milliseconds(static_cast<int>(i)));
    // Give the thread time to go back to sleep, so that a Schedule() that
    // signalled needlessly would show up as a wake-up.
    absl::SleepFor(absl::Microseconds(200));
  }
  absl::SleepFor(absl::Milliseconds(50));
  // One wake-up for the first (new earliest) Schedule; a few spare for
  // spurious wake-ups. Signalling on every Schedule would give ~100.
  EXPECT_LE(q.wakeups() - before, 5u);
  for (Probe& p : entries) ASSERT_TRUE(q.Cancel(&p));
}

TEST(TimerQueue, ConcurrentScheduleCancelStress) {
  // 4 threads each Schedule and Cancel their own entries with deadlines
  // around now, while the timer fires them: for every entry,
  // schedules == cancels that returned true + runs, and each Cancel that
  // returned false saw the run already counted.
  constexpr int kThreads = 4;
  constexpr int kEntriesPerThread = 16;
  const int kOpsPerThread = 20000 / kScale;
  TimerQueue q;
  struct Counted : TimerEntry {
    Counted() : TimerEntry(&Counted::OnFire) {}
    static void OnFire(TimerEntry* self) {
      static_cast<Counted*>(self)->runs.fetch_add(1,
                                                  std::memory_order_relaxed);
    }
    std::atomic<int> runs{0};
    int schedules = 0;       // owner thread only
    int cancelled = 0;       // owner thread only
    bool armed = false;      // owner thread only
  };
  std::vector<std::vector<Counted>> entries(kThreads);
  for (auto& v : entries) v = std::vector<Counted>(kEntriesPerThread);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      for (int op = 0; op < kOpsPerThread; ++op) {
        Counted& c = entries[t][rng() % kEntriesPerThread];
        // A short pause so that some entries reach their deadline before
        // their owner cancels them: both outcomes of the race happen.
        const absl::Time resume =
            absl::Now() + absl::Microseconds(static_cast<int>(rng() % 8));
        while (absl::Now() < resume) {
        }
        if (!c.armed) {
          q.Schedule(&c, absl::Now() + absl::Microseconds(
                                           static_cast<int>(rng() % 200) - 100));
          ++c.schedules;
          c.armed = true;
        } else {
          if (q.Cancel(&c)) ++c.cancelled;
          c.armed = false;
          // relaxed: Cancel() returned, so a run it saw is ordered by mu_.
          EXPECT_EQ(c.schedules,
                    c.cancelled + c.runs.load(std::memory_order_relaxed));
        }
      }
      for (Counted& c : entries[t]) {
        if (c.armed && q.Cancel(&c)) ++c.cancelled;
        c.armed = false;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  int64_t schedules = 0, cancelled = 0, runs = 0;
  for (auto& v : entries) {
    for (Counted& c : v) {
      EXPECT_EQ(c.schedules, c.cancelled + c.runs.load());
      schedules += c.schedules;
      cancelled += c.cancelled;
      runs += c.runs.load();
    }
  }
  EXPECT_EQ(q.pending(), 0u);
  std::printf("schedules %lld, cancelled %lld, fired %lld\n",
              static_cast<long long>(schedules),
              static_cast<long long>(cancelled),
              static_cast<long long>(runs));
}

TEST(TimerQueueDeathTest, ScheduleTwiceAborts) {
  // Scheduling an entry that is already scheduled is a programming error
  // reported with a clear message.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        TimerQueue q;
        Probe p;
        q.Schedule(&p, absl::InfiniteFuture());
        q.Schedule(&p, absl::InfiniteFuture());
      },
      "already scheduled");
}

}  // namespace
}  // namespace ripcord::internal
