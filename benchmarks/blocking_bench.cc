// Copyright 2026 The ripcord Authors.
//
// Scenario 7: the blocking pool. 10,000 SpawnBlocking calls, each sleeping
// 1 ms on the blocking pool, each with a done callback (run on a worker) that
// counts its completion; the benchmark thread waits for the group. The ideal
// wall time given the pool's thread cap is 10,000 x 1 ms / cap (156 ms for
// the default cap of 64). Counters: `ideal_ms`, and `sleep_ms`, the measured
// length of one 1 ms sleep on this machine (timer slack and wake-up latency
// make it longer than 1 ms; `ideal_ms x sleep_ms` is the achievable floor).
//
// oneTBB has no blocking pool, so there is no oneTBB variant. The reference
// is BM_Blocking_RawThreads: `cap` plain std::threads taking the same 10,000
// sleeps off a shared counter (thread start included), the best a pool of
// that size can do.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::CheckOk;
using ripcord_bench::kWorkers;

constexpr int kCalls = 10000;
const absl::Duration kSleep = absl::Milliseconds(1);

double MeasuredSleepMs() {
  constexpr int kSamples = 50;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kSamples; ++i) absl::SleepFor(kSleep);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(t1 - t0).count() / kSamples;
}

void SetCounters(benchmark::State& state, int cap, double sleep_ms) {
  state.counters["ideal_ms"] = static_cast<double>(kCalls) / cap;
  state.counters["sleep_ms"] = sleep_ms;
}

void BM_Blocking_Ripcord(benchmark::State& state) {
  const int cap = static_cast<int>(state.range(0));
  ripcord::Executor executor(
      {.num_workers = kWorkers, .max_blocking_threads = cap});
  const double sleep_ms = MeasuredSleepMs();
  for (auto _ : state) {
    std::atomic<int> done_ok{0};
    ripcord::TaskGroup group(executor);
    for (int i = 0; i < kCalls; ++i) {
      group.SpawnBlocking([] { absl::SleepFor(kSleep); },
                          [&done_ok](absl::Status s) {
                            if (s.ok()) {
                              done_ok.fetch_add(1, std::memory_order_relaxed);
                            }
                          });
    }
    CheckOk(group.Wait(), "blocking group");
    if (done_ok.load() != kCalls) {
      state.SkipWithError("not every done callback saw OK");
      break;
    }
  }
  SetCounters(state, cap, sleep_ms);
}

void BM_Blocking_RawThreads(benchmark::State& state) {
  const int cap = static_cast<int>(state.range(0));
  const double sleep_ms = MeasuredSleepMs();
  for (auto _ : state) {
    std::atomic<int> next{0};
    std::vector<std::thread> threads;
    threads.reserve(cap);
    for (int t = 0; t < cap; ++t) {
      threads.emplace_back([&next] {
        while (next.fetch_add(1, std::memory_order_relaxed) < kCalls) {
          absl::SleepFor(kSleep);
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  SetCounters(state, cap, sleep_ms);
}

BENCHMARK(BM_Blocking_Ripcord)->ArgName("cap")->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Blocking_RawThreads)->ArgName("cap")->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
