// Copyright 2026 The ripcord Authors.
//
// Scenario 2: skynet. A 10-ary tree of tasks with 1,000,000 leaves (6
// levels): every inner node opens a group, spawns its 10 children into it,
// waits, and returns the sum of their results; leaf k returns k. 1,111,110
// spawned tasks and 111,111 groups per run; the answer is 499,999,500,000.
#include <cstdint>

#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/workloads.h"
#include "oneapi/tbb/task_arena.h"
#include "oneapi/tbb/task_group.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::SkynetRipcord;
using ripcord_bench::SkynetTbb;

using ripcord_bench::CheckOk;
using ripcord_bench::kWorkers;

constexpr int64_t kLeaves = 1000000;
constexpr int64_t kExpected = kLeaves * (kLeaves - 1) / 2;

void BM_Skynet_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  int64_t result = 0;
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    ripcord::TaskGroup root(executor);
    root.Spawn([&result, &root] { result = SkynetRipcord(root, 0, kLeaves); });
    CheckOk(root.Wait(), "skynet root");
    benchmark::DoNotOptimize(result);
  }
  cpu.Report(state);
  if (result != kExpected) state.SkipWithError("wrong result");
  state.counters["tasks"] = 1111110;
}

void BM_Skynet_Tbb(benchmark::State& state) {
  tbb::task_arena arena(kWorkers);
  int64_t result = 0;
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    arena.execute([&result] { result = SkynetTbb(0, kLeaves); });
    benchmark::DoNotOptimize(result);
  }
  cpu.Report(state);
  if (result != kExpected) state.SkipWithError("wrong result");
  state.counters["tasks"] = 1111110;
}

BENCHMARK(BM_Skynet_Ripcord)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Skynet_Tbb)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
