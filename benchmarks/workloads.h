// Copyright 2026 The ripcord Authors.
//
// workloads.h: the recursive workloads several benchmark binaries share, in
// one copy so every binary measures the same code: fib with one child group
// per call (the oneTBB task_group idiom) and skynet (10-ary tree).
#ifndef RIPCORD_BENCHMARKS_WORKLOADS_H_
#define RIPCORD_BENCHMARKS_WORKLOADS_H_

#include <cstdint>

#include "benchmarks/bench_util.h"
#include "oneapi/tbb/task_group.h"
#include "ripcord/ripcord.h"

namespace ripcord_bench {

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

}  // namespace ripcord_bench

#endif  // RIPCORD_BENCHMARKS_WORKLOADS_H_
