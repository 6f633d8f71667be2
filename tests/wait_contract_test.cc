// Copyright 2026 The ripcord Authors.
//
// wait_contract_test.cc: what Wait() and RequestStop() promise around a
// stopped group whose Wait() returned early (the census atop
// executor/group/group_state.cc), each test named after the bug it once caught.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::ScopedTestHook;

// Stops `g` with a long task running and trivially destructible tasks
// queued behind it, then joins it: the Wait() that returns early.
void StopWithLazyTasksQueued(TaskGroup& g, int lazy) {
  g.Spawn([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
  for (int i = 0; i < lazy; ++i) g.Spawn([] {});
  g.RequestStop("stop");
  EXPECT_TRUE(absl::IsCancelled(g.Wait()));
}

// A blocking call spawned after a stopped group's early return: the next
// Wait() waits for its fn and its done callback.
TEST(WaitContractTest, SpawnBlockingAfterEarlyReturnBug) {
  Executor ex({.num_workers = 1});
  for (int round = 0; round < 10; ++round) {
    auto state = std::make_shared<std::atomic<int>>(0);
    TaskGroup g(ex, {.name = "g"});
    StopWithLazyTasksQueued(g, 100);
    std::atomic<int>* p = state.get();
    g.SpawnBlocking([] { return 1; }, [p](absl::StatusOr<int>) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      p->fetch_add(1);
    });
    EXPECT_TRUE(absl::IsCancelled(g.Wait()));
    EXPECT_EQ(state->load(), 1) << "round " << round;
    const GroupStats s = g.stats();
    EXPECT_EQ(s.running, 0);
    EXPECT_EQ(s.queued, 0);
    EXPECT_EQ(s.spawned, s.completed + s.failed + s.cancelled);
  }
}

// A child group created after the parent's early return: the parent's next
// Wait() waits for the child's tasks.
TEST(WaitContractTest, ChildGroupAfterEarlyReturnBug) {
  Executor ex({.num_workers = 2});
  for (int round = 0; round < 10; ++round) {
    TaskGroup parent(ex, {.name = "parent"});
    StopWithLazyTasksQueued(parent, 100);
    std::atomic<bool> ran{false};
    {
      TaskGroup child(parent, {.name = "child", .shielded = true});
      EXPECT_FALSE(child.stop_requested());
      child.Spawn([&ran] {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ran.store(true);
      });
      EXPECT_TRUE(absl::IsCancelled(parent.Wait()));
      EXPECT_TRUE(ran.load()) << "round " << round;
      EXPECT_TRUE(child.Wait().ok());
    }
    // An unshielded child under the stopped parent starts stopped; its
    // blocking call still counts.
    std::atomic<int> done{0};
    {
      TaskGroup child(parent, {.name = "stopped child"});
      EXPECT_TRUE(child.stop_requested());
      child.SpawnBlocking([] { return 1; }, [&done](absl::StatusOr<int> r) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        EXPECT_TRUE(absl::IsCancelled(r.status()));
        done.fetch_add(1);
      });
      EXPECT_TRUE(absl::IsCancelled(parent.Wait()));
      EXPECT_EQ(done.load(), 1) << "round " << round;
      EXPECT_TRUE(absl::IsCancelled(child.Wait()));
    }
  }
}

// A second RequestStop() that finds the stop already under way returns
// only once the stop shows, on the group and on its unshielded children.
// The hook holds the first caller inside its stop while a second thread
// calls RequestStop(); it waits for that call to return (it must not, until
// the hook returns), up to a bound.
struct StopRace {
  TaskGroup* group = nullptr;
  TaskGroup* child = nullptr;
  std::atomic<bool> second_returned{false};
  std::atomic<bool> saw_group_stopped{false};
  std::atomic<bool> saw_child_stopped{false};
  std::thread second;
};
std::atomic<StopRace*> stop_race{nullptr};

bool SecondCallerInTheWindow(const void*) {
  StopRace* r = stop_race.exchange(nullptr);
  if (r == nullptr) return false;  // only the first caller's first stop
  absl::Notification returned;
  r->second = std::thread([r, &returned] {
    r->group->RequestStop("second");
    r->saw_group_stopped.store(r->group->stop_requested());
    r->saw_child_stopped.store(r->child->stop_requested());
    r->second_returned.store(true);
    returned.Notify();
  });
  // Not a timing assertion: a bound on how long the window stays open.
  returned.WaitForNotificationWithTimeout(absl::Milliseconds(50));
  return false;
}

TEST(WaitContractTest, ConcurrentRequestStopBug) {
  if (!internal::TestHooksAvailable()) GTEST_SKIP() << "no test hooks";
  Executor ex({.num_workers = 1});
  ScopedTestHook hook(internal::TestHook::kStopRace, &SecondCallerInTheWindow);
  for (int round = 0; round < 5; ++round) {
    TaskGroup g(ex, {.name = "g"});
    TaskGroup child(g, {.name = "child"});
    StopRace r;
    r.group = &g;
    r.child = &child;
    stop_race.store(&r);
    g.RequestStop("first");
    EXPECT_TRUE(g.stop_requested());
    EXPECT_TRUE(child.stop_requested());
    r.second.join();
    EXPECT_TRUE(r.second_returned.load());
    EXPECT_TRUE(r.saw_group_stopped.load()) << "round " << round;
    EXPECT_TRUE(r.saw_child_stopped.load()) << "round " << round;
  }
}

// The same race without a hook, repeated: both callers see the stop, on
// the group and its child, as soon as their own call returns.
TEST(WaitContractTest, ConcurrentRequestStopStress) {
  Executor ex({.num_workers = 1});
  constexpr int kRounds = 2000;
  int missed = 0;
  for (int round = 0; round < kRounds; ++round) {
    TaskGroup g(ex, {.name = "g"});
    TaskGroup child(g, {.name = "child"});
    std::atomic<int> go{0};
    std::atomic<bool> other_saw{true};
    std::thread other([&] {
      go.fetch_add(1);
      while (go.load() < 2) std::this_thread::yield();
      g.RequestStop("other");
      other_saw.store(g.stop_requested() && child.stop_requested());
    });
    go.fetch_add(1);
    while (go.load() < 2) std::this_thread::yield();
    g.RequestStop("main");
    if (!g.stop_requested() || !child.stop_requested()) ++missed;
    other.join();
    if (!other_saw.load()) ++missed;
  }
  EXPECT_EQ(missed, 0);
}

// A shielded child created under a parent that Executor::RequestStop(kAll)
// reached starts unstopped (a clean-up group opened after the second
// interrupt must run); an unshielded one starts stopped. A shielded group
// that existed at the time of the stop was stopped.
TEST(WaitContractTest, ShieldedChildAfterStopAllBug) {
  Executor ex({.num_workers = 1});
  TaskGroup parent(ex, {.name = "parent"});
  TaskGroup early(parent, {.name = "early", .shielded = true});
  ex.RequestStop(StopTarget::kAll, "second interrupt");
  EXPECT_TRUE(parent.stop_requested());
  EXPECT_TRUE(early.stop_requested());
  {
    TaskGroup cleanup(parent, {.name = "cleanup", .shielded = true});
    EXPECT_FALSE(cleanup.stop_requested());
    std::atomic<bool> ran{false};
    cleanup.Spawn([&ran] { ran.store(true); });
    EXPECT_TRUE(cleanup.Wait().ok());
    EXPECT_TRUE(ran.load());
    TaskGroup inner(cleanup, {.name = "inner"});
    EXPECT_FALSE(inner.stop_requested());
  }
  TaskGroup plain(parent, {.name = "plain"});
  EXPECT_TRUE(plain.stop_requested());
  // Under the shielded group the stop reached, too.
  TaskGroup nested(early, {.name = "nested", .shielded = true});
  EXPECT_FALSE(nested.stop_requested());
}

// stats() after joining a stopped group counts each Spawn/SpawnBlocking
// once, also with work added after the early return, from two threads.
TEST(WaitContractTest, SpawnedCountAfterStoppedJoinBug) {
  Executor ex({.num_workers = 2});
  constexpr int kRounds = 200;
  for (int round = 0; round < kRounds; ++round) {
    TaskGroup g(ex, {.name = "g"});
    std::atomic<int64_t> calls{0};
    auto spawn_some = [&](int n) {
      for (int i = 0; i < n; ++i) {
        if (i % 4 == 0) {
          g.SpawnBlocking([] { return 1; }, [](absl::StatusOr<int>) {});
        } else {
          g.Spawn([] {});
        }
        calls.fetch_add(1);
      }
    };
    g.Spawn(
        [] { std::this_thread::sleep_for(std::chrono::microseconds(200)); });
    calls.fetch_add(1);
    spawn_some(40);
    std::thread other([&] { spawn_some(10); });
    g.RequestStop("stop");
    (void)g.Wait();
    other.join();
    {
      TaskGroup child(g, {.name = "child", .shielded = true});
      child.Spawn([] {});
      spawn_some(5);
      (void)g.Wait();
      EXPECT_TRUE(child.Wait().ok());
    }
    spawn_some(5);
    (void)g.Wait();
    const GroupStats s = g.stats();
    ASSERT_EQ(s.spawned, calls.load()) << "round " << round;
    ASSERT_EQ(s.spawned, s.completed + s.failed + s.cancelled);
    ASSERT_EQ(s.running, 0);
    ASSERT_EQ(s.queued, 0);
  }
}

}  // namespace
}  // namespace ripcord
