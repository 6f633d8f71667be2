// Copyright 2026 The ripcord Authors.
//
// parking_test: the parking protocol's re-check (executor/sched/idle.h step 3;
// step 4 atop executor/sched/scheduler.cc for helping waits), on a real executor,
// deterministically. A task pushed after a parking worker's last look at
// the queues but before its parking RMW is seen by no producer's wake-up
// decision (the parking worker still counts as unparked, or as not yet a
// parked waiter): only the re-check after the RMW finds it. In production
// that window is a few hundred nanoseconds wide, and the stress tests
// (PushFromABusyWorkerWakesAParkingWorker) pass even with the re-check
// removed. Here a test hook (TestHook::kParkWindow) holds the parking
// worker in the window until the other worker has pushed, so every
// repetition lands its push there; without the re-check each one is a lost
// wake-up, reported after kHangTimeout.
//
// The same technique for census step 8 (atop executor/group/group_state.cc): a
// hook inside GroupState::IsWithin holds a helping wait's walk over a
// queued task's ancestry while the task's group is stopped, joined and its
// parent closed (CensusTest below).
//
// Not covered here: the heavy fence before the re-check
// (FenceBeforeRecheck). The hook's handshake orders the push before the
// re-check by itself; what the fence guards against, a push still in the
// pushing core's store buffer, needs no hook to happen and no hook can
// force it.
#include <atomic>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/sched/scheduler.h"
#include "gtest/gtest.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::internal::ParkSite;
using ::ripcord::testing::JoinOrDie;
using ::ripcord::testing::kHangTimeout;
using ::ripcord::testing::Scaled;
using ::ripcord::testing::ScopedTestHook;
using ::ripcord::testing::SpinUntilSet;

// The window held open by HoldWindowOpen, one repetition at a time.
struct Window {
  // The site whose next park opens the window (-1: none). The first park
  // there takes it, so one park per repetition waits in the window.
  std::atomic<int> armed{-1};
  std::atomic<bool> open{false};    // a parking thread waits in the window
  std::atomic<bool> pushed{false};  // the test's push is done: let it go on

  void Arm(ParkSite site) {
    open.store(false);
    pushed.store(false);
    armed.store(static_cast<int>(site));
  }
};

Window window;

// The hook: at the armed site, waits (bounded) until the test has pushed.
bool HoldWindowOpen(const void* arg) {
  const ParkSite site = *static_cast<const ParkSite*>(arg);
  int expected = static_cast<int>(site);
  if (!window.armed.compare_exchange_strong(expected, -1)) return false;
  window.open.store(true);
  const absl::Time until = absl::Now() + kHangTimeout;
  while (!window.pushed.load() && absl::Now() < until) {
    absl::SleepFor(absl::Microseconds(20));
  }
  return false;
}

// What a repetition's pushing side saw.
struct Outcome {
  std::atomic<bool> no_window{false};  // nobody held the window open
  std::atomic<bool> lost{false};       // the pushed task never ran
};

// The pushing side, in a task of `g` on a busy worker: waits until the
// other thread holds the window open, pushes a task of `g` onto this
// worker's deque, lets the window close, and spins until that task has run
// (elsewhere: this worker stays busy here). The other thread counts as
// unparked (and maybe searching), or as not yet a parked waiter, so the
// push's own wake-up decision wakes nobody.
void PushInTheWindowAndSpin(TaskGroup& g, Outcome& outcome) {
  if (!SpinUntilSet(window.open)) {
    outcome.no_window.store(true);
    window.pushed.store(true);
    return;
  }
  std::atomic<bool> ran{false};
  g.Spawn([&ran] { ran.store(true); });
  window.pushed.store(true);
  if (!SpinUntilSet(ran)) outcome.lost.store(true);
}

class ParkingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!internal::TestHooksAvailable()) GTEST_SKIP() << "no test hooks";
  }
  ~ParkingTest() override { window.armed.store(-1); }
  ScopedTestHook hook_{internal::TestHook::kParkWindow, &HoldWindowOpen};
};

// Invariant: a task that a busy worker pushes onto its own deque while the
// only other worker is between its last search and its parking RMW
// (WorkerMain) is run by that other worker, found by its re-check, even
// though the pushing task then spins until the task has run.
TEST_F(ParkingTest, PushInAParkingWorkersWindowIsFoundByItsRecheck) {
  Executor executor({.num_workers = 2});
  const int reps = Scaled(50, 10);
  for (int rep = 0; rep < reps; ++rep) {
    SCOPED_TRACE(::testing::Message() << "rep " << rep);
    TaskGroup g(executor);
    Outcome outcome;
    g.Spawn([&] {
      // Armed from here, where this worker is busy: the next park is the
      // other worker's, and nothing it must run waits in the queues.
      window.Arm(ParkSite::kWorker);
      // Something for the other worker to run, so that it goes through the
      // parking path after the arming (were it parked already, the push
      // wakes it; were it searching, it steals this).
      g.Spawn([] {});
      PushInTheWindowAndSpin(g, outcome);
    });
    ASSERT_TRUE(JoinOrDie(g, 3 * kHangTimeout, &executor).ok());
    ASSERT_FALSE(outcome.no_window.load()) << "the other worker never parked";
    ASSERT_FALSE(outcome.lost.load())
        << "the task pushed in the parking window waited for its own worker";
  }
}

// Invariant: the same for a worker parking in a helping Wait() (step 4):
// the only other worker runs the waited group's only task, which pushes a
// second task of that group while the waiter is between its last search
// and its parked_waiters_ increment, then spins until it has run; the
// waiter's re-check must find it.
TEST_F(ParkingTest, PushInAHelpingWaitersWindowIsFoundByItsRecheck) {
  Executor executor({.num_workers = 2});
  const int reps = Scaled(50, 10);
  for (int rep = 0; rep < reps; ++rep) {
    SCOPED_TRACE(::testing::Message() << "rep " << rep);
    TaskGroup root(executor);
    Outcome outcome;
    root.Spawn([&] {
      TaskGroup g(root);
      std::atomic<bool> started{false};
      g.Spawn([&] {
        // Armed here, on the other worker, while the waiter has not
        // parked: its park is the next one in a helping wait.
        window.Arm(ParkSite::kHelpingWait);
        started.store(true);
        PushInTheWindowAndSpin(g, outcome);
      });
      // Until the other worker has stolen the task, so that our Wait() has
      // nothing to run itself and parks.
      if (!SpinUntilSet(started)) {
        outcome.no_window.store(true);
        window.pushed.store(true);
      }
      (void)g.Wait();
    });
    ASSERT_TRUE(JoinOrDie(root, 3 * kHangTimeout, &executor).ok());
    ASSERT_FALSE(outcome.no_window.load()) << "the waiter never parked";
    ASSERT_FALSE(outcome.lost.load())
        << "the task pushed in the waiter's parking window was not run";
  }
}

// ---------------------------------------------------------------------------
// Census step 8: a frozen group's parent and a walk over its queued task.

// The walk held by HoldWalk, once per test.
struct WalkWindow {
  std::atomic<bool> armed{false};
  std::atomic<bool> open{false};           // a walk waits in the window
  std::atomic<bool> parent_closed{false};  // the group's parent is freed
  // Set by the walk as it leaves the window: the parent was closed while
  // the walk was about to follow parent_ to it.
  std::atomic<bool> closed_during_walk{false};
};

WalkWindow walk;

// How long a walk is held when nothing closes the parent: with census step
// 8, the census waits for the walk, so the parent cannot close meanwhile.
constexpr absl::Duration kWalkHold = absl::Milliseconds(200);

// The hook: holds the first walk over a child of a root group (depth 1)
// until the test has closed that child's parent, or for kWalkHold.
bool HoldWalk(const void* arg) {
  const auto* group = static_cast<const internal::GroupState*>(arg);
  if (group->depth() != 1) return false;
  bool expected = true;
  if (!walk.armed.compare_exchange_strong(expected, false)) return false;
  walk.open.store(true);
  const absl::Time until = absl::Now() + kWalkHold;
  while (!walk.parent_closed.load() && absl::Now() < until) {
    absl::SleepFor(absl::Microseconds(50));
  }
  walk.closed_during_walk.store(walk.parent_closed.load());
  return false;
}

class CensusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!internal::TestHooksAvailable()) GTEST_SKIP() << "no test hooks";
  }
  ~CensusTest() override { walk.armed.store(false); }
  ScopedTestHook hook_{internal::TestHook::kAncestryWalk, &HoldWalk};
};

// Invariant: while a helping wait reads the ancestry of a queued task of
// group c (is it within the group it waits for?), c's census may pass, but
// c's parent is not freed until that walk is over (census step 8). Here
// worker X helping-waits on root group f and steals c's tasks from worker
// Y, which spins in f's only task; the hook holds X's walk over a stolen
// task of c while the test stops and joins c, then joins and destroys c's
// parent. Without step 8, the parent is destroyed inside the window (and
// X then reads the freed record: ASan or TSan report it too).
TEST_F(CensusTest, AFrozenGroupsParentOutlivesAWalkOverItsQueuedTask) {
  Executor executor({.num_workers = 2});
  auto p = std::make_unique<TaskGroup>(executor);
  auto c = std::make_unique<TaskGroup>(*p);
  walk.armed.store(true);
  std::atomic<bool> spinning{false};
  std::atomic<bool> done{false};
  TaskGroup r(executor);
  r.Spawn([&] {
    // A root group (depth 0): a walk from c (depth 1) follows c's parent_.
    TaskGroup f(executor);
    f.Spawn([&] {
      // Onto this worker's deque, for the waiting worker to steal; lazy
      // tasks (trivially destructible), which a census lets stay queued.
      for (int i = 0; i < 8; ++i) c->Spawn([] {});
      spinning.store(true);
      while (!done.load()) {
      }
    });
    // Until the other worker runs f's task: our Wait() then has nothing of
    // f to run, and steals c's tasks to look at them.
    (void)SpinUntilSet(spinning);
    (void)f.Wait();
  });
  ASSERT_TRUE(SpinUntilSet(walk.open)) << "no walk over c's queued tasks";
  c->RequestStop("census step 8");
  EXPECT_TRUE(absl::IsCancelled(c->Wait()));
  c.reset();
  EXPECT_TRUE(p->Wait().ok());
  p.reset();
  walk.parent_closed.store(true);
  done.store(true);
  ASSERT_TRUE(JoinOrDie(r, 3 * kHangTimeout, &executor).ok());
  EXPECT_FALSE(walk.closed_during_walk.load())
      << "c's parent was destroyed while a walk over c's queued task was "
         "about to follow parent_ to it";
}

}  // namespace
}  // namespace ripcord
