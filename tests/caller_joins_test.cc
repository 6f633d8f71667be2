// Copyright 2026 The ripcord Authors.
//
// The caller joins in: TaskGroup::Wait() on a thread that is not a worker
// runs plain tasks of the waited group's subtree in a parked worker's
// seat (include/ripcord/task_group.h, "Guest seats" atop
// executor/scheduler.cc). The caller does run them; it never runs an
// unrelated task (which thread ran what, never how long anything took);
// the executor never runs more tasks at once than it has workers, also with
// several external callers; a stop still drops queued tasks; a stop
// requested while the caller runs a task is seen by that task; WaitFor()
// runs no task on the caller.
//
// Whether a seat is free depends on the workers having parked (some 50 us
// after they run dry), so the tests that need the caller to have run a
// task sleep before each attempt and retry; no assertion is about time.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::kHangTimeout;
using ::ripcord::testing::Scaled;
using ::ripcord::testing::SpinUntilSet;
using ::ripcord::testing::Watchdog;

constexpr int kAttempts = 20;

class CallerJoinsTest : public ::testing::Test {
 protected:
  Watchdog watchdog_{absl::Minutes(3)};
};

// A few microseconds of work that the compiler keeps.
void Work(int steps = 200) {
  volatile uint32_t x = 1;
  for (int i = 0; i < steps; ++i) x = x * 1664525u + 1013904223u;
}

// Raises `peak` to `now` if it is lower.
void RaisePeak(std::atomic<int>& peak, int now) {
  int seen = peak.load();
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
}

TEST_F(CallerJoinsTest, AnExternalWaitRunsItsGroupsTasks) {
  Executor executor({.num_workers = 2});
  const std::thread::id caller = std::this_thread::get_id();
  bool caller_ran = false;
  for (int attempt = 0; attempt < kAttempts && !caller_ran; ++attempt) {
    absl::SleepFor(absl::Milliseconds(20));  // let the workers park
    TaskGroup group(executor);
    std::atomic<int> ran{0};
    std::atomic<int> on_caller{0};
    for (int i = 0; i < 64; ++i) {
      group.Spawn([&] {
        Work();
        ran.fetch_add(1);
        if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
      });
    }
    ASSERT_TRUE(group.Wait().ok());
    EXPECT_EQ(ran.load(), 64);
    EXPECT_EQ(group.stats().completed, 64);
    caller_ran = on_caller.load() > 0;
  }
  EXPECT_TRUE(caller_ran) << "the waiting thread never ran a task";
}

// The waited group's tasks spawn tasks of an unrelated group, which land on
// the deque of whatever thread runs them, the caller's seat included, and
// one of those lasts until the Wait() has returned: the caller must run
// none of them (had it run the long one, its Wait() could not return
// before it). The waited group's child groups are its subtree: their tasks
// may run on the caller.
TEST_F(CallerJoinsTest, AnExternalWaitRunsNoUnrelatedTask) {
  Executor executor({.num_workers = 2});
  const std::thread::id caller = std::this_thread::get_id();
  bool caller_ran = false;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    absl::SleepFor(absl::Milliseconds(20));
    TaskGroup other(executor, {.name = "other"});
    std::atomic<bool> released{false};
    std::atomic<bool> long_spawned{false};
    // Set while the caller waits for `mine` (later, waiting for `other`,
    // it may run other's tasks).
    std::atomic<bool> waiting_mine{false};
    std::atomic<int> other_on_caller{0};
    auto on_caller_in_wait = [&] {
      return std::this_thread::get_id() == caller && waiting_mine.load();
    };
    auto long_task = [&] {
      // The unrelated long task: it lasts until the Wait() below returned.
      if (on_caller_in_wait()) {
        other_on_caller.fetch_add(1);
        return;
      }
      if (std::this_thread::get_id() != caller) {
        EXPECT_TRUE(SpinUntilSet(released));
      }
    };
    auto short_task = [&] {
      Work();
      if (on_caller_in_wait()) other_on_caller.fetch_add(1);
    };
    std::atomic<int> mine_on_caller{0};
    std::atomic<int> mine_ran{0};
    {
      TaskGroup mine(executor, {.name = "mine"});
      TaskGroup child(mine, {.name = "child"});
      for (int i = 0; i < 64; ++i) {
        TaskGroup& g = i % 2 == 0 ? mine : child;
        g.Spawn([&] {
          const bool here = std::this_thread::get_id() == caller;
          if (here && !long_spawned.exchange(true)) other.Spawn(long_task);
          other.Spawn(short_task);
          Work();
          mine_ran.fetch_add(1);
          if (here) mine_on_caller.fetch_add(1);
        });
      }
      waiting_mine.store(true);
      ASSERT_TRUE(mine.Wait().ok());
      waiting_mine.store(false);
      EXPECT_EQ(mine_ran.load(), 64);
      ASSERT_TRUE(child.Wait().ok());
    }
    released.store(true);
    ASSERT_TRUE(::ripcord::testing::JoinOrDie(other).ok());
    EXPECT_EQ(other_on_caller.load(), 0)
        << "the waiting thread ran a task of an unrelated group";
    if (long_spawned.load()) caller_ran = true;
    if (caller_ran && attempt >= 3) break;
  }
  EXPECT_TRUE(caller_ran) << "the waiting thread never ran a task";
}

// Never more tasks at once than workers, whatever the number of external
// callers: each joins in a parked worker's place only.
TEST_F(CallerJoinsTest, NeverMoreTasksAtOnceThanWorkers) {
  for (int workers : {1, 2, 3}) {
    SCOPED_TRACE(::testing::Message() << "workers " << workers);
    Executor executor({.num_workers = workers});
    std::atomic<int> running{0};
    std::atomic<int> peak{0};
    auto task = [&] {
      RaisePeak(peak, running.fetch_add(1) + 1);
      Work(2000);
      running.fetch_sub(1);
    };
    for (int rep = 0; rep < Scaled(10, 3); ++rep) {
      absl::SleepFor(absl::Milliseconds(5));  // let the workers park
      std::vector<std::thread> callers;
      for (int c = 0; c < 3; ++c) {
        callers.emplace_back([&] {
          TaskGroup group(executor);
          TaskGroup child(group);
          for (int i = 0; i < 40; ++i) (i % 4 == 0 ? child : group).Spawn(task);
          EXPECT_TRUE(group.Wait().ok());
          EXPECT_TRUE(child.Wait().ok());
        });
      }
      for (auto& t : callers) t.join();
    }
    EXPECT_GE(peak.load(), 1);
    EXPECT_LE(peak.load(), workers);
  }
}

// The waiting thread stops its group from inside a task it runs: the
// queued tasks are dropped unrun, and at most one task per other thread
// (one that passed its start gate before the stop) starts after the stop
// returned.
TEST_F(CallerJoinsTest, AStopStillDropsQueuedTasks) {
  constexpr int kWorkers = 2;
  constexpr int kTasks = 2000;
  Executor executor({.num_workers = kWorkers});
  const std::thread::id caller = std::this_thread::get_id();
  bool caller_stopped = false;
  for (int attempt = 0; attempt < kAttempts && !caller_stopped; ++attempt) {
    absl::SleepFor(absl::Milliseconds(20));
    TaskGroup group(executor);
    std::atomic<bool> stopped{false};
    std::atomic<int> after_stop{0};
    for (int i = 0; i < kTasks; ++i) {
      group.Spawn([&] {
        if (stopped.load()) after_stop.fetch_add(1);
        if (std::this_thread::get_id() == caller && !stopped.load()) {
          group.RequestStop("stopped by the caller's task");
          stopped.store(true);
          return;
        }
        Work();
      });
    }
    const absl::Status s = group.Wait();
    const GroupStats st = group.stats();
    EXPECT_EQ(st.spawned, kTasks);
    EXPECT_EQ(st.completed + st.cancelled + st.failed, kTasks);
    if (!stopped.load()) {
      EXPECT_TRUE(s.ok()) << s;
      continue;
    }
    caller_stopped = true;
    EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
    EXPECT_GT(st.cancelled, 0) << "no queued task was dropped";
    EXPECT_LE(after_stop.load(), kWorkers - 1);
  }
  EXPECT_TRUE(caller_stopped) << "the waiting thread never ran a task";
}

// A stop requested from another thread while the waiting thread runs a
// task of the group: that task's token reports it (it would spin until
// the hang timeout otherwise).
TEST_F(CallerJoinsTest, AStopWhileTheCallerRunsATaskIsSeenByIt) {
  constexpr int kWorkers = 2;
  Executor executor({.num_workers = kWorkers});
  const std::thread::id caller = std::this_thread::get_id();
  bool caller_saw = false;
  for (int attempt = 0; attempt < kAttempts && !caller_saw; ++attempt) {
    absl::SleepFor(absl::Milliseconds(20));
    TaskGroup group(executor);
    std::atomic<int> started{0};
    std::atomic<int> saw_stop{0};
    std::atomic<bool> on_caller_saw{false};
    for (int i = 0; i < 8; ++i) {
      group.Spawn([&](StopToken token) {
        started.fetch_add(1);
        const absl::Time until = absl::Now() + kHangTimeout;
        while (!token.stop_requested() && absl::Now() < until) {
        }
        if (!token.stop_requested()) return;
        saw_stop.fetch_add(1);
        if (std::this_thread::get_id() == caller) on_caller_saw.store(true);
      });
    }
    // Both seats are taken by spinning tasks (no more can run at once):
    // then stop.
    std::thread stopper([&] {
      const absl::Time until = absl::Now() + kHangTimeout;
      while (started.load() < kWorkers && absl::Now() < until) {
        absl::SleepFor(absl::Microseconds(50));
      }
      group.RequestStop("stop while running");
    });
    const absl::Status s = group.Wait();
    stopper.join();
    EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
    EXPECT_EQ(saw_stop.load(), started.load())
        << "a running task did not see the stop";
    EXPECT_LE(started.load(), kWorkers);
    caller_saw = on_caller_saw.load();
  }
  EXPECT_TRUE(caller_saw) << "the waiting thread never ran a task";
}

// WaitFor() off the executor runs no task on the calling thread (a task
// it ran could keep it past its timeout): with a task that blocks until
// released, it returns DeadlineExceeded; nothing is stopped.
TEST_F(CallerJoinsTest, AnExternalWaitForRunsNoTask) {
  Executor executor({.num_workers = 2});
  const std::thread::id caller = std::this_thread::get_id();
  for (int attempt = 0; attempt < 5; ++attempt) {
    absl::SleepFor(absl::Milliseconds(20));  // let the workers park
    TaskGroup group(executor);
    std::atomic<bool> released{false};
    std::atomic<int> on_caller{0};
    group.Spawn([&] {
      if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
      EXPECT_TRUE(SpinUntilSet(released));
    });
    for (int i = 0; i < 100; ++i) {
      group.Spawn([&] {
        if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
        Work();
      });
    }
    const absl::Status s = group.WaitFor(absl::Milliseconds(5));
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_FALSE(group.stop_requested());
    released.store(true);
    EXPECT_TRUE(group.WaitFor(kHangTimeout).ok());
    EXPECT_EQ(group.stats().completed, 101);
    EXPECT_EQ(on_caller.load(), 0) << "WaitFor() ran a task";
  }
}

}  // namespace
}  // namespace ripcord
