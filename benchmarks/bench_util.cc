// Copyright 2026 The ripcord Authors.
#include "benchmarks/bench_util.h"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"

namespace ripcord_bench {
namespace {

// Diagnostic knob, off by default: RIPCORD_BENCH_ABSL_DEADLOCK_DETECTION=0
// turns off absl::Mutex deadlock detection for the whole process. Debian's
// Abseil is built without NDEBUG, so by default every absl::Mutex lock,
// unlock and destruction also updates Abseil's global lock-order graph (see
// docs/perf-notes.md, F8); this shows what ripcord costs without that.
const bool kDeadlockKnobApplied = [] {
  const char* v = std::getenv("RIPCORD_BENCH_ABSL_DEADLOCK_DETECTION");
  if (v == nullptr || std::strcmp(v, "0") != 0) return false;
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::fprintf(stderr, "note: absl::Mutex deadlock detection disabled\n");
  return true;
}();

}  // namespace

int WorkersFromEnv() {
  const char* v = std::getenv("RIPCORD_BENCH_WORKERS");
  if (v == nullptr || *v == '\0') return 2;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 1 || n > 4096) {
    std::fprintf(stderr, "RIPCORD_BENCH_WORKERS=%s: want 1..4096\n", v);
    std::abort();
  }
  return static_cast<int>(n);
}

void CheckOk(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "benchmark workload failed: %s: %s\n", what,
               status.ToString().c_str());
  std::abort();
}

double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) +
           static_cast<double>(tv.tv_usec) * 1e-6;
  };
  return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

void CpuMeter::Report(benchmark::State& state) const {
  const double used = ProcessCpuSeconds() - start_;
  const double iterations = static_cast<double>(state.iterations());
  if (iterations > 0) state.counters["cpu_ms"] = used * 1e3 / iterations;
}

int64_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long long size_pages = 0;
  long long resident_pages = 0;
  const int n = std::fscanf(f, "%lld %lld", &size_pages, &resident_pages);
  std::fclose(f);
  if (n != 2) return -1;
  return static_cast<int64_t>(resident_pages) * sysconf(_SC_PAGESIZE);
}

int64_t MallocInUseBytes() {
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
}

void TrimMalloc() { malloc_trim(0); }

int64_t FibSpawns(int n) {
  int64_t a = 0;  // fib(0)
  int64_t b = 1;  // fib(1)
  for (int i = 0; i < n + 1; ++i) {
    const int64_t c = a + b;
    a = b;
    b = c;
  }
  return a - 1;  // fib(n + 1) - 1
}

int64_t FibSeq(int n) { return n < 2 ? n : FibSeq(n - 1) + FibSeq(n - 2); }

}  // namespace ripcord_bench
