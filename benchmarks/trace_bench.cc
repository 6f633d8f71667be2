// Copyright 2026 The ripcord Authors.
//
// trace_bench: what the flight recorder costs, on against off, in one
// process and one run (the repetitions interleaved at random, so a change
// of machine load hits both alike). fib(30) (a task and a child group per
// call) and skynet (10^6 leaves, 10-ary), 2 workers, as fib_bench and
// skynet_bench. Each benchmark function creates its own Executor, so while
// an "off" repetition runs no Tracer exists in the process: it pays what a
// program without tracing pays. The "on" executor writes its file (to
// $TEST_TMPDIR or /tmp) when destroyed, outside the timing loop.
//
//   bazel run -c opt //benchmarks:trace_bench --
//       --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true
// (one command line).
#include <stdlib.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "ripcord/ripcord.h"

namespace {

int64_t Fib(ripcord::TaskGroup& parent, int n) {
  if (n < 2) return n;
  int64_t a = 0;
  ripcord::TaskGroup tg(parent);
  tg.Spawn([&a, &tg, n] { a = Fib(tg, n - 1); });
  const int64_t b = Fib(tg, n - 2);
  if (!tg.Wait().ok()) std::abort();
  return a + b;
}

int64_t Skynet(ripcord::TaskGroup& parent, int64_t num, int64_t size) {
  if (size == 1) return num;
  ripcord::TaskGroup tg(parent);
  int64_t sums[10] = {};
  const int64_t sub = size / 10;
  for (int i = 0; i < 10; ++i) {
    tg.Spawn([&sums, &tg, i, num, sub] {
      sums[i] = Skynet(tg, num + i * sub, sub);
    });
  }
  if (!tg.Wait().ok()) std::abort();
  int64_t total = 0;
  for (int64_t s : sums) total += s;
  return total;
}

double ProcessCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

ripcord::ExecutorOptions Options(bool on) {
  unsetenv("RIPCORD_TRACE");
  const char* dir = std::getenv("TEST_TMPDIR");
  return {.num_workers = 2,
          .trace_path = on ? absl::StrCat(dir != nullptr ? dir : "/tmp",
                                          "/ripcord_trace_bench.json")
                           : std::string()};
}

template <class Body>
void Run(benchmark::State& state, bool on, Body body) {
  ripcord::Executor executor(Options(on));
  const double cpu = ProcessCpuSeconds();
  int64_t result = 0;
  for (auto _ : state) {
    ripcord::TaskGroup root(executor);
    root.Spawn([&] { result = body(root); });
    if (!root.Wait().ok()) std::abort();
    benchmark::DoNotOptimize(result);
  }
  state.counters["cpu_ms"] = benchmark::Counter(
      (ProcessCpuSeconds() - cpu) * 1e3 /
      static_cast<double>(state.iterations()));
}

void BM_Fib(benchmark::State& state) {
  Run(state, state.range(0) != 0,
      [](ripcord::TaskGroup& root) { return Fib(root, 30); });
}
void BM_Skynet(benchmark::State& state) {
  Run(state, state.range(0) != 0,
      [](ripcord::TaskGroup& root) { return Skynet(root, 0, 1000000); });
}

BENCHMARK(BM_Fib)->ArgName("trace")->Arg(0)->Arg(1)->UseRealTime()->Unit(
    benchmark::kMillisecond);
BENCHMARK(BM_Skynet)->ArgName("trace")->Arg(0)->Arg(1)->UseRealTime()->Unit(
    benchmark::kMillisecond);

}  // namespace
