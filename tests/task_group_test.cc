// Copyright 2026 The ripcord Authors.
//
// Conformance tests for task_group.h against API.md, "Task groups" ->
// "Semantics" (all bullets but blocking work, timeouts and coroutines):
// structure, stop propagation, shielding, reasons, joining and errors,
// lifetime of tasks, threads; plus the extra cases (single worker
// waits, 3-level nesting with a shielded middle, stop with 100k queued tasks,
// callable shapes, WaitFor, ~TaskGroup during unwinding, stats()).
#include "ripcord/task_group.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/internal/task_alloc.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::BlockUntil;
using ::ripcord::testing::JoinOrDie;
using ::ripcord::testing::kHangTimeout;
using ::ripcord::testing::kSanitizer;
using ::ripcord::testing::Latch;
using ::ripcord::testing::MessageContains;
using ::ripcord::testing::Scaled;
using ::ripcord::testing::WaitUntilOrFail;
using ::ripcord::testing::Watchdog;

class TaskGroupTest : public ::testing::Test {
 protected:
  Watchdog watchdog_{absl::Seconds(120)};
};

// A task body that blocks its worker until `release` is notified or the
// group is stopped, whichever comes first (bounded by kHangTimeout).
absl::Status BlockUntilReleased(const absl::Notification& release,
                                StopToken token) {
  const absl::Time deadline = absl::Now() + kHangTimeout;
  while (!release.HasBeenNotified() && !token.stop_requested()) {
    if (absl::Now() > deadline) return absl::DeadlineExceededError("hang");
    absl::SleepFor(absl::Microseconds(200));
  }
  return absl::OkStatus();
}

// Busy work of about `d` that does not sleep.
void Spin(absl::Duration d) {
  const absl::Time end = absl::Now() + d;
  while (absl::Now() < end) {
  }
}

// ---------------------------------------------------------------------------
// Executor basics and threads.

// Invariant: num_workers() reports the configured count; 0 means the CPUs
// this process may use (at least 1, at most hardware concurrency; the exact
// count is cpu_count_test's).
TEST_F(TaskGroupTest, NumWorkers) {
  {
    Executor ex({.num_workers = 3});
    EXPECT_EQ(ex.num_workers(), 3);
  }
  {
    Executor ex({.num_workers = 0});
    const int hw = static_cast<int>(std::thread::hardware_concurrency());
    EXPECT_GE(ex.num_workers(), 1);
    EXPECT_LE(ex.num_workers(), hw > 0 ? hw : 1);
  }
}

// Invariant: tasks run on the executor's worker threads, never on the thread
// that spawns or waits, and on at most num_workers distinct threads.
TEST_F(TaskGroupTest, TasksRunOnWorkerThreads) {
  for (int workers : {1, 2, 4}) {
    Executor ex({.num_workers = workers});
    TaskGroup g(ex);
    absl::Mutex mu;
    std::set<std::thread::id> ids;
    auto record = [&] {
      absl::MutexLock lock(&mu);
      ids.insert(std::this_thread::get_id());
    };
    for (int i = 0; i < 200; ++i) {
      g.Spawn([&] {
        record();
        g.Spawn(record);  // from a worker: onto its own deque
      });
    }
    ASSERT_TRUE(JoinOrDie(g).ok());
    absl::MutexLock lock(&mu);
    EXPECT_EQ(ids.count(std::this_thread::get_id()), 0u);
    EXPECT_GE(ids.size(), 1u);
    EXPECT_LE(static_cast<int>(ids.size()), workers);
  }
}

// Invariant: a task's callable lives at its own alignment and is destroyed
// exactly once, whatever its size: small captures come from the per-thread
// task cache (task_alloc.h), over-aligned and large ones from operator new.
// Tasks hop between threads, so blocks freed on one thread are reused by
// another.
TEST_F(TaskGroupTest, CapturesOfEverySizeAndAlignment) {
  struct alignas(64) Aligned {
    char bytes[64];
  };
  struct Big {
    char bytes[1000];
  };
  Executor ex({.num_workers = 2});
  std::atomic<int> misaligned{0};
  std::atomic<int> ran{0};
  std::atomic<int> live{0};
  struct Counted {
    explicit Counted(std::atomic<int>* l) : live(l) { live->fetch_add(1); }
    Counted(const Counted& o) : live(o.live) { live->fetch_add(1); }
    ~Counted() { live->fetch_sub(1); }
    std::atomic<int>* live;
  };
  {
    TaskGroup g(ex);
    for (int round = 0; round < 200; ++round) {
      Aligned a{};
      Big big{};
      big.bytes[999] = 7;
      g.Spawn([&, a, big, c = Counted(&live)] {
        if (reinterpret_cast<uintptr_t>(&a) % 64 != 0) misaligned++;
        ran++;
        // From a worker: onto its deque, maybe freed by the other worker.
        g.Spawn([&, big, c] {
          if (big.bytes[999] != 7) misaligned++;
          ran++;
        });
      });
      g.Spawn([&ran, round, c = Counted(&live)] { ran += round >= 0; });
    }
    ASSERT_TRUE(JoinOrDie(g).ok());
  }
  EXPECT_EQ(misaligned.load(), 0);
  EXPECT_EQ(ran.load(), 600);
  EXPECT_EQ(live.load(), 0);
}

// Invariant: task blocks of 41 to 72 bytes (a plain task whose callable
// captures 3 to 5 words) start on a 64-byte line and so never share one
// with another block, also after they were freed on another thread and
// reused there (false sharing between tasks on different cores made
// skynet's time spread by 50%; see executor/alloc/task_alloc.cc). Sanitizer
// builds give every task its own operator new, so only the plain build
// checks the alignment.
TEST_F(TaskGroupTest, PlainTaskSizedBlocksAreLineAligned) {
  using internal::AllocateTask;
  using internal::FreeTask;
  constexpr size_t kSizes[] = {41, 48, 56, 57, 64, 72};
  std::vector<std::pair<void*, size_t>> blocks;
  for (int i = 0; i < 300; ++i) {
    for (size_t size : kSizes) blocks.emplace_back(AllocateTask(size), size);
  }
  auto misaligned = [](const std::vector<std::pair<void*, size_t>>& v) {
    int n = 0;
    for (const auto& [p, size] : v) n += reinterpret_cast<uintptr_t>(p) % 64 != 0;
    return n;
  };
  if (!kSanitizer) {
    EXPECT_EQ(misaligned(blocks), 0);
  }
  // Freed on another thread, then reused there.
  std::thread other([&] {
    for (const auto& [p, size] : blocks) FreeTask(p, size);
    std::vector<std::pair<void*, size_t>> again;
    for (const auto& [p, size] : blocks) again.emplace_back(AllocateTask(size), size);
    if (!kSanitizer) {
      EXPECT_EQ(misaligned(again), 0);
    }
    for (const auto& [p, size] : again) FreeTask(p, size);
  });
  other.join();
}

// Invariant: a task of one executor that spawns into (and waits on) a group
// of another executor hands the task to that group's executor: it runs on
// the other executor's workers, never on the spawning executor's.
TEST_F(TaskGroupTest, SpawnIntoAGroupOfAnotherExecutor) {
  Executor first({.num_workers = 1});
  Executor second({.num_workers = 2});
  TaskGroup on_first(first);
  TaskGroup on_second(second);
  std::thread::id first_worker;
  absl::Mutex mu;
  std::set<std::thread::id> ran_on;
  absl::Status waited;
  on_first.Spawn([&] {
    first_worker = std::this_thread::get_id();
    for (int i = 0; i < 20; ++i) {
      on_second.Spawn([&] {
        absl::MutexLock lock(&mu);
        ran_on.insert(std::this_thread::get_id());
      });
    }
    waited = on_second.WaitFor(kHangTimeout);  // from a foreign worker
  });
  ASSERT_TRUE(JoinOrDie(on_first).ok());
  EXPECT_TRUE(waited.ok()) << waited;
  ASSERT_TRUE(JoinOrDie(on_second).ok());
  absl::MutexLock lock(&mu);
  EXPECT_EQ(ran_on.count(first_worker), 0u);
  EXPECT_EQ(ran_on.count(std::this_thread::get_id()), 0u);
  EXPECT_LE(ran_on.size(), 2u);
}

// ---------------------------------------------------------------------------
// Structure.

// Invariant: a parent's Wait() waits for the tasks of a child group, even a
// child created on the main thread outside any task and with no task of the
// parent's own; and effects of the child's task are visible after it.
TEST_F(TaskGroupTest, ParentWaitWaitsForChildCreatedOutsideAnyTask) {
  Executor ex({.num_workers = 2});
  TaskGroup parent(ex, {.name = "parent"});
  TaskGroup child(parent, {.name = "child"});
  absl::Notification release;
  int effect = 0;  // plain int: Wait() must order it (TSan checks)
  child.Spawn([&](StopToken token) {
    absl::Status s = BlockUntilReleased(release, token);
    effect = 42;
    return s;
  });
  EXPECT_TRUE(absl::IsDeadlineExceeded(parent.WaitFor(absl::Milliseconds(30))));
  release.Notify();
  ASSERT_TRUE(JoinOrDie(parent).ok());
  EXPECT_EQ(effect, 42);
  EXPECT_EQ(parent.stats().spawned, 0);  // the parent's own counters only
  EXPECT_EQ(child.stats().completed, 1);
  EXPECT_TRUE(child.Wait().ok());
}

// Invariant: a task may open child groups (and grandchildren) and spawn into
// them; the root's Wait() covers all of it.
TEST_F(TaskGroupTest, TasksOpenChildGroups) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex);
  std::atomic<int> leaves{0};
  for (int i = 0; i < 8; ++i) {
    root.Spawn([&]() -> absl::Status {
      TaskGroup child(root);
      for (int j = 0; j < 8; ++j) {
        child.Spawn([&]() -> absl::Status {
          TaskGroup grandchild(child);
          for (int k = 0; k < 8; ++k) grandchild.Spawn([&] { leaves++; });
          return grandchild.Wait();
        });
      }
      return child.Wait();
    });
  }
  ASSERT_TRUE(JoinOrDie(root).ok());
  EXPECT_EQ(leaves.load(), 8 * 8 * 8);
}

// Invariant: a task may spawn into its own group and into other groups (a
// sibling root and another root's child); every such task runs once and the
// waits of those groups cover them.
TEST_F(TaskGroupTest, SpawnFromTasksIntoOwnAndOtherGroups) {
  Executor ex({.num_workers = 2});
  TaskGroup a(ex, {.name = "a"});
  TaskGroup b(ex, {.name = "b"});
  TaskGroup b_child(b, {.name = "b_child"});
  std::atomic<int> in_a{0}, in_b{0}, in_b_child{0};
  for (int i = 0; i < 50; ++i) {
    a.Spawn([&] {
      a.Spawn([&] { in_a++; });
      b.Spawn([&] { in_b++; });
      b_child.Spawn([&] { in_b_child++; });
    });
  }
  ASSERT_TRUE(JoinOrDie(a).ok());
  ASSERT_TRUE(JoinOrDie(b).ok());  // covers b_child
  EXPECT_EQ(in_a.load(), 50);
  EXPECT_EQ(in_b.load(), 50);
  EXPECT_EQ(in_b_child.load(), 50);
  EXPECT_EQ(a.stats().spawned, 100);
  EXPECT_EQ(b.stats().spawned, 50);
  EXPECT_EQ(b_child.stats().spawned, 50);
}

// Invariant: ~TaskGroup joins: when it returns, every task has finished and
// the callables (with their captures) have been destroyed; a group never
// detaches its tasks.
TEST_F(TaskGroupTest, DestructorJoins) {
  Executor ex({.num_workers = 2});
  std::atomic<int> finished{0};
  auto alive = std::make_shared<int>(0);
  {
    TaskGroup g(ex);
    for (int i = 0; i < 4; ++i) {
      g.Spawn([&finished, alive] {
        absl::SleepFor(absl::Milliseconds(20));
        finished++;
      });
    }
    // No Wait(): the destructor must join.
  }
  EXPECT_EQ(finished.load(), 4);
  EXPECT_EQ(alive.use_count(), 1) << "captures outlived the group";
}

// ---------------------------------------------------------------------------
// Stop propagation.

// Invariant: RequestStop() stops the group and, recursively, its unshielded
// child groups; tasks sleeping on their tokens at every level see the stop;
// every level reports the root's reason.
TEST_F(TaskGroupTest, StopPropagatesRecursively) {
  Executor ex({.num_workers = 4});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup child(root, {.name = "child"});
  TaskGroup grandchild(child, {.name = "grandchild"});
  Latch started(3);
  for (TaskGroup* g : {&root, &child, &grandchild}) {
    g->Spawn([&started](StopToken token) {
      started.CountDown();
      return SleepFor(absl::InfiniteDuration(), token);
    });
  }
  ASSERT_TRUE(started.WaitFor());
  root.RequestStop("root-reason");
  EXPECT_TRUE(root.stop_requested());
  EXPECT_TRUE(child.stop_requested());
  EXPECT_TRUE(grandchild.stop_requested());
  EXPECT_TRUE(child.stop_token().stop_requested());
  for (TaskGroup* g : {&grandchild, &child, &root}) {
    absl::Status s = JoinOrDie(*g);
    EXPECT_TRUE(absl::IsCancelled(s)) << g->name() << ": " << s;
    EXPECT_TRUE(MessageContains(s, "root-reason")) << g->name() << ": " << s;
    EXPECT_EQ(g->stats().cancelled, 1) << g->name();
    EXPECT_EQ(g->stats().failed, 0) << g->name();
  }
}

// Invariant: a parent's stop skips a shielded child (and what lies under it),
// which keeps running, while unshielded siblings are stopped.
TEST_F(TaskGroupTest, StopSkipsShieldedChildren) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup shielded(root, {.name = "shielded", .shielded = true});
  TaskGroup plain(root, {.name = "plain"});
  EXPECT_TRUE(shielded.shielded());
  EXPECT_FALSE(plain.shielded());
  absl::Notification started, release;
  std::atomic<bool> saw_stop{false};
  shielded.Spawn([&](StopToken token) {
    started.Notify();
    absl::Status s = BlockUntilReleased(release, token);
    saw_stop = token.stop_requested();
    return s;
  });
  ASSERT_TRUE(BlockUntil(started));
  root.RequestStop("parent stop");
  EXPECT_TRUE(plain.stop_requested());
  EXPECT_FALSE(shielded.stop_requested());
  release.Notify();
  EXPECT_TRUE(JoinOrDie(shielded).ok());
  EXPECT_FALSE(saw_stop.load());
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(root)));
  EXPECT_TRUE(absl::IsCancelled(plain.Wait()));
}

// Invariant: a child (and grandchild) created under a stopped parent starts
// stopped with the parent's reason, and drops what is spawned into it; a
// shielded child created there starts unstopped and runs its tasks.
TEST_F(TaskGroupTest, ChildCreatedUnderStoppedParentStartsStopped) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  root.RequestStop("stopped early");
  TaskGroup child(root, {.name = "child"});
  TaskGroup grandchild(child, {.name = "grandchild"});
  TaskGroup shielded(root, {.name = "shielded", .shielded = true});
  EXPECT_TRUE(child.stop_requested());
  EXPECT_TRUE(grandchild.stop_requested());
  EXPECT_FALSE(shielded.stop_requested());
  std::atomic<int> ran{0};
  child.Spawn([&] { ran++; });
  grandchild.Spawn([&] { ran++; });
  shielded.Spawn([&] { ran += 100; });
  absl::Status s = JoinOrDie(child);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(MessageContains(s, "stopped early")) << s;
  s = JoinOrDie(grandchild);
  EXPECT_TRUE(MessageContains(s, "stopped early")) << s;
  EXPECT_TRUE(JoinOrDie(shielded).ok());
  EXPECT_EQ(ran.load(), 100);
  EXPECT_EQ(child.stats().cancelled, 1);
  EXPECT_EQ(grandchild.stats().cancelled, 1);
}

// Invariant: a root group created after Executor::RequestStop starts
// unstopped and runs its tasks (a fresh group for clean-up work), with both
// targets; groups alive at the request were stopped.
TEST_F(TaskGroupTest, RootCreatedAfterExecutorStopStartsUnstopped) {
  Executor ex({.num_workers = 2});
  for (StopTarget target : {StopTarget::kUnshielded, StopTarget::kAll}) {
    TaskGroup before(ex, {.name = "before"});
    ex.RequestStop(target, "shutting down");
    EXPECT_TRUE(before.stop_requested());
    TaskGroup cleanup(ex, {.name = "cleanup"});
    EXPECT_FALSE(cleanup.stop_requested());
    TaskGroup cleanup_child(cleanup);
    EXPECT_FALSE(cleanup_child.stop_requested());
    std::atomic<int> ran{0};
    cleanup.Spawn([&] { ran++; });
    cleanup_child.Spawn([&] { ran++; });
    EXPECT_TRUE(JoinOrDie(cleanup).ok());
    EXPECT_EQ(ran.load(), 2);
    absl::Status s = JoinOrDie(before);
    EXPECT_TRUE(absl::IsCancelled(s)) << s;
    EXPECT_TRUE(MessageContains(s, "shutting down")) << s;
  }
}

// Invariant: a task spawned into a stopped group never runs and is counted
// cancelled; the group's Wait() says cancelled.
TEST_F(TaskGroupTest, SpawnAfterStopIsDroppedAndCountedCancelled) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  g.RequestStop("no more");
  std::atomic<int> ran{0};
  auto destroyed = std::make_shared<int>(0);
  for (int i = 0; i < 10; ++i) g.Spawn([&ran, destroyed] { ran++; });
  g.Spawn([](StopToken) { return absl::InternalError("never runs"); });
  absl::Status s = JoinOrDie(g);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(destroyed.use_count(), 1) << "dropped callables must be destroyed";
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 11);
  EXPECT_EQ(st.cancelled, 11);
  EXPECT_EQ(st.completed, 0);
  EXPECT_EQ(st.failed, 0);
}

// Invariant: tasks queued but not started when the group is stopped are
// dropped without running (counted cancelled); the running one finishes on
// its own and sees the stop.
TEST_F(TaskGroupTest, QueuedTasksAreDroppedOnStop) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex, {.name = "g"});
  absl::Notification started, release;
  std::atomic<bool> saw_stop{false};
  g.Spawn([&](StopToken token) {
    started.Notify();
    BlockUntilReleased(release, token).IgnoreError();
    saw_stop = token.stop_requested();
  });
  ASSERT_TRUE(BlockUntil(started));
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) g.Spawn([&] { ran++; });
  EXPECT_EQ(g.stats().queued, 100);
  EXPECT_EQ(g.stats().running, 1);
  g.RequestStop("drop them");
  absl::Status s = JoinOrDie(g);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(saw_stop.load());
  EXPECT_EQ(ran.load(), 0);
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 101);
  EXPECT_EQ(st.completed, 1);  // the void task that was running
  EXPECT_EQ(st.cancelled, 100);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.queued, 0);
}

// Invariant: stopping a group from another thread while 100k tasks are queued
// makes Wait() return promptly, and none of the queued tasks runs.
TEST_F(TaskGroupTest, StopWith100kQueuedRunsNoneOfThem) {
  constexpr int kTasks = 100000;
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "big"});
  // Both workers are held by gate tasks, so all 100k tasks stay queued.
  Latch gates_started(2);
  absl::Notification open_gates;
  for (int i = 0; i < 2; ++i) {
    g.Spawn([&] {
      gates_started.CountDown();
      open_gates.WaitForNotificationWithTimeout(kHangTimeout);
    });
  }
  ASSERT_TRUE(gates_started.WaitFor());
  std::atomic<int> ran{0};
  for (int i = 0; i < kTasks; ++i) g.Spawn([&] { ran++; });
  absl::Time stopped;
  std::thread stopper([&] {
    g.RequestStop("stop the flood");
    stopped = absl::Now();
  });
  stopper.join();
  open_gates.Notify();
  absl::Status s = JoinOrDie(g);
  const absl::Duration took = absl::Now() - stopped;
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_EQ(ran.load(), 0);
  // Dropping 100k tasks takes milliseconds; 10 s only catches a hang or
  // dropping that runs user code, even under TSan on a loaded machine.
  EXPECT_LT(took, absl::Seconds(10));
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, kTasks + 2);
  EXPECT_EQ(st.completed, 2);
  EXPECT_EQ(st.cancelled, kTasks);
}

// Invariant: stopping a group from another thread while 100k queued tasks are
// being run: no queued task starts after RequestStop() returned (beyond the
// at most one per worker that had already passed the worker's stop check,
// which counts as started), every task ran or was counted cancelled, and Wait
// returns promptly.
TEST_F(TaskGroupTest, StopWith100kQueuedWhileRunning) {
  constexpr int kTasks = 100000;
  for (int workers : {1, 2, 4}) {
    SCOPED_TRACE(workers);
    Executor ex({.num_workers = workers});
    TaskGroup g(ex, {.name = "big"});
    Latch gates_started(workers);
    absl::Notification open_gates;
    for (int i = 0; i < workers; ++i) {
      g.Spawn([&] {
        gates_started.CountDown();
        open_gates.WaitForNotificationWithTimeout(kHangTimeout);
      });
    }
    ASSERT_TRUE(gates_started.WaitFor());
    std::atomic<int> ran{0};
    std::atomic<int> started_after_stop{0};
    std::atomic<bool> stop_returned{false};
    for (int i = 0; i < kTasks; ++i) {
      g.Spawn([&] {
        if (stop_returned.load()) started_after_stop++;
        ran++;
        // ~10 us of work: the queue drains in about a second without a stop.
        Spin(absl::Microseconds(10));
      });
    }
    absl::Time stopped;
    std::thread stopper([&] {
      if (!WaitUntilOrFail([&] { return ran.load() >= 1000; })) return;
      g.RequestStop("stop the flood");
      stop_returned = true;
      stopped = absl::Now();
    });
    open_gates.Notify();
    stopper.join();
    ASSERT_TRUE(stop_returned.load());
    absl::Status s = JoinOrDie(g);
    const absl::Duration took = absl::Now() - stopped;
    EXPECT_TRUE(absl::IsCancelled(s)) << s;
    // A worker that checked the stop bit just before RequestStop() and then
    // was descheduled starts its task after; one per worker at most.
    EXPECT_LE(started_after_stop.load(), workers);
    // Generous: see StopWith100kQueuedRunsNoneOfThem.
    EXPECT_LT(took, absl::Seconds(10));
    GroupStats st = g.stats();
    EXPECT_EQ(st.spawned, kTasks + workers);
    EXPECT_EQ(st.completed, ran.load() + workers);
    EXPECT_EQ(st.cancelled, kTasks - ran.load());
    EXPECT_EQ(st.failed, 0);
    std::printf("workers=%d: %d of %d tasks ran before the stop\n", workers,
                ran.load(), kTasks);
  }
}

// Holds every worker of `ex` in a task of its own group until Release(), so
// that what is spawned meanwhile stays queued.
class WorkerHold {
 public:
  WorkerHold(Executor& ex, int workers) : group_(ex, {.name = "hold"}) {
    Latch started(workers);
    for (int i = 0; i < workers; ++i) {
      group_.Spawn([this, &started] {
        started.CountDown();
        release_.WaitForNotificationWithTimeout(kHangTimeout);
      });
    }
    EXPECT_TRUE(started.WaitFor());
  }
  ~WorkerHold() { Release(); }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
    EXPECT_TRUE(JoinOrDie(group_).ok());
  }

 private:
  TaskGroup group_;
  absl::Notification release_;
};

// Invariant (the census atop group_state.cc): a stopped group's Wait() does
// not wait for its queued tasks to be dropped when dropping them runs no user
// code (trivially destructible callables). Here no worker is free to drop
// anything: Wait() returns all the same, stats() are exact at once, none of
// the tasks ever runs, and the tasks still queued when the group is destroyed
// are dropped later, freeing the group's record (LeakSanitizer checks).
TEST_F(TaskGroupTest, StoppedWaitReturnsWithTasksStillQueued) {
  constexpr int kTasks = 100000;
  std::atomic<int> ran{0};
  {
    Executor ex({.num_workers = 2});
    WorkerHold hold(ex, 2);
    {
      TaskGroup g(ex, {.name = "lazy"});
      for (int i = 0; i < kTasks; ++i) g.Spawn([&ran] { ran++; });
      g.RequestStop("stop while held");
      absl::Status s = JoinOrDie(g);  // the workers are still held
      EXPECT_TRUE(absl::IsCancelled(s)) << s;
      EXPECT_TRUE(MessageContains(s, "stop while held")) << s;
      GroupStats st = g.stats();
      EXPECT_EQ(st.spawned, kTasks);
      EXPECT_EQ(st.cancelled, kTasks);
      EXPECT_EQ(st.completed, 0);
      EXPECT_EQ(st.queued, 0);
      EXPECT_EQ(st.running, 0);
      // Wait() again, and a spawn after the join: dropped at once, counted.
      EXPECT_TRUE(absl::IsCancelled(g.Wait()));
      g.Spawn([&ran] { ran++; });
      EXPECT_EQ(g.stats().spawned, kTasks + 1);
      EXPECT_EQ(g.stats().cancelled, kTasks + 1);
    }  // destroyed with ~10^5 tasks still queued
    hold.Release();  // the workers now drop them
  }  // ~Executor: every queued task is gone
  EXPECT_EQ(ran.load(), 0);
}

// Invariant: a queued task whose callable has a destructor is dropped (its
// destructor runs) before Wait() returns, even after a stop: "after Wait()
// returns, no capture destructor is still running" holds for stopped groups.
TEST_F(TaskGroupTest, StoppedWaitWaitsForCaptureDestructors) {
  constexpr int kTasks = 20000;
  struct Counted {
    explicit Counted(std::atomic<int>* n) : n(n) {}
    // Moved-from copies count nothing: each task counts once.
    Counted(Counted&& o) noexcept : n(std::exchange(o.n, nullptr)) {}
    ~Counted() {
      if (n != nullptr) n->fetch_add(1);
    }
    std::atomic<int>* n;
  };
  Executor ex({.num_workers = 2});
  std::atomic<int> destroyed{0};
  std::atomic<int> ran{0};
  TaskGroup g(ex);
  absl::Notification go;
  std::atomic<int> gate_ran{0};
  g.Spawn([&go, &gate_ran] {
    gate_ran++;
    go.WaitForNotificationWithTimeout(kHangTimeout);
  });
  for (int i = 0; i < kTasks; ++i) {
    g.Spawn([c = Counted(&destroyed), &ran] { ran++; });
  }
  g.RequestStop("stop");
  go.Notify();
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g)));
  // Each task's callable was destroyed exactly once, run or dropped.
  EXPECT_EQ(destroyed.load(), kTasks);
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, kTasks + 1);
  EXPECT_EQ(st.completed, ran.load() + gate_ran.load());
  EXPECT_EQ(st.cancelled, kTasks + 1 - ran.load() - gate_ran.load());
  EXPECT_EQ(st.spawned, st.completed + st.failed + st.cancelled);
}

// Invariant: the parent of a child whose census passed (stopped, only lazy
// tasks left, no worker free) can be joined while the child still lives: the
// child hands its unit of the parent's count back when it freezes.
TEST_F(TaskGroupTest, ParentOfAFrozenChildJoins) {
  Executor ex({.num_workers = 2});
  WorkerHold hold(ex, 2);
  TaskGroup parent(ex, {.name = "parent"});
  {
    TaskGroup child(parent, {.name = "child"});
    for (int i = 0; i < 1000; ++i) child.Spawn([] {});
    parent.RequestStop("stop both");
    EXPECT_TRUE(absl::IsCancelled(JoinOrDie(child)));
    EXPECT_TRUE(absl::IsCancelled(JoinOrDie(parent)));  // child still alive
    EXPECT_EQ(child.stats().cancelled, 1000);
  }
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(parent)));
}

// Stress: stops racing lazy drops, censuses and group destruction, with the
// workers free: stats() stay exact after every join, and every record is
// freed exactly once (ASan/LSan, TSan).
TEST_F(TaskGroupTest, CensusRacesDropsAndDestruction) {
  const int rounds = Scaled(300, 30);
  for (int workers : {1, 2, 3}) {
    Executor ex({.num_workers = workers});
    for (int round = 0; round < rounds; ++round) {
      SCOPED_TRACE(absl::StrCat("workers ", workers, " round ", round));
      std::atomic<int> ran{0};
      const int tasks = 500 + 37 * (round % 50);
      TaskGroup g(ex);
      std::thread stopper([&] {
        for (int i = 0; i < round % 13; ++i) std::this_thread::yield();
        g.RequestStop("race");
      });
      for (int i = 0; i < tasks; ++i) g.Spawn([&ran] { ran++; });
      stopper.join();
      std::thread other_waiter([&] { (void)g.Wait(); });
      EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g)));
      other_waiter.join();
      const int ran_at_join = ran.load();
      GroupStats st = g.stats();
      EXPECT_EQ(st.spawned, tasks);
      EXPECT_EQ(st.completed, ran_at_join);
      EXPECT_EQ(st.cancelled, tasks - ran_at_join);
      EXPECT_EQ(st.running + st.queued, 0);
      // No queued task starts after the join.
      std::this_thread::yield();
      EXPECT_EQ(ran.load(), ran_at_join);
    }
  }
}

// Invariant: running tasks see stop_requested() == true on their token and
// finish on their own; Wait() waits for them.
TEST_F(TaskGroupTest, RunningTasksSeeStopAndFinishOnTheirOwn) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  Latch started(2);
  std::atomic<int> finished{0};
  for (int i = 0; i < 2; ++i) {
    g.Spawn([&](StopToken token) {
      started.CountDown();
      const absl::Time deadline = absl::Now() + kHangTimeout;
      while (!token.stop_requested() && absl::Now() < deadline) {
      }
      EXPECT_TRUE(token.stop_requested());
      absl::SleepFor(absl::Milliseconds(10));  // still finishing after stop
      finished++;
    });
  }
  ASSERT_TRUE(started.WaitFor());
  g.RequestStop("finish up");
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g)));
  EXPECT_EQ(finished.load(), 2);
  EXPECT_EQ(g.stats().completed, 2);  // void tasks that ran count completed
}

// Runs `fn` on another thread and aborts (with `what`) if it does not return
// within kHangTimeout: for calls that may deadlock the calling thread.
void RunBoundedOrDie(const char* what, const std::function<void()>& fn) {
  absl::Notification done;
  std::thread t([&] {
    fn();
    done.Notify();
  });
  if (!done.WaitForNotificationWithTimeout(kHangTimeout)) {
    std::fprintf(stderr, "\n%s did not return after %s: a hang\n", what,
                 absl::FormatDuration(kHangTimeout).c_str());
    std::fflush(stderr);
    std::abort();  // joining would hang
  }
  t.join();
}

// Invariant: a StopCallback runs user code on the stopping thread, and that
// code may call RequestStop() again (on its group, its parent, the
// executor), create a child group of the stopping group (which starts
// stopped) and spawn into other groups, without deadlocking.
TEST_F(TaskGroupTest, StopCallbackMayReenterStopAndCreateGroups) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup g(root, {.name = "g"});
  TaskGroup other(ex, {.name = "other"});
  bool child_started_stopped = false;
  std::atomic<int> other_ran{0};
  StopCallback cb(g.stop_token(), [&] {
    g.RequestStop("again");
    root.RequestStop("root from callback");
    ex.RequestStop(StopTarget::kUnshielded, "executor from callback");
    TaskGroup child(g, {.name = "created in callback"});
    child_started_stopped = child.stop_requested();
    child.Spawn([] {});
    TaskGroup fresh(ex, {.name = "fresh root in callback", .shielded = true});
    fresh.Spawn([&] { other_ran++; });
  });
  RunBoundedOrDie("RequestStop with a re-entrant StopCallback",
                  [&] { g.RequestStop("first"); });
  EXPECT_TRUE(child_started_stopped);
  EXPECT_EQ(other_ran.load(), 1);
  EXPECT_TRUE(MessageContains(JoinOrDie(g), "first"));
  EXPECT_TRUE(root.stop_requested());
  EXPECT_TRUE(other.stop_requested());
}

// Invariant: a StopCallback may destroy a sibling child group that the
// parent's stop has not reached yet (a stop callback tearing down another
// session): the parent's RequestStop() returns and the sibling is gone.
// Regression test: GroupState::Stop pins every child before stopping them
// one by one; the callback's ~TaskGroup of a pinned sibling used to spin in
// WaitForUnpinned() forever on the very thread that held the pin.
TEST_F(TaskGroupTest, StopCallbackMayDestroyAPinnedSiblingGroup) {
  Executor ex({.num_workers = 1});
  TaskGroup parent(ex, {.name = "parent"});
  // The child list is newest first: `destroyer` is stopped before `victim`.
  auto victim = std::make_unique<TaskGroup>(parent, GroupOptions{.name = "victim"});
  auto destroyer = std::make_unique<TaskGroup>(parent, GroupOptions{.name = "destroyer"});
  StopCallback cb(destroyer->stop_token(), [&] { victim.reset(); });
  RunBoundedOrDie("parent.RequestStop() whose callback destroys a sibling",
                  [&] { parent.RequestStop("teardown"); });
  EXPECT_EQ(victim, nullptr);
  EXPECT_TRUE(destroyer->stop_requested());
}

// Invariant: a StopCallback may destroy another root group during
// Executor::RequestStop(): the executor's RequestStop() returns.
// Regression test, as above for the root registry: ExecutorImpl::RequestStop
// pins every root of a shard before stopping them one by one.
TEST_F(TaskGroupTest, StopCallbackMayDestroyAPinnedRootGroup) {
  Executor ex({.num_workers = 1});
  // Roots made by one thread share a shard, newest first.
  auto victim = std::make_unique<TaskGroup>(ex, GroupOptions{.name = "victim"});
  auto destroyer = std::make_unique<TaskGroup>(ex, GroupOptions{.name = "destroyer"});
  StopCallback cb(destroyer->stop_token(), [&] { victim.reset(); });
  RunBoundedOrDie("Executor::RequestStop() whose callback destroys a root",
                  [&] { ex.RequestStop(StopTarget::kAll, "teardown"); });
  EXPECT_EQ(victim, nullptr);
  EXPECT_TRUE(destroyer->stop_requested());
}

// ---------------------------------------------------------------------------
// Shielding.

// Invariant: Executor::RequestStop(kUnshielded) stops unshielded roots (and
// their subtrees) and skips shielded roots and everything under them;
// RequestStop(kAll) then reaches the shielded roots and their whole subtree,
// shielded descendants included.
TEST_F(TaskGroupTest, ExecutorStopTargets) {
  Executor ex({.num_workers = 2});
  TaskGroup plain(ex, {.name = "plain"});
  TaskGroup plain_child(plain, {.name = "plain_child"});
  TaskGroup shielded(ex, {.name = "shielded", .shielded = true});
  TaskGroup under_shield(shielded, {.name = "under_shield"});
  TaskGroup shielded_under_shield(
      shielded, {.name = "shielded_under_shield", .shielded = true});
  ex.RequestStop(StopTarget::kUnshielded, "first");
  EXPECT_TRUE(plain.stop_requested());
  EXPECT_TRUE(plain_child.stop_requested());
  EXPECT_FALSE(shielded.stop_requested());
  EXPECT_FALSE(under_shield.stop_requested());
  EXPECT_FALSE(shielded_under_shield.stop_requested());
  std::atomic<int> ran{0};
  under_shield.Spawn([&] { ran++; });
  EXPECT_TRUE(JoinOrDie(shielded).ok());
  EXPECT_EQ(ran.load(), 1);

  ex.RequestStop(StopTarget::kAll, "second");
  EXPECT_TRUE(shielded.stop_requested());
  EXPECT_TRUE(under_shield.stop_requested());
  EXPECT_TRUE(shielded_under_shield.stop_requested());
  absl::Status s = JoinOrDie(shielded_under_shield);
  EXPECT_TRUE(MessageContains(s, "second")) << s;
  s = JoinOrDie(plain);
  EXPECT_TRUE(MessageContains(s, "first")) << s;  // first reason stays
}

// Invariant: a shielded group is still stopped by its own RequestStop(), and
// that stop reaches its unshielded children but not its parent.
TEST_F(TaskGroupTest, ShieldedGroupStoppedByOwnRequestStop) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup shielded(root, {.name = "shielded", .shielded = true});
  TaskGroup below(shielded, {.name = "below"});
  shielded.RequestStop("own stop");
  EXPECT_TRUE(shielded.stop_requested());
  EXPECT_TRUE(below.stop_requested());
  EXPECT_FALSE(root.stop_requested());
  absl::Status s = JoinOrDie(below);
  EXPECT_TRUE(MessageContains(s, "own stop")) << s;
  EXPECT_TRUE(JoinOrDie(root).ok());
}

// Invariant: a failing task of a shielded group stops that group (its
// siblings are cancelled) and its Wait() returns the error; the parent is
// not stopped by it.
TEST_F(TaskGroupTest, ShieldedGroupStoppedByOwnFailingTask) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup shielded(root, {.name = "shielded", .shielded = true});
  absl::Notification sibling_started;
  shielded.Spawn([&](StopToken token) {
    sibling_started.Notify();
    return SleepFor(absl::InfiniteDuration(), token);
  });
  ASSERT_TRUE(BlockUntil(sibling_started));
  shielded.Spawn([] { return absl::AbortedError("shielded task failed"); });
  absl::Status s = JoinOrDie(shielded);
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_TRUE(shielded.stop_requested());
  EXPECT_FALSE(root.stop_requested());
  EXPECT_TRUE(JoinOrDie(root).ok());  // never waited through a task: silent
  EXPECT_EQ(shielded.stats().failed, 1);
  EXPECT_EQ(shielded.stats().cancelled, 1);
}

// Invariant: a shielded child keeps its stopped unshielded parent's Wait()
// waiting until the shielded work completes.
TEST_F(TaskGroupTest, ShieldedChildKeepsParentWaitWaiting) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup shielded(root, {.name = "shielded", .shielded = true});
  absl::Notification started, release;
  std::atomic<bool> done{false};
  shielded.Spawn([&](StopToken token) {
    started.Notify();
    absl::Status s = BlockUntilReleased(release, token);
    done = true;
    return s;
  });
  ASSERT_TRUE(BlockUntil(started));
  root.RequestStop("root stop");
  EXPECT_TRUE(absl::IsDeadlineExceeded(root.WaitFor(absl::Milliseconds(30))));
  EXPECT_FALSE(done.load());
  release.Notify();
  absl::Status s = JoinOrDie(root);
  EXPECT_TRUE(done.load());
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(JoinOrDie(shielded).ok());
}

// Invariant: three levels top -> shielded middle -> bottom: stopping the top
// stops the top (and its unshielded children) but neither the shielded middle
// nor the bottom under it, whose tasks keep running and succeed; the top's
// Wait() waits for them. Stopping the middle then reaches the bottom with the
// middle's reason. RequestStop(kAll) reaches all three.
TEST_F(TaskGroupTest, NestedThreeLevelsWithShieldedMiddle) {
  Executor ex({.num_workers = 4});
  TaskGroup top(ex, {.name = "top"});
  TaskGroup sibling(top, {.name = "sibling"});
  TaskGroup middle(top, {.name = "middle", .shielded = true});
  TaskGroup bottom(middle, {.name = "bottom"});
  Latch started(2);
  absl::Notification release;
  std::atomic<int> saw_stop{0};
  for (TaskGroup* g : {&middle, &bottom}) {
    g->Spawn([&](StopToken token) {
      started.CountDown();
      absl::Status s = BlockUntilReleased(release, token);
      if (token.stop_requested()) saw_stop++;
      return s;
    });
  }
  ASSERT_TRUE(started.WaitFor());
  top.RequestStop("top stop");
  EXPECT_TRUE(top.stop_requested());
  EXPECT_TRUE(sibling.stop_requested());
  EXPECT_FALSE(middle.stop_requested());
  EXPECT_FALSE(bottom.stop_requested());
  EXPECT_TRUE(absl::IsDeadlineExceeded(top.WaitFor(absl::Milliseconds(20))));
  // New work in the shielded subtree still runs after the top's stop.
  std::atomic<int> late{0};
  bottom.Spawn([&] { late++; });
  ASSERT_TRUE(WaitUntilOrFail([&] { return late.load() == 1; }));
  release.Notify();
  EXPECT_TRUE(JoinOrDie(bottom).ok());
  EXPECT_TRUE(JoinOrDie(middle).ok());
  absl::Status s = JoinOrDie(top);
  EXPECT_TRUE(absl::IsCancelled(s) && MessageContains(s, "top stop")) << s;
  EXPECT_EQ(saw_stop.load(), 0);

  middle.RequestStop("middle stop");
  EXPECT_TRUE(bottom.stop_requested());
  s = JoinOrDie(bottom);
  EXPECT_TRUE(MessageContains(s, "middle stop")) << s;
  EXPECT_FALSE(MessageContains(s, "top stop")) << s;
}

// Invariant: RequestStop(kAll) reaches a shielded middle level and the bottom
// under it.
TEST_F(TaskGroupTest, NestedThreeLevelsStopAllReachesShieldedMiddle) {
  Executor ex({.num_workers = 2});
  TaskGroup top(ex, {.name = "top"});
  TaskGroup middle(top, {.name = "middle", .shielded = true});
  TaskGroup bottom(middle, {.name = "bottom"});
  middle.Spawn([](StopToken t) { return SleepFor(absl::InfiniteDuration(), t); });
  bottom.Spawn([](StopToken t) { return SleepFor(absl::InfiniteDuration(), t); });
  ex.RequestStop(StopTarget::kUnshielded, "soft");
  EXPECT_TRUE(top.stop_requested());
  EXPECT_FALSE(middle.stop_requested());
  EXPECT_FALSE(bottom.stop_requested());
  ex.RequestStop(StopTarget::kAll, "hard");
  EXPECT_TRUE(middle.stop_requested());
  EXPECT_TRUE(bottom.stop_requested());
  absl::Status s = JoinOrDie(top);
  EXPECT_TRUE(MessageContains(s, "soft")) << s;
  s = JoinOrDie(bottom);
  EXPECT_TRUE(MessageContains(s, "hard")) << s;
}

// ---------------------------------------------------------------------------
// Reasons.

// Invariant: the first stop records the reason; later stops (own, parent's,
// executor's) do not change it.
TEST_F(TaskGroupTest, FirstReasonWins) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup child(root, {.name = "child"});
  child.RequestStop("child first");
  child.RequestStop("child second");
  root.RequestStop("root later");
  ex.RequestStop(StopTarget::kAll, "executor later");
  absl::Status s = JoinOrDie(child);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(MessageContains(s, "child first")) << s;
  EXPECT_FALSE(MessageContains(s, "second")) << s;
  EXPECT_FALSE(MessageContains(s, "later")) << s;
  s = JoinOrDie(root);
  EXPECT_TRUE(MessageContains(s, "root later")) << s;
}

// Invariant: of concurrent RequestStop() calls exactly one reason is recorded
// and every later Wait() reports that same one.
TEST_F(TaskGroupTest, ConcurrentStopsRecordOneReason) {
  Executor ex({.num_workers = 2});
  for (int rep = 0; rep < Scaled(50, 10); ++rep) {
    TaskGroup g(ex);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&g, t] { g.RequestStop("reason-" + std::to_string(t)); });
    }
    for (auto& t : threads) t.join();
    absl::Status s = JoinOrDie(g);
    int matches = 0;
    for (int t = 0; t < 4; ++t) {
      if (MessageContains(s, "reason-" + std::to_string(t))) ++matches;
    }
    EXPECT_EQ(matches, 1) << s;
    EXPECT_EQ(g.Wait(), s);
  }
}

// Invariant: a parent's reason reaches its children (and grandchildren).
TEST_F(TaskGroupTest, ParentReasonReachesChild) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup child(root, {.name = "child"});
  TaskGroup grandchild(child, {.name = "grandchild"});
  root.RequestStop("because the parent said so");
  for (TaskGroup* g : {&grandchild, &child}) {
    absl::Status s = JoinOrDie(*g);
    EXPECT_TRUE(absl::IsCancelled(s)) << s;
    EXPECT_TRUE(MessageContains(s, "because the parent said so")) << s;
  }
}

// Invariant: a child's stop (and its reason) never reaches its parent or its
// siblings; the parent's Wait() stays OK.
TEST_F(TaskGroupTest, ChildReasonNeverReachesParent) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup child(root, {.name = "child"});
  TaskGroup sibling(root, {.name = "sibling"});
  std::atomic<int> ran{0};
  child.RequestStop("child only");
  root.Spawn([&] { ran++; });
  sibling.Spawn([&] { ran++; });
  EXPECT_FALSE(root.stop_requested());
  EXPECT_FALSE(sibling.stop_requested());
  absl::Status s = JoinOrDie(root);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(ran.load(), 2);
  EXPECT_TRUE(MessageContains(child.Wait(), "child only"));
  // A later stop of the parent does not replace the child's reason.
  root.RequestStop("root now");
  EXPECT_TRUE(MessageContains(child.Wait(), "child only"));
  EXPECT_FALSE(MessageContains(child.Wait(), "root now"));
  EXPECT_TRUE(MessageContains(root.Wait(), "root now"));
}

// Invariant: a Wait() status for a stopped group contains the reason given to
// RequestStop().
TEST_F(TaskGroupTest, CancelledMessageContainsReason) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex, {.name = "ingest"});
  EXPECT_EQ(g.name(), "ingest");
  g.RequestStop("disk full");
  absl::Status s = JoinOrDie(g);
  EXPECT_TRUE(absl::IsCancelled(s));
  EXPECT_TRUE(MessageContains(s, "disk full")) << s;
}

// ---------------------------------------------------------------------------
// Joining and errors.

// Invariant: Wait() returns OK when every task succeeded and nothing stopped
// the group, including an empty group and a group with only child groups.
TEST_F(TaskGroupTest, WaitOkWhenEverythingSucceeds) {
  Executor ex({.num_workers = 2});
  TaskGroup empty(ex);
  EXPECT_TRUE(JoinOrDie(empty).ok());
  EXPECT_TRUE(empty.WaitFor(absl::ZeroDuration()).ok());
  TaskGroup g(ex);
  std::vector<int> results(100, 0);  // plain writes, ordered by Wait()
  for (int i = 0; i < 100; ++i) {
    if (i % 2 == 0) {
      g.Spawn([&results, i] { results[i] = i; });
    } else {
      g.Spawn([&results, i]() -> absl::Status {
        results[i] = i;
        return absl::OkStatus();
      });
    }
  }
  EXPECT_TRUE(JoinOrDie(g).ok());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(results[i], i);
  EXPECT_FALSE(g.stop_requested());
}

// Invariant: the first non-OK status wins, it stops the group (siblings
// sleeping on the token are cancelled, queued ones dropped), and a later
// error does not replace it.
TEST_F(TaskGroupTest, FirstErrorWinsAndCancelsSiblings) {
  Executor ex({.num_workers = 4});
  TaskGroup g(ex, {.name = "errors"});
  Latch started(3);
  std::atomic<int> sleepers_cancelled{0};
  for (int i = 0; i < 2; ++i) {
    g.Spawn([&](StopToken token) {
      started.CountDown();
      absl::Status s = SleepFor(absl::InfiniteDuration(), token);
      if (absl::IsCancelled(s)) sleepers_cancelled++;
      return s;
    });
  }
  // Fails second: after the first error has stopped the group.
  g.Spawn([&](StopToken token) {
    started.CountDown();
    SleepFor(absl::InfiniteDuration(), token).IgnoreError();
    return absl::InternalError("second error");
  });
  ASSERT_TRUE(started.WaitFor());
  g.Spawn([] { return absl::InvalidArgumentError("first error"); });
  absl::Status s = JoinOrDie(g);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(MessageContains(s, "first error")) << s;
  EXPECT_TRUE(g.stop_requested());
  EXPECT_EQ(sleepers_cancelled.load(), 2);
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 4);
  EXPECT_EQ(st.failed, 2);
  EXPECT_EQ(st.cancelled, 2);
  EXPECT_EQ(st.completed, 0);
  // Spawning after the error: dropped, status unchanged.
  g.Spawn([] {});
  EXPECT_EQ(JoinOrDie(g), s);
  EXPECT_EQ(g.stats().cancelled, 3);
}

// Invariant: a task that returns CancelledError after its group was stopped
// is not a failure: Wait() returns the stop's cause and stats count it
// cancelled.
TEST_F(TaskGroupTest, CancelledAfterStopIsNotAFailure) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "g"});
  absl::Notification started;
  g.Spawn([&](StopToken token) {
    started.Notify();
    return SleepFor(absl::InfiniteDuration(), token);  // CancelledError
  });
  ASSERT_TRUE(BlockUntil(started));
  g.RequestStop("the cause");
  absl::Status s = JoinOrDie(g);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(MessageContains(s, "the cause")) << s;
  EXPECT_EQ(g.stats().failed, 0);
  EXPECT_EQ(g.stats().cancelled, 1);
}

// Invariant: a CancelledError returned while no stop was requested is an
// ordinary error: it fails (and stops) the group and Wait() returns it.
TEST_F(TaskGroupTest, CancelledWithoutStopIsAFailure) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  g.Spawn([] { return absl::CancelledError("my own cancellation"); });
  absl::Status s = JoinOrDie(g);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(MessageContains(s, "my own cancellation")) << s;
  EXPECT_TRUE(g.stop_requested());
  EXPECT_EQ(g.stats().failed, 1);
}

// Invariant: an error other than CancelledError returned after the stop
// outranks the stop: Wait() returns that error.
TEST_F(TaskGroupTest, ErrorAfterStopOutranksStop) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::Notification started;
  g.Spawn([&](StopToken token) -> absl::Status {
    started.Notify();
    absl::Status s = SleepFor(absl::InfiniteDuration(), token);
    if (absl::IsCancelled(s)) return absl::DataLossError("cleanup failed");
    return s;
  });
  ASSERT_TRUE(BlockUntil(started));
  g.RequestStop("stop first");
  absl::Status s = JoinOrDie(g);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_EQ(g.stats().failed, 1);
  // And it stays: a later Wait() returns the same.
  EXPECT_EQ(g.Wait(), s);
}

// Invariant: concurrent Wait() calls (external threads) return the same
// status, and so does a later Wait() with nothing spawned in between.
TEST_F(TaskGroupTest, ConcurrentWaitsReturnTheSameStatus) {
  Executor ex({.num_workers = 2});
  for (int rep = 0; rep < 10; ++rep) {
    TaskGroup g(ex);
    absl::Notification release;
    g.Spawn([&](StopToken token) -> absl::Status {
      BlockUntilReleased(release, token).IgnoreError();
      return absl::ResourceExhaustedError("out of quota");
    });
    for (int i = 0; i < 10; ++i) g.Spawn([](StopToken token) {
      return SleepFor(absl::Milliseconds(1), token);
    });
    constexpr int kWaiters = 4;
    absl::Status statuses[kWaiters];
    std::vector<std::thread> waiters;
    for (int i = 0; i < kWaiters; ++i) {
      waiters.emplace_back([&, i] { statuses[i] = g.WaitFor(kHangTimeout); });
    }
    absl::SleepFor(absl::Milliseconds(rep % 3));
    release.Notify();
    for (auto& t : waiters) t.join();
    EXPECT_TRUE(absl::IsResourceExhausted(statuses[0])) << statuses[0];
    for (int i = 1; i < kWaiters; ++i) EXPECT_EQ(statuses[i], statuses[0]);
    EXPECT_EQ(g.Wait(), statuses[0]);
    EXPECT_EQ(g.Wait(), statuses[0]);
  }
}

// Invariant: a group can be waited, spawned into again and waited again; the
// status of an OK group stays OK, and a stopped group stays stopped.
TEST_F(TaskGroupTest, WaitSpawnAgainWaitAgain) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  std::atomic<int> ran{0};
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 10; ++i) g.Spawn([&] { ran++; });
    EXPECT_TRUE(JoinOrDie(g).ok());
    EXPECT_EQ(ran.load(), 10 * (round + 1));
  }
  g.RequestStop("done now");
  g.Spawn([&] { ran++; });
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g)));
  EXPECT_TRUE(g.stop_requested());
  g.Spawn([&] { ran++; });
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g)));
  EXPECT_EQ(ran.load(), 50);
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 52);
  EXPECT_EQ(st.completed, 50);
  EXPECT_EQ(st.cancelled, 2);
}

// Invariant: a task that throws fails the group with UnknownError (or
// InternalError) carrying what(); a non-std exception fails it too; nothing
// escapes the worker (the process and the executor keep working).
TEST_F(TaskGroupTest, ThrowingTaskBecomesStatus) {
  Executor ex({.num_workers = 2});
  {
    TaskGroup g(ex);
    g.Spawn([]() -> void { throw std::runtime_error("kaboom-123"); });
    absl::Status s = JoinOrDie(g);
    EXPECT_TRUE(absl::IsUnknown(s) || absl::IsInternal(s)) << s;
    EXPECT_TRUE(MessageContains(s, "kaboom-123")) << s;
    EXPECT_EQ(g.stats().failed, 1);
  }
  {
    TaskGroup g(ex);
    g.Spawn([](StopToken) -> absl::Status { throw 42; });
    absl::Status s = JoinOrDie(g);
    EXPECT_TRUE(absl::IsUnknown(s) || absl::IsInternal(s)) << s;
  }
  {
    // Throwing while other tasks sleep: they are cancelled.
    TaskGroup g(ex);
    absl::Notification started;
    g.Spawn([&](StopToken t) {
      started.Notify();
      return SleepFor(absl::InfiniteDuration(), t);
    });
    ASSERT_TRUE(BlockUntil(started));
    g.Spawn([] { throw std::logic_error("logic"); });
    absl::Status s = JoinOrDie(g);
    EXPECT_TRUE(MessageContains(s, "logic")) << s;
    EXPECT_EQ(g.stats().cancelled, 1);
  }
  // The executor still works.
  TaskGroup after(ex);
  std::atomic<int> ran{0};
  after.Spawn([&] { ran++; });
  EXPECT_TRUE(JoinOrDie(after).ok());
  EXPECT_EQ(ran.load(), 1);
}

// Invariant: Wait()/WaitFor() called from inside a task of the same group or
// of a descendant return FailedPrecondition at once (no deadlock); waiting on
// a child group from a task of the parent is allowed.
TEST_F(TaskGroupTest, WaitFromInsideIsFailedPrecondition) {
  for (int workers : {1, 2}) {
    Executor ex({.num_workers = workers});
    TaskGroup root(ex, {.name = "root"});
    TaskGroup child(root, {.name = "child"});
    TaskGroup grandchild(child, {.name = "grandchild"});
    absl::Status own, own_for, from_child, from_grandchild, child_own;
    root.Spawn([&] {
      own = root.Wait();
      own_for = root.WaitFor(absl::Seconds(1));
    });
    child.Spawn([&] {
      from_child = root.Wait();
      child_own = child.Wait();
    });
    grandchild.Spawn([&] { from_grandchild = root.WaitFor(kHangTimeout); });
    // The helpers' statuses are plain writes: only read them after the join.
    EXPECT_TRUE(JoinOrDie(root).ok());
    for (const absl::Status* s :
         {&own, &own_for, &from_child, &from_grandchild, &child_own}) {
      EXPECT_TRUE(absl::IsFailedPrecondition(*s)) << *s;
    }
    // Waiting on a child from a task of the parent is fine.
    absl::Status parent_waits_child;
    root.Spawn([&] {
      child.Spawn([] {});
      parent_waits_child = child.Wait();
    });
    EXPECT_TRUE(JoinOrDie(root).ok());
    EXPECT_TRUE(parent_waits_child.ok()) << parent_waits_child;
  }
}

// Invariant: a child group's outcome reaches the parent only through the
// code that waits on it: a task returning the child's Wait() status fails
// the parent with it; a failed child nobody waits on leaves the parent OK.
TEST_F(TaskGroupTest, ChildOutcomeReachesParentOnlyThroughItsWaiter) {
  Executor ex({.num_workers = 2});
  {
    TaskGroup parent(ex);
    parent.Spawn([&]() -> absl::Status {
      TaskGroup child(parent);
      child.Spawn([] { return absl::NotFoundError("child failed"); });
      return child.Wait();
    });
    absl::Status s = JoinOrDie(parent);
    EXPECT_TRUE(absl::IsNotFound(s)) << s;
  }
  {
    TaskGroup parent(ex);
    TaskGroup child(parent);
    child.Spawn([] { return absl::NotFoundError("child failed"); });
    absl::Status s = JoinOrDie(parent);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_FALSE(parent.stop_requested());
    EXPECT_TRUE(absl::IsNotFound(child.Wait()));
  }
  {
    // Never waited at all: its destructor joins it silently.
    TaskGroup parent(ex);
    parent.Spawn([&] {
      TaskGroup child(parent);
      child.Spawn([] { return absl::NotFoundError("ignored"); });
    });
    EXPECT_TRUE(JoinOrDie(parent).ok());
  }
}

// ---------------------------------------------------------------------------
// A single worker (oneTBB issue 2056 hangs in these shapes).

// Invariant: with one worker, Wait() from an external thread returns once all
// tasks, including ones spawned by tasks, have run.
TEST_F(TaskGroupTest, SingleWorkerExternalWait) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex);
  std::atomic<int> ran{0};
  for (int i = 0; i < 1000; ++i) {
    g.Spawn([&] {
      ran++;
      if (ran.load() % 10 == 0) g.Spawn([&] { ran++; });
    });
  }
  EXPECT_TRUE(JoinOrDie(g).ok());
  EXPECT_GE(ran.load(), 1000);
  EXPECT_EQ(g.stats().spawned, ran.load());
}

// Invariant: with one worker, a task of a parent group that waits on a child
// group does not hang, wherever the child's tasks were queued: on the
// waiter's own deque, on the injection queue by an external thread, or
// spawned by another task.
TEST_F(TaskGroupTest, SingleWorkerWaitInsideTaskOnChildGroup) {
  Executor ex({.num_workers = 1});
  TaskGroup root(ex, {.name = "root"});
  std::atomic<int> ran{0};
  absl::Status own_deque, injected;
  // Child tasks on the waiter's own deque.
  root.Spawn([&] {
    TaskGroup child(root, {.name = "child1"});
    for (int i = 0; i < 100; ++i) child.Spawn([&] { ran++; });
    own_deque = child.Wait();
  });
  EXPECT_TRUE(JoinOrDie(root).ok());
  EXPECT_TRUE(own_deque.ok()) << own_deque;
  EXPECT_EQ(ran.load(), 100);

  // Child tasks injected by an external thread while the only worker is held
  // by the waiting task.
  absl::Notification child_ready, spawned;
  std::atomic<TaskGroup*> child_ptr{nullptr};
  root.Spawn([&] {
    TaskGroup child(root, {.name = "child2"});
    child_ptr = &child;
    child_ready.Notify();
    spawned.WaitForNotificationWithTimeout(kHangTimeout);
    injected = child.Wait();
  });
  ASSERT_TRUE(BlockUntil(child_ready));
  for (int i = 0; i < 100; ++i) child_ptr.load()->Spawn([&] { ran++; });
  spawned.Notify();
  EXPECT_TRUE(JoinOrDie(root).ok());
  EXPECT_TRUE(injected.ok()) << injected;
  EXPECT_EQ(ran.load(), 200);

  // Child tasks spawned from a child task that spawns more.
  absl::Status nested;
  root.Spawn([&] {
    TaskGroup child(root, {.name = "child3"});
    child.Spawn([&] {
      for (int i = 0; i < 100; ++i) child.Spawn([&] { ran++; });
    });
    nested = child.Wait();
  });
  EXPECT_TRUE(JoinOrDie(root).ok());
  EXPECT_TRUE(nested.ok()) << nested;
  EXPECT_EQ(ran.load(), 300);
}

// Invariant: with one worker, a waiting task whose child tasks sit behind
// many unrelated tasks on the injection queue still finishes (the waiter
// runs the unrelated ones when no other worker can).
TEST_F(TaskGroupTest, SingleWorkerWaitInsideTaskBehindUnrelatedWork) {
  Executor ex({.num_workers = 1});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup unrelated(ex, {.name = "unrelated"});
  absl::Notification child_ready, spawned;
  std::atomic<TaskGroup*> child_ptr{nullptr};
  std::atomic<int> child_ran{0}, unrelated_ran{0};
  absl::Status waited;
  root.Spawn([&] {
    TaskGroup child(root, {.name = "child"});
    child_ptr = &child;
    child_ready.Notify();
    spawned.WaitForNotificationWithTimeout(kHangTimeout);
    waited = child.Wait();
  });
  ASSERT_TRUE(BlockUntil(child_ready));
  for (int i = 0; i < 500; ++i) unrelated.Spawn([&] { unrelated_ran++; });
  for (int i = 0; i < 10; ++i) child_ptr.load()->Spawn([&] { child_ran++; });
  spawned.Notify();
  EXPECT_TRUE(JoinOrDie(root).ok());
  EXPECT_TRUE(waited.ok()) << waited;
  EXPECT_EQ(child_ran.load(), 10);
  EXPECT_TRUE(JoinOrDie(unrelated).ok());
  EXPECT_EQ(unrelated_ran.load(), 500);
}

// Invariant: with one worker, waits nested three levels deep inside tasks
// (root task waits on child, child task waits on grandchild) finish, for
// tasks queued by the waiters and for recursive fan-out.
TEST_F(TaskGroupTest, SingleWorkerNestedWaitsThreeLevels) {
  for (int workers : {1, 2}) {
    Executor ex({.num_workers = workers});
    TaskGroup root(ex, {.name = "root"});
    std::atomic<int> leaves{0};
    std::atomic<int> failures{0};
    for (int i = 0; i < 4; ++i) {
      root.Spawn([&]() -> absl::Status {
        TaskGroup child(root, {.name = "child"});
        for (int j = 0; j < 4; ++j) {
          child.Spawn([&]() -> absl::Status {
            TaskGroup grandchild(child, {.name = "grandchild"});
            for (int k = 0; k < 4; ++k) {
              grandchild.Spawn([&] { leaves++; });
            }
            absl::Status s = grandchild.Wait();
            if (!s.ok()) failures++;
            return s;
          });
        }
        absl::Status s = child.Wait();
        if (!s.ok()) failures++;
        return s;
      });
    }
    EXPECT_TRUE(JoinOrDie(root).ok());
    EXPECT_EQ(leaves.load(), 64);
    EXPECT_EQ(failures.load(), 0);
  }
}

// Invariant: with one worker, tasks spawned on one external thread and waited
// for on another external thread run and the Wait() returns (the shape of
// oneTBB issue 2056: run() on thread A, wait() on thread B).
TEST_F(TaskGroupTest, SingleWorkerSpawnOnOneThreadWaitOnAnother) {
  Executor ex({.num_workers = 1});
  for (int rep = 0; rep < 20; ++rep) {
    TaskGroup g(ex);
    std::atomic<int> ran{0};
    absl::Notification spawned;
    std::thread a([&] {
      for (int i = 0; i < 10; ++i) g.Spawn([&] { ran++; });
      spawned.Notify();
    });
    absl::Status s;
    std::thread b([&] {
      spawned.WaitForNotificationWithTimeout(kHangTimeout);
      s = JoinOrDie(g);
    });
    a.join();
    b.join();
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(ran.load(), 10);
  }
}

// Invariant: with one worker, a task T1 of child group g waiting on its child
// d, and a task T2 of the root waiting on g, both finish. d's task sits behind
// 100 unrelated tasks and T2 in the injection queue. Regression test for
// SingleWorkerFallbackDoesNotNestAWaitOnItsOwnWaiter: the old fallback ran
// an unrelated task (T2) on top of T1's frame; T2 then waited on g, which
// cannot finish until T1 resumes: a permanent hang. A helping wait now runs
// only tasks of the waited subtree and scans the whole injection queue.
TEST_F(TaskGroupTest, SingleWorkerFallbackDoesNotNestAWaitOnItsOwnWaiter) {
  Executor ex({.num_workers = 1});
  TaskGroup root(ex, {.name = "root"});
  TaskGroup g(root, {.name = "g"});
  TaskGroup d(g, {.name = "d"});
  TaskGroup unrelated(ex, {.name = "unrelated"});
  absl::Notification t1_started, queued;
  absl::Status t1_status, t2_status;
  g.Spawn([&] {  // T1
    t1_started.Notify();
    queued.WaitForNotificationWithTimeout(kHangTimeout);
    t1_status = d.Wait();
  });
  ASSERT_TRUE(BlockUntil(t1_started));
  root.Spawn([&] { t2_status = g.Wait(); });  // T2: a parent waits on a child
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) unrelated.Spawn([&] { ran++; });
  d.Spawn([&] { ran++; });
  queued.Notify();
  // JoinOrDie aborts (with the executor's state) instead of hanging.
  EXPECT_TRUE(JoinOrDie(root, kHangTimeout, &ex).ok());
  EXPECT_TRUE(t1_status.ok()) << t1_status;
  EXPECT_TRUE(t2_status.ok()) << t2_status;
  EXPECT_TRUE(JoinOrDie(unrelated).ok());
  EXPECT_EQ(ran.load(), 101);
}

// ---------------------------------------------------------------------------
// Callables.

// Invariant: every callable shape the contract allows is accepted:
// void(StopToken), absl::Status(StopToken), void(), absl::Status(), plus
// function pointers, std::function, mutable lambdas and functors; a callable
// taking a StopToken receives the group's token.
void FreeVoid() {}
absl::Status FreeStatus(StopToken) { return absl::OkStatus(); }
struct Functor {
  std::atomic<int>* n;
  absl::Status operator()(StopToken token) const {
    if (!token.stop_possible()) return absl::InternalError("no token");
    (*n)++;
    return absl::OkStatus();
  }
};

TEST_F(TaskGroupTest, AllCallableShapes) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  std::atomic<int> n{0};
  std::atomic<int> right_token{0};
  g.Spawn([&](StopToken token) {
    n++;
    if (token == g.stop_token()) right_token++;
  });
  g.Spawn([&](StopToken token) -> absl::Status {
    n++;
    if (token == g.stop_token()) right_token++;
    return absl::OkStatus();
  });
  g.Spawn([&]() { n++; });
  g.Spawn([&]() -> absl::Status {
    n++;
    return absl::OkStatus();
  });
  g.Spawn(&FreeVoid);
  g.Spawn(FreeStatus);
  g.Spawn(std::function<void()>([&] { n++; }));
  g.Spawn(Functor{&n});
  int local = 0;
  g.Spawn([&n, local]() mutable {
    ++local;
    n += local;
  });
  EXPECT_TRUE(JoinOrDie(g).ok());
  EXPECT_EQ(n.load(), 7);
  EXPECT_EQ(right_token.load(), 2);
  EXPECT_EQ(g.stats().completed, 9);
}

// Invariant: move-only callables (capturing a std::unique_ptr) are accepted in
// every shape, run once, and are destroyed, whether run or dropped.
TEST_F(TaskGroupTest, MoveOnlyCallables) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  std::atomic<int> sum{0};
  g.Spawn([p = std::make_unique<int>(1), &sum] { sum += *p; });
  g.Spawn([p = std::make_unique<int>(2), &sum](StopToken) { sum += *p; });
  g.Spawn([p = std::make_unique<int>(4), &sum]() -> absl::Status {
    sum += *p;
    return absl::OkStatus();
  });
  g.Spawn([p = std::make_unique<int>(8), &sum](StopToken) -> absl::Status {
    sum += *p;
    return absl::OkStatus();
  });
  auto lvalue_move_only = [p = std::make_unique<int>(16), &sum] { sum += *p; };
  g.Spawn(std::move(lvalue_move_only));
  EXPECT_TRUE(JoinOrDie(g).ok());
  EXPECT_EQ(sum.load(), 31);
  // Dropped move-only callables are destroyed too (LSan checks the leak).
  g.RequestStop("drop");
  g.Spawn([p = std::make_unique<int>(32), &sum] { sum += *p; });
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g)));
  EXPECT_EQ(sum.load(), 31);
}

// A copyable callable whose state a move would empty (moved-from
// shared_ptrs are null), so the caller can tell a copy from a move.
struct CountingCallable {
  std::shared_ptr<int> state = std::make_shared<int>(5);
  std::shared_ptr<std::atomic<int>> runs =
      std::make_shared<std::atomic<int>>(0);
  CountingCallable() = default;
  CountingCallable(const CountingCallable&) = default;
  CountingCallable(CountingCallable&& other) noexcept = default;
  CountingCallable& operator=(const CountingCallable&) = default;
  CountingCallable& operator=(CountingCallable&&) noexcept = default;
  void operator()() const {
    if (state != nullptr && *state == 5) (*runs)++;
  }
};

// Invariant: an lvalue callable (const or not) is copied, never moved from:
// the caller's object keeps its state, and each spawned copy runs.
TEST_F(TaskGroupTest, LvalueCallableIsCopiedNotMoved) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  CountingCallable f;
  const CountingCallable cf;
  g.Spawn(f);
  g.Spawn(f);
  g.Spawn(cf);
  EXPECT_NE(f.state, nullptr) << "Spawn(lvalue) moved from the caller's object";
  EXPECT_NE(cf.state, nullptr);
  auto captured = std::make_shared<int>(9);
  auto lambda = [captured, runs = f.runs] {
    if (captured != nullptr) (*runs)++;
  };
  g.Spawn(lambda);
  EXPECT_TRUE(JoinOrDie(g).ok());
  EXPECT_EQ(f.runs->load(), 3);  // two copies of f, and the lambda (shares runs)
  EXPECT_EQ(cf.runs->load(), 1);
  EXPECT_NE(f.state, nullptr);
  EXPECT_EQ(*f.state, 5);
  EXPECT_EQ(captured.use_count(), 2);  // ours and the lambda's; the copy died
}

// ---------------------------------------------------------------------------
// WaitFor.

// Invariant: WaitFor returns DeadlineExceeded while a task still runs and
// stops nothing; afterwards it returns what Wait() returns.
TEST_F(TaskGroupTest, WaitForDeadlineDoesNotStop) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "slow"});
  absl::Notification started, release;
  std::atomic<bool> saw_stop{false};
  g.Spawn([&](StopToken token) -> absl::Status {
    started.Notify();
    BlockUntilReleased(release, token).IgnoreError();
    saw_stop = token.stop_requested();
    return absl::UnavailableError("slow failed");
  });
  ASSERT_TRUE(BlockUntil(started));
  absl::Status s = g.WaitFor(absl::Milliseconds(20));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_TRUE(absl::IsDeadlineExceeded(g.WaitFor(absl::ZeroDuration())));
  EXPECT_TRUE(absl::IsDeadlineExceeded(g.WaitFor(absl::Milliseconds(-1))));
  EXPECT_FALSE(g.stop_requested());
  release.Notify();
  s = g.WaitFor(kHangTimeout);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_FALSE(saw_stop.load());
  EXPECT_EQ(g.Wait(), s);
  EXPECT_EQ(g.WaitFor(absl::ZeroDuration()), s);  // idle: polls the outcome
}

// Invariant: WaitFor from a worker thread (a task waiting on a child group)
// also times out without stopping, then succeeds.
TEST_F(TaskGroupTest, WaitForFromInsideTaskOnChild) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex);
  absl::Status first, second;
  bool child_stopped = true;
  root.Spawn([&] {
    TaskGroup child(root);
    absl::Notification started, release;
    child.Spawn([&](StopToken token) {
      started.Notify();
      return BlockUntilReleased(release, token);
    });
    // Not a helping wait: the other worker must steal and start the task, or
    // a helping WaitFor would run it inline and never time out.
    if (!started.WaitForNotificationWithTimeout(kHangTimeout)) return;
    first = child.WaitFor(absl::Milliseconds(20));
    child_stopped = child.stop_requested();
    release.Notify();
    second = child.WaitFor(kHangTimeout);
  });
  EXPECT_TRUE(JoinOrDie(root).ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(first)) << first;
  EXPECT_FALSE(child_stopped);
  EXPECT_TRUE(second.ok()) << second;
}

// ---------------------------------------------------------------------------
// ~TaskGroup during stack unwinding.

// Invariant: when an exception leaves the scope that owns a group, ~TaskGroup
// first stops the group (the running task, asleep on its token, sees the
// stop and returns early), then joins.
TEST_F(TaskGroupTest, DestructorDuringUnwindingStopsThenJoins) {
  Executor ex({.num_workers = 2});
  std::atomic<bool> saw_stop{false};
  std::atomic<bool> finished{false};
  absl::Time thrown;
  bool caught = false;
  try {
    TaskGroup g(ex, {.name = "unwinding"});
    absl::Notification started;
    g.Spawn([&](StopToken token) {
      started.Notify();
      absl::Status s = SleepFor(absl::Seconds(60), token);
      saw_stop = token.stop_requested() && absl::IsCancelled(s);
      finished = true;
      return s;
    });
    if (!BlockUntil(started)) std::abort();
    thrown = absl::Now();
    throw std::runtime_error("leave the scope");
  } catch (const std::runtime_error&) {
    caught = true;
  }
  EXPECT_TRUE(caught);
  EXPECT_TRUE(finished.load()) << "~TaskGroup did not join";
  EXPECT_TRUE(saw_stop.load()) << "~TaskGroup did not stop the group first";
  // The task would sleep 60 s without the stop; 10 s is a generous bound that
  // still tells the two apart under TSan on a loaded machine.
  EXPECT_LT(absl::Now() - thrown, absl::Seconds(10));
}

// Invariant: inside a task, an exception that leaves the scope owning a child
// group stops that child (its sleeping task wakes) and joins it, and the
// task's own group is not stopped when the task catches the exception.
TEST_F(TaskGroupTest, DestructorDuringUnwindingInsideATask) {
  Executor ex({.num_workers = 2});
  TaskGroup root(ex, {.name = "root"});
  std::atomic<bool> child_saw_stop{false};
  root.Spawn([&]() -> absl::Status {
    try {
      TaskGroup child(root, {.name = "child"});
      absl::Notification started;
      child.Spawn([&](StopToken token) {
        started.Notify();
        absl::Status s = SleepFor(absl::Seconds(60), token);
        child_saw_stop = absl::IsCancelled(s);
        return s;
      });
      if (!started.WaitForNotificationWithTimeout(kHangTimeout)) {
        return absl::DeadlineExceededError("child task never started");
      }
      throw std::runtime_error("abandon the child");
    } catch (const std::runtime_error&) {
    }
    return absl::OkStatus();
  });
  const absl::Time start = absl::Now();
  EXPECT_TRUE(JoinOrDie(root).ok());
  EXPECT_TRUE(child_saw_stop.load());
  EXPECT_FALSE(root.stop_requested());
  // Generous: without the stop the child would sleep 60 s.
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// Invariant: a group created and destroyed during unwinding (in a destructor
// run by it) is not stopped: only an exception that leaves the group's own
// scope stops it. And a normal scope exit does not stop the group either.
TEST_F(TaskGroupTest, DestructorStopsOnlyForItsOwnUnwinding) {
  Executor ex({.num_workers = 2});
  std::atomic<int> saw_stop{0};
  std::atomic<int> ran{0};
  auto body = [&](StopToken token) {
    absl::SleepFor(absl::Milliseconds(20));
    if (token.stop_requested()) saw_stop++;
    ran++;
  };
  struct Cleanup {
    Executor* ex;
    std::function<void(StopToken)> body;
    ~Cleanup() {
      TaskGroup g(*ex, {.name = "cleanup"});
      g.Spawn(body);
    }  // joins without a stop: this group's scope is not unwinding
  };
  try {
    Cleanup cleanup{&ex, body};
    throw std::runtime_error("unwind");
  } catch (const std::runtime_error&) {
  }
  {
    TaskGroup g(ex);
    g.Spawn(body);
  }  // normal exit: joins, no stop
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(saw_stop.load(), 0);
}

// ---------------------------------------------------------------------------
// Diagnostics.

// Invariant: after a join, stats() are exact: spawned == completed + failed
// + cancelled, with the expected split, and running == queued == 0.
TEST_F(TaskGroupTest, StatsAreExactAfterJoin) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "stats"});
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned + st.completed + st.failed + st.cancelled + st.running +
                st.queued,
            0);
  for (int i = 0; i < 3; ++i) g.Spawn([] {});
  g.Spawn([] { return absl::OkStatus(); });
  EXPECT_TRUE(JoinOrDie(g).ok());
  st = g.stats();
  EXPECT_EQ(st.spawned, 4);
  EXPECT_EQ(st.completed, 4);
  EXPECT_EQ(st.failed + st.cancelled + st.running + st.queued, 0);

  g.Spawn([] { return absl::InternalError("one failure"); });
  EXPECT_TRUE(absl::IsInternal(JoinOrDie(g)));
  g.Spawn([] {});
  g.Spawn([] { return absl::InternalError("dropped"); });
  EXPECT_TRUE(absl::IsInternal(JoinOrDie(g)));
  st = g.stats();
  EXPECT_EQ(st.spawned, 7);
  EXPECT_EQ(st.completed, 4);
  EXPECT_EQ(st.failed, 1);
  EXPECT_EQ(st.cancelled, 2);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.queued, 0);
  EXPECT_EQ(st.spawned, st.completed + st.failed + st.cancelled);
  // Child groups' tasks are not counted in the parent's stats.
  TaskGroup child(g);  // starts stopped: the parent failed
  child.Spawn([] {});
  JoinOrDie(child).IgnoreError();
  EXPECT_EQ(g.stats().spawned, 7);
  EXPECT_EQ(child.stats().spawned, 1);
  EXPECT_EQ(child.stats().cancelled, 1);
}

// Invariant: while a task runs and others wait behind it on one worker,
// stats() reports them as running and queued.
TEST_F(TaskGroupTest, StatsReportRunningAndQueued) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex);
  absl::Notification started, release;
  g.Spawn([&](StopToken token) {
    started.Notify();
    return BlockUntilReleased(release, token);
  });
  ASSERT_TRUE(BlockUntil(started));
  for (int i = 0; i < 5; ++i) g.Spawn([] {});
  GroupStats st = g.stats();
  EXPECT_EQ(st.running, 1);
  EXPECT_EQ(st.queued, 5);
  EXPECT_EQ(st.spawned, 6);
  release.Notify();
  EXPECT_TRUE(JoinOrDie(g).ok());
  EXPECT_EQ(g.stats().completed, 6);
}

// Invariant: Executor::DebugString() lists live groups by name, with their
// shielded flag and stop reason.
TEST_F(TaskGroupTest, DebugStringListsGroups) {
  Executor ex({.num_workers = 1});
  TaskGroup root(ex, {.name = "debug-root"});
  TaskGroup child(root, {.name = "debug-child", .shielded = true});
  root.RequestStop("debug-reason");
  const std::string dump = ex.DebugString();
  EXPECT_NE(dump.find("debug-root"), std::string::npos) << dump;
  EXPECT_NE(dump.find("debug-child"), std::string::npos) << dump;
  EXPECT_NE(dump.find("debug-reason"), std::string::npos) << dump;
  EXPECT_NE(dump.find("shielded"), std::string::npos) << dump;
}

}  // namespace
}  // namespace ripcord
