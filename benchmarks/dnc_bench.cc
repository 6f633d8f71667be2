// Copyright 2026 The ripcord Authors.
//
// Scenario 4: divide and conquer over 10,000,000 elements with a skewed body.
// Element i costs 1 + floor(8 * i / N) "units" (a step ramp from 1 to 8
// units, 4.5 on average; the upper half of the range holds 72% of the work),
// one unit being a step of a dependent multiply-add chain (~1-2 ns). Splitting
// into two static halves would leave one worker idle for 61% of the run;
// stealing must rebalance.
//
//   BM_Dnc_Ripcord      ripcord::ParallelFor, default options (automatic
//                       grain, lazy binary splitting): the idiomatic call.
//   BM_Dnc_RipcordNested  recursive halving with a child group and a Wait()
//                       per split, down to leaves of <= kGrain elements
//                       (2048 leaves): the fib idiom applied to a loop.
//   BM_Dnc_Tbb          tbb::parallel_for over blocked_range, default
//                       auto_partitioner (the idiomatic call).
//   BM_Dnc_TbbSimple    tbb::parallel_for with simple_partitioner and the
//                       same grain as ripcord: identical splitting.
//   BM_Dnc_Sequential   one loop, for scale.
//   BM_RoundTrip_*      no work: the fixed cost of one run. ripcord hands the
//                       root task from the benchmark thread to a worker and
//                       sleeps in Wait() until the worker wakes it; oneTBB's
//                       arena.execute() runs the root on the calling thread.
#include <cstdint>
#include <vector>

#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "oneapi/tbb/blocked_range.h"
#include "oneapi/tbb/parallel_for.h"
#include "oneapi/tbb/partitioner.h"
#include "oneapi/tbb/task_arena.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::CheckOk;
using ripcord_bench::kWorkers;

constexpr int64_t kN = 10000000;
constexpr int64_t kGrain = 8192;

inline uint32_t Body(int64_t i) {
  const int64_t units = 1 + (i * 8) / kN;
  uint32_t x = static_cast<uint32_t>(i);
  for (int64_t u = 0; u < units; ++u) x = x * 1664525u + 1013904223u;
  return x;
}

// noinline: every variant runs the same machine code for the work itself, so
// the comparison is of the splitting and scheduling, not of how the compiler
// happened to inline the loop into each caller.
__attribute__((noinline)) void Leaf(int64_t lo, int64_t hi, uint32_t* out) {
  for (int64_t i = lo; i < hi; ++i) out[i] = Body(i);
}

void DncRipcord(ripcord::TaskGroup& parent, int64_t lo, int64_t hi,
                uint32_t* out) {
  if (hi - lo <= kGrain) {
    Leaf(lo, hi, out);
    return;
  }
  const int64_t mid = lo + (hi - lo) / 2;
  ripcord::TaskGroup tg(parent);
  tg.Spawn([&tg, mid, hi, out] { DncRipcord(tg, mid, hi, out); });
  DncRipcord(tg, lo, mid, out);
  CheckOk(tg.Wait(), "dnc child group");
}

bool Verify(const std::vector<uint32_t>& out) {
  for (int64_t i = 0; i < kN; i += 9973) {
    if (out[i] != Body(i)) return false;
  }
  return out[kN - 1] == Body(kN - 1);
}

void BM_Dnc_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  std::vector<uint32_t> out(kN);
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    uint32_t* data = out.data();
    CheckOk(ripcord::ParallelFor(executor, int64_t{0}, kN,
                                 [data](int64_t lo, int64_t hi) {
                                   Leaf(lo, hi, data);
                                 }),
            "dnc ParallelFor");
    benchmark::ClobberMemory();
  }
  cpu.Report(state);
  if (!Verify(out)) state.SkipWithError("wrong result");
}

void BM_Dnc_RipcordNested(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  std::vector<uint32_t> out(kN);
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    ripcord::TaskGroup root(executor);
    uint32_t* data = out.data();
    root.Spawn([&root, data] { DncRipcord(root, 0, kN, data); });
    CheckOk(root.Wait(), "dnc root");
    benchmark::ClobberMemory();
  }
  cpu.Report(state);
  if (!Verify(out)) state.SkipWithError("wrong result");
}

// tbb::parallel_for over blocked_range(0, kN, grain) with `Partitioner`.
template <class Partitioner>
void DncTbb(benchmark::State& state, int64_t grain) {
  tbb::task_arena arena(kWorkers);
  std::vector<uint32_t> out(kN);
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    uint32_t* data = out.data();
    arena.execute([data, grain] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, kN, grain),
                        [data](const tbb::blocked_range<int64_t>& r) {
                          Leaf(r.begin(), r.end(), data);
                        },
                        Partitioner());
    });
    benchmark::ClobberMemory();
  }
  cpu.Report(state);
  if (!Verify(out)) state.SkipWithError("wrong result");
}

// The default: auto_partitioner, grain 1 (blocked_range's default).
void BM_Dnc_Tbb(benchmark::State& state) {
  DncTbb<tbb::auto_partitioner>(state, 1);
}

void BM_Dnc_TbbSimple(benchmark::State& state) {
  DncTbb<tbb::simple_partitioner>(state, kGrain);
}

void BM_Dnc_Sequential(benchmark::State& state) {
  std::vector<uint32_t> out(kN);
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    Leaf(0, kN, out.data());
    benchmark::ClobberMemory();
  }
  cpu.Report(state);
  if (!Verify(out)) state.SkipWithError("wrong result");
}

void BM_RoundTrip_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  for (auto _ : state) {
    ripcord::TaskGroup root(executor);
    root.Spawn([] { benchmark::ClobberMemory(); });
    CheckOk(root.Wait(), "round trip");
  }
}

void BM_RoundTrip_Tbb(benchmark::State& state) {
  tbb::task_arena arena(kWorkers);
  for (auto _ : state) {
    arena.execute([] { benchmark::ClobberMemory(); });
  }
}

BENCHMARK(BM_Dnc_Ripcord)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dnc_RipcordNested)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dnc_Tbb)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dnc_TbbSimple)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dnc_Sequential)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RoundTrip_Ripcord)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RoundTrip_Tbb)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
