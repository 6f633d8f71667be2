// Copyright 2026 The ripcord Authors.
//
// Scenarios 4d and 4e: small parallel calls from a thread that is not a
// worker (a request handler, a game loop), the fixed cost a user pays per
// call. Both libraries are called the same way from the benchmark thread:
// a group per call, spawns, then a wait on it.
//
//   BM_SmallCall_Ripcord  TaskGroup(executor), 64 Spawn()s of ~1 us of work,
//                         Wait().
//   BM_SmallCall_Tbb      tbb::task_group, 64 run()s of the same work,
//                         wait(); 2 threads in all
//                         (global_control(max_allowed_parallelism, 2)).
//   BM_EmptyCall_Ripcord  TaskGroup(executor), one empty Spawn(), Wait().
//   BM_EmptyCall_Tbb      tbb::task_group, one empty run(), wait().
// oneTBB's wait() runs the group's tasks on the calling thread; ripcord's
// Wait() off the executor does too, in a parked worker's seat
// (include/ripcord/task_group.h).
#include <cstdint>

#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/workloads.h"
#include "oneapi/tbb/global_control.h"
#include "oneapi/tbb/task_group.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::About1us;
using ripcord_bench::CheckOk;
using ripcord_bench::kWorkers;

constexpr int kSmallTasks = 64;
void BM_SmallCall_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    ripcord::TaskGroup group(executor);
    for (int i = 0; i < kSmallTasks; ++i) group.Spawn([i] { About1us(i); });
    CheckOk(group.Wait(), "small call");
  }
  cpu.Report(state);
}

void BM_SmallCall_Tbb(benchmark::State& state) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            kWorkers);
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    tbb::task_group group;
    for (int i = 0; i < kSmallTasks; ++i) group.run([i] { About1us(i); });
    group.wait();
  }
  cpu.Report(state);
}

void BM_EmptyCall_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    ripcord::TaskGroup group(executor);
    group.Spawn([] { benchmark::ClobberMemory(); });
    CheckOk(group.Wait(), "empty call");
  }
  cpu.Report(state);
}

void BM_EmptyCall_Tbb(benchmark::State& state) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            kWorkers);
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    tbb::task_group group;
    group.run([] { benchmark::ClobberMemory(); });
    group.wait();
  }
  cpu.Report(state);
}

BENCHMARK(BM_SmallCall_Ripcord)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SmallCall_Tbb)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EmptyCall_Ripcord)->UseRealTime()->Unit(benchmark::kNanosecond);
BENCHMARK(BM_EmptyCall_Tbb)->UseRealTime()->Unit(benchmark::kNanosecond);

}  // namespace
