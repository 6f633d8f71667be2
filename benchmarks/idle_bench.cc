// Copyright 2026 The ripcord Authors.
//
// Scenario 9: idle cost. Each run does a burst of work (fib(24) one task per
// call, ~75k tasks and groups, plus 10,000 tasks submitted from outside), then
// the benchmark thread sleeps 200 ms and measures how much CPU the whole
// process (getrusage(RUSAGE_SELF), user + system, every thread) burned in that
// window. Counter `idle_cpu_pct` = that CPU time / 200 ms, in percent of one
// core (bar: <= 1%). The sleeping benchmark thread itself contributes ~0.
// The reported time is the whole run (burst + 200 ms) and means little.
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/workloads.h"
#include "oneapi/tbb/task_arena.h"
#include "oneapi/tbb/task_group.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::FibRipcord;
using ripcord_bench::FibTbb;

using ripcord_bench::CheckOk;
using ripcord_bench::kWorkers;

constexpr int kBurstFib = 24;
constexpr int kBurstExternal = 10000;
const absl::Duration kWindow = absl::Milliseconds(200);

// Sleeps through the window and returns the CPU the process used in it.
double IdleCpuSeconds() {
  const double before = ripcord_bench::ProcessCpuSeconds();
  absl::SleepFor(kWindow);
  return ripcord_bench::ProcessCpuSeconds() - before;
}

void Report(benchmark::State& state, double idle_cpu) {
  const double window = absl::ToDoubleSeconds(kWindow) *
                        static_cast<double>(state.iterations());
  state.counters["idle_cpu_pct"] = 100.0 * idle_cpu / window;
}

void BM_Idle_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  double idle_cpu = 0;
  for (auto _ : state) {
    {
      ripcord::TaskGroup root(executor);
      int64_t result = 0;
      root.Spawn([&result, &root] { result = FibRipcord(root, kBurstFib); });
      for (int i = 0; i < kBurstExternal; ++i) {
        root.Spawn([] { benchmark::ClobberMemory(); });
      }
      CheckOk(root.Wait(), "burst");
      benchmark::DoNotOptimize(result);
    }
    idle_cpu += IdleCpuSeconds();
  }
  Report(state, idle_cpu);
}

void BM_Idle_Tbb(benchmark::State& state) {
  tbb::task_arena arena(kWorkers);
  double idle_cpu = 0;
  for (auto _ : state) {
    int64_t result = 0;
    arena.execute([&result] {
      tbb::task_group tg;
      tg.run([&result] { result = FibTbb(kBurstFib); });
      tg.wait();
    });
    {
      tbb::task_group group;
      for (int i = 0; i < kBurstExternal; ++i) {
        arena.enqueue(group.defer([] { benchmark::ClobberMemory(); }));
      }
      arena.execute([&group] { group.wait(); });
    }
    benchmark::DoNotOptimize(result);
    idle_cpu += IdleCpuSeconds();
  }
  Report(state, idle_cpu);
}

// The same window with no executor at all: the floor of the measurement.
void BM_Idle_Baseline(benchmark::State& state) {
  double idle_cpu = 0;
  for (auto _ : state) idle_cpu += IdleCpuSeconds();
  Report(state, idle_cpu);
}

BENCHMARK(BM_Idle_Ripcord)->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Idle_Tbb)->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Idle_Baseline)->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
