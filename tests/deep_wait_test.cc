// Copyright 2026 The ripcord Authors.
//
// The stack guard (API.md "Limits and helpers", Stack;
// docs/design/parking.md, "The stack guard"): plain tasks that each open a
// child group, spawn the next level there and Wait() nest on a worker's stack
// through helping waits. A helping wait low on stack parks and a fresh thread
// helps in its place, so depth is limited by memory: 100,000 levels work (they
// overflowed an 8 MiB stack at about 15,000 before).
#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"

namespace ripcord {
namespace {

#if defined(__SANITIZE_THREAD__)
// TSan: frames several times larger, each level much slower (10,000 levels
// took 115 s), and a thread's shadow state is large: a depth that still
// needs a few stacks of each size and finishes in seconds.
constexpr int kSanitizerDivisor = 50;
// TSan's per-thread state takes much of a small stack.
constexpr size_t kSmallStack = size_t{1} << 20;
#elif defined(RIPCORD_SANITIZER)
// ASan: frames several times larger: a depth that still needs several
// stacks, and finishes in seconds.
constexpr int kSanitizerDivisor = 10;
constexpr size_t kSmallStack = size_t{256} << 10;
#else
constexpr int kSanitizerDivisor = 1;
constexpr size_t kSmallStack = size_t{256} << 10;
#endif

struct Chain {
  std::atomic<int> levels{0};    // levels that ran
  std::atomic<int> not_ok{0};    // levels whose Wait() was not OK
  // When set, the bottom level notifies it and waits for the stop.
  absl::Notification* reached_bottom = nullptr;
};

// One level: a child group of `parent` holding the next level, waited on.
void Level(TaskGroup& parent, int left, Chain* chain) {
  chain->levels.fetch_add(1, std::memory_order_relaxed);
  TaskGroup child(parent);
  if (left > 0) {
    child.Spawn([&child, left, chain] { Level(child, left - 1, chain); });
  } else if (chain->reached_bottom != nullptr) {
    chain->reached_bottom->Notify();
    while (!child.stop_requested()) absl::SleepFor(absl::Milliseconds(1));
  }
  if (!child.Wait().ok()) chain->not_ok.fetch_add(1);
}

// Runs a chain of `depth` levels under a root group; returns its status.
absl::Status RunChain(Executor& ex, int depth, Chain* chain) {
  TaskGroup root(ex, {.name = "root"});
  root.Spawn([&root, depth, chain] { Level(root, depth - 1, chain); });
  return root.Wait();
}

// Invariant: 100,000 nested helping waits (20 times what fits in one 8 MiB
// stack at -O0) complete: every level runs once and every Wait() is OK.
TEST(DeepWait, HundredThousandLevelsStackOverflowBug) {
  const int depth = 100'000 / kSanitizerDivisor;
  Executor ex({.num_workers = 2});
  Chain chain;
  const absl::Status s = RunChain(ex, depth, &chain);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(chain.levels.load(), depth);
  EXPECT_EQ(chain.not_ok.load(), 0);
}

// Invariant: with small worker stacks (many fresh threads, each nesting on
// the one before), a deep chain completes, and one executor runs several
// such chains one after another (the seats come back each time).
TEST(DeepWait, SmallStacksManyHandovers) {
  const int depth = 20'000 / kSanitizerDivisor;
  Executor ex({.num_workers = 2, .worker_stack_size = kSmallStack});
  for (int round = 0; round < 3; ++round) {
    Chain chain;
    const absl::Status s = RunChain(ex, depth, &chain);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(chain.levels.load(), depth);
    EXPECT_EQ(chain.not_ok.load(), 0);
  }
}

// Invariant: a stop of a deep chain, requested while its bottom level runs,
// unwinds every level (each Wait() returns CancelledError), across the
// handed-over seats. The stop walks the subtree with an explicit stack
// (GroupState::StopPinned), so the stopping thread (main's, 8 MiB) reaches
// the bottom of 100,000 levels; it overflowed at about 20,000 when the
// walk recursed.
TEST(DeepWait, StopUnwindsEveryLevel) {
  const int depth = 100'000 / kSanitizerDivisor;
  Executor ex({.num_workers = 2, .worker_stack_size = kSmallStack});
  Chain chain;
  absl::Notification reached_bottom;
  chain.reached_bottom = &reached_bottom;
  TaskGroup root(ex, {.name = "root"});
  root.Spawn([&root, depth, &chain] { Level(root, depth - 1, &chain); });
  reached_bottom.WaitForNotification();
  root.RequestStop("stopped at the bottom");
  const absl::Status s = root.Wait();
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_EQ(chain.levels.load(), depth);
  EXPECT_EQ(chain.not_ok.load(), depth);
}

// Invariant: worker threads get ExecutorOptions::worker_stack_size.
TEST(DeepWait, WorkersGetTheConfiguredStackSize) {
  EXPECT_EQ(ExecutorOptions().worker_stack_size, size_t{8} << 20);
  const size_t want = size_t{512} << 10;
  Executor ex({.num_workers = 1, .worker_stack_size = want});
  TaskGroup g(ex);
  size_t got = 0;
  g.Spawn([&] {
    pthread_attr_t attr;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstacksize(&attr, &got);
    pthread_attr_destroy(&attr);
  });
  // WaitFor: it never runs the task here (Wait() off the executor may, on
  // this thread's own stack).
  ASSERT_TRUE(g.WaitFor(absl::Minutes(5)).ok());
  // glibc may hand out a cached stack up to 4 times larger.
  EXPECT_GE(got, want);
  EXPECT_LE(got, 4 * want);
}

// Invariant: stack sizes out of range are programming errors: a message
// naming the option, then abort, at construction.
TEST(DeepWaitDeathTest, BadStackSizesAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(Executor({.worker_stack_size = 1024}),
               "worker_stack_size must be between 64 KiB and 1 GiB");
  EXPECT_DEATH(Executor({.worker_stack_size = size_t{2} << 30}),
               "worker_stack_size must be between 64 KiB and 1 GiB");
  EXPECT_DEATH(Executor({.blocking_stack_size = 0}),
               "blocking_stack_size must be between 64 KiB and 1 GiB");
}

}  // namespace
}  // namespace ripcord
