// Copyright 2026 The ripcord Authors.
//
// The chaos harness as a binary, for long runs (see docs/chaos.md):
//
//   bazel run //tests:chaos -- --seconds=3600 --seed=N
//   bazel run --config=tsan //tests:chaos -- --seconds=600
//
// --seed=0 (the default) picks a seed from the clock and prints it. Every
// operation mix is on by default; turning one off (--reuse_after_wait,
// --destroy_unwaited, --check_stop_visible, --handles, --collect_all,
// --max_concurrency, all =false) narrows a search. The program exits 0
// after a clean run; a violation prints the seed and the command that
// replays it, and aborts.
#include <cstdint>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/chaos/chaos.h"

ABSL_FLAG(int64_t, seconds, 60, "how long to run");
ABSL_FLAG(uint64_t, seed, 0, "PRNG seed; 0 picks one from the clock");
ABSL_FLAG(int, drivers, 3, "driver threads");
ABSL_FLAG(int64_t, watchdog_seconds, 30,
          "abort when no driver progressed for this long");
ABSL_FLAG(bool, executor_stops, ripcord::chaos::Options().executor_stops,
          "call Executor::RequestStop(kUnshielded/kAll) at random moments");
ABSL_FLAG(bool, reuse_after_wait, ripcord::chaos::Options().reuse_after_wait,
          "spawn into (and open children of) groups already waited");
ABSL_FLAG(bool, destroy_unwaited, ripcord::chaos::Options().destroy_unwaited,
          "destroy groups without Wait() while their tasks may have child "
          "groups open");
ABSL_FLAG(bool, check_stop_visible,
          ripcord::chaos::Options().check_stop_visible,
          "check stop_requested() once RequestStop() has returned");
ABSL_FLAG(bool, exact_spawned, ripcord::chaos::Options().exact_spawned,
          "check stats().spawned and .cancelled against the harness's tally");

ABSL_FLAG(bool, handles, ripcord::chaos::Options().handles,
          "TaskGroup::Start with handles (stop, Wait, Join, OnDone, WaitAll)");
ABSL_FLAG(bool, collect_all, ripcord::chaos::Options().collect_all,
          "groups with FailurePolicy::kCollectAll");
ABSL_FLAG(bool, max_concurrency, ripcord::chaos::Options().max_concurrency,
          "groups with max_concurrency 1-3");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  ripcord::chaos::Options o;
  o.seed = absl::GetFlag(FLAGS_seed);
  if (o.seed == 0) {
    o.seed = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
  }
  o.duration = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  o.drivers = absl::GetFlag(FLAGS_drivers);
  o.watchdog = absl::Seconds(absl::GetFlag(FLAGS_watchdog_seconds));
  o.executor_stops = absl::GetFlag(FLAGS_executor_stops);
  o.reuse_after_wait = absl::GetFlag(FLAGS_reuse_after_wait);
  o.destroy_unwaited = absl::GetFlag(FLAGS_destroy_unwaited);
  o.check_stop_visible = absl::GetFlag(FLAGS_check_stop_visible);
  o.exact_spawned = absl::GetFlag(FLAGS_exact_spawned);
  o.handles = absl::GetFlag(FLAGS_handles);
  o.collect_all = absl::GetFlag(FLAGS_collect_all);
  o.max_concurrency = absl::GetFlag(FLAGS_max_concurrency);
  ripcord::chaos::Run(o);
  return 0;
}
