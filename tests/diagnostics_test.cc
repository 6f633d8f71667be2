// Copyright 2026 The ripcord Authors.
//
// Conformance tests of the diagnostics (API.md "Diagnostics"; issue 8):
// GroupStats / TaskGroup::stats() exact in simple cases and under a stress of
// random stops, and Executor::DebugString(): the tree of live groups with
// names (or ids), shielding, stop reasons and ages and stats, the blocking
// pool and timer lines, and its safety while groups come and go.
//
// The expected DebugString() format is the one of GroupState::DescribeTree()
// and ExecutorImpl::DebugString(); the tests assert on substrings and on
// line structure (indentation, order), never on the whole string.
//
// Synchronization in these tests uses std::mutex / std::condition_variable /
// std::atomic only: Debian's Abseil is not built with TSan, so absl::Mutex
// and absl::Notification would produce false reports under --config=tsan.
// Every wait is bounded.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/group/group_test_peer.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::Eventually;
using ::ripcord::testing::JoinOrDie;
using ::ripcord::testing::Scaled;
using ::ripcord::testing::Watchdog;
using ::ripcord::testing::Contains;
using ::ripcord::testing::Gate;

class DiagnosticsTest : public ::testing::Test {
 protected:
  Watchdog watchdog_{absl::Seconds(150)};
};

std::string StatsString(const GroupStats& s) {
  return absl::StrCat("spawned=", s.spawned, " completed=", s.completed,
                      " failed=", s.failed, " cancelled=", s.cancelled,
                      " running=", s.running, " queued=", s.queued);
}

void ExpectStats(const GroupStats& s, int64_t spawned, int64_t completed,
                 int64_t failed, int64_t cancelled, int64_t running,
                 int64_t queued) {
  GroupStats want;
  want.spawned = spawned;
  want.completed = completed;
  want.failed = failed;
  want.cancelled = cancelled;
  want.running = running;
  want.queued = queued;
  EXPECT_EQ(StatsString(s), StatsString(want));
}

// The DebugString() lines, without the trailing empty one.
std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines = absl::StrSplit(s, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// The index of the one line containing `needle`, or -1 (also when several
// lines contain it, which a test then reports).
int FindLine(const std::vector<std::string>& lines, absl::string_view needle) {
  int found = -1;
  for (int i = 0; i < static_cast<int>(lines.size()); ++i) {
    if (Contains(lines[i], needle)) {
      if (found >= 0) return -1;
      found = i;
    }
  }
  return found;
}

int Indent(const std::string& line) {
  return static_cast<int>(line.find_first_not_of(' '));
}

// ---- stats(): exact in simple cases ---------------------------------------

// Invariant: completed counts tasks that returned OK or void, failed counts
// non-OK returns and exceptions, cancelled counts tasks dropped because the
// group was stopped (here by a failure); spawned counts them all.
TEST_F(DiagnosticsTest, StatsCompletedFailedDropped) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "simple"});
  ExpectStats(g.stats(), 0, 0, 0, 0, 0, 0);
  for (int i = 0; i < 3; ++i) g.Spawn([] {});
  g.Spawn([](StopToken) { return absl::OkStatus(); });
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  ExpectStats(g.stats(), 4, 4, 0, 0, 0, 0);

  g.Spawn([]() -> absl::Status { return absl::InternalError("bad"); });
  EXPECT_EQ(JoinOrDie(g, ex).code(), absl::StatusCode::kInternal);
  ExpectStats(g.stats(), 5, 4, 1, 0, 0, 0);

  // The failure stopped the group: new tasks are dropped unrun.
  std::atomic<int> ran{0};
  g.Spawn([&] { ran.fetch_add(1); });
  g.Spawn([&](StopToken) -> Task<> {
    ran.fetch_add(1);
    co_return;
  });
  EXPECT_EQ(JoinOrDie(g, ex).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ran.load(), 0);
  ExpectStats(g.stats(), 7, 4, 1, 2, 0, 0);

  TaskGroup h(ex, {.name = "throws"});
  h.Spawn([] { throw std::runtime_error("thrown"); });
  EXPECT_FALSE(JoinOrDie(h, ex).ok());
  ExpectStats(h.stats(), 1, 0, 1, 0, 0, 0);
}

// Invariant: cancelled counts both ways a task can be cancelled: dropped
// without running (spawned into a stopped group, or queued when the stop
// came), and returning CancelledError after the stop. A CancelledError
// returned without a stop, or another error after the stop, is a failure;
// OK after a stop is completed.
TEST_F(DiagnosticsTest, StatsCancelledBothWays) {
  Executor ex({.num_workers = 1});
  {
    // Spawned into a stopped group.
    TaskGroup g(ex, {.name = "stopped"});
    g.RequestStop("closed");
    for (int i = 0; i < 3; ++i) g.Spawn([] {});
    EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g, ex)));
    ExpectStats(g.stats(), 3, 0, 0, 3, 0, 0);
  }
  {
    // Queued when the stop came (the only worker is busy), plus tasks that
    // were running then and return: OK, CancelledError and another error.
    TaskGroup g(ex, {.name = "queued-then-stopped"});
    Gate release;
    std::atomic<bool> started{false};
    std::atomic<int> ran_queued{0};
    g.Spawn([&] {
      started.store(true);
      EXPECT_TRUE(release.WaitFor());
    });
    ASSERT_TRUE(Eventually([&] { return started.load(); }));
    for (int i = 0; i < 4; ++i) g.Spawn([&] { ran_queued.fetch_add(1); });
    ExpectStats(g.stats(), 5, 0, 0, 0, 1, 4);
    g.RequestStop("stop while queued");
    release.Open();
    EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g, ex)));
    EXPECT_EQ(ran_queued.load(), 0);
    ExpectStats(g.stats(), 5, 1, 0, 4, 0, 0);
  }
  {
    // Running when the stop came: they see the token and return.
    Executor ex2({.num_workers = 3});
    TaskGroup g(ex2, {.name = "running-then-stopped"});
    std::atomic<int> started{0};
    g.Spawn([&](StopToken t) {  // passes on SleepFor's CancelledError
      started.fetch_add(1);
      return SleepFor(absl::Seconds(60), t);
    });
    g.Spawn([&](StopToken t) {  // OK after the stop: completed
      started.fetch_add(1);
      (void)SleepFor(absl::Seconds(60), t);
      return absl::OkStatus();
    });
    g.Spawn([&](StopToken t) {  // another error after the stop: failed
      started.fetch_add(1);
      (void)SleepFor(absl::Seconds(60), t);
      return absl::DataLossError("torn write");
    });
    ASSERT_TRUE(Eventually([&] { return started.load() == 3; }));
    ExpectStats(g.stats(), 3, 0, 0, 0, 3, 0);
    g.RequestStop("stop while running");
    absl::Status s = JoinOrDie(g, ex2);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    ExpectStats(g.stats(), 3, 1, 1, 1, 0, 0);
  }
  {
    // CancelledError returned without any stop is a failure.
    TaskGroup g(ex, {.name = "self-cancelled"});
    g.Spawn([] { return absl::CancelledError("my own idea"); });
    EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g, ex)));
    ExpectStats(g.stats(), 1, 0, 1, 0, 0, 0);
  }
}

// Invariant: running counts tasks that started and have not finished (a plain
// task blocking its worker, a suspended coroutine, a blocking call's fn), and
// queued counts tasks waiting for a worker while all workers are occupied;
// both return to 0 after the join. DebugString() shows the same numbers.
TEST_F(DiagnosticsTest, StatsRunningAndQueued) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "busy"});
  Gate release;
  std::atomic<int> entered{0};
  for (int i = 0; i < 2; ++i) {
    g.Spawn([&] {
      entered.fetch_add(1);
      EXPECT_TRUE(release.WaitFor());
    });
  }
  ASSERT_TRUE(Eventually([&] { return entered.load() == 2; }));
  for (int i = 0; i < 5; ++i) g.Spawn([] {});
  ExpectStats(g.stats(), 7, 0, 0, 0, 2, 5);
  EXPECT_TRUE(Contains(ex.DebugString(),
                       "group 'busy': spawned=7 completed=0 failed=0 "
                       "cancelled=0 running=2 queued=5"))
      << ex.DebugString();
  release.Open();
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  ExpectStats(g.stats(), 7, 7, 0, 0, 0, 0);

  // A suspended coroutine is running, and holds no worker.
  TaskGroup c(ex, {.name = "coro"});
  std::atomic<bool> suspended{false};
  c.Spawn([&]() -> Task<absl::Status> {
    suspended.store(true);
    co_return co_await Sleep(absl::Seconds(60));
  });
  ASSERT_TRUE(Eventually([&] { return suspended.load(); }));
  EXPECT_TRUE(Eventually([&] { return c.stats().running == 1; }));
  ExpectStats(c.stats(), 1, 0, 0, 0, 1, 0);
  c.RequestStop("wake");
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(c, ex)));
  ExpectStats(c.stats(), 1, 0, 0, 1, 0, 0);

  // A blocking call's fn is running while it runs.
  TaskGroup b(ex, {.name = "blocking"});
  Gate release_fn;
  std::atomic<bool> in_fn{false};
  b.SpawnBlocking(
      [&] {
        in_fn.store(true);
        EXPECT_TRUE(release_fn.WaitFor());
        return 1;
      },
      [](absl::StatusOr<int> v) { EXPECT_TRUE(v.ok()) << v.status(); });
  ASSERT_TRUE(Eventually([&] { return in_fn.load(); }));
  ExpectStats(b.stats(), 1, 0, 0, 0, 1, 0);
  release_fn.Open();
  EXPECT_TRUE(JoinOrDie(b, ex).ok());
  ExpectStats(b.stats(), 1, 1, 0, 0, 0, 0);
}

// Invariant: running counts each plain task once however deeply helping
// waits nest them on one worker (the first 32 levels are the worker's
// published frames, deeper ones a counter), and a busy child group counts
// in neither spawned nor running of its parent: at the bottom of a chain of
// 40 nested groups on ONE worker, every level shows spawned=1 running=1
// queued=0.
TEST_F(DiagnosticsTest, StatsRunningThroughDeepNesting) {
  constexpr int kDepth = 40;
  Executor ex({.num_workers = 1});
  TaskGroup root(ex, {.name = "root"});
  std::vector<TaskGroup*> chain;  // chain[i]: the group at depth i
  std::vector<GroupStats> seen;
  std::function<void(TaskGroup&, int)> descend = [&](TaskGroup& parent,
                                                     int level) {
    TaskGroup g(parent);
    chain.push_back(&g);
    g.Spawn([&, level] {
      if (level + 1 < kDepth) {
        descend(g, level + 1);
      } else {
        for (TaskGroup* c : chain) seen.push_back(c->stats());
      }
    });
    EXPECT_TRUE(g.Wait().ok());
    chain.pop_back();
  };
  root.Spawn([&] { descend(root, 0); });
  ASSERT_TRUE(JoinOrDie(root, ex).ok());
  ASSERT_EQ(static_cast<int>(seen.size()), kDepth);
  for (int i = 0; i < kDepth; ++i) {
    SCOPED_TRACE(absl::StrCat("depth ", i));
    ExpectStats(seen[i], 1, 0, 0, 0, 1, 0);
  }
  ExpectStats(root.stats(), 1, 1, 0, 0, 0, 0);
}

// ---- stats() while a worker defers releases ------------------------------
// A worker that runs lazy tasks of one group back to back releases them
// together later (Worker::deferred_n, executor/sched/scheduler.h), and the
// group's count stays up meanwhile. These tests line tasks up on ONE worker,
// behind a task of another group that holds it until everything is queued,
// so that this happens; they check that nothing shows it.

// Holds the only worker of `ex` until `go` opens.
void HoldTheWorker(TaskGroup& hold, Gate& go) {
  hold.Spawn([&go] { EXPECT_TRUE(go.WaitFor()); });
}

// Invariant: a finished task counts as completed at once, even while the
// worker that ran it still holds its release because it went on to a long
// task of the same group: 50 finished, the 51st blocked shows completed=50
// running=1 queued=0.
TEST_F(DiagnosticsTest, StatsCountFinishedTasksWhoseReleaseIsDeferred) {
  Executor ex({.num_workers = 1});
  TaskGroup hold(ex);
  Gate go, release;
  HoldTheWorker(hold, go);
  TaskGroup g(ex, {.name = "deferred"});
  std::atomic<int> ran{0};
  std::atomic<bool> blocked{false};
  for (int i = 0; i < 50; ++i) g.Spawn([&ran] { ran.fetch_add(1); });
  g.Spawn([&] {
    blocked.store(true);
    EXPECT_TRUE(release.WaitFor());
  });
  go.Open();
  ASSERT_TRUE(Eventually([&] { return blocked.load(); }));
  EXPECT_EQ(ran.load(), 50);
  ExpectStats(g.stats(), 51, 50, 0, 0, 1, 0);
  release.Open();
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  ExpectStats(g.stats(), 51, 51, 0, 0, 0, 0);
  EXPECT_TRUE(JoinOrDie(hold, ex).ok());
}

// Invariant: a stop that finds the worker holding releases of the group
// changes nothing in the outcome: every task that ran counts completed,
// every one the stop caught queued counts cancelled (lazy or not), no task
// starts after the stop, and Wait() returns Cancelled. (The worker takes
// from the injection queue's head now and then, so the order in which the
// tasks run is not the order of the spawns.)
TEST_F(DiagnosticsTest, StopWhileTheWorkerDefersReleases) {
  Executor ex({.num_workers = 1});
  constexpr int kBefore = 20;
  constexpr int kAfter = 30;
  for (int round = 0; round < Scaled(40); ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    TaskGroup hold(ex);
    Gate go;
    HoldTheWorker(hold, go);
    TaskGroup g(ex);
    std::atomic<int> ran{0};
    std::atomic<int> started_stopped{0};
    // A capture with a destructor makes a task strict (not lazily dropped).
    auto owned = std::make_shared<int>(0);
    auto spawn_some = [&](int n) {
      for (int i = 0; i < n; ++i) {
        if ((i + round) % 4 == 0) {
          g.Spawn([&ran, &started_stopped, owned](StopToken token) {
            if (token.stop_requested()) started_stopped.fetch_add(1);
            ran.fetch_add(1);
          });
        } else {
          g.Spawn([&ran, &started_stopped](StopToken token) {
            if (token.stop_requested()) started_stopped.fetch_add(1);
            ran.fetch_add(1);
          });
        }
      }
    };
    spawn_some(kBefore);
    g.Spawn([&] {
      ran.fetch_add(1);
      g.RequestStop("stopped by one of its tasks");
    });
    spawn_some(kAfter);
    go.Open();
    EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g, ex)));
    EXPECT_EQ(started_stopped.load(), 0);
    const int n = ran.load();
    EXPECT_GE(n, 1);
    ExpectStats(g.stats(), kBefore + 1 + kAfter, n, 0,
                kBefore + 1 + kAfter - n, 0, 0);
    EXPECT_TRUE(JoinOrDie(hold, ex).ok());
  }
}

// Invariant: tasks that wait for a child group while their worker holds
// releases of their own group, and a failure after such tasks, leave exact
// counts in both groups: every task is counted once, in its own group.
TEST_F(DiagnosticsTest, DeferredReleasesAcrossNestedWaitsAndAFailure) {
  Executor ex({.num_workers = 1});
  TaskGroup hold(ex);
  Gate go;
  HoldTheWorker(hold, go);
  TaskGroup g(ex);
  std::atomic<int> child_ran{0};
  std::vector<GroupStats> child_stats(5);
  for (int i = 0; i < 10; ++i) g.Spawn([] {});
  for (int k = 0; k < 5; ++k) {
    g.Spawn([&, k] {
      TaskGroup child(g);
      for (int j = 0; j < 10; ++j) {
        child.Spawn([&child_ran] { child_ran.fetch_add(1); });
      }
      EXPECT_TRUE(child.Wait().ok());
      child_stats[k] = child.stats();
    });
    for (int i = 0; i < 3; ++i) g.Spawn([] {});
  }
  g.Spawn([] { return absl::InternalError("fails after deferred ones"); });
  go.Open();
  EXPECT_TRUE(absl::IsInternal(JoinOrDie(g, ex)));
  EXPECT_EQ(child_ran.load(), 50);
  for (int k = 0; k < 5; ++k) {
    SCOPED_TRACE(absl::StrCat("child ", k));
    ExpectStats(child_stats[k], 10, 10, 0, 0, 0, 0);
  }
  ExpectStats(g.stats(), 31, 30, 1, 0, 0, 0);
  EXPECT_TRUE(JoinOrDie(hold, ex).ok());
}

// Invariant: completed is exact past 2^31 and 2^32, where the 31-bit
// completed field inside the group's join word carries into its overflow
// counter (the carry is set by a finishing task and moved by the next spawn,
// and stats() counts it in between).
TEST_F(DiagnosticsTest, StatsCompletedPastTheFieldWidth) {
  Executor ex({.num_workers = 2});
  for (const int64_t start : {(int64_t{1} << 31) - 3, (int64_t{1} << 32) - 2,
                              (int64_t{3} << 31) - 1}) {
    SCOPED_TRACE(absl::StrCat("start ", start));
    TaskGroup g(ex);
    g.Spawn([start] {
      internal::GroupStateTestPeer::SetCompleted(
          internal::GroupState::Current(), start);
    });
    ASSERT_TRUE(JoinOrDie(g, ex).ok());
    EXPECT_EQ(g.stats().completed, start + 1);  // maybe only the carry bit
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 5; ++i) g.Spawn([] {});
      ASSERT_TRUE(JoinOrDie(g, ex).ok());
      const GroupStats s = g.stats();
      EXPECT_EQ(s.completed, start + 1 + 5 * (round + 1));
      EXPECT_EQ(s.spawned, s.completed);
      EXPECT_EQ(s.running + s.queued, 0);
    }
  }
}

// ---- stats(): exact under a stress of random stops ------------------------

// The test's own count of what happened to one group's tasks.
struct Tally {
  std::atomic<int64_t> spawns{0};     // Spawn / SpawnBlocking calls
  std::atomic<int64_t> ran{0};        // bodies (or blocking fns) that started
  std::atomic<int64_t> ok{0};         // ran to completion successfully
  std::atomic<int64_t> failed{0};     // returned an error or threw
  std::atomic<int64_t> cancelled{0};  // returned CancelledError after a stop
};

// Spawns one random task into `g`, counted in `t`. Kinds: void, a Status from
// a short SleepFor on the token, an error, an exception, a coroutine sleeping
// briefly, a blocking call, and a task that spawns two more. done of the
// blocking calls takes its argument by value only if `done_by_value`.
void SpawnRandom(TaskGroup& g, Tally& t, uint32_t seed, int depth,
                 bool done_by_value) {
  const int kind = static_cast<int>(seed % 100);
  const absl::Duration nap = absl::Microseconds((seed / 100) % 200);
  t.spawns.fetch_add(1);
  auto count_status = [&t](const absl::Status& s) {
    if (s.ok()) {
      t.ok.fetch_add(1);
    } else if (absl::IsCancelled(s)) {
      t.cancelled.fetch_add(1);  // only SleepFor/Sleep return it: a stop
    } else {
      t.failed.fetch_add(1);
    }
  };
  if (kind < 50) {
    g.Spawn([&t] {
      t.ran.fetch_add(1);
      t.ok.fetch_add(1);
    });
  } else if (kind < 65) {
    g.Spawn([&t, nap, count_status](StopToken token) {
      t.ran.fetch_add(1);
      absl::Status s = SleepFor(nap, token);
      count_status(s);
      return s;
    });
  } else if (kind < 67) {
    g.Spawn([&t]() -> absl::Status {
      t.ran.fetch_add(1);
      t.failed.fetch_add(1);
      return absl::InternalError("random failure");
    });
  } else if (kind < 68) {
    g.Spawn([&t] {
      t.ran.fetch_add(1);
      t.failed.fetch_add(1);
      throw std::runtime_error("random exception");
    });
  } else if (kind < 80) {
    g.Spawn([&t, nap, count_status]() -> Task<absl::Status> {
      t.ran.fetch_add(1);
      absl::Status s = co_await Sleep(nap);
      count_status(s);
      co_return s;
    });
  } else if (kind < 90) {
    // fn counts its own outcome: a blocking call counts by fn's outcome.
    // Calls dropped before fn started are counted as spawns - ran.
    auto fn = [&t, nap, count_status](StopToken token) {
      t.ran.fetch_add(1);
      absl::Status s = SleepFor(nap, token);
      count_status(s);
      return s;
    };
    if (done_by_value) {
      g.SpawnBlocking(fn, [](absl::Status) {});
    } else {
      g.SpawnBlocking(fn, [](const absl::Status&) {});
    }
  } else {
    g.Spawn([&g, &t, seed, depth, done_by_value] {
      t.ran.fetch_add(1);
      if (depth < 3) {
        SpawnRandom(g, t, seed * 2654435761u + 1, depth + 1, done_by_value);
        SpawnRandom(g, t, seed * 2246822519u + 7, depth + 1, done_by_value);
      }
      t.ok.fetch_add(1);
    });
  }
}

// The stress: each round builds root -> {kid, shielded kid}, spawns random
// tasks into them from two threads (and from tasks), stops one group (or none)
// at a random moment, joins, and compares each group's stats() with the
// test's own tally.
void StressRandomStops(bool done_by_value) {
  Executor ex({.num_workers = 3, .max_blocking_threads = 4});
  const int rounds = Scaled(150);
  std::mt19937 rng(20260202);
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    Tally tallies[3];
    {
      TaskGroup root(ex, {.name = "root"});
      TaskGroup kid(root, {.name = "kid"});
      TaskGroup shield(root, {.name = "shield", .shielded = true});
      TaskGroup* groups[3] = {&root, &kid, &shield};
      const int stop_choice = static_cast<int>(rng() % 4);  // 0: no stop
      const int stop_after_us = static_cast<int>(rng() % 600);
      const uint32_t seed0 = rng();
      const uint32_t seed1 = rng();
      std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::microseconds(stop_after_us));
        if (stop_choice > 0) groups[stop_choice - 1]->RequestStop("random stop");
      });
      auto spawner = [&](uint32_t seed) {
        std::mt19937 local(seed);
        for (int i = 0; i < 60; ++i) {
          const int which = static_cast<int>(local() % 3);
          SpawnRandom(*groups[which], tallies[which], local(), 0,
                      done_by_value);
        }
      };
      std::thread s0(spawner, seed0);
      std::thread s1(spawner, seed1);
      s0.join();
      s1.join();
      stopper.join();
      (void)JoinOrDie(kid, ex);
      (void)JoinOrDie(shield, ex);
      (void)JoinOrDie(root, ex);
      const char* names[3] = {"root", "kid", "shield"};
      for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE(names[i]);
        const Tally& t = tallies[i];
        const GroupStats st = groups[i]->stats();
        EXPECT_EQ(st.spawned, t.spawns.load());
        EXPECT_EQ(st.completed, t.ok.load());
        EXPECT_EQ(st.failed, t.failed.load());
        EXPECT_EQ(st.cancelled,
                  t.spawns.load() - t.ran.load() + t.cancelled.load());
        EXPECT_EQ(st.spawned, st.completed + st.failed + st.cancelled);
        EXPECT_EQ(st.running, 0);
        EXPECT_EQ(st.queued, 0);
      }
    }
    if (::testing::Test::HasFailure()) return;
  }
}

// Invariant (stress): for any interleaving of spawns (from outside and from
// tasks), random stops (of a root, a child or a shielded child), failures and
// exceptions, each group's stats() after the join equal the test's own count:
// spawned == spawns made, completed == bodies that ran to success, failed ==
// bodies that failed, cancelled == dropped + returned CancelledError after a
// stop; spawned == completed + failed + cancelled; nothing running or queued.
TEST_F(DiagnosticsTest, StatsExactUnderRandomStops) {
  StressRandomStops(/*done_by_value=*/false);
}

// Invariant (stress): as above, with the blocking calls' done taking its
// absl::Status by value.
//
// Regression test: BlockingCall::RunDonePhase used to read fn's status from
// the result after moving it into done, so a done taking its argument by
// value made every call count as failed. See StatsCountByFnOutcome in
// blocking_test.cc.
TEST_F(DiagnosticsTest, StatsExactUnderRandomStopsDoneByValue) {
  StressRandomStops(/*done_by_value=*/true);
}

// ---- DebugString() ---------------------------------------------------------

// Invariant: DebugString() shows the live tree: a header, each root group at
// indent 2 with its children right under it, 2 spaces deeper; names (an id
// for unnamed groups), "[shielded]" for shielded groups, " stopped <age>
// ago: <reason>" for stopped groups (a child stopped by its parent shows the
// parent's reason), the stats numbers; then the blocking pool and timers
// lines.
TEST_F(DiagnosticsTest, DebugStringShowsTheTree) {
  Executor ex({.num_workers = 2});
  TaskGroup alpha(ex, {.name = "alpha"});
  for (int i = 0; i < 3; ++i) alpha.Spawn([] {});
  ASSERT_TRUE(JoinOrDie(alpha, ex).ok());
  TaskGroup beta(alpha, {.name = "beta", .shielded = true});
  TaskGroup gamma(beta);  // unnamed
  TaskGroup delta(ex, {.name = "delta"});
  TaskGroup epsilon(delta, {.name = "epsilon"});
  const absl::Time before_stop = absl::Now();
  delta.RequestStop("maintenance window");
  delta.Spawn([] {});
  delta.Spawn([] {});
  absl::SleepFor(absl::Milliseconds(30));
  const std::string debug = ex.DebugString();
  const absl::Time after = absl::Now();
  SCOPED_TRACE(debug);
  const std::vector<std::string> lines = Lines(debug);
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_TRUE(absl::StartsWith(lines[0], "Executor: 2 workers"));

  const int ia = FindLine(lines, "group 'alpha'");
  const int ib = FindLine(lines, "group 'beta'");
  const int ig = FindLine(lines, "unnamed group");
  const int id = FindLine(lines, "group 'delta'");
  const int ie = FindLine(lines, "group 'epsilon'");
  ASSERT_TRUE(ia > 0 && ib > 0 && ig > 0 && id > 0 && ie > 0);
  // Shape: children right under their parent, 2 spaces deeper.
  EXPECT_EQ(Indent(lines[ia]), 2);
  EXPECT_EQ(Indent(lines[ib]), 4);
  EXPECT_EQ(Indent(lines[ig]), 6);
  EXPECT_EQ(Indent(lines[id]), 2);
  EXPECT_EQ(Indent(lines[ie]), 4);
  EXPECT_EQ(ib, ia + 1);
  EXPECT_EQ(ig, ib + 1);
  EXPECT_EQ(ie, id + 1);

  // Names, shielding, stats.
  EXPECT_TRUE(Contains(lines[ia], "group 'alpha': spawned=3 completed=3 "
                                  "failed=0 cancelled=0 running=0 queued=0"));
  EXPECT_TRUE(Contains(lines[ib], "group 'beta' [shielded]:"));
  EXPECT_FALSE(Contains(lines[ig], "[shielded]"));
  EXPECT_TRUE(Contains(lines[ig], "#")) << "an unnamed group shows an id";
  EXPECT_FALSE(Contains(lines[ia], "stopped"));
  EXPECT_FALSE(Contains(lines[ib], "stopped"));
  EXPECT_TRUE(Contains(lines[id], "cancelled=2"));

  // Stop reason and how long ago.
  EXPECT_TRUE(Contains(lines[id], "ago: maintenance window"));
  EXPECT_TRUE(Contains(lines[ie], "ago: maintenance window"))
      << "a child shows its parent's reason";
  const std::string& dl = lines[id];
  const size_t from = dl.find(" stopped ");
  const size_t to = dl.find(" ago: ");
  ASSERT_TRUE(from != std::string::npos && to != std::string::npos);
  absl::Duration age;
  const std::string age_text = dl.substr(from + 9, to - from - 9);
  ASSERT_TRUE(absl::ParseDuration(age_text, &age)) << age_text;
  EXPECT_GE(age, absl::Milliseconds(30));
  EXPECT_LE(age, after - before_stop);

  // The pool and timer lines come last.
  EXPECT_TRUE(absl::StartsWith(lines[6], "blocking pool: 0 threads (0 busy), "
                                         "0 queued"));
  EXPECT_EQ(lines[7], "timers pending: 0");
}

// Invariant: a stop from Executor::RequestStop shows in every unshielded
// root's line with its reason, and not in a shielded root's line; a stopped
// group that is later stopped again keeps its first reason in DebugString().
TEST_F(DiagnosticsTest, DebugStringShowsExecutorStopAndFirstReason) {
  Executor ex({.num_workers = 1});
  TaskGroup plain(ex, {.name = "plain"});
  TaskGroup shielded(ex, {.name = "guarded", .shielded = true});
  ex.RequestStop(StopTarget::kUnshielded, "deploy in progress");
  plain.RequestStop("second reason");
  const std::vector<std::string> lines = Lines(ex.DebugString());
  const int ip = FindLine(lines, "group 'plain'");
  const int is = FindLine(lines, "group 'guarded' [shielded]");
  ASSERT_TRUE(ip > 0 && is > 0) << ex.DebugString();
  EXPECT_TRUE(Contains(lines[ip], "ago: deploy in progress")) << lines[ip];
  EXPECT_FALSE(Contains(lines[ip], "second reason")) << lines[ip];
  EXPECT_FALSE(Contains(lines[is], "stopped")) << lines[is];
}

// Invariant: the blocking pool line shows its threads, busy threads and
// queued calls; the timers line counts pending timers (group timeouts); when
// every group is gone only the header, pool and timers lines remain.
TEST_F(DiagnosticsTest, DebugStringBlockingPoolAndTimers) {
  Executor ex({.num_workers = 2, .max_blocking_threads = 2});
  {
    TaskGroup g(ex, {.name = "pool-user"});
    TaskGroup t1(ex, {.name = "t1", .timeout = absl::Hours(1)});
    TaskGroup t2(t1, {.name = "t2", .timeout = absl::Hours(2)});
    Gate release;
    std::atomic<int> inside{0};
    for (int i = 0; i < 3; ++i) {
      g.SpawnBlocking(
          [&] {
            inside.fetch_add(1);
            EXPECT_TRUE(release.WaitFor());
          },
          [](absl::Status s) { EXPECT_TRUE(s.ok()) << s; });
    }
    ASSERT_TRUE(Eventually([&] { return inside.load() == 2; }));
    const std::string debug = ex.DebugString();
    EXPECT_TRUE(Contains(debug, "\nblocking pool: 2 threads (2 busy), 1 queued\n"))
        << debug;
    EXPECT_TRUE(absl::EndsWith(debug, "\ntimers pending: 2\n")) << debug;
    release.Open();
    EXPECT_TRUE(JoinOrDie(g, ex).ok());
  }
  // A pool thread marks itself idle just after its job returned, which may
  // be after done ran and the group was joined: hence Eventually.
  EXPECT_TRUE(Eventually([&] {
    return Contains(ex.DebugString(), " threads (0 busy), 0 queued\n");
  })) << ex.DebugString();
  const std::vector<std::string> lines = Lines(ex.DebugString());
  ASSERT_EQ(lines.size(), 3u) << ex.DebugString();
  EXPECT_TRUE(absl::StartsWith(lines[0], "Executor: 2 workers"));
  EXPECT_TRUE(absl::StartsWith(lines[1], "blocking pool: "));
  EXPECT_EQ(lines[2], "timers pending: 0");
}

// Invariant: DebugString() is safe to call from several threads (and from
// tasks) while root and child groups are created, spawned into, stopped,
// timed out and destroyed on other threads and inside tasks: no crash, no
// data race (TSan), no use-after-free (ASan); every result is well formed;
// afterwards no group is left in the tree.
TEST_F(DiagnosticsTest, DebugStringConcurrentWithGroupChurn) {
  Executor ex({.num_workers = 2, .max_blocking_threads = 4});
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, malformed{0};
  auto check = [&](const std::string& d) {
    if (!absl::StartsWith(d, "Executor: ") ||
        !Contains(d, "\nblocking pool: ") ||
        !Contains(d, "\ntimers pending: ") || !absl::EndsWith(d, "\n")) {
      malformed.fetch_add(1);
    }
  };
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        check(ex.DebugString());
        reads.fetch_add(1);
      }
    });
  }
  auto churn = [&](uint32_t seed) {
    std::mt19937 rng(seed);
    const int iterations = Scaled(300);
    for (int i = 0; i < iterations; ++i) {
      GroupOptions options;
      if (rng() % 2 == 0) options.name = absl::StrCat("churn-", seed, "-", i);
      options.shielded = rng() % 4 == 0;
      if (rng() % 4 == 0) {
        options.timeout = absl::Microseconds(static_cast<int>(rng() % 2000));
      }
      TaskGroup root(ex, std::move(options));
      const int children = static_cast<int>(rng() % 3);
      std::vector<std::unique_ptr<TaskGroup>> kids;
      for (int c = 0; c < children; ++c) {
        kids.push_back(std::make_unique<TaskGroup>(
            root, GroupOptions{.name = "", .shielded = rng() % 3 == 0}));
        kids.back()->Spawn([](StopToken t) {
          return SleepFor(absl::Microseconds(100), t);
        });
      }
      for (int k = 0; k < 4; ++k) {
        root.Spawn([&root, &ex, &check, k](StopToken t) -> absl::Status {
          // A child group inside a task: created and destroyed on a worker.
          TaskGroup inner(root, {.name = "inner"});
          inner.Spawn([] {});
          if (k == 0) check(ex.DebugString());
          absl::Status s = inner.Wait();
          if (!s.ok() && !absl::IsCancelled(s)) return s;
          return SleepFor(absl::Microseconds(50), t);
        });
      }
      if (rng() % 4 == 0) {
        root.SpawnBlocking([] { return 1; }, [](absl::StatusOr<int>) {});
      }
      if (rng() % 3 == 0) root.RequestStop("churn stop");
      for (auto& kid : kids) (void)JoinOrDie(*kid, ex);
      kids.clear();
      (void)JoinOrDie(root, ex);
    }
  };
  std::thread c0(churn, 1);
  std::thread c1(churn, 2);
  c0.join();
  c1.join();
  done.store(true);
  for (auto& r : readers) r.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(malformed.load(), 0);
  const std::vector<std::string> lines = Lines(ex.DebugString());
  EXPECT_EQ(lines.size(), 3u) << ex.DebugString();
}

}  // namespace
}  // namespace ripcord
