// Copyright 2026 The ripcord Authors.
//
// Death tests for the programming errors API.md ("Lifetime", "Executor")
// turns into a clear message and an abort, never a hang or silent memory
// corruption: an Executor destroyed while groups live, a parent group
// destroyed before its children, a group destroyed from inside its own task,
// and invalid ExecutorOptions.
//
// Style "threadsafe": the child process re-executes the test binary and runs
// only the death statement, so the executor threads of the parent (and of
// other tests) cannot deadlock the fork. Each statement builds a one-worker
// executor and dies at once, so the suite stays fast.
#include <memory>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::Watchdog;

class LifetimeDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  // Each death test forks and re-executes the binary: bounded per test.
  Watchdog watchdog_{absl::Seconds(120)};
};

// Invariant: destroying an Executor while a root TaskGroup of it is alive
// aborts with a message saying so (no hang, no use after free).
TEST_F(LifetimeDeathTest, ExecutorDestroyedWhileRootGroupAlive) {
  EXPECT_DEATH(
      {
        auto executor = std::make_unique<Executor>(ExecutorOptions{.num_workers = 1});
        auto group = std::make_unique<TaskGroup>(*executor);
        executor.reset();  // the group is still alive
        group.release();   // unreachable; keeps the group from running ~TaskGroup
      },
      "Executor destroyed while");
}

// Invariant: the same holds when the live group still has a running task.
TEST_F(LifetimeDeathTest, ExecutorDestroyedWhileGroupHasRunningTask) {
  EXPECT_DEATH(
      {
        auto executor = std::make_unique<Executor>(ExecutorOptions{.num_workers = 1});
        auto group = std::make_unique<TaskGroup>(*executor);
        group->Spawn([](StopToken token) {
          return SleepFor(absl::Seconds(30), token);
        });
        executor.reset();
        group.release();
      },
      "Executor destroyed while");
}

// Invariant: destroying a parent group while a child group of it is alive
// aborts with a message naming the child group(s).
TEST_F(LifetimeDeathTest, ParentDestroyedWhileChildAlive) {
  EXPECT_DEATH(
      {
        Executor executor({.num_workers = 1});
        auto parent = std::make_unique<TaskGroup>(executor, GroupOptions{.name = "parent"});
        auto child = std::make_unique<TaskGroup>(*parent, GroupOptions{.name = "child"});
        parent.reset();  // the child is still alive
        child.release();
      },
      "child group");
}

// Invariant: destroying a group from inside one of its own tasks (which would
// join itself) aborts with a message instead of deadlocking.
TEST_F(LifetimeDeathTest, GroupDestroyedFromItsOwnTask) {
  EXPECT_DEATH(
      {
        Executor executor({.num_workers = 1});
        auto* group = new TaskGroup(executor);
        group->Spawn([group] { delete group; });
        // Only reached if the delete did not abort: then fail by hanging up
        // to Wait()'s bound rather than returning into a freed group.
        absl::SleepFor(absl::Seconds(30));
      },
      "~TaskGroup");
}

// Invariant: a negative num_workers aborts at construction with a message
// naming the option.
TEST_F(LifetimeDeathTest, NegativeNumWorkers) {
  EXPECT_DEATH({ Executor executor({.num_workers = -1}); }, "num_workers");
}

// Invariant: max_blocking_threads < 1 aborts with a message naming the option.
TEST_F(LifetimeDeathTest, MaxBlockingThreadsBelowOne) {
  EXPECT_DEATH(
      { Executor executor({.num_workers = 1, .max_blocking_threads = 0}); },
      "max_blocking_threads");
  EXPECT_DEATH(
      { Executor executor({.num_workers = 1, .max_blocking_threads = -3}); },
      "max_blocking_threads");
}

// Invariant: a negative blocking_keep_alive aborts with a message naming the
// option.
TEST_F(LifetimeDeathTest, NegativeBlockingKeepAlive) {
  EXPECT_DEATH(
      {
        Executor executor({.num_workers = 1,
                           .blocking_keep_alive = absl::Milliseconds(-1)});
      },
      "blocking_keep_alive");
}

// Invariant: the boundary values are valid (no abort): num_workers = 0
// (the CPUs available), max_blocking_threads = 1, blocking_keep_alive = 0.
TEST_F(LifetimeDeathTest, BoundaryOptionsAreValid) {
  Executor executor({.num_workers = 0,
                     .max_blocking_threads = 1,
                     .blocking_keep_alive = absl::ZeroDuration()});
  EXPECT_GE(executor.num_workers(), 1);
  TaskGroup group(executor);
  group.Spawn([] {});
  EXPECT_TRUE(group.Wait().ok());
}

}  // namespace
}  // namespace ripcord
