// Copyright 2026 The ripcord Authors.
//
// Scenario 3: external submission. One thread that is not a worker spawns
// 1,000,000 tiny tasks into one group, then waits for them.
//
//   BM_Submit_Ripcord       TaskGroup::Spawn from the benchmark thread (the
//                           injection queue), then Wait(); 2 workers run the
//                           tasks while the benchmark thread submits and
//                           then sleeps in Wait().
//   BM_Submit_Tbb           tbb::task_group::run from the benchmark thread,
//                           which is outside any explicit arena, then wait()
//                           (the comparison). oneTBB puts the tasks
//                           in the submitting thread's own deque; its one
//                           worker steals, and wait() makes the submitting
//                           thread run the rest itself.
//   BM_Submit_TbbEnqueue    the closer analogue of ripcord's injection queue:
//                           task_arena(2, 0) (2 workers, no slot for the
//                           caller), arena.enqueue(tg.defer(f)), then
//                           arena.execute([&] { tg.wait(); }).
#include <cstdint>

#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "oneapi/tbb/global_control.h"
#include "oneapi/tbb/task_arena.h"
#include "oneapi/tbb/task_group.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::CheckOk;
using ripcord_bench::kWorkers;

constexpr int64_t kTasks = 1000000;

// The task body: a thread-local increment, so tasks share no cache line.
thread_local int64_t tls_ran = 0;
void Tiny() { benchmark::DoNotOptimize(++tls_ran); }

void BM_Submit_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    ripcord::TaskGroup group(executor);
    for (int64_t i = 0; i < kTasks; ++i) group.Spawn([] { Tiny(); });
    CheckOk(group.Wait(), "submit group");
    if (group.stats().completed != kTasks) {
      state.SkipWithError("not every task ran");
      break;
    }
  }
  cpu.Report(state);
  state.counters["tasks"] = kTasks;
}

void BM_Submit_Tbb(benchmark::State& state) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            kWorkers);
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    tbb::task_group group;
    for (int64_t i = 0; i < kTasks; ++i) group.run([] { Tiny(); });
    group.wait();
  }
  cpu.Report(state);
  state.counters["tasks"] = kTasks;
}

void BM_Submit_TbbEnqueue(benchmark::State& state) {
  tbb::task_arena arena(kWorkers, /*reserved_for_masters=*/0);
  const ripcord_bench::CpuMeter cpu;
  for (auto _ : state) {
    tbb::task_group group;
    for (int64_t i = 0; i < kTasks; ++i) {
      arena.enqueue(group.defer([] { Tiny(); }));
    }
    arena.execute([&group] { group.wait(); });
  }
  cpu.Report(state);
  state.counters["tasks"] = kTasks;
}

BENCHMARK(BM_Submit_Ripcord)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Submit_Tbb)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Submit_TbbEnqueue)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
