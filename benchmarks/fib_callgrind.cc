// Copyright 2026 The ripcord Authors.
//
// fib_callgrind: the fib workload of fib_bench.cc as a plain program, for
// instruction counts under `valgrind --tool=callgrind` (see callgrind.sh),
// which are repeatable where wall time on a shared 2-core VM is not.
//
//   fib_callgrind <ripcord|tbb|seq> <n> <runs> <workers>
//
// Runs fib(n) `runs` times on one executor / arena of `workers` threads and
// prints the result. callgrind.sh runs it with runs = 1 and runs = 1 + R and
// divides the difference of the instruction totals by R x tasks, which cancels
// start-up (dynamic loading, thread creation) and leaves Ir per task.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "benchmarks/bench_util.h"
#include "oneapi/tbb/task_arena.h"
#include "oneapi/tbb/task_group.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::CheckOk;

int64_t FibRipcord(ripcord::TaskGroup& parent, int n) {
  if (n < 2) return n;
  int64_t a = 0;
  ripcord::TaskGroup tg(parent);
  tg.Spawn([&a, &tg, n] { a = FibRipcord(tg, n - 1); });
  const int64_t b = FibRipcord(tg, n - 2);
  CheckOk(tg.Wait(), "fib child group");
  return a + b;
}

int64_t FibTbb(int n) {
  if (n < 2) return n;
  int64_t a = 0;
  tbb::task_group tg;
  tg.run([&a, n] { a = FibTbb(n - 1); });
  const int64_t b = FibTbb(n - 2);
  tg.wait();
  return a + b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <ripcord|tbb|seq> <n> <runs> <workers>\n",
                 argv[0]);
    return 2;
  }
  const char* variant = argv[1];
  const int n = std::atoi(argv[2]);
  const int runs = std::atoi(argv[3]);
  const int workers = std::atoi(argv[4]);
  int64_t result = 0;
  if (std::strcmp(variant, "ripcord") == 0) {
    ripcord::Executor executor({.num_workers = workers});
    for (int r = 0; r < runs; ++r) {
      ripcord::TaskGroup root(executor);
      root.Spawn([&result, &root, n] { result = FibRipcord(root, n); });
      CheckOk(root.Wait(), "fib root group");
    }
  } else if (std::strcmp(variant, "tbb") == 0) {
    tbb::task_arena arena(workers);
    for (int r = 0; r < runs; ++r) {
      arena.execute([&result, n] { result = FibTbb(n); });
    }
  } else if (std::strcmp(variant, "seq") == 0) {
    for (int r = 0; r < runs; ++r) {
      volatile int nn = n;  // keep every run
      result = ripcord_bench::FibSeq(nn);
    }
  } else {
    std::fprintf(stderr, "unknown variant %s\n", variant);
    return 2;
  }
  std::printf("fib(%d) = %lld, %lld tasks per run\n", n,
              static_cast<long long>(result),
              static_cast<long long>(ripcord_bench::FibSpawns(n)));
  return result == ripcord_bench::FibSeq(n) ? 0 : 1;
}
