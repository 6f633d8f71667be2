// Copyright 2026 The ripcord Authors.
//
// Scenario 1: fib(n), one task per call. Every call with n >= 2 opens a child
// group (ripcord) / a task_group (oneTBB), spawns fib(n-1) into it, computes
// fib(n-2) itself and waits:
//
//   TaskGroup tg(parent); tg.Spawn([&] { a = fib(tg, n - 1); });
//   b = fib(tg, n - 2); tg.Wait();
//
// fib(30) spawns fib(31) - 1 = 1,346,268 tasks and as many groups. The
// sequential variant is the same recursion without tasks: the difference
// (x 2 workers) divided by the task count is the per-task overhead.
#include <cstdint>

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

void SetFibCounters(benchmark::State& state, int n) {
  state.counters["tasks"] =
      static_cast<double>(ripcord_bench::FibSpawns(n));
}

void BM_Fib_Ripcord(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  ripcord::Executor executor({.num_workers = kWorkers});
  int64_t result = 0;
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    ripcord::TaskGroup root(executor);
    root.Spawn([&result, &root, n] { result = FibRipcord(root, n); });
    CheckOk(root.Wait(), "fib root group");
    benchmark::DoNotOptimize(result);
  }
  cpu.Report(state);
  if (result != ripcord_bench::FibSeq(n)) state.SkipWithError("wrong result");
  SetFibCounters(state, n);
}

void BM_Fib_Tbb(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  tbb::task_arena arena(kWorkers);
  int64_t result = 0;
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    arena.execute([&result, n] { result = FibTbb(n); });
    benchmark::DoNotOptimize(result);
  }
  cpu.Report(state);
  if (result != ripcord_bench::FibSeq(n)) state.SkipWithError("wrong result");
  SetFibCounters(state, n);
}

void BM_Fib_Sequential(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  int64_t result = 0;
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    result = ripcord_bench::FibSeq(n);
    benchmark::DoNotOptimize(result);
  }
  cpu.Report(state);
  SetFibCounters(state, n);
}

BENCHMARK(BM_Fib_Ripcord)->ArgName("n")->Arg(30)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Fib_Tbb)->ArgName("n")->Arg(30)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Fib_Sequential)->ArgName("n")->Arg(30)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
