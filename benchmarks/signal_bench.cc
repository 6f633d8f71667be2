// Copyright 2026 The ripcord Authors.
//
// Scenario 6: signal to stop. 1,000 unshielded root groups each register a
// StopCallback on their token; a SignalWatcher is started; then
// kill(getpid(), SIGINT). The latency of one run is the time from just before
// kill() until the last of the 1,000 groups has observed the stop (its
// callback ran, on the signal thread, inside Executor::RequestStop). The
// reported time is that latency (manual time); counters p50_us, p99_us and
// max_us are over all runs of one repetition (bar: p99 <= 1 ms). The latency
// splits into first_*_us (kill() until the first group observed the stop:
// signal delivery and the signal thread getting a CPU) and spread_*_us (first
// to last group: the stop walk over 1,000 groups), p50 and p99 each.
//
// A fresh SignalWatcher per run (a watcher escalates on its second and third
// signal). oneTBB has no signal handling: no oneTBB variant. This binary
// links no oneTBB, so no thread that could take the signal exists besides
// ripcord's own (which block it).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/synchronization/notification.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "ripcord/ripcord.h"
#include "ripcord/signal_watcher.h"

namespace {

using ripcord_bench::kWorkers;
using Clock = std::chrono::steady_clock;

constexpr int kGroups = 1000;

struct Countdown {
  std::atomic<int> remaining{kGroups};
  Clock::time_point first;
  Clock::time_point last;
  absl::Notification done;
};

// The callback each group registers: the first and the last record the time.
struct Observe {
  Countdown* countdown;
  void operator()() noexcept {
    const int before =
        countdown->remaining.fetch_sub(1, std::memory_order_acq_rel);
    if (before == kGroups) countdown->first = Clock::now();
    if (before == 1) {
      countdown->last = Clock::now();
      countdown->done.Notify();
    }
  }
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1,
                            static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

void BM_SignalStop_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  std::vector<double> latencies_us;
  std::vector<double> first_us;
  std::vector<double> spread_us;
  for (auto _ : state) {
    Countdown countdown;
    std::deque<ripcord::TaskGroup> groups;
    std::deque<ripcord::StopCallback<Observe>> callbacks;
    for (int i = 0; i < kGroups; ++i) {
      groups.emplace_back(executor);
      callbacks.emplace_back(groups.back().stop_token(), Observe{&countdown});
    }
    double seconds = 0;
    {
      ripcord::SignalOptions options;
      options.quiet = true;
      ripcord::SignalWatcher watcher(executor, options);
      const auto t0 = Clock::now();
      kill(getpid(), SIGINT);
      countdown.done.WaitForNotification();
      seconds = std::chrono::duration<double>(countdown.last - t0).count();
      first_us.push_back(
          std::chrono::duration<double, std::micro>(countdown.first - t0)
              .count());
      spread_us.push_back(std::chrono::duration<double, std::micro>(
                              countdown.last - countdown.first)
                              .count());
    }
    state.SetIterationTime(seconds);
    latencies_us.push_back(seconds * 1e6);
    callbacks.clear();
    for (auto& g : groups) {
      if (g.Wait().ok()) state.SkipWithError("group was not stopped");
    }
  }
  state.counters["p50_us"] = Percentile(latencies_us, 0.50);
  state.counters["p99_us"] = Percentile(latencies_us, 0.99);
  state.counters["max_us"] = Percentile(latencies_us, 1.0);
  state.counters["first_p50_us"] = Percentile(first_us, 0.50);
  state.counters["first_p99_us"] = Percentile(first_us, 0.99);
  state.counters["spread_p50_us"] = Percentile(spread_us, 0.50);
  state.counters["spread_p99_us"] = Percentile(spread_us, 0.99);
}

BENCHMARK(BM_SignalStop_Ripcord)
    ->Iterations(200)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
