// Copyright 2026 The ripcord Authors.
//
// Conformance tests for stop_token.h (API.md, "Stop tokens"): StopToken,
// StopCallback (the std::stop_callback / stdexec rules) and SleepFor. Every
// token here comes from a TaskGroup, the only public stop source.
#include "ripcord/stop_token.h"

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::BlockUntil;
using ::ripcord::testing::kHangTimeout;
using ::ripcord::testing::Scaled;
using ::ripcord::testing::WaitUntilOrFail;
using ::ripcord::testing::Watchdog;

class StopTokenTest : public ::testing::Test {
 protected:
  Watchdog watchdog_{absl::Seconds(120)};
  Executor executor_{ExecutorOptions{.num_workers = 2}};
};

// Invariant: a default-constructed token can never stop and says so.
TEST_F(StopTokenTest, DefaultTokenIsNeverStopped) {
  StopToken token;
  EXPECT_FALSE(token.stop_possible());
  EXPECT_FALSE(token.stop_requested());
  StopToken copy = token;
  EXPECT_FALSE(copy.stop_possible());
  EXPECT_TRUE(copy == token);
  // A callback on a token that cannot stop never runs.
  bool ran = false;
  {
    StopCallback cb(token, [&] { ran = true; });
  }
  EXPECT_FALSE(ran);
}

// Invariant: copies of a group's token are equal and observe the same stop.
TEST_F(StopTokenTest, CopiesObserveTheSameStop) {
  TaskGroup group(executor_);
  StopToken a = group.stop_token();
  StopToken b = a;
  StopToken c;
  c = b;
  EXPECT_TRUE(a.stop_possible());
  EXPECT_TRUE(c.stop_possible());
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(b == c);
  EXPECT_FALSE(a == StopToken());
  EXPECT_FALSE(a.stop_requested() || b.stop_requested() || c.stop_requested());
  group.RequestStop("copies");
  EXPECT_TRUE(a.stop_requested());
  EXPECT_TRUE(b.stop_requested());
  EXPECT_TRUE(c.stop_requested());
  EXPECT_TRUE(group.stop_token() == a);
  // Tokens of different groups differ.
  TaskGroup other(executor_);
  EXPECT_FALSE(other.stop_token() == a);
  EXPECT_FALSE(other.stop_token().stop_requested());
  static_assert(std::is_nothrow_copy_constructible_v<StopToken>);
}

// Invariant: the class template argument deduction guide lets
// `StopCallback cb(token, [&] {...});` compile; the callback runs once, on
// the thread that requests the stop.
TEST_F(StopTokenTest, DeductionGuideAndRunsOnRequestingThread) {
  TaskGroup group(executor_);
  std::atomic<int> runs{0};
  std::thread::id ran_on;
  StopCallback cb(group.stop_token(), [&] {
    ran_on = std::this_thread::get_id();
    runs.fetch_add(1);
  });
  static_assert(!std::is_copy_constructible_v<decltype(cb)>);
  EXPECT_EQ(runs.load(), 0);
  std::thread requester([&] { group.RequestStop("from a thread"); });
  const std::thread::id requester_id = requester.get_id();
  requester.join();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(ran_on, requester_id);
  // Later stops do not run it again.
  group.RequestStop("again");
  executor_.RequestStop(StopTarget::kAll, "executor");
  EXPECT_EQ(runs.load(), 1);
}

// Invariant: several callbacks on one token each run exactly once per stop,
// however many threads request the stop concurrently.
TEST_F(StopTokenTest, EachCallbackRunsExactlyOnceUnderConcurrentRequests) {
  const int reps = Scaled(200, 20);
  for (int rep = 0; rep < reps; ++rep) {
    TaskGroup group(executor_);
    constexpr int kCallbacks = 8;
    std::atomic<int> runs[kCallbacks] = {};
    std::vector<std::unique_ptr<StopCallback<std::function<void()>>>> cbs;
    for (int i = 0; i < kCallbacks; ++i) {
      cbs.push_back(std::make_unique<StopCallback<std::function<void()>>>(
          group.stop_token(), [&runs, i] { runs[i].fetch_add(1); }));
    }
    std::atomic<bool> go{false};
    std::vector<std::thread> requesters;
    for (int t = 0; t < 3; ++t) {
      requesters.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        group.RequestStop("concurrent");
      });
    }
    go.store(true);
    for (auto& t : requesters) t.join();
    // A losing RequestStop() may return before the winner finished running
    // the callbacks; destroying them waits for any run in progress.
    cbs.clear();
    for (int i = 0; i < kCallbacks; ++i) {
      ASSERT_EQ(runs[i].load(), 1) << "callback " << i << ", rep " << rep;
    }
  }
}

// Invariant: a StopCallback constructed on an already stopped token runs its
// callback inline, in the constructor, on the constructing thread, once.
TEST_F(StopTokenTest, RunsInlineWhenAlreadyStopped) {
  TaskGroup group(executor_);
  group.RequestStop("before");
  int runs = 0;
  std::thread::id ran_on;
  {
    StopCallback cb(group.stop_token(), [&] {
      ++runs;
      ran_on = std::this_thread::get_id();
    });
    EXPECT_EQ(runs, 1);  // already ran, before the constructor returned
    EXPECT_EQ(ran_on, std::this_thread::get_id());
  }
  EXPECT_EQ(runs, 1);
}

// Invariant: a callback destroyed before any stop never runs.
TEST_F(StopTokenTest, DestroyedBeforeStopNeverRuns) {
  TaskGroup group(executor_);
  int runs = 0;
  {
    StopCallback cb(group.stop_token(), [&] { ++runs; });
  }
  group.RequestStop("after");
  EXPECT_EQ(runs, 0);
}

// Invariant: after ~StopCallback returns, the callback is not running and
// never runs, even when RequestStop races the destructor (repeated many
// times); and it ran at most once.
TEST_F(StopTokenTest, NeverRunsAfterDestructorReturnsUnderRace) {
  const int reps = Scaled(5000, 500);
  // One persistent requester thread; per rep, main publishes a fresh group and
  // bumps `go`, then both race: the requester calls RequestStop, main
  // destroys the StopCallback. Three kinds of reps:
  //   rep % 3 == 0: main destroys at once (usually before the stop);
  //   rep % 3 == 1: main destroys once the requester is about to stop, after
  //                 a varying spin (either side may win);
  //   rep % 3 == 2: same, but a callback that has started waits until main
  //                 is about to destroy it, so ~StopCallback surely overlaps
  //                 the run and must wait for it.
  std::atomic<TaskGroup*> current{nullptr};
  std::atomic<int> go{0};
  std::atomic<int> arrived{0};
  std::atomic<int> destroying{0};
  std::atomic<int> done{0};
  std::thread requester([&] {
    for (int rep = 1; rep <= reps; ++rep) {
      while (go.load() < rep) std::this_thread::yield();
      arrived.store(rep);
      current.load()->RequestStop("race");
      done.store(rep);
    }
  });
  int ran_total = 0;
  int overlapped_total = 0;
  for (int rep = 1; rep <= reps; ++rep) {
    TaskGroup group(executor_);
    std::atomic<int> runs{0};
    std::atomic<bool> overlapped{false};
    std::atomic<bool> destroyed{false};
    std::atomic<bool> ran_after_destroy{false};
    auto cb = std::make_unique<StopCallback<std::function<void()>>>(
        group.stop_token(), [&] {
          if (destroyed.load()) ran_after_destroy.store(true);
          runs.fetch_add(1);
          if (rep % 3 == 2) {
            // Bounded: main reaches `destroying` in microseconds.
            const absl::Time deadline = absl::Now() + kHangTimeout;
            while (destroying.load() < rep && absl::Now() < deadline) {
            }
            overlapped.store(true);
            std::this_thread::yield();  // let ~StopCallback run meanwhile
          }
          if (destroyed.load()) ran_after_destroy.store(true);
        });
    current.store(&group);
    go.store(rep);
    if (rep % 3 != 0) {
      while (arrived.load() < rep) std::this_thread::yield();
      for (int spin = 0; spin < (rep % 11) * 10; ++spin) {
        if (done.load() == rep) break;
      }
    }
    destroying.store(rep);
    cb.reset();
    destroyed.store(true);
    while (done.load() < rep) std::this_thread::yield();
    ASSERT_FALSE(ran_after_destroy.load()) << "rep " << rep;
    ASSERT_LE(runs.load(), 1) << "rep " << rep;
    ran_total += runs.load();
    overlapped_total += overlapped.load() ? 1 : 0;
  }
  requester.join();
  // Not invariants, but they show that every case was exercised.
  std::printf("callback ran in %d of %d reps, %d with ~StopCallback "
              "overlapping the run\n",
              ran_total, reps, overlapped_total);
}

// Invariant: a callback that destroys its own StopCallback (from inside its
// run) does not deadlock, and the requester does not touch it afterwards
// (ASan would report a use after free).
TEST_F(StopTokenTest, CallbackDestroyingItselfDoesNotDeadlock) {
  for (int rep = 0; rep < 100; ++rep) {
    TaskGroup group(executor_);
    int runs = 0;
    std::unique_ptr<StopCallback<std::function<void()>>> cb;
    // Another callback registered around it, so the requester keeps walking
    // the list after the self-destroying one.
    int other_runs = 0;
    StopCallback other(group.stop_token(), [&] { ++other_runs; });
    cb = std::make_unique<StopCallback<std::function<void()>>>(
        group.stop_token(), [&] {
          ++runs;
          cb.reset();  // ~StopCallback from inside its own callback
        });
    StopCallback third(group.stop_token(), [&] { ++other_runs; });
    absl::Notification done;
    std::thread requester([&] {
      group.RequestStop("self-destroy");
      done.Notify();
    });
    const bool finished = done.WaitForNotificationWithTimeout(kHangTimeout);
    if (!finished) {
      std::fprintf(stderr, "RequestStop deadlocked in a self-destroying "
                           "StopCallback\n");
      std::abort();  // joining would hang
    }
    requester.join();
    EXPECT_EQ(runs, 1);
    EXPECT_EQ(cb, nullptr);
    EXPECT_EQ(other_runs, 2);
  }
}

// Invariant: a callback that destroys other StopCallbacks of the same token
// which have not run yet (the requester may already have unlinked them, in
// the batch it runs next) prevents their runs, and the requester never
// touches them again (ASan); the rest each run once. Many callbacks, so the
// destroyed ones sit both in the destroyer's batch and in later ones.
TEST_F(StopTokenTest, CallbackDestroyingNotYetRunCallbacksPreventsTheirRuns) {
  constexpr int kN = 200;
  for (int rep = 0; rep < 20; ++rep) {
    TaskGroup group(executor_);
    std::vector<int> runs(kN, 0);
    std::vector<std::unique_ptr<StopCallback<std::function<void()>>>> cbs(kN);
    // Registered first, so they run after the destroyer (the list is LIFO,
    // so cbs[kN - 1] runs right after it): every odd one from kN - 60 up is
    // destroyed by the destroyer before its turn, some in the destroyer's
    // batch, some in the next.
    for (int i = 0; i < kN; ++i) {
      cbs[i] = std::make_unique<StopCallback<std::function<void()>>>(
          group.stop_token(), [&runs, i] { ++runs[i]; });
    }
    int destroyer_runs = 0;
    StopCallback destroyer(group.stop_token(), [&] {
      ++destroyer_runs;
      for (int i = kN - 59; i < kN; i += 2) cbs[i].reset();
    });
    // Registered last, so they run first: the destroyer is not the first
    // callback of its batch.
    int early_runs = 0;
    std::vector<std::unique_ptr<StopCallback<std::function<void()>>>> early;
    for (int i = 0; i < 5 + rep; ++i) {
      early.push_back(std::make_unique<StopCallback<std::function<void()>>>(
          group.stop_token(), [&] { ++early_runs; }));
    }
    std::thread requester([&] { group.RequestStop("destroy others"); });
    requester.join();
    EXPECT_EQ(destroyer_runs, 1);
    EXPECT_EQ(early_runs, 5 + rep);
    for (int i = 0; i < kN; ++i) {
      const bool destroyed = i % 2 == 1 && i >= kN - 59;
      EXPECT_EQ(runs[i], destroyed ? 0 : 1) << "rep " << rep << " i " << i;
      EXPECT_EQ(cbs[i] == nullptr, destroyed);
    }
  }
}

// Invariant: destroying a StopCallback while another thread is running it
// waits for that run to end (its captures stay valid throughout).
TEST_F(StopTokenTest, DestructorWaitsForRunOnAnotherThread) {
  for (int rep = 0; rep < 5; ++rep) {
    TaskGroup group(executor_);
    absl::Notification entered;
    std::atomic<bool> finished{false};
    auto cb = std::make_unique<StopCallback<std::function<void()>>>(
        group.stop_token(), [&] {
          entered.Notify();
          // Long enough that a destructor that does not wait would return
          // first; the test never depends on it being short.
          absl::SleepFor(absl::Milliseconds(50));
          finished.store(true);
        });
    std::thread requester([&] { group.RequestStop("slow callback"); });
    ASSERT_TRUE(BlockUntil(entered));
    cb.reset();  // must block until the callback returned
    EXPECT_TRUE(finished.load()) << "~StopCallback returned while its "
                                    "callback was still running";
    requester.join();
  }
}

// Invariant: a thread that sees the stop through the token and then destroys
// the StopCallback sees everything the callback did, whether the callback
// is still running (the destructor waits) or has already returned (the
// destructor skips the lock): TSan reports the plain int otherwise.
TEST_F(StopTokenTest, DestroyAfterSeeingTheStopSeesTheCallbacksWrites) {
  const int reps = Scaled(2000, 200);
  for (int rep = 0; rep < reps; ++rep) {
    TaskGroup group(executor_);
    int written = 0;  // plain: ordered only by the StopCallback protocol
    auto cb = std::make_unique<StopCallback<std::function<void()>>>(
        group.stop_token(), [&] { written = rep + 1; });
    std::thread destroyer([&] {
      const StopToken token = group.stop_token();
      while (!token.stop_requested()) std::this_thread::yield();
      cb.reset();
      EXPECT_EQ(written, rep + 1);
    });
    group.RequestStop("destroy after");
    destroyer.join();
  }
}

// Invariant: a callback may register another callback on the same token
// while the stop runs; the new one sees the stop and runs inline, once.
TEST_F(StopTokenTest, CallbackRegisteringAnotherRunsItInline) {
  TaskGroup group(executor_);
  int inner_runs = 0;
  std::optional<StopCallback<std::function<void()>>> inner;
  StopCallback outer(group.stop_token(), [&] {
    inner.emplace(group.stop_token(), [&] { ++inner_runs; });
  });
  group.RequestStop("nested");
  EXPECT_EQ(inner_runs, 1);
  inner.reset();
  EXPECT_EQ(inner_runs, 1);
}

// Invariant: SleepFor returns OkStatus after (not before) `d` when nobody
// stops the token; a default token sleeps the full duration as well.
TEST_F(StopTokenTest, SleepForReturnsOkAfterDuration) {
  TaskGroup group(executor_);
  const absl::Duration d = absl::Milliseconds(30);
  absl::Time start = absl::Now();
  EXPECT_TRUE(SleepFor(d, group.stop_token()).ok());
  EXPECT_GE(absl::Now() - start, d);
  start = absl::Now();
  EXPECT_TRUE(SleepFor(d, StopToken()).ok());
  EXPECT_GE(absl::Now() - start, d);
}

// Invariant: SleepFor returns CancelledError soon after stop is requested on
// its token, whether the stop comes before or during the sleep.
TEST_F(StopTokenTest, SleepForReturnsCancelledSoonAfterStop) {
  for (int rep = 0; rep < 10; ++rep) {
    TaskGroup group(executor_);
    absl::Status result;
    absl::Time returned;
    absl::Notification about_to_sleep;
    std::thread sleeper([&] {
      about_to_sleep.Notify();
      result = SleepFor(absl::Seconds(60), group.stop_token());
      returned = absl::Now();
    });
    ASSERT_TRUE(BlockUntil(about_to_sleep));
    // Sometimes stop before the sleeper registers, mostly while it sleeps.
    if (rep % 3 != 0) absl::SleepFor(absl::Milliseconds(5));
    const absl::Time stopped = absl::Now();
    group.RequestStop("wake up");
    sleeper.join();  // bounded: a broken SleepFor would sleep 60 s, and the
                     // watchdog aborts the test before Bazel's timeout
    EXPECT_TRUE(absl::IsCancelled(result)) << result;
    // The contract is 1 ms. The bound is 200x that because it must hold under
    // TSan on a loaded 2-core machine, where a wake-up can wait for a time
    // slice; it still tells "woken by the stop" from "slept 60 s".
    EXPECT_LT(returned - stopped, absl::Milliseconds(200));
  }
}

// Invariant: SleepFor of zero or a negative duration is a checkpoint:
// OkStatus at once on a live token, CancelledError on a stopped one.
TEST_F(StopTokenTest, ZeroOrNegativeSleepIsACheckpoint) {
  TaskGroup group(executor_);
  for (absl::Duration d :
       {absl::ZeroDuration(), absl::Milliseconds(-5), -absl::InfiniteDuration()}) {
    const absl::Time start = absl::Now();
    EXPECT_TRUE(SleepFor(d, group.stop_token()).ok()) << d;
    EXPECT_TRUE(SleepFor(d, StopToken()).ok()) << d;
    // Generous: "at once" means no sleep; 1 s only catches a real sleep or
    // a hang on a loaded sanitizer machine.
    EXPECT_LT(absl::Now() - start, absl::Seconds(1)) << d;
  }
  group.RequestStop("checkpoint");
  for (absl::Duration d :
       {absl::ZeroDuration(), absl::Milliseconds(-5), -absl::InfiniteDuration()}) {
    EXPECT_TRUE(absl::IsCancelled(SleepFor(d, group.stop_token()))) << d;
  }
  // A positive sleep on a stopped token is cancelled at once too.
  EXPECT_TRUE(
      absl::IsCancelled(SleepFor(absl::Seconds(60), group.stop_token())));
}

// Invariant: a task sleeping on its group's token in SleepFor is woken by the
// group's stop and the group counts it cancelled, not failed.
TEST_F(StopTokenTest, TaskSleepingOnGroupTokenIsWokenByStop) {
  TaskGroup group(executor_, {.name = "sleepers"});
  std::atomic<int> started{0};
  for (int i = 0; i < 4; ++i) {
    group.Spawn([&](StopToken token) {
      started.fetch_add(1);
      return SleepFor(absl::InfiniteDuration(), token);
    });
  }
  ASSERT_TRUE(WaitUntilOrFail([&] { return started.load() >= 2; }));
  group.RequestStop("time to go");
  absl::Status s = ripcord::testing::JoinOrDie(group);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  GroupStats stats = group.stats();
  EXPECT_EQ(stats.spawned, 4);
  EXPECT_EQ(stats.cancelled, 4);  // 2+ woken sleepers and the dropped rest
  EXPECT_EQ(stats.failed, 0);
}

}  // namespace
}  // namespace ripcord
