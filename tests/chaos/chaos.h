// Copyright 2026 The ripcord Authors.
//
// chaos.h: a randomized harness over ripcord's public API. Several driver
// threads each run random programs drawn from a seeded PRNG (groups, tasks,
// blocking calls, coroutines, ParallelFor, stops, waits) and check the
// contract's invariants as they go. A failure prints the seed and the
// command that replays it, then aborts. See docs/chaos.md.
//
//   chaos::Options options;
//   options.seed = 42;
//   options.duration = absl::Seconds(20);
//   chaos::Result r = chaos::Run(options);   // aborts on a violation
//
// Reproducibility: the seed fixes every program (which operations, on which
// groups, with which options), not the thread interleaving; a replay with
// the same seed explores the same programs under new interleavings.
#ifndef RIPCORD_TESTS_CHAOS_CHAOS_H_
#define RIPCORD_TESTS_CHAOS_CHAOS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace ripcord::chaos {

struct Options {
  uint64_t seed = 1;
  absl::Duration duration = absl::Seconds(20);
  int drivers = 3;  // driver threads per executor epoch
  // Abort with Executor::DebugString() when no driver made progress for
  // this long.
  absl::Duration watchdog = absl::Seconds(30);

  // Operation mixes and checks. A mix that hits an open library bug
  // defaults to off, with the bug named here and in docs/chaos.md.
  // Executor::RequestStop(kUnshielded/kAll) at random moments.
  bool executor_stops = true;
  // Spawning into a group (and opening a child of it) after its Wait()
  // returned, then waiting again.
  bool reuse_after_wait = true;
  // Destroying a group without Wait() (its destructor joins) while its
  // tasks may have child groups open.
  bool destroy_unwaited = true;
  // stop_requested() is true once RequestStop() has returned; and Wait()
  // never returns OK after a task failed.
  bool check_stop_visible = true;
  // stats().spawned equals the harness's own count after Wait().
  bool exact_spawned = true;
  // TaskGroup::Start with handles (RequestStop, Wait, Join, OnDone, WaitAll,
  // dropped and moved handles), from drivers, plain tasks and coroutines.
  bool handles = true;
  // Groups with FailurePolicy::kCollectAll (25% of groups).
  bool collect_all = true;
  // Groups with max_concurrency 1-3 (20% of groups).
  bool max_concurrency = true;

  // How to replay: the command printed with every failure.
  std::string replay_command;
};

struct Result {
  int64_t programs = 0;       // driver programs run to the end
  int64_t tasks_spawned = 0;  // tasks and blocking calls spawned
  int64_t tasks_run = 0;      // of those, started
  int64_t waits_checked = 0;  // Wait()/Join()/WaitFor() results checked
  int64_t handles_started = 0;   // of the tasks, started with a handle
  int64_t outcomes_checked = 0;  // handle outcomes taken and checked
  int64_t epochs = 0;         // executors created and destroyed
};

// Runs random programs for options.duration and returns what it did.
// Aborts (after printing the violation, the seed and the replay command) on
// the first invariant that does not hold, and when the watchdog fires.
// Thread-safety: one Run() per process at a time.
Result Run(const Options& options);

// The flags of `bazel run //tests:chaos` that reproduce `options` (seed,
// seconds, drivers and every operation mix that is off).
std::string ReplayFlags(const Options& options);

// `bazel run [--config=tsan|asan] //tests:chaos -- <ReplayFlags>`, with the
// sanitizer this binary was built with.
std::string ReplayCommand(const Options& options);

}  // namespace ripcord::chaos

#endif  // RIPCORD_TESTS_CHAOS_CHAOS_H_
