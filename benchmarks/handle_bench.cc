// Copyright 2026 The ripcord Authors.
//
// The cost of a task handle: TaskGroup::Start against TaskGroup::Spawn. The
// benchmark thread (not a worker) submits kTasks tiny tasks into one group
// and waits; 2 workers run them. The ratio of the per-task times is what a
// handle costs (its shared state, its stop chained to the group's, its
// outcome).
//
//   BM_Handle_Spawn         Spawn each task, then group.Wait().
//   BM_Handle_StartDrop     Start each task and drop the handle at once,
//                           then group.Wait().
//   BM_Handle_StartWaitAll  Start each task into a vector of handles, then
//                           WaitAll (every outcome taken), then group.Wait().
//   BM_Handle_SpawnCoro / BM_Handle_StartCoro: the same for coroutine tasks
//                           (Spawn, then Start with WaitAll).
#include <cstdint>
#include <vector>

#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::CheckOk;
using ripcord_bench::kWorkers;

constexpr int64_t kTasks = 100000;

thread_local int64_t tls_ran = 0;
void Tiny() { benchmark::DoNotOptimize(++tls_ran); }

void Report(benchmark::State& state) {
  state.counters["ns_per_task"] = benchmark::Counter(
      static_cast<double>(kTasks) * state.iterations(),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Handle_Spawn(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  for (auto _ : state) {
    ripcord::TaskGroup group(executor);
    for (int64_t i = 0; i < kTasks; ++i) group.Spawn([] { Tiny(); });
    CheckOk(group.Wait(), "spawn group");
  }
  Report(state);
}

void BM_Handle_StartDrop(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  for (auto _ : state) {
    ripcord::TaskGroup group(executor);
    for (int64_t i = 0; i < kTasks; ++i) (void)group.Start([] { Tiny(); });
    CheckOk(group.Wait(), "start group");
  }
  Report(state);
}

void BM_Handle_StartWaitAll(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  std::vector<ripcord::TaskHandle<int64_t>> handles;
  for (auto _ : state) {
    ripcord::TaskGroup group(executor);
    handles.clear();
    handles.reserve(kTasks);
    for (int64_t i = 0; i < kTasks; ++i) {
      handles.push_back(group.Start([i] {
        Tiny();
        return i;
      }));
    }
    for (const auto& outcome : ripcord::WaitAll(handles)) {
      CheckOk(outcome.status(), "outcome");
    }
    CheckOk(group.Wait(), "start group");
  }
  Report(state);
}

void BM_Handle_SpawnCoro(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  for (auto _ : state) {
    ripcord::TaskGroup group(executor);
    for (int64_t i = 0; i < kTasks; ++i) {
      group.Spawn([]() -> ripcord::Task<> {
        Tiny();
        co_return;
      });
    }
    CheckOk(group.Wait(), "spawn group");
  }
  Report(state);
}

void BM_Handle_StartCoro(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  std::vector<ripcord::TaskHandle<void>> handles;
  for (auto _ : state) {
    ripcord::TaskGroup group(executor);
    handles.clear();
    handles.reserve(kTasks);
    for (int64_t i = 0; i < kTasks; ++i) {
      handles.push_back(group.Start([]() -> ripcord::Task<> {
        Tiny();
        co_return;
      }));
    }
    for (const auto& outcome : ripcord::WaitAll(handles)) {
      CheckOk(outcome, "outcome");
    }
    CheckOk(group.Wait(), "start group");
  }
  Report(state);
}

BENCHMARK(BM_Handle_Spawn)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Handle_StartDrop)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Handle_StartWaitAll)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Handle_SpawnCoro)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Handle_StartCoro)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
