// Copyright 2026 The ripcord Authors.
//
// Scenario 8: coroutines. 100,000 coroutine tasks (ripcord::Task<absl::Status>)
// in one group, each suspended in `co_await ripcord::Sleep(d)` on 2 workers.
//
//   BM_CoroSleep_Ripcord/<d in ms>  d = 1000 ms (the scenario) and
//                         d = 100 ms (ten times shorter, so that
//                         repetitions are cheap): wall time from the first
//                         Spawn until Wait() returns (ideal: d plus the time
//                         to spawn). Counters, from the first Spawn: spawn_ms
//                         (Spawn loop done), started_ms (the last coroutine
//                         reached its Sleep), woke_ms (the last one resumed
//                         from it).
//   BM_CoroStop_Ripcord   d = 1 hour: once every task is suspended
//                         (stats: running == 100,000, queued == 0), memory per
//                         task, then RequestStop(); the reported (manual) time
//                         is from the stop request until Wait() returns.
//                         Counters: heap_bytes_per_task (malloc in-use growth
//                         from before the first Spawn to all suspended: frame,
//                         task node, timer entry; averaged over the runs.
//                         Once an earlier run or repetition in the process
//                         has stopped its coroutines, the task cache's
//                         depots (up to 64 MiB) hand their blocks back and
//                         the figure falls to ~30 B: run with
//                         --benchmark_repetitions=1 --benchmark_min_time=0
//                         for the cold cost, ~380 B), rss_bytes_per_task (RSS
//                         growth over the same span; allocator reuse across
//                         runs can make it smaller than the heap figure),
//                         request_ms (how long the RequestStop() call itself
//                         took: the stop callbacks, run on the requesting
//                         thread), stop_cpu_ms (CPU time of all threads
//                         from the stop request until Wait() returns: on a
//                         shared machine steadier than the wall time).
// Profiling only the stop: with RIPCORD_PERF_CTL_FD=<fd> in the environment,
// BM_CoroStop_Ripcord writes "enable" before RequestStop() and "disable"
// after Wait() to that file descriptor, for
//   perf record --delay=-1 --control fd:<fd> ... coro_bench
// (open the fd on a fifo that perf reads, e.g. `exec 9<>fifo`).
// oneTBB has no coroutine tasks: no oneTBB variant.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "ripcord/ripcord.h"
#include "ripcord/task.h"

namespace {

using ripcord_bench::CheckOk;
using ripcord_bench::kWorkers;
using Clock = std::chrono::steady_clock;

constexpr int64_t kTasks = 100000;

// The perf control descriptor (RIPCORD_PERF_CTL_FD), or -1.
int PerfControlFd() {
  static const int fd = [] {
    const char* v = std::getenv("RIPCORD_PERF_CTL_FD");
    return v == nullptr ? -1 : std::atoi(v);
  }();
  return fd;
}

// Sends "enable" or "disable" to perf's control descriptor, if any.
void PerfControl(const char* command) {
  const int fd = PerfControlFd();
  if (fd < 0) return;
  if (write(fd, command, std::strlen(command)) < 0) std::abort();
}

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void SpawnSleepers(ripcord::TaskGroup& group, absl::Duration d) {
  for (int64_t i = 0; i < kTasks; ++i) {
    group.Spawn([d]() -> ripcord::Task<absl::Status> {
      co_return co_await ripcord::Sleep(d);
    });
  }
}

// Records when the last of kTasks arrivals happened.
struct LastArrival {
  std::atomic<int64_t> count{0};
  Clock::time_point when;
  void Arrive() {
    if (count.fetch_add(1, std::memory_order_acq_rel) + 1 == kTasks) {
      when = Clock::now();
    }
  }
};

void BM_CoroSleep_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  const absl::Duration d = absl::Milliseconds(state.range(0));
  double spawn_ms = 0;
  double started_ms = 0;
  double woke_ms = 0;
  for (auto _ : state) {
    LastArrival started;
    LastArrival woke;
    ripcord::TaskGroup group(executor);
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < kTasks; ++i) {
      group.Spawn([&started, &woke, d]() -> ripcord::Task<absl::Status> {
        started.Arrive();
        absl::Status s = co_await ripcord::Sleep(d);
        woke.Arrive();
        co_return s;
      });
    }
    spawn_ms += Ms(t0, Clock::now());
    CheckOk(group.Wait(), "sleeping coroutines");
    started_ms += Ms(t0, started.when);
    woke_ms += Ms(t0, woke.when);
  }
  const double runs = static_cast<double>(state.iterations());
  state.counters["spawn_ms"] = spawn_ms / runs;
  state.counters["started_ms"] = started_ms / runs;
  state.counters["woke_ms"] = woke_ms / runs;
}

void BM_CoroStop_Ripcord(benchmark::State& state) {
  ripcord::Executor executor({.num_workers = kWorkers});
  int64_t heap = 0;
  int64_t rss = 0;
  double request_ms = 0;
  double stop_cpu_ms = 0;
  for (auto _ : state) {
    ripcord::TaskGroup group(executor);
    ripcord_bench::TrimMalloc();
    const int64_t heap0 = ripcord_bench::MallocInUseBytes();
    const int64_t rss0 = ripcord_bench::ResidentBytes();
    SpawnSleepers(group, absl::Hours(1));
    for (;;) {
      const ripcord::GroupStats s = group.stats();
      if (s.queued == 0 && s.running == kTasks) break;
      absl::SleepFor(absl::Microseconds(200));
    }
    heap += ripcord_bench::MallocInUseBytes() - heap0;
    rss += ripcord_bench::ResidentBytes() - rss0;
    const double cpu0 = ripcord_bench::ProcessCpuSeconds();
    PerfControl("enable\n");
    const auto t0 = Clock::now();
    group.RequestStop("benchmark stop");
    const auto t_requested = Clock::now();
    const absl::Status status = group.Wait();
    const auto t1 = Clock::now();
    PerfControl("disable\n");
    stop_cpu_ms += (ripcord_bench::ProcessCpuSeconds() - cpu0) * 1e3;
    request_ms += Ms(t0, t_requested);
    if (!absl::IsCancelled(status)) CheckOk(status, "stopped coroutines");
    state.SetIterationTime(Ms(t0, t1) / 1e3);
  }
  const double tasks = static_cast<double>(kTasks) *
                       static_cast<double>(state.iterations());
  state.counters["heap_bytes_per_task"] = static_cast<double>(heap) / tasks;
  state.counters["rss_bytes_per_task"] = static_cast<double>(rss) / tasks;
  const double runs = static_cast<double>(state.iterations());
  state.counters["request_ms"] = request_ms / runs;
  state.counters["stop_cpu_ms"] = stop_cpu_ms / runs;
}

BENCHMARK(BM_CoroSleep_Ripcord)
    ->Arg(100)
    ->Arg(1000)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CoroStop_Ripcord)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
