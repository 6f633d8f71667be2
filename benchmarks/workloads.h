// Copyright 2026 The ripcord Authors.
//
// workloads.h: what several benchmark binaries share, in one copy so every
// binary measures the same code: fib with one child group per call (the
// oneTBB task_group idiom), skynet (10-ary tree), a ~1 us body, and the
// holders that keep every worker busy so that spawned tasks stay queued.
#ifndef RIPCORD_BENCHMARKS_WORKLOADS_H_
#define RIPCORD_BENCHMARKS_WORKLOADS_H_

#include <atomic>
#include <cstdint>

#include "absl/synchronization/notification.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "oneapi/tbb/task_group.h"
#include "ripcord/ripcord.h"

namespace ripcord_bench {

// ~1 us of work: a dependent multiply-add chain of 400 steps on the
// reference machine. noinline: both libraries run the same machine code.
__attribute__((noinline)) inline void About1us(uint32_t seed) {
  uint32_t x = seed;
  for (int i = 0; i < 400; ++i) x = x * 1664525u + 1013904223u;
  benchmark::DoNotOptimize(x);
}

// fib(n): spawn one child, compute the other inline, wait.
inline int64_t FibRipcord(ripcord::TaskGroup& parent, int n) {
  if (n < 2) return n;
  int64_t a = 0;
  ripcord::TaskGroup tg(parent);
  tg.Spawn([&a, &tg, n] { a = FibRipcord(tg, n - 1); });
  const int64_t b = FibRipcord(tg, n - 2);
  CheckOk(tg.Wait(), "fib child group");
  return a + b;
}

inline int64_t FibTbb(int n) {
  if (n < 2) return n;
  int64_t a = 0;
  tbb::task_group tg;
  tg.run([&a, n] { a = FibTbb(n - 1); });
  const int64_t b = FibTbb(n - 2);
  tg.wait();
  return a + b;
}

// skynet: the sum of leaf numbers num..num+size-1, 10 children per node.
inline int64_t SkynetRipcord(ripcord::TaskGroup& parent, int64_t num,
                             int64_t size) {
  if (size == 1) return num;
  int64_t sums[10];
  const int64_t sub = size / 10;
  ripcord::TaskGroup tg(parent);
  for (int i = 0; i < 10; ++i) {
    tg.Spawn([&sums, &tg, i, num, sub] {
      sums[i] = SkynetRipcord(tg, num + i * sub, sub);
    });
  }
  CheckOk(tg.Wait(), "skynet group");
  int64_t total = 0;
  for (int64_t s : sums) total += s;
  return total;
}

inline int64_t SkynetTbb(int64_t num, int64_t size) {
  if (size == 1) return num;
  int64_t sums[10];
  const int64_t sub = size / 10;
  tbb::task_group tg;
  for (int i = 0; i < 10; ++i) {
    tg.run([&sums, i, num, sub] { sums[i] = SkynetTbb(num + i * sub, sub); });
  }
  tg.wait();
  int64_t total = 0;
  for (int64_t s : sums) total += s;
  return total;
}

// Holders: keep every worker busy in a task blocked until Release(), so that
// what is spawned meanwhile stays queued (the cancel and memory scenarios).
// Both wait in the constructor until every worker is held.
class RipcordHolder {
 public:
  RipcordHolder(ripcord::Executor& executor, int workers) : group_(executor) {
    for (int i = 0; i < workers; ++i) {
      group_.Spawn([this] {
        held_.fetch_add(1, std::memory_order_acq_rel);
        release_.WaitForNotification();
      });
    }
    while (held_.load(std::memory_order_acquire) < workers) {
    }
  }
  ~RipcordHolder() { Release(); }
  // Lets the held workers go, without waiting for them.
  void Notify() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }
  // Notify(), then waits until the holding tasks have returned.
  void Release() {
    Notify();
    CheckOk(group_.Wait(), "holder group");
  }

 private:
  ripcord::TaskGroup group_;
  std::atomic<int> held_{0};
  absl::Notification release_;
};

// oneTBB with 2 threads has one worker besides the calling thread: it steals
// the holder task from this thread's deque.
class TbbHolder {
 public:
  TbbHolder() {
    hold_.run([this] {
      held_.store(true, std::memory_order_release);
      release_.WaitForNotification();
    });
    while (!held_.load(std::memory_order_acquire)) {
    }
  }
  ~TbbHolder() {
    Release();
    hold_.wait();
  }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }

 private:
  tbb::task_group hold_;
  std::atomic<bool> held_{false};
  absl::Notification release_;
};

}  // namespace ripcord_bench

#endif  // RIPCORD_BENCHMARKS_WORKLOADS_H_
