// Copyright 2026 The ripcord Authors.
//
// Scenario 10: memory per queued plain task. Every worker is first held by a
// task blocked on an absl::Notification, then one external thread queues
// 1,000,000 tasks (each a lambda capturing one pointer) into one group; the
// RSS growth (/proc/self/statm) between just before the first spawn and just
// after the last one, divided by 1,000,000, is `rss_bytes_per_task` (bar: <=
// 64). `heap_bytes_per_task` is the growth of malloc's in-use bytes
// (mallinfo2) over the same span; it does not see memory that oneTBB takes
// from tbbmalloc, so only the RSS figure compares the two libraries. Then the
// holders are released and the group is joined.
//
// Each measurement runs in a fresh child process (fork() from the benchmark
// thread, which has started no threads of its own): freed task memory that an
// allocator keeps for reuse (glibc's free lists, oneTBB's per-thread
// small-object pool, tbbmalloc) would otherwise make every run after the first
// show no growth at all. The reported time (fork + queue + run) means little.
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "absl/synchronization/notification.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/workloads.h"
#include "oneapi/tbb/global_control.h"
#include "oneapi/tbb/task_group.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::CheckOk;
using ripcord_bench::kWorkers;

constexpr int64_t kTasks = 1000000;

struct Growth {
  int64_t rss = 0;
  int64_t heap = 0;
};

struct Snapshot {
  int64_t rss;
  int64_t heap;
  static Snapshot Take() {
    return {ripcord_bench::ResidentBytes(), ripcord_bench::MallocInUseBytes()};
  }
};

Growth MeasureRipcord() {
  ripcord::Executor executor({.num_workers = kWorkers});
  std::atomic<int64_t> ran{0};
  Growth growth;
  {
    ripcord_bench::RipcordHolder holder(executor, kWorkers);
    ripcord::TaskGroup group(executor);
    ripcord_bench::TrimMalloc();
    const Snapshot before = Snapshot::Take();
    for (int64_t i = 0; i < kTasks; ++i) {
      group.Spawn([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
    }
    const Snapshot after = Snapshot::Take();
    growth = {after.rss - before.rss, after.heap - before.heap};
    holder.Release();
    CheckOk(group.Wait(), "memory group");
  }
  if (ran.load() != kTasks) std::abort();
  return growth;
}

Growth MeasureTbb() {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            kWorkers);
  std::atomic<int64_t> ran{0};
  Growth growth;
  ripcord_bench::TbbHolder holder;
  tbb::task_group group;
  ripcord_bench::TrimMalloc();
  const Snapshot before = Snapshot::Take();
  for (int64_t i = 0; i < kTasks; ++i) {
    group.run([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
  }
  const Snapshot after = Snapshot::Take();
  growth = {after.rss - before.rss, after.heap - before.heap};
  holder.Release();
  group.wait();
  if (ran.load() != kTasks) std::abort();
  return growth;
}

// Runs `measure` in a child process and returns what it measured.
bool InChild(Growth (*measure)(), Growth* out) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    close(fds[0]);
    const Growth g = measure();
    const ssize_t n = write(fds[1], &g, sizeof(g));
    _exit(n == static_cast<ssize_t>(sizeof(g)) ? 0 : 1);
  }
  close(fds[1]);
  Growth g;
  const ssize_t n = read(fds[0], &g, sizeof(g));
  close(fds[0]);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  if (n != static_cast<ssize_t>(sizeof(g)) || !WIFEXITED(wstatus) ||
      WEXITSTATUS(wstatus) != 0) {
    return false;
  }
  *out = g;
  return true;
}

void Run(benchmark::State& state, Growth (*measure)()) {
  Growth total;
  for (auto _ : state) {
    Growth g;
    if (!InChild(measure, &g)) {
      state.SkipWithError("child measurement failed");
      return;
    }
    total.rss += g.rss;
    total.heap += g.heap;
  }
  const double tasks = static_cast<double>(kTasks) *
                       static_cast<double>(state.iterations());
  state.counters["rss_bytes_per_task"] = static_cast<double>(total.rss) / tasks;
  state.counters["heap_bytes_per_task"] =
      static_cast<double>(total.heap) / tasks;
}

void BM_Memory_Ripcord(benchmark::State& state) { Run(state, &MeasureRipcord); }
void BM_Memory_Tbb(benchmark::State& state) { Run(state, &MeasureTbb); }

BENCHMARK(BM_Memory_Ripcord)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Memory_Tbb)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
