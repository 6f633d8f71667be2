// Copyright 2026 The ripcord Authors.
//
// Regression test: a plain task started with TaskGroup::Start in a group
// with max_concurrency never gave its slot back (StartedTask::Run released
// it on no path), so after N started tasks the group's other tasks waited
// forever: Wait() hung with `queued` > 0, `running` 0 and every worker
// parked. It hit every started plain task, whatever its end: OK, an error
// (kCollectAll), CancelledError after a stop through its handle, or a stop
// through its handle before it ran. Found by the chaos harness (seed 1001,
// 77 s: watchdog); docs/chaos.md.
//
// Invariant: with max_concurrency = N, the tasks of a group all run and
// Wait() returns, whatever mix of Spawn and Start fills it and however
// the started ones end.
#include <atomic>
#include <stdexcept>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"

namespace ripcord {
namespace {

// The group's tasks must all end: Wait() for a long time; a hang shows as
// DeadlineExceeded (then a stop empties the limiter so the test can end).
// Returns whether it joined.
bool Joins(Executor& ex, TaskGroup& g) {
  const absl::Status s = g.WaitFor(absl::Seconds(10));
  EXPECT_FALSE(absl::IsDeadlineExceeded(s)) << ex.DebugString();
  if (!absl::IsDeadlineExceeded(s)) return true;
  g.RequestStop("test: hung");
  return false;
}

TEST(StartedTaskSlotLeakTest, StartedTasksGiveTheirSlotBack) {
  Executor ex(ExecutorOptions{.num_workers = 2});
  for (int limit = 1; limit <= 3; ++limit) {
    TaskGroup g(ex, {.max_concurrency = limit});
    std::atomic<int> ran{0};
    std::vector<TaskHandle<int>> handles;
    for (int i = 0; i < 10; ++i) {
      handles.push_back(g.Start([&ran, i] {
        ++ran;
        return i;
      }));
      g.Spawn([&ran] { ++ran; });
    }
    if (!Joins(ex, g)) return;
    EXPECT_EQ(ran.load(), 20) << "limit " << limit;
    for (int i = 0; i < 10; ++i) EXPECT_EQ(*handles[i].Wait(), i);
  }
}

TEST(StartedTaskSlotLeakTest, FailingStartedTasksGiveTheirSlotBack) {
  Executor ex(ExecutorOptions{.num_workers = 2});
  TaskGroup g(ex, {.max_concurrency = 1,
                   .on_failure = FailurePolicy::kCollectAll});
  std::vector<TaskHandle<void>> handles;
  for (int i = 0; i < 5; ++i) {
    handles.push_back(g.Start([] { return absl::InternalError("error"); }));
    handles.push_back(g.Start([]() -> absl::Status {
      throw std::runtime_error("thrown");
    }));
  }
  if (!Joins(ex, g)) return;
  EXPECT_EQ(g.stats().failed, 10);
}

TEST(StartedTaskSlotLeakTest, TasksStoppedThroughTheirHandleGiveTheSlotBack) {
  Executor ex(ExecutorOptions{.num_workers = 2});
  TaskGroup g(ex, {.max_concurrency = 1});
  std::atomic<bool> in{false};
  // Runs until its handle stops it, then reports the stop.
  TaskHandle<void> running = g.Start([&in](StopToken t) -> absl::Status {
    in = true;
    while (!t.stop_requested()) {
    }
    return absl::CancelledError("saw the stop");
  });
  // Waits for the slot; stopped through its handle before it runs.
  TaskHandle<void> queued = g.Start([] {});
  std::atomic<bool> last_ran{false};
  g.Spawn([&last_ran] { last_ran = true; });
  while (!in.load()) {
  }
  queued.RequestStop("not needed");
  running.RequestStop("done");
  if (!Joins(ex, g)) return;
  EXPECT_TRUE(last_ran.load());
  EXPECT_TRUE(absl::IsCancelled(running.Wait()));
  EXPECT_TRUE(absl::IsCancelled(queued.Wait()));
}

}  // namespace
}  // namespace ripcord
