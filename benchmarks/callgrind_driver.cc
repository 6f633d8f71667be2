// Copyright 2026 The ripcord Authors.
//
// callgrind_driver: the fib (fib_bench.cc) and skynet (skynet_bench.cc)
// workloads as a plain program, for instruction counts under
// `valgrind --tool=callgrind` (see callgrind.sh), which are repeatable where
// wall time on a shared 2-core VM is not.
//
//   callgrind_driver fib    <ripcord|tbb|seq> <n>      <runs> <workers>
//   callgrind_driver skynet <ripcord|tbb|seq> <leaves> <runs> <workers>
//
// Runs the workload `runs` times on one executor / arena of `workers` threads
// and prints the result and the number of tasks per run. callgrind.sh runs it
// with runs = 1 and runs = 1 + R and divides the difference of the
// instruction totals by R x tasks, which cancels start-up (dynamic loading,
// thread creation) and leaves Ir per task. skynet's <leaves> is a power of 10.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "benchmarks/bench_util.h"
#include "benchmarks/workloads.h"
#include "oneapi/tbb/task_arena.h"
#include "oneapi/tbb/task_group.h"
#include "ripcord/ripcord.h"

namespace {

using ripcord_bench::FibRipcord;
using ripcord_bench::FibTbb;
using ripcord_bench::SkynetRipcord;
using ripcord_bench::SkynetTbb;

using ripcord_bench::CheckOk;

int64_t SkynetSeq(int64_t num, int64_t size) {
  if (size == 1) return num;
  int64_t total = 0;
  const int64_t sub = size / 10;
  for (int i = 0; i < 10; ++i) total += SkynetSeq(num + i * sub, sub);
  return total;
}

// Tasks one skynet run spawns: every node of the tree but the root.
int64_t SkynetTasks(int64_t leaves) {
  int64_t nodes = 0;
  for (int64_t level = leaves; level >= 1; level /= 10) nodes += level;
  return nodes - 1;
}

int RunSkynet(const char* variant, int64_t leaves, int runs, int workers) {
  int64_t result = 0;
  if (std::strcmp(variant, "ripcord") == 0) {
    ripcord::Executor executor({.num_workers = workers});
    for (int r = 0; r < runs; ++r) {
      ripcord::TaskGroup root(executor);
      root.Spawn([&result, &root, leaves] {
        result = SkynetRipcord(root, 0, leaves);
      });
      CheckOk(root.Wait(), "skynet root");
    }
  } else if (std::strcmp(variant, "tbb") == 0) {
    tbb::task_arena arena(workers);
    for (int r = 0; r < runs; ++r) {
      arena.execute([&result, leaves] { result = SkynetTbb(0, leaves); });
    }
  } else if (std::strcmp(variant, "seq") == 0) {
    for (int r = 0; r < runs; ++r) {
      volatile int64_t l = leaves;  // keep every run
      result = SkynetSeq(0, l);
    }
  } else {
    std::fprintf(stderr, "unknown variant %s\n", variant);
    return 2;
  }
  std::printf("skynet(%lld) = %lld, %lld tasks per run\n",
              static_cast<long long>(leaves), static_cast<long long>(result),
              static_cast<long long>(SkynetTasks(leaves)));
  return result == leaves * (leaves - 1) / 2 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr,
                 "usage: %s <fib|skynet> <ripcord|tbb|seq> <n> <runs> "
                 "<workers>\n",
                 argv[0]);
    return 2;
  }
  const char* workload = argv[1];
  const char* variant = argv[2];
  const int runs = std::atoi(argv[4]);
  const int workers = std::atoi(argv[5]);
  if (std::strcmp(workload, "skynet") == 0) {
    return RunSkynet(variant, std::atoll(argv[3]), runs, workers);
  }
  if (std::strcmp(workload, "fib") != 0) {
    std::fprintf(stderr, "unknown workload %s\n", workload);
    return 2;
  }
  const int n = std::atoi(argv[3]);
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
