// Copyright 2026 The ripcord Authors.
//
// GroupOptions::max_concurrency (API.md "Limits and helpers"): at most N
// tasks and blocking calls of a group (not its child groups) run at once;
// the others wait in the group, count as queued, and are dropped at once
// (counted cancelled; done gets CancelledError exactly once) when the group
// stops. A suspended coroutine holds no slot.
//
// Invariants checked throughout: the peak of pieces of work inside their
// slot never exceeds N; every spawned task ran exactly once or was dropped
// (its callable destroyed unrun) exactly once; stats() adds up.
#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::Eventually;
using ::ripcord::testing::Gate;
using ::ripcord::testing::JoinOrDie;
using ::ripcord::testing::Scaled;
using ::ripcord::testing::Watchdog;

// How many pieces of work are inside their slot now, and the most ever.
struct Peak {
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
  void Enter() {
    const int v = now.fetch_add(1) + 1;
    int p = peak.load();
    while (v > p && !peak.compare_exchange_weak(p, v)) {
    }
  }
  void Leave() { now.fetch_sub(1); }
};

// Some work inside the slot, long enough for others to try to overlap.
void Busy() {
  for (int i = 0; i < 3; ++i) std::this_thread::yield();
  absl::SleepFor(absl::Microseconds(50));
}

// Counts how a spawned callable ended: ran, or destroyed unrun.
struct Fate {
  std::atomic<int> ran{0};
  std::atomic<int> destroyed_unrun{0};
};
// A callable with a destructor (so it is not lazily dropped) that records
// its fate.
class Tracked {
 public:
  Tracked(Fate* fate, Peak* peak) : fate_(fate), peak_(peak) {}
  Tracked(Tracked&& o) noexcept
      : fate_(std::exchange(o.fate_, nullptr)), peak_(o.peak_), ran_(o.ran_) {}
  Tracked(const Tracked&) = delete;
  ~Tracked() {
    if (fate_ != nullptr && !ran_) fate_->destroyed_unrun++;
  }
  void operator()() {
    ran_ = true;
    fate_->ran++;
    peak_->Enter();
    Busy();
    peak_->Leave();
  }

 private:
  Fate* fate_;
  Peak* peak_;
  bool ran_ = false;
};

class MaxConcurrency : public ::testing::TestWithParam<int> {
 protected:
  Watchdog watchdog_{absl::Seconds(120)};
};

TEST_P(MaxConcurrency, PlainTasksPeakAtMostN) {
  const int n = GetParam();
  Executor executor({.num_workers = 2});
  TaskGroup g(executor, {.name = "plain", .max_concurrency = n});
  Peak peak;
  Fate fate;
  std::atomic<int> lazy_ran{0};
  const int kTasks = Scaled(300, 50);
  for (int i = 0; i < kTasks; ++i) {
    if (i % 2 == 0) {
      g.Spawn(Tracked(&fate, &peak));
    } else {
      // Trivially destructible: a lazy task.
      g.Spawn([&peak, &lazy_ran] {
        lazy_ran++;
        peak.Enter();
        Busy();
        peak.Leave();
      });
    }
  }
  ASSERT_TRUE(JoinOrDie(g, executor).ok());
  EXPECT_LE(peak.peak.load(), n);
  EXPECT_GE(peak.peak.load(), 1);
  EXPECT_EQ(fate.ran + lazy_ran, kTasks);
  EXPECT_EQ(fate.destroyed_unrun, 0);
  const GroupStats s = g.stats();
  EXPECT_EQ(s.spawned, kTasks);
  EXPECT_EQ(s.completed, kTasks);
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.queued, 0);
}

TEST_P(MaxConcurrency, TasksSpawnedFromTasksPeakAtMostN) {
  const int n = GetParam();
  Executor executor({.num_workers = 2});
  TaskGroup g(executor, {.name = "nested", .max_concurrency = n});
  Peak peak;
  std::atomic<int> ran{0};
  const int kOuter = Scaled(20, 5);
  for (int i = 0; i < kOuter; ++i) {
    g.Spawn([&] {
      peak.Enter();
      for (int j = 0; j < 5; ++j) {
        g.Spawn([&] {
          peak.Enter();
          Busy();
          ran++;
          peak.Leave();
        });
      }
      ran++;
      peak.Leave();
    });
  }
  ASSERT_TRUE(JoinOrDie(g, executor).ok());
  EXPECT_LE(peak.peak.load(), n);
  EXPECT_EQ(ran, kOuter * 6);
  EXPECT_EQ(g.stats().completed, kOuter * 6);
}

TEST_P(MaxConcurrency, CoroutinesPeakAtMostN) {
  const int n = GetParam();
  Executor executor({.num_workers = 2});
  TaskGroup g(executor, {.name = "coro", .max_concurrency = n});
  Peak peak;
  std::atomic<int> finished{0};
  const int kTasks = Scaled(100, 20);
  for (int i = 0; i < kTasks; ++i) {
    g.Spawn([&peak, &finished]() -> Task<absl::Status> {
      peak.Enter();
      Busy();
      peak.Leave();
      // Suspended: holds no slot; takes one again to resume.
      absl::Status s = co_await Yield();
      if (!s.ok()) co_return s;
      peak.Enter();
      Busy();
      peak.Leave();
      s = co_await Sleep(absl::Microseconds(200));
      if (!s.ok()) co_return s;
      peak.Enter();
      Busy();
      peak.Leave();
      finished++;
      co_return absl::OkStatus();
    });
  }
  ASSERT_TRUE(JoinOrDie(g, executor).ok());
  EXPECT_LE(peak.peak.load(), n);
  EXPECT_EQ(finished, kTasks);
  const GroupStats s = g.stats();
  EXPECT_EQ(s.spawned, kTasks);
  EXPECT_EQ(s.completed, kTasks);
}

TEST_P(MaxConcurrency, BlockingCallsPeakAtMostN) {
  const int n = GetParam();
  Executor executor({.num_workers = 2});
  TaskGroup g(executor, {.name = "blocking", .max_concurrency = n});
  Peak peak;
  std::atomic<int> dones{0};
  std::atomic<int> fns{0};
  const int kCalls = Scaled(60, 12);
  for (int i = 0; i < kCalls; ++i) {
    g.SpawnBlocking(
        [&] {
          fns++;
          peak.Enter();
          absl::SleepFor(absl::Microseconds(300));
          peak.Leave();
        },
        [&](absl::Status s) {
          EXPECT_TRUE(s.ok()) << s;
          dones++;
        });
  }
  ASSERT_TRUE(JoinOrDie(g, executor).ok());
  EXPECT_LE(peak.peak.load(), n);
  EXPECT_EQ(fns, kCalls);
  EXPECT_EQ(dones, kCalls);
  EXPECT_EQ(g.stats().completed, kCalls);
}

// Plain tasks, coroutines (with co_await Blocking) and SpawnBlocking calls
// share the group's N slots.
TEST_P(MaxConcurrency, MixedWorkPeakAtMostN) {
  const int n = GetParam();
  Executor executor({.num_workers = 2});
  TaskGroup g(executor, {.name = "mixed", .max_concurrency = n});
  Peak peak;
  std::atomic<int> done{0};
  const int kEach = Scaled(40, 8);
  for (int i = 0; i < kEach; ++i) {
    g.Spawn([&] {
      peak.Enter();
      Busy();
      peak.Leave();
      done++;
    });
    g.Spawn([&]() -> Task<absl::Status> {
      peak.Enter();
      Busy();
      peak.Leave();
      auto fn = [&] {
        peak.Enter();  // the blocking fn holds a slot of its own
        absl::SleepFor(absl::Microseconds(200));
        peak.Leave();
        return 7;
      };
      absl::StatusOr<int> r = co_await Blocking(std::move(fn));
      if (!r.ok()) co_return r.status();
      peak.Enter();
      Busy();
      peak.Leave();
      done++;
      co_return absl::OkStatus();
    });
    g.SpawnBlocking(
        [&] {
          peak.Enter();
          absl::SleepFor(absl::Microseconds(200));
          peak.Leave();
        },
        [&](absl::Status s) {
          if (s.ok()) done++;
        });
  }
  ASSERT_TRUE(JoinOrDie(g, executor).ok());
  EXPECT_LE(peak.peak.load(), n);
  EXPECT_EQ(done, 3 * kEach);
  const GroupStats s = g.stats();
  EXPECT_EQ(s.spawned, 3 * kEach);
  EXPECT_EQ(s.completed, 3 * kEach);
}

INSTANTIATE_TEST_SUITE_P(N, MaxConcurrency, ::testing::Values(1, 2, 3));

// While the only slot is taken, the rest wait and count as queued; a stop
// drops them at once (before the running task ends): callables destroyed
// unrun, counted cancelled; done callbacks get CancelledError exactly once.
TEST(MaxConcurrencyStop, StopDropsTheWaitingOnes) {
  Watchdog watchdog(absl::Seconds(60));
  Executor executor({.num_workers = 2});
  TaskGroup g(executor, {.name = "one", .max_concurrency = 1});
  Gate release;
  std::atomic<bool> first_running{false};
  g.Spawn([&] {
    first_running = true;
    release.WaitFor();
  });
  ASSERT_TRUE(Eventually([&] { return first_running.load(); }));
  Peak unused;
  Fate fate;
  constexpr int kPlain = 50;
  constexpr int kCoro = 10;
  constexpr int kBlocking = 20;
  for (int i = 0; i < kPlain; ++i) g.Spawn(Tracked(&fate, &unused));
  std::atomic<int> coro_ran{0};
  for (int i = 0; i < kCoro; ++i) {
    g.Spawn([&coro_ran]() -> Task<> {
      coro_ran++;
      co_return;
    });
  }
  std::atomic<int> fn_ran{0};
  std::atomic<int> dones{0};
  std::atomic<int> cancelled_dones{0};
  for (int i = 0; i < kBlocking; ++i) {
    g.SpawnBlocking([&] { fn_ran++; },
                    [&](absl::Status s) {
                      dones++;
                      if (absl::IsCancelled(s)) cancelled_dones++;
                    });
  }
  GroupStats s = g.stats();
  EXPECT_EQ(s.spawned, 1 + kPlain + kCoro + kBlocking);
  EXPECT_EQ(s.running, 1);
  EXPECT_EQ(s.queued, kPlain + kCoro + kBlocking);

  g.RequestStop("enough");
  // Dropped at once, on this thread: the first task still runs.
  EXPECT_EQ(fate.destroyed_unrun, kPlain);
  s = g.stats();
  EXPECT_GE(s.cancelled, kPlain + kCoro);
  // The done callbacks of the waiting calls run on the free worker.
  ASSERT_TRUE(Eventually([&] { return dones.load() == kBlocking; }));
  release.Open();
  const absl::Status w = JoinOrDie(g, executor);
  EXPECT_TRUE(absl::IsCancelled(w)) << w;
  EXPECT_EQ(fate.ran, 0);
  EXPECT_EQ(fate.destroyed_unrun, kPlain);
  EXPECT_EQ(coro_ran, 0);
  EXPECT_EQ(fn_ran, 0);
  EXPECT_EQ(dones, kBlocking);
  EXPECT_EQ(cancelled_dones, kBlocking);
  s = g.stats();
  EXPECT_EQ(s.spawned, 1 + kPlain + kCoro + kBlocking);
  EXPECT_EQ(s.cancelled, kPlain + kCoro + kBlocking);
  EXPECT_EQ(s.completed, 1);
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.queued, 0);
  // A spawn after the stop is dropped as usual.
  g.Spawn(Tracked(&fate, &unused));
  EXPECT_EQ(fate.destroyed_unrun, kPlain + 1);
}

// A task of a bounded group (N = 1) opens a child group and waits on it:
// the child's tasks need no slot of the parent, so nothing deadlocks. Same
// for a coroutine awaiting the child's Join().
TEST(MaxConcurrencyStop, WaitingOnChildGroupDoesNotDeadlock) {
  Watchdog watchdog(absl::Seconds(60));
  Executor executor({.num_workers = 2});
  TaskGroup g(executor, {.name = "bounded", .max_concurrency = 1});
  std::atomic<int> leaves{0};
  for (int i = 0; i < 6; ++i) {
    g.Spawn([&g, &leaves]() -> absl::Status {
      TaskGroup child(g, {.name = "child"});
      for (int j = 0; j < 10; ++j) child.Spawn([&leaves] { leaves++; });
      return child.Wait();
    });
    g.Spawn([&g, &leaves]() -> Task<absl::Status> {
      TaskGroup child(g, {.name = "cchild", .max_concurrency = 1});
      for (int j = 0; j < 10; ++j) child.Spawn([&leaves] { leaves++; });
      co_return co_await child.Join();
    });
  }
  ASSERT_TRUE(JoinOrDie(g, executor).ok());
  EXPECT_EQ(leaves, 120);
}

// A suspended coroutine holds no slot: with N = 1, while a coroutine awaits
// a child group's Join(), a plain task of the same group runs.
TEST(MaxConcurrencyStop, SuspendedCoroutineHoldsNoSlot) {
  Watchdog watchdog(absl::Seconds(60));
  Executor executor({.num_workers = 2});
  TaskGroup g(executor, {.name = "one", .max_concurrency = 1});
  TaskGroup child(g, {.name = "child"});
  Gate release;
  child.SpawnBlocking([&] { release.WaitFor(); }, [](absl::Status) {});
  std::atomic<bool> joined{false};
  g.Spawn([&]() -> Task<absl::Status> {
    absl::Status s = co_await child.Join();
    joined = true;
    co_return s;
  });
  std::atomic<bool> other_ran{false};
  g.Spawn([&] { other_ran = true; });
  EXPECT_TRUE(Eventually([&] { return other_ran.load(); }))
      << "the suspended coroutine kept the only slot";
  EXPECT_FALSE(joined.load());
  release.Open();
  ASSERT_TRUE(JoinOrDie(g, executor).ok());
  EXPECT_TRUE(joined.load());
}

// The limit counts the group's own work only: a child group's tasks run
// beside the parent's single slot holder.
TEST(MaxConcurrencyStop, ChildGroupsAreNotCounted) {
  Watchdog watchdog(absl::Seconds(60));
  Executor executor({.num_workers = 2});
  TaskGroup g(executor, {.name = "parent", .max_concurrency = 1});
  TaskGroup child(g, {.name = "child"});
  Gate release;
  std::atomic<int> running{0};
  g.SpawnBlocking([&] { running++; release.WaitFor(); }, [](absl::Status) {});
  child.SpawnBlocking([&] { running++; release.WaitFor(); },
                      [](absl::Status) {});
  child.SpawnBlocking([&] { running++; release.WaitFor(); },
                      [](absl::Status) {});
  EXPECT_TRUE(Eventually([&] { return running.load() == 3; }));
  const GroupStats t = g.tree_stats();
  EXPECT_EQ(t.running, 3);
  release.Open();
  ASSERT_TRUE(JoinOrDie(g, executor).ok());
}

TEST(MaxConcurrencyDeathTest, NegativeAborts) {
  EXPECT_DEATH(
      {
        Executor executor({.num_workers = 1});
        TaskGroup g(executor, {.max_concurrency = -1});
      },
      "GroupOptions::max_concurrency");
}

// Stress: a stop races the releases of slots (tasks finishing and handing
// their slot to a waiter) and spawns from another thread. Every task ran
// exactly once or was destroyed unrun exactly once; every done ran exactly
// once; stats add up; the peak never exceeded N.
TEST(MaxConcurrencyStress, StopVsRelease) {
  Watchdog watchdog(absl::Seconds(170));
  Executor executor({.num_workers = 2});
  std::mt19937 rng(12345);
  const int kRounds = Scaled(150, 20);
  for (int round = 0; round < kRounds; ++round) {
    const int n = 1 + static_cast<int>(rng() % 3);
    Peak peak;
    Fate fate;
    std::atomic<int> coro_started{0};
    std::atomic<int> coro_ended{0};
    std::atomic<int> dones{0};
    std::atomic<int> blocking_calls{0};
    int spawned = 0;
    {
      TaskGroup g(executor, {.name = "stress", .max_concurrency = n});
      const int kTasks = 10 + static_cast<int>(rng() % 40);
      std::thread spawner([&] {
        for (int i = 0; i < 20; ++i) {
          g.SpawnBlocking(
              [&] {
                peak.Enter();
                std::this_thread::yield();
                peak.Leave();
              },
              [&](absl::Status) { dones++; });
        }
      });
      for (int i = 0; i < kTasks; ++i) {
        switch (i % 3) {
          case 0:
            g.Spawn(Tracked(&fate, &peak));
            ++spawned;
            break;
          case 1:
            g.Spawn([&]() -> Task<absl::Status> {
              coro_started++;
              peak.Enter();
              std::this_thread::yield();
              peak.Leave();
              absl::Status s = co_await Yield();
              if (s.ok()) {
                peak.Enter();
                std::this_thread::yield();
                peak.Leave();
              }
              coro_ended++;
              co_return s;
            });
            break;
          default:
            g.Spawn([&peak] {
              peak.Enter();
              std::this_thread::yield();
              peak.Leave();
            });
            break;
        }
      }
      const int delay = static_cast<int>(rng() % 200);
      for (int i = 0; i < delay; ++i) std::this_thread::yield();
      g.RequestStop("stress");
      spawner.join();
      blocking_calls = 20;
      const absl::Status w = JoinOrDie(g, executor);
      EXPECT_TRUE(absl::IsCancelled(w) || w.ok()) << w;
      const GroupStats s = g.stats();
      EXPECT_EQ(s.spawned, kTasks + 20);
      EXPECT_EQ(s.completed + s.failed + s.cancelled, s.spawned);
      EXPECT_EQ(s.failed, 0);
      EXPECT_EQ(s.running, 0);
      EXPECT_EQ(s.queued, 0);
      EXPECT_EQ(dones, blocking_calls);
    }
    EXPECT_EQ(fate.ran + fate.destroyed_unrun, spawned);
    EXPECT_EQ(coro_started, coro_ended);
    ASSERT_LE(peak.peak.load(), n) << "round " << round;
    if (HasFailure()) break;
  }
}

// Stress without a stop: random N, many short tasks of every kind, from
// two threads; everything runs exactly once and the peak holds.
TEST(MaxConcurrencyStress, ManyShortTasks) {
  Watchdog watchdog(absl::Seconds(170));
  Executor executor({.num_workers = 2});
  const int kRounds = Scaled(40, 8);
  for (int round = 0; round < kRounds; ++round) {
    const int n = 1 + round % 4;
    Peak peak;
    std::atomic<int> ran{0};
    TaskGroup g(executor, {.name = "short", .max_concurrency = n});
    auto spawn_some = [&] {
      for (int i = 0; i < 100; ++i) {
        g.Spawn([&] {
          peak.Enter();
          ran++;
          peak.Leave();
        });
      }
    };
    std::thread other(spawn_some);
    spawn_some();
    other.join();
    ASSERT_TRUE(JoinOrDie(g, executor).ok());
    EXPECT_EQ(ran, 200);
    EXPECT_EQ(g.stats().completed, 200);
    ASSERT_LE(peak.peak.load(), n);
  }
}

}  // namespace
}  // namespace ripcord
