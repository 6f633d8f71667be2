// Copyright 2026 The ripcord Authors.
//
// Stress tests for task groups (STYLE.md section 7): random spawn / stop /
// wait interleavings across nested groups, stop vs completion, done racing
// Wait(), executor shutdown right after joins, and recursive parallelism with
// a child group per call, each swept over 1, 2 and 4 workers with seeded RNGs
// (the seed is in every failure message). Sizes are scaled by kStressScale:
// under 15 s plain and under 60 s with TSan on 2 cores.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::JoinOrDie;
using ::ripcord::testing::kHangTimeout;
using ::ripcord::testing::kSanitizer;
using ::ripcord::testing::kThreadSanitizer;
using ::ripcord::testing::MessageContains;
using ::ripcord::testing::Scaled;
using ::ripcord::testing::ScopedTestHook;
using ::ripcord::testing::SpinUntilSet;
using ::ripcord::testing::Watchdog;

constexpr int kWorkerCounts[] = {1, 2, 4};

class TaskGroupStressTest : public ::testing::Test {
 protected:
  // Far above the expected run time (see the file comment): catches hangs.
  Watchdog watchdog_{absl::Seconds(240)};
};

// splitmix64: deterministic per-task randomness derived from the seed.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Runs body(executor, rep) `reps` times on a fresh executor of each size in
// kWorkerCounts, with the rep and the size in failure messages; stops at the
// first fatal failure (an ASSERT inside body returns from body only).
template <class Body>
void ForEachWorkerCountAndRep(int reps, Body body) {
  for (int workers : kWorkerCounts) {
    Executor executor({.num_workers = workers});
    for (int rep = 0; rep < reps; ++rep) {
      SCOPED_TRACE(::testing::Message() << "rep " << rep << ", workers " << workers);
      body(executor, rep);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// ---------------------------------------------------------------------------
// Random interleavings.

// What the test itself counts for one group, to compare with stats().
struct Accounting {
  std::atomic<int64_t> spawned{0};   // Spawn() calls made into the group
  std::atomic<int64_t> ran{0};       // task bodies that started
  std::atomic<int64_t> ok{0};        // returned OK
  std::atomic<int64_t> cancelled{0}; // returned CancelledError (after a stop)
  std::atomic<int64_t> failed{0};    // returned another error
};

// One random scenario: a tree of groups (root, children, grandchildren, some
// shielded), tasks spawned from outside and from tasks, stops and waits from
// racing threads. Every task has an id; runs[id] counts its executions.
class Scenario {
 public:
  Scenario(Executor& executor, uint64_t seed)
      : executor_(executor),
        inject_failures_(seed % 3 == 0),
        runs_(new std::atomic<int>[kMaxTasks]) {
    for (int i = 0; i < kMaxTasks; ++i) runs_[i].store(0);
    std::mt19937_64 rng(seed);
    Add(-1, false);  // the root
    const int children = 1 + static_cast<int>(rng() % 3);
    for (int c = 0; c < children; ++c) {
      const int child = Add(0, rng() % 4 == 0);
      const int grandchildren = static_cast<int>(rng() % 3);
      for (int g = 0; g < grandchildren; ++g) Add(child, rng() % 4 == 0);
    }
  }

  ~Scenario() {
    // Children before parents: reverse creation order.
    while (!groups_.empty()) groups_.pop_back();
  }

  int num_groups() const { return static_cast<int>(groups_.size()); }
  TaskGroup& group(int i) { return *groups_[i]; }

  // Spawns one task with randomness `r` into group `g`; false when the
  // scenario's task budget is used up.
  bool SpawnInto(int g, uint64_t r) {
    const int id = next_id_.fetch_add(1);
    if (id >= kMaxTasks) return false;
    acct_[g]->spawned++;
    groups_[g]->Spawn([this, g, id, r](StopToken token) -> absl::Status {
      runs_[id].fetch_add(1);
      acct_[g]->ran++;
      absl::Status s = Body(g, r, token);
      if (s.ok()) {
        acct_[g]->ok++;
      } else if (absl::IsCancelled(s)) {
        acct_[g]->cancelled++;
      } else {
        acct_[g]->failed++;
      }
      return s;
    });
    return true;
  }

  // A racing thread's stop: one of several kinds.
  void RandomStop(uint64_t r) {
    const int target = static_cast<int>(r % num_groups());
    switch ((r >> 16) % 4) {
      case 0:
        groups_[0]->RequestStop("stress: root stop");
        break;
      case 1:
        groups_[target]->RequestStop("stress: group stop");
        break;
      case 2:
        executor_.RequestStop(StopTarget::kUnshielded, "stress: executor stop");
        break;
      case 3:
        executor_.RequestStop(StopTarget::kAll, "stress: executor stop all");
        break;
    }
  }

  // Adds this scenario's totals to `sums`: {spawned, ran, dropped, failed}.
  void AddTotals(int64_t sums[4]) const {
    for (const auto& a : acct_) {
      sums[0] += a->spawned.load();
      sums[1] += a->ran.load();
      sums[2] += a->spawned.load() - a->ran.load();
      sums[3] += a->failed.load();
    }
  }

  // Checks every invariant once the root has been joined.
  void Verify() {
    const int spawned_ids = std::min(next_id_.load(), kMaxTasks);
    for (int id = 0; id < spawned_ids; ++id) {
      ASSERT_LE(runs_[id].load(), 1) << "task " << id << " ran twice";
    }
    EXPECT_EQ(transient_errors_.load(), 0)
        << "a Wait() from a task returned FailedPrecondition, or a transient "
           "child group's stats were off after its Wait()";
    for (int g = 0; g < num_groups(); ++g) {
      SCOPED_TRACE(::testing::Message() << "group " << g);
      const Accounting& a = *acct_[g];
      const GroupStats st = groups_[g]->stats();
      EXPECT_EQ(st.spawned, a.spawned.load());
      EXPECT_EQ(st.running, 0);
      EXPECT_EQ(st.queued, 0);
      // Ran: exactly completed + cancelled-after-stop + failed.
      EXPECT_EQ(a.ran.load(), a.ok.load() + a.cancelled.load() + a.failed.load());
      EXPECT_EQ(st.completed, a.ok.load());
      EXPECT_EQ(st.failed, a.failed.load());
      // Not run (dropped) + returned CancelledError = cancelled: none lost.
      EXPECT_EQ(st.cancelled, (a.spawned.load() - a.ran.load()) + a.cancelled.load());
      EXPECT_EQ(st.spawned, st.completed + st.failed + st.cancelled);
      // A task returns CancelledError only from SleepFor, so only after a stop;
      // and a group that dropped tasks must have been stopped.
      if (a.cancelled.load() > 0 || a.spawned.load() > a.ran.load()) {
        EXPECT_TRUE(groups_[g]->stop_requested());
      }
      // The status matches what happened.
      const absl::Status s = groups_[g]->WaitFor(kHangTimeout);
      if (a.failed.load() > 0) {
        EXPECT_TRUE(absl::IsInternal(s)) << s;
        EXPECT_TRUE(MessageContains(s, "injected")) << s;
      } else if (groups_[g]->stop_requested()) {
        EXPECT_TRUE(absl::IsCancelled(s)) << s;
        // A racing thread's stop, or a failure of an ancestor that stopped it.
        EXPECT_TRUE(MessageContains(s, "stress") || MessageContains(s, "injected"))
            << s;
      } else {
        EXPECT_TRUE(s.ok()) << s;
      }
      EXPECT_EQ(groups_[g]->Wait(), s);  // a later Wait() returns the same
    }
  }

 private:
  static constexpr int kMaxTasks = 400;

  bool IsStrictDescendant(int d, int ancestor) const {
    for (int p = parents_[d]; p >= 0; p = parents_[p]) {
      if (p == ancestor) return true;
    }
    return false;
  }

  int Add(int parent, bool shielded) {
    parents_.push_back(parent);
    GroupOptions options{.name = "g" + std::to_string(groups_.size()),
                         .shielded = shielded};
    if (parent < 0) {
      groups_.push_back(std::make_unique<TaskGroup>(executor_, options));
    } else {
      groups_.push_back(std::make_unique<TaskGroup>(*groups_[parent], options));
    }
    acct_.push_back(std::make_unique<Accounting>());
    return static_cast<int>(groups_.size()) - 1;
  }

  absl::Status Body(int g, uint64_t r, StopToken token) {
    const int kind = static_cast<int>(r % 100);
    r = Mix(r);
    if (kind < 35) return absl::OkStatus();
    if (kind < 60) {
      return SleepFor(absl::Microseconds(static_cast<int64_t>(r % 300)), token);
    }
    if (kind < 85) {
      // Fan out into the own group or any other group of the tree.
      const int n = 1 + static_cast<int>(r % 3);
      for (int i = 0; i < n; ++i) {
        const uint64_t ri = Mix(r + i);
        const int target = ri % 2 == 0 ? g : static_cast<int>((ri >> 8) % num_groups());
        SpawnInto(target, Mix(ri));
      }
      return absl::OkStatus();
    }
    if (kind < 91) {
      // Wait on an existing strict descendant of the own group from this
      // task (a helping wait on a group others keep spawning into). Waits
      // only go down the tree, so they cannot wait on their own frames.
      std::vector<int> below;
      for (int d = g + 1; d < num_groups(); ++d) {
        if (IsStrictDescendant(d, g)) below.push_back(d);
      }
      if (below.empty()) return absl::OkStatus();
      const absl::Status s = groups_[below[r % below.size()]]->Wait();
      if (absl::IsFailedPrecondition(s) || absl::IsDeadlineExceeded(s)) {
        transient_errors_++;
      }
      return absl::OkStatus();
    }
    if (kind < 97) {
      // Open a transient child group, spawn into it and wait on it from this
      // task (a helping wait), like recursive parallelism does.
      TaskGroup child(*groups_[g]);
      std::atomic<int> child_ran{0};
      const int n = 1 + static_cast<int>(r % 4);
      for (int i = 0; i < n; ++i) {
        child.Spawn([&child_ran] { child_ran++; });
      }
      const absl::Status s = child.Wait();
      const GroupStats st = child.stats();
      if (absl::IsFailedPrecondition(s) || st.spawned != n ||
          st.completed != child_ran.load() ||
          st.completed + st.cancelled != n || st.failed != 0 ||
          (st.cancelled > 0 && !child.stop_requested())) {
        transient_errors_++;
      }
      return absl::OkStatus();
    }
    if (!inject_failures_) return absl::OkStatus();
    return absl::InternalError("injected failure");
  }

  Executor& executor_;
  const bool inject_failures_;  // in a third of the scenarios
  std::vector<std::unique_ptr<TaskGroup>> groups_;
  std::vector<int> parents_;  // -1 for the root
  std::vector<std::unique_ptr<Accounting>> acct_;
  std::unique_ptr<std::atomic<int>[]> runs_;
  std::atomic<int> next_id_{0};
  std::atomic<int> transient_errors_{0};
};

// Invariant: under random spawn/stop/wait interleavings across nested groups
// (spawns from outside and from tasks into any group, stops of any group or
// of the executor racing the spawns, external Wait()s racing both, helping
// Wait()s from tasks on descendant groups), every
// spawned task either ran exactly once or was counted cancelled; none ran
// twice, none were lost; stats() match the test's own counts; every group's
// status matches what happened to it (an injected error, else its stop, else
// OK); no Wait() hangs.
TEST_F(TaskGroupStressTest, RandomSpawnStopWaitInterleavings) {
  const int iterations = Scaled(400, 12);
  for (int workers : kWorkerCounts) {
    int64_t sums[4] = {0, 0, 0, 0};
    Executor executor({.num_workers = workers});
    for (int iter = 0; iter < iterations; ++iter) {
      const uint64_t seed = 1000003ULL * workers + iter;
      SCOPED_TRACE(::testing::Message()
                   << "seed " << seed << ", workers " << workers);
      std::mt19937_64 rng(seed);
      Scenario scenario(executor, seed);
      const int groups = scenario.num_groups();
      const uint64_t spawner_seed = rng();
      const uint64_t stopper_seed = rng();
      const uint64_t waiter_seed = rng();
      std::atomic<bool> go{false};
      std::atomic<int> bad_waits{0};

      std::thread spawner([&] {
        while (!go.load()) std::this_thread::yield();
        uint64_t r = spawner_seed;
        for (int i = 0; i < 60; ++i) {
          r = Mix(r);
          scenario.SpawnInto(static_cast<int>(r % groups), Mix(r + 1));
          if (r % 16 == 0) std::this_thread::yield();
        }
      });
      std::thread stopper([&] {
        while (!go.load()) std::this_thread::yield();
        uint64_t r = stopper_seed;
        if (r % 5 == 0) return;  // some scenarios are never stopped
        const int delay = static_cast<int>((r >> 8) % 200);
        for (int i = 0; i < delay; ++i) std::this_thread::yield();
        scenario.RandomStop(Mix(r));
        if ((r >> 20) % 3 == 0) scenario.RandomStop(Mix(r + 7));  // a second stop
      });
      std::thread waiter([&] {
        while (!go.load()) std::this_thread::yield();
        uint64_t r = waiter_seed;
        for (int i = 0; i < 3; ++i) {
          r = Mix(r);
          absl::Status s =
              scenario.group(static_cast<int>(r % groups)).WaitFor(kHangTimeout);
          if (absl::IsDeadlineExceeded(s) || absl::IsFailedPrecondition(s)) {
            bad_waits++;
          }
        }
      });
      go.store(true);
      uint64_t r = rng();
      for (int i = 0; i < 20; ++i) {
        r = Mix(r);
        scenario.SpawnInto(static_cast<int>(r % groups), Mix(r + 3));
      }
      spawner.join();
      stopper.join();
      waiter.join();
      EXPECT_EQ(bad_waits.load(), 0);
      // The root's Wait() covers the whole tree (shielded children included).
      const absl::Status root = JoinOrDie(scenario.group(0), kHangTimeout, &executor);
      (void)root;
      scenario.Verify();
      if (::testing::Test::HasFailure()) return;  // one seed's report is enough
      scenario.AddTotals(sums);
    }
    // Not invariants: they show that both outcomes were exercised.
    std::printf("workers=%d: %d scenarios, %lld tasks spawned, %lld ran, "
                "%lld dropped, %lld failed\n",
                workers, iterations, static_cast<long long>(sums[0]),
                static_cast<long long>(sums[1]), static_cast<long long>(sums[2]),
                static_cast<long long>(sums[3]));
  }
}

// ---------------------------------------------------------------------------
// Stop vs completion.

// Invariant: when RequestStop() races a task's start and completion, the task
// either ran (completed, or returned CancelledError from its checkpoint and
// was counted cancelled) or was dropped (counted cancelled), exactly one of
// them; Wait() after the stop always says cancelled with the stop's reason.
TEST_F(TaskGroupStressTest, StopVsCompletion) {
  const int reps = Scaled(1500, 150);
  ForEachWorkerCountAndRep(reps, [&](Executor& executor, int rep) {
    TaskGroup g(executor);
    std::atomic<int> ran{0};
    std::atomic<int> ok_returned{0};
    std::atomic<bool> go{false};
    const int tasks = 1 + rep % 3;
    std::thread stopper([&] {
      while (!go.load()) {
      }
      for (int i = 0; i < rep % 7; ++i) std::this_thread::yield();
      g.RequestStop("race");
    });
    go.store(true);
    for (int i = 0; i < tasks; ++i) {
      g.Spawn([&](StopToken token) {
        ran++;
        absl::Status s = SleepFor(absl::ZeroDuration(), token);  // checkpoint
        if (s.ok()) ok_returned++;
        return s;
      });
    }
    stopper.join();
    absl::Status s = JoinOrDie(g, kHangTimeout, &executor);
    ASSERT_TRUE(absl::IsCancelled(s)) << s;
    ASSERT_TRUE(MessageContains(s, "race")) << s;
    const GroupStats st = g.stats();
    ASSERT_EQ(st.spawned, tasks);
    ASSERT_EQ(st.completed, ok_returned.load());
    ASSERT_EQ(st.failed, 0);
    ASSERT_EQ(st.cancelled, tasks - ok_returned.load());
    ASSERT_LE(ran.load(), tasks);
  });
}

// Invariant: a stop racing a worker that holds deferred releases (lazy
// tasks of one group finishing back to back on one worker, see
// Worker::deferred_n) still ends with Wait() returning and exact counts:
// every task whose body ran is completed, every other one cancelled.
TEST_F(TaskGroupStressTest, StopVsDeferredReleases) {
  constexpr int kChildren = 64;
  const int reps = Scaled(600, 100);
  ForEachWorkerCountAndRep(reps, [&](Executor& executor, int rep) {
    TaskGroup g(executor);
    std::atomic<int> ran{0};
    std::atomic<int> spawner_ran{0};
    // Spawned from a task: the children land on that worker's deque and
    // run back to back there (or are stolen).
    g.Spawn([&g, &ran, &spawner_ran] {
      spawner_ran.fetch_add(1);
      for (int i = 0; i < kChildren; ++i) {
        g.Spawn([&ran] { ran.fetch_add(1); });
      }
    });
    for (int i = 0; i < rep % 11; ++i) std::this_thread::yield();
    g.RequestStop("race");
    absl::Status s = JoinOrDie(g, kHangTimeout, &executor);
    ASSERT_TRUE(absl::IsCancelled(s)) << s;
    const GroupStats st = g.stats();
    const int completed = ran.load() + spawner_ran.load();
    ASSERT_EQ(st.spawned, 1 + spawner_ran.load() * kChildren);
    ASSERT_EQ(st.completed, completed);
    ASSERT_EQ(st.failed, 0);
    ASSERT_EQ(st.cancelled, st.spawned - completed);
    ASSERT_EQ(st.running + st.queued, 0);
  });
}

// Invariant: a stop racing a failing task: Wait() returns the error if the
// task ran (an error outranks a stop), else the stop; never anything else,
// and the counts add up.
TEST_F(TaskGroupStressTest, StopVsFailure) {
  const int reps = Scaled(1000, 100);
  ForEachWorkerCountAndRep(reps, [&](Executor& executor, int rep) {
    TaskGroup g(executor);
    std::atomic<int> ran{0};
    std::atomic<bool> go{false};
    std::thread stopper([&] {
      while (!go.load()) {
      }
      for (int i = 0; i < rep % 5; ++i) std::this_thread::yield();
      g.RequestStop("race");
    });
    go.store(true);
    g.Spawn([&] {
      ran++;
      return absl::AbortedError("failed");
    });
    stopper.join();
    absl::Status s = JoinOrDie(g, kHangTimeout, &executor);
    const GroupStats st = g.stats();
    if (ran.load() == 1) {
      ASSERT_TRUE(absl::IsAborted(s)) << s;
      ASSERT_EQ(st.failed, 1);
    } else {
      ASSERT_TRUE(absl::IsCancelled(s)) << s;
      ASSERT_EQ(st.cancelled, 1);
    }
    ASSERT_EQ(st.spawned, st.completed + st.failed + st.cancelled);
  });
}

// Counts its destruction (once: a moved-from one does not count), so a
// task holding it is not lazily droppable (TaskNode::kLazy).
class DestructionCounter {
 public:
  explicit DestructionCounter(std::atomic<int>* n) : n_(n) {}
  DestructionCounter(DestructionCounter&& o) noexcept : n_(o.n_) { o.n_ = nullptr; }
  DestructionCounter& operator=(DestructionCounter&&) = delete;
  ~DestructionCounter() {
    if (n_ != nullptr) n_->fetch_add(1);
  }

 private:
  std::atomic<int>* n_;
};

// Invariant: Spawn()s from another thread racing a child group's stop and
// its Wait() (whose census may return while lazy tasks are still queued,
// and may freeze the group between a Spawn's stop check and its count)
// lose nothing and leave nothing behind: the parent still joins; every
// spawned task ran once or is counted cancelled; every capture with a
// destructor is destroyed before the parent's Wait() returns; and the
// group's record is freed (the run under ASan checks for leaks).
// In builds with test hooks, some Spawn()s of the spawner thread pause
// between their stop check and their count, so that a stop and a whole
// census fit in between.
thread_local bool tls_pause_spawns = false;
thread_local int tls_spawn_calls = 0;

bool PauseSomeSpawns(const void*) {
  if (tls_pause_spawns && ++tls_spawn_calls % 5 == 0) {
    absl::SleepFor(absl::Microseconds(200));
  }
  return false;
}

TEST_F(TaskGroupStressTest, StopAndWaitVsRacingSpawns) {
  // Without hooks (NDEBUG) the spawns just do not pause.
  std::optional<ScopedTestHook> hook;
  if (internal::TestHooksAvailable()) {
    hook.emplace(internal::TestHook::kSubmitRace, &PauseSomeSpawns);
  }
  const int reps = Scaled(400, 40);
  for (int workers : {1, 2}) {
    Executor executor({.num_workers = workers});
    for (int rep = 0; rep < reps; ++rep) {
      SCOPED_TRACE(::testing::Message() << "rep " << rep << ", workers " << workers);
      TaskGroup parent(executor, {.name = "parent"});
      auto g = std::make_unique<TaskGroup>(parent, GroupOptions{.name = "g"});
      std::atomic<int> ran{0};
      std::atomic<int> strict_spawned{0};
      std::atomic<int> destroyed{0};
      std::atomic<bool> go{false};
      const int n = 1 + rep % 40;
      std::thread spawner([&] {
        tls_pause_spawns = true;
        while (!go.load()) {
        }
        for (int i = 0; i < n; ++i) {
          if ((rep + i) % 3 == 0) {
            strict_spawned++;
            g->Spawn([&ran, c = DestructionCounter(&destroyed)] { ran++; });
          } else {
            g->Spawn([&ran] { ran++; });
          }
          if (i % 8 == rep % 8) std::this_thread::yield();
        }
      });
      go.store(true);
      absl::SleepFor(absl::Microseconds(rep % 300));
      g->RequestStop("race");
      const absl::Status s = JoinOrDie(*g, kHangTimeout, &executor);
      ASSERT_TRUE(absl::IsCancelled(s)) << s;
      spawner.join();
      // No unit of g is left behind in the parent (a frozen g gave its unit
      // back once; Spawns after the freeze take none).
      const absl::Status ps = JoinOrDie(parent, kHangTimeout, &executor);
      ASSERT_TRUE(ps.ok()) << ps;
      ASSERT_EQ(destroyed.load(), strict_spawned.load());
      const GroupStats st = g->stats();
      ASSERT_EQ(st.spawned, n);
      ASSERT_EQ(st.running, 0);
      ASSERT_EQ(st.queued, 0);
      ASSERT_EQ(st.failed, 0);
      ASSERT_EQ(st.completed, ran.load());
      ASSERT_EQ(st.cancelled, n - ran.load());
      g.reset();
    }
  }
}

// ---------------------------------------------------------------------------
// Stop vs group creation and destruction.

// Invariant: no child misses a stop: when a parent's RequestStop() races the
// creation of children and grandchildren on another thread, every child and
// grandchild alive afterwards is stopped (those linked before the stop by
// propagation, those linked after because they start stopped), except
// shielded ones, which are never stopped by it.
TEST_F(TaskGroupStressTest, StopVsChildCreation) {
  const int reps = Scaled(300, 30);
  Executor executor({.num_workers = 2});
  for (int rep = 0; rep < reps; ++rep) {
    SCOPED_TRACE(::testing::Message() << "rep " << rep);
    TaskGroup root(executor, {.name = "root"});
    std::vector<std::unique_ptr<TaskGroup>> groups;  // creation order
    std::vector<bool> shielded;
    std::atomic<bool> go{false};
    std::thread creator([&] {
      while (!go.load()) {
      }
      for (int i = 0; i < 8; ++i) {
        const bool shield = (rep + i) % 5 == 0;
        groups.push_back(std::make_unique<TaskGroup>(
            root, GroupOptions{.name = "child", .shielded = shield}));
        shielded.push_back(shield);
        TaskGroup& child = *groups.back();
        groups.push_back(std::make_unique<TaskGroup>(child, GroupOptions{.name = "grandchild"}));
        shielded.push_back(shield);  // under a shield: not reached either
      }
    });
    go.store(true);
    for (int i = 0; i < rep % 13; ++i) std::this_thread::yield();
    root.RequestStop("race");
    creator.join();
    for (size_t i = 0; i < groups.size(); ++i) {
      ASSERT_EQ(groups[i]->stop_requested(), !shielded[i]) << "group " << i;
    }
    while (!groups.empty()) groups.pop_back();  // children before the root
  }
}

// Invariant: stops of a parent (and of the executor) racing the creation and
// destruction of child and root groups on other threads neither crash, nor
// touch freed groups (ASan/TSan), nor hang.
TEST_F(TaskGroupStressTest, StopVsGroupChurn) {
  const int reps = Scaled(100, 10);
  Executor executor({.num_workers = 2});
  for (int rep = 0; rep < reps; ++rep) {
    SCOPED_TRACE(::testing::Message() << "rep " << rep);
    TaskGroup root(executor, {.name = "root"});
    std::atomic<bool> done{false};
    std::atomic<int> ran{0};
    std::vector<std::thread> churners;
    for (int t = 0; t < 2; ++t) {
      churners.emplace_back([&, t] {
        for (int i = 0; i < 30; ++i) {
          if (t == 0) {
            TaskGroup child(root);
            TaskGroup grandchild(child);
            grandchild.Spawn([&] { ran++; });
            child.Spawn([&] { ran++; });
          } else {
            TaskGroup other_root(executor);
            TaskGroup child(other_root);
            child.Spawn([&] { ran++; });
          }
        }
      });
    }
    std::thread stopper([&] {
      for (int i = 0; i < 10 && !done.load(); ++i) {
        executor.RequestStop(i % 2 == 0 ? StopTarget::kUnshielded : StopTarget::kAll,
                             "churn");
        std::this_thread::yield();
      }
      root.RequestStop("churn root");
    });
    for (auto& t : churners) t.join();
    done.store(true);
    stopper.join();
    const absl::Status s = JoinOrDie(root, kHangTimeout, &executor);
    ASSERT_TRUE(absl::IsCancelled(s)) << s;
  }
}

// ---------------------------------------------------------------------------
// Done racing Wait().

// Invariant: several Wait()s (external threads, and a task of another group
// waiting from a worker) racing the completion of the last tasks all return,
// all return the same status, and see every task's effects.
TEST_F(TaskGroupStressTest, DoneRacingWait) {
  const int reps = Scaled(400, 40);
  for (int workers : kWorkerCounts) {
    Executor executor({.num_workers = workers});
    TaskGroup other(executor, {.name = "other"});
    for (int rep = 0; rep < reps; ++rep) {
      SCOPED_TRACE(::testing::Message() << "rep " << rep << ", workers " << workers);
      TaskGroup g(executor, {.name = "g"});
      const int tasks = 1 + rep % 4;
      const bool fail = rep % 3 == 0;
      std::vector<int> effects(tasks, 0);  // plain: Wait() must order them
      std::atomic<bool> go{false};
      for (int i = 0; i < tasks; ++i) {
        g.Spawn([&, i]() -> absl::Status {
          while (!go.load()) std::this_thread::yield();
          effects[i] = i + 1;
          if (fail && i == 0) return absl::UnavailableError("done racing");
          return absl::OkStatus();
        });
      }
      constexpr int kExternal = 3;
      absl::Status external[kExternal];
      std::vector<int> seen_sum(kExternal, 0);
      std::vector<std::thread> waiters;
      for (int w = 0; w < kExternal; ++w) {
        waiters.emplace_back([&, w] {
          external[w] = g.WaitFor(kHangTimeout);
          for (int v : effects) seen_sum[w] += v;
        });
      }
      absl::Status from_task;
      absl::Notification task_done;
      other.Spawn([&] {
        from_task = g.WaitFor(kHangTimeout);
        task_done.Notify();
      });
      go.store(true);
      for (auto& t : waiters) t.join();
      ASSERT_TRUE(task_done.WaitForNotificationWithTimeout(kHangTimeout));
      const absl::Status final_status = g.Wait();
      // A failure cancels the tasks that had not started: expect exactly the
      // effects that exist after the join, and all of them when none failed.
      int expected_sum = 0;
      for (int v : effects) expected_sum += v;
      if (!fail) {
        ASSERT_EQ(expected_sum, tasks * (tasks + 1) / 2);
      }
      if (fail) {
        ASSERT_TRUE(absl::IsUnavailable(final_status)) << final_status;
      } else {
        ASSERT_TRUE(final_status.ok()) << final_status;
      }
      for (int w = 0; w < kExternal; ++w) {
        ASSERT_EQ(external[w], final_status);
        ASSERT_EQ(seen_sum[w], expected_sum);
      }
      ASSERT_EQ(from_task, final_status);
    }
    ASSERT_TRUE(JoinOrDie(other).ok());
  }
}

// ---------------------------------------------------------------------------
// Park protocol: a worker's own push must wake a parking worker.

// Spins for `d` (no syscall: the other worker's parking must not be slowed).
void SpinFor(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (absl::Now() < until) {
  }
}

// Invariant: a task that a worker pushes onto its own deque while the only
// other worker is on its way to parking (an ordinary park, idle.h step 3) is
// run by that other worker, even when the pushing task then spins until it
// has run. The deques publish with a light fence (WsDeque::UseLightPublish)
// and the parking worker supplies the heavy half; a lost wake-up here is a
// hang, reported as a failure after kHangTimeout. The spawn lands at every
// phase of the other worker's spin-search-park.
TEST_F(TaskGroupStressTest, PushFromABusyWorkerWakesAParkingWorker) {
  const int reps = Scaled(400, 40);
  Executor executor({.num_workers = 2});
  for (int rep = 0; rep < reps; ++rep) {
    SCOPED_TRACE(::testing::Message() << "rep " << rep);
    TaskGroup g(executor);
    std::atomic<bool> ran{false};
    std::atomic<bool> lost{false};
    std::string state;  // the executor's state when the wake-up was lost
    g.Spawn([&] {
      // The other worker has nothing to do from here on.
      SpinFor(absl::Microseconds(rep % 200));
      g.Spawn([&ran] { ran.store(true); });
      if (!SpinUntilSet(ran)) {
        state = executor.DebugString();
        lost.store(true);
      }
    });
    ASSERT_TRUE(JoinOrDie(g, 2 * kHangTimeout, &executor).ok());
    ASSERT_FALSE(lost.load()) << "the pushed task waited for its own worker:\n"
                              << state;
  }
}

// Invariant: the same for a worker parked in a helping Wait() (step 4 atop
// executor/sched/scheduler.cc): the only other worker runs the group's only task,
// which pushes a second task of the group and spins until it has run; the
// waiting worker must wake up and run it.
TEST_F(TaskGroupStressTest, PushFromABusyWorkerWakesAParkedHelpingWaiter) {
  const int reps = Scaled(400, 40);
  Executor executor({.num_workers = 2});
  for (int rep = 0; rep < reps; ++rep) {
    SCOPED_TRACE(::testing::Message() << "rep " << rep);
    TaskGroup root(executor);
    std::atomic<bool> lost{false};
    root.Spawn([&] {
      TaskGroup g(root);
      std::atomic<bool> started{false};
      std::atomic<bool> ran{false};
      g.Spawn([&] {
        started.store(true);
        // Our worker (the waiter's) spins, searches and parks meanwhile.
        SpinFor(absl::Microseconds(rep % 300));
        g.Spawn([&ran] { ran.store(true); });
        if (!SpinUntilSet(ran)) lost.store(true);
      });
      // Until the other worker has stolen the task, so that our Wait() below
      // has nothing to run itself.
      if (!SpinUntilSet(started)) lost.store(true);
      (void)g.Wait();
    });
    ASSERT_TRUE(JoinOrDie(root, 3 * kHangTimeout, &executor).ok());
    ASSERT_FALSE(lost.load()) << "the pushed task waited for its own worker";
  }
}

// ---------------------------------------------------------------------------
// Shutdown right after joins.

// Invariant: destroying groups and then the executor right after a join, with
// the last tasks' completion still in flight, neither hangs nor touches freed
// memory (ASan/TSan check), also when the groups were stopped with queued
// work, and with nested groups; repeated with fresh executors.
TEST_F(TaskGroupStressTest, ShutdownRightAfterJoin) {
  const int reps = Scaled(300, 30);
  std::atomic<int64_t> total{0};
  for (int rep = 0; rep < reps; ++rep) {
    const int workers = kWorkerCounts[rep % 3];
    SCOPED_TRACE(::testing::Message() << "rep " << rep << ", workers " << workers);
    Executor executor({.num_workers = workers});
    {
      TaskGroup root(executor);
      TaskGroup child(root);
      // Root tasks spawn into their own group only: when the destructors do
      // the joining, child is destroyed (and joined) before root is joined.
      for (int i = 0; i < 20; ++i) {
        root.Spawn([&] {
          total++;
          root.Spawn([&] { total++; });
        });
        child.Spawn([&] { total++; });
      }
      if (rep % 2 == 0) {
        // Stop with work still queued: the rest is dropped.
        root.RequestStop("shutdown");
      }
      if (rep % 4 < 2) {
        absl::Status s = JoinOrDie(root, kHangTimeout, &executor);
        ASSERT_TRUE(s.ok() || absl::IsCancelled(s)) << s;
      }
      // Otherwise the destructors join (child first, then root).
    }
  }  // ~Executor right after the groups are gone
  EXPECT_GT(total.load(), 0);
}

// Invariant: many executors created and destroyed back to back, each running
// one short group from several external threads at once, all shut down
// cleanly.
TEST_F(TaskGroupStressTest, ExecutorChurnWithConcurrentSpawners) {
  const int reps = Scaled(100, 10);
  for (int rep = 0; rep < reps; ++rep) {
    Executor executor({.num_workers = 1 + rep % 4});
    TaskGroup g(executor);
    std::atomic<int> ran{0};
    std::vector<std::thread> spawners;
    for (int t = 0; t < 3; ++t) {
      spawners.emplace_back([&] {
        for (int i = 0; i < 50; ++i) g.Spawn([&] { ran++; });
      });
    }
    for (auto& t : spawners) t.join();
    ASSERT_TRUE(JoinOrDie(g, kHangTimeout, &executor).ok());
    ASSERT_EQ(ran.load(), 150);
  }
}

// ---------------------------------------------------------------------------
// Recursive parallelism.

int64_t Fib(TaskGroup& parent, int n) {
  if (n < 2) return n;
  int64_t a = 0;
  TaskGroup tg(parent);  // a child group per call (the oneTBB idiom)
  tg.Spawn([&] { a = Fib(tg, n - 1); });
  const int64_t b = Fib(tg, n - 2);
  const absl::Status s = tg.Wait();
  if (!s.ok()) return -1;  // poisons the sum: the caller sees a wrong result
  return a + b;
}

int64_t SerialFib(int n) { return n < 2 ? n : SerialFib(n - 1) + SerialFib(n - 2); }

// Invariant: recursive fork-join with a child group per call computes the
// right result under 1, 2 and 4 workers (every helping Wait() returns, after
// its child's task finished and published its result).
TEST_F(TaskGroupStressTest, RecursiveFibWithChildGroupPerCall) {
  const int max_n = kThreadSanitizer ? 20 : (kSanitizer ? 21 : 22);
  for (int workers : kWorkerCounts) {
    Executor executor({.num_workers = workers});
    for (int n = 18; n <= max_n; ++n) {
      SCOPED_TRACE(::testing::Message() << "fib(" << n << "), workers " << workers);
      TaskGroup root(executor);
      int64_t result = 0;
      root.Spawn([&] { result = Fib(root, n); });
      ASSERT_TRUE(JoinOrDie(root, kHangTimeout, &executor).ok());
      ASSERT_EQ(result, SerialFib(n));
    }
  }
}

// Invariant: stopping the root in the middle of a recursive fork-join makes
// every level's Wait() return promptly with CancelledError (children created
// after the stop start stopped, their tasks are dropped), and nothing hangs.
TEST_F(TaskGroupStressTest, StopDuringRecursiveFib) {
  const int reps = Scaled(10, 2);
  for (int workers : kWorkerCounts) {
    Executor executor({.num_workers = workers});
    for (int rep = 0; rep < reps; ++rep) {
      SCOPED_TRACE(::testing::Message() << "rep " << rep << ", workers " << workers);
      TaskGroup root(executor, {.name = "fib-root"});
      std::atomic<bool> started{false};
      root.Spawn([&] {
        started = true;
        Fib(root, 27);  // far longer than the stop delay below
      });
      ASSERT_TRUE(::ripcord::testing::WaitUntilOrFail([&] { return started.load(); }));
      absl::SleepFor(absl::Milliseconds(1 + rep % 5));
      const absl::Time stopped = absl::Now();
      root.RequestStop("enough fib");
      const absl::Status s = JoinOrDie(root, kHangTimeout, &executor);
      ASSERT_TRUE(absl::IsCancelled(s)) << s;
      ASSERT_TRUE(MessageContains(s, "enough fib")) << s;
      // Generous: unwinding the recursion costs milliseconds; 10 s only
      // catches a stop that does not reach the nested groups (fib(27) would
      // run to the end) or a hang, even under TSan on a loaded machine.
      EXPECT_LT(absl::Now() - stopped, absl::Seconds(10));
    }
  }
}

}  // namespace
}  // namespace ripcord
