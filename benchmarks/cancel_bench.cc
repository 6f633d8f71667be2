// Copyright 2026 The ripcord Authors.
//
// Scenario 5: cancellation. 1,000,000 tiny tasks are queued into one group
// from the benchmark thread, then the group is stopped at once
// (TaskGroup::RequestStop / tbb::task_group::cancel). The time reported is
// manual: from just before the stop request until Wait() returns. Counters
// (per run): `ran` = tasks whose body ran at all, `ran_after_stop` = tasks
// whose body started after RequestStop()/cancel() had returned.
//
//   BM_Cancel_*        the workers are free while the tasks are submitted,
//                      so many run before the stop; what is still queued at
//                      the stop must not run.
//   BM_CancelQueued_*  every worker is first held by a task blocked on an
//                      absl::Notification (in another group), so exactly
//                      1,000,000 tasks are queued when the stop comes; the
//                      holders are released right after the stop. The bar's
//                      "Wait() returns within 1 ms of the stop with 1M
//                      queued, and no queued task runs after the stop", with
//                      the workers racing the waiter for the 2 cores.
//   BM_CancelHeld_*    the same, but the holders are released only after
//                      Wait() returned (oneTBB's wait() runs the cancelled
//                      tasks of its own deque itself; ripcord's does not
//                      need a worker): the waiter alone on the machine.
//   BM_CancelBusy_*    as a user meets it: tasks of ~1 us each, the workers
//                      free, so they are running tasks when the stop comes
//                      (the rest sit in the injection queue and in the
//                      workers' deques); the stop comes right after the
//                      last submission.
// ripcord runs a fresh Executor per run (not timed): since a stopped group's
// Wait() returns before its queued tasks are dropped, the drop of one run's
// 10^6 tasks would otherwise compete with the next run.
// oneTBB runs with global_control(max_allowed_parallelism, 2): one worker plus
// the submitting thread, which drains its own deque inside wait().
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

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
using Clock = std::chrono::steady_clock;

constexpr int64_t kTasks = 1000000;

// Shared by the tasks of one run.
struct Tally {
  std::atomic<bool> stop_returned{false};
  std::atomic<int64_t> ran{0};
  std::atomic<int64_t> ran_after_stop{0};
  const bool busy;  // each task does ~1 us of work

  explicit Tally(bool busy) : busy(busy) {}

  void Run() {
    // Read the flag first: a task that sees it set started its body after the
    // stop request had returned.
    const bool after = stop_returned.load(std::memory_order_acquire);
    ran.fetch_add(1, std::memory_order_relaxed);
    if (after) ran_after_stop.fetch_add(1, std::memory_order_relaxed);
    if (busy) ripcord_bench::About1us(1);
  }
};

void Report(benchmark::State& state, int64_t ran, int64_t ran_after) {
  const double runs = static_cast<double>(state.iterations());
  state.counters["ran"] = static_cast<double>(ran) / runs;
  state.counters["ran_after_stop"] = static_cast<double>(ran_after) / runs;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// How the workers are kept from running the tasks before the stop.
enum class Hold {
  kNone,             // BM_Cancel_*: the workers run tasks during submission
  kBusy,             // BM_CancelBusy_*: the same, with ~1 us per task
  kReleaseAtStop,    // BM_CancelQueued_*: held, released right after the stop
  kReleaseAfterWait  // BM_CancelHeld_*: held until Wait() has returned
};

bool Held(Hold hold) {
  return hold == Hold::kReleaseAtStop || hold == Hold::kReleaseAfterWait;
}

void CancelRipcord(benchmark::State& state, Hold hold) {
  int64_t ran = 0;
  int64_t ran_after = 0;
  for (auto _ : state) {
    // A fresh executor per run: the tasks a run leaves queued (a stopped
    // group's Wait() does not wait for their drop) must not compete with the
    // next run for the 2 cores. Not timed.
    ripcord::Executor executor({.num_workers = kWorkers});
    Tally tally(hold == Hold::kBusy);
    std::optional<ripcord_bench::RipcordHolder> holder;
    if (Held(hold)) holder.emplace(executor, kWorkers);
    ripcord::TaskGroup group(executor);
    for (int64_t i = 0; i < kTasks; ++i) {
      group.Spawn([&tally] { tally.Run(); });
    }
    const auto t0 = Clock::now();
    group.RequestStop("benchmark stop");
    tally.stop_returned.store(true, std::memory_order_release);
    // Notify only: waiting here for the holders to return would time the
    // wake-up of two blocked threads, not the cancellation.
    if (hold == Hold::kReleaseAtStop) holder->Notify();
    const absl::Status status = group.Wait();
    const auto t1 = Clock::now();
    if (holder) holder->Release();
    if (!absl::IsCancelled(status)) CheckOk(status, "cancel group");
    state.SetIterationTime(Seconds(t0, t1));
    ran += tally.ran.load();
    ran_after += tally.ran_after_stop.load();
  }
  Report(state, ran, ran_after);
}

void CancelTbb(benchmark::State& state, Hold hold) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            kWorkers);
  int64_t ran = 0;
  int64_t ran_after = 0;
  for (auto _ : state) {
    Tally tally(hold == Hold::kBusy);
    std::optional<ripcord_bench::TbbHolder> holder;
    if (Held(hold)) holder.emplace();
    tbb::task_group group;
    for (int64_t i = 0; i < kTasks; ++i) {
      group.run([&tally] { tally.Run(); });
    }
    const auto t0 = Clock::now();
    group.cancel();
    tally.stop_returned.store(true, std::memory_order_release);
    if (hold == Hold::kReleaseAtStop) holder->Release();
    group.wait();  // this thread skips the cancelled tasks of its own deque
    const auto t1 = Clock::now();
    if (holder) holder->Release();
    state.SetIterationTime(Seconds(t0, t1));
    ran += tally.ran.load();
    ran_after += tally.ran_after_stop.load();
  }
  Report(state, ran, ran_after);
}

void BM_Cancel_Ripcord(benchmark::State& state) {
  CancelRipcord(state, Hold::kNone);
}
void BM_Cancel_Tbb(benchmark::State& state) { CancelTbb(state, Hold::kNone); }
void BM_CancelQueued_Ripcord(benchmark::State& state) {
  CancelRipcord(state, Hold::kReleaseAtStop);
}
void BM_CancelQueued_Tbb(benchmark::State& state) {
  CancelTbb(state, Hold::kReleaseAtStop);
}
void BM_CancelHeld_Ripcord(benchmark::State& state) {
  CancelRipcord(state, Hold::kReleaseAfterWait);
}
void BM_CancelHeld_Tbb(benchmark::State& state) {
  CancelTbb(state, Hold::kReleaseAfterWait);
}
void BM_CancelBusy_Ripcord(benchmark::State& state) {
  CancelRipcord(state, Hold::kBusy);
}
void BM_CancelBusy_Tbb(benchmark::State& state) {
  CancelTbb(state, Hold::kBusy);
}

// 10 runs per repetition: each run queues 10^6 tasks (0.2-0.7 s here), and the
// manual time is short, so the default min_time would take minutes.
BENCHMARK(BM_Cancel_Ripcord)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Cancel_Tbb)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CancelQueued_Ripcord)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CancelQueued_Tbb)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CancelHeld_Ripcord)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CancelHeld_Tbb)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CancelBusy_Ripcord)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CancelBusy_Tbb)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
