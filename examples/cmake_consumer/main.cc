// Copyright 2026 The ripcord Authors.
//
// consumer: the smallest program that uses an installed ripcord through
// find_package(ripcord). Sums 1..1000 with ParallelFor in a task group, spawns
// a coroutine that sleeps, and checks both results. Exits 0 on success and 1,
// with a message, on any wrong result.

#include <atomic>
#include <cstdint>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ripcord/ripcord.h"

int main() {
  ripcord::Executor executor;  // num_workers = 0: this process's CPU limit
  std::atomic<int64_t> sum{0};
  absl::Status loop =
      ripcord::ParallelFor(executor, 1, 1001, [&sum](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          sum.fetch_add(i, std::memory_order_relaxed);
        }
      });

  ripcord::TaskGroup group(executor, {.name = "consumer"});
  group.Spawn([]() -> ripcord::Task<absl::Status> {
    co_return co_await ripcord::Sleep(absl::Milliseconds(1));
  });
  absl::Status waited = group.Wait();

  if (!loop.ok() || !waited.ok() || sum.load() != 500500) {
    std::fprintf(stderr, "consumer: FAILED: loop %s, group %s, sum %lld\n",
                 loop.ToString().c_str(), waited.ToString().c_str(),
                 static_cast<long long>(sum.load()));
    return 1;
  }
  std::printf("consumer: ok, %d workers, sum %lld\n", executor.num_workers(),
              static_cast<long long>(sum.load()));
  return 0;
}
