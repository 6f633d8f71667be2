// Copyright 2026 The ripcord Authors.
//
// bench_util.h: helpers shared by the ripcord-vs-oneTBB benchmarks: the worker
// count both libraries get, status checks, and process CPU/RSS readers.
#ifndef RIPCORD_BENCHMARKS_BENCH_UTIL_H_
#define RIPCORD_BENCHMARKS_BENCH_UTIL_H_

#include <cstdint>

#include "absl/status/status.h"

namespace benchmark {
class State;
}  // namespace benchmark

namespace ripcord_bench {

// The worker count both libraries get: RIPCORD_BENCH_WORKERS from the
// environment (a positive integer; anything else aborts with a message),
// else 2, the reference machine's cores. ripcord gets
// ExecutorOptions{.num_workers = n}; oneTBB a task_arena(n) (its calling
// thread fills one slot) or global_control(max_allowed_parallelism, n).
// benchmarks/compare.sh sets it for each WORKERS entry.
int WorkersFromEnv();
inline const int kWorkers = WorkersFromEnv();

// Aborts with `what` and the status when `status` is not OK: a benchmark whose
// workload failed must not report a time.
void CheckOk(const absl::Status& status, const char* what);

// Process CPU time (user + system, all threads) from getrusage(RUSAGE_SELF).
double ProcessCpuSeconds();

// Resident set size from /proc/self/statm, in bytes.
int64_t ResidentBytes();

// Bytes handed out by malloc and not yet freed (mallinfo2().uordblks plus
// hblkhd, all arenas). Memory served by another allocator (tbbmalloc) is not
// included.
int64_t MallocInUseBytes();

// Returns free malloc memory to the OS (malloc_trim(0)), so a following RSS
// delta measures new memory rather than reuse.
void TrimMalloc();

// Process CPU time per iteration. Construct before the timing loop and call
// Report() after it: sets the counter `cpu_ms` to the CPU time (all threads,
// getrusage) the process used per iteration, in ms. On a shared, loaded
// machine wall time mostly measures how much of the CPU the benchmark got;
// CPU time measures what the work cost (spinning included).
class CpuMeter {
 public:
  CpuMeter() : start_(ProcessCpuSeconds()) {}
  void Report(benchmark::State& state) const;

 private:
  double start_;
};

// Number of calls fib(n) makes with n >= 2, i.e. tasks (and child groups)
// spawned by the one-task-per-call parallel fib: fib(n + 1) - 1.
int64_t FibSpawns(int n);

// Sequential fib, the per-call work of every fib variant.
int64_t FibSeq(int n);

}  // namespace ripcord_bench

#endif  // RIPCORD_BENCHMARKS_BENCH_UTIL_H_
