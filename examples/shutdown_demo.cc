// Copyright 2026 The ripcord Authors.
//
// shutdown_demo: the scenario that made asyncio users ask for shielding.
//
//   bazel run //examples:shutdown_demo -- --seconds=5     # then press Ctrl-C
//
// It starts --shielded coroutine tasks in a shielded group, --unshielded
// coroutine tasks in an ordinary group, and --blocking blocking calls on the
// blocking pool. Every task works for --seconds. Each prints one line when it
// starts and one when it ends:
//
//   [n] Task start!
//   [n] Task done!        (finished its work)
//   [n] Cancelled!        (stopped before finishing)
//
// The first Ctrl-C (SIGINT, or SIGTERM) cancels the unshielded tasks and the
// blocking calls; the shielded ones finish their work. A second Ctrl-C cancels
// the shielded ones too; a third ends the process at once (SignalWatcher's
// escalation). When every task has ended it prints one summary line and then
// ends as if killed by the first stop signal it received (so a shell reports
// 130 for SIGINT, 143 for SIGTERM), or exits 0 if no signal came.
//
// Structure: one root group "demo" with three child groups. The first signal
// is Executor::RequestStop(kUnshielded): it stops "demo" and so its
// unshielded children, but not the shielded child. The tasks are coroutines
// (they wait in `co_await Sleep`, which holds no worker), so 50 shielded and
// 50 unshielded tasks run side by side on 2 workers. The blocking calls run on
// the blocking pool and sleep in short steps with SleepFor(step, token), which
// returns CancelledError as soon as their group is stopped.
//
// Output is line-buffered and every line is written by one fwrite, so a pipe
// sees whole lines, each as it happens.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ripcord/ripcord.h"

ABSL_FLAG(int, shielded, 3,
          "number of shielded coroutine tasks, numbered 1..S; they finish "
          "their work after the first Ctrl-C");
ABSL_FLAG(int, unshielded, 3,
          "number of unshielded coroutine tasks, numbered S+1..S+U; the first "
          "Ctrl-C cancels them");
ABSL_FLAG(int, blocking, 1,
          "number of blocking calls on the blocking pool, numbered "
          "S+U+1..S+U+B (unshielded: the first Ctrl-C cancels them)");
ABSL_FLAG(double, seconds, 10,
          "how long each task works, in seconds (fractions allowed)");
ABSL_FLAG(int, workers, 0,
          "work-stealing worker threads; 0 = one per hardware thread");
ABSL_FLAG(std::string, trace, "",
          "write a flight-recorder trace (Trace Event JSON: Perfetto, "
          "chrome://tracing, speedscope) to this file when the executor "
          "ends, or before a third signal ends the process; empty: "
          "$RIPCORD_TRACE, if set");

namespace {

constexpr char kUsage[] =
    "Shows ripcord's shielded shutdown. Starts --shielded shielded and "
    "--unshielded unshielded coroutine tasks plus --blocking blocking calls, "
    "each working for --seconds.\n"
    "Task numbers: shielded tasks are 1..S, unshielded tasks S+1..S+U, "
    "blocking calls S+U+1..S+U+B (S, U, B = the three counts).\n"
    "Each task prints '[n] Task start!' and then '[n] Task done!' or "
    "'[n] Cancelled!'; a summary line follows.\n"
    "Ctrl-C (SIGINT) or SIGTERM: cancels the unshielded tasks and the "
    "blocking calls, lets the shielded ones finish, then the program ends as "
    "killed by that signal (exit status 128+signo in a shell). A second "
    "Ctrl-C cancels the shielded tasks too; a third ends the program at "
    "once.\n\n"
    "Usage: shutdown_demo [--shielded=3] [--unshielded=3] [--blocking=1] "
    "[--seconds=10] [--workers=0]";

// Each task's work is done in steps of at most this, so it can see a stop.
constexpr absl::Duration kStep = absl::Milliseconds(100);

// Writes one whole line to stdout with a single fwrite (stdio locks the
// stream for the call; stdout is line-buffered, so the line leaves at once).
void PrintLine(const std::string& line) {
  std::string text = line + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
}

void Say(int n, const char* what) {
  PrintLine(absl::StrFormat("[%d] %s", n, what));
}

// Tally: how the tasks ended. Thread-safe (atomics; relaxed is enough: main
// reads them after the groups are joined, and Wait() orders everything a task
// did before main's reads).
struct Tally {
  std::atomic<int> started{0};
  std::atomic<int> done{0};
  std::atomic<int> cancelled{0};
};

// One coroutine task: works until `work` has passed, in awaited sleeps. Each
// co_await is a checkpoint: when the task's group is stopped, Sleep resumes
// at once with CancelledError.
ripcord::Task<absl::Status> Worker(int n, absl::Duration work, Tally* tally) {
  tally->started.fetch_add(1, std::memory_order_relaxed);
  Say(n, "Task start!");
  const absl::Time deadline = absl::Now() + work;
  for (absl::Duration left = work; left > absl::ZeroDuration();
       left = deadline - absl::Now()) {
    absl::Status status = co_await ripcord::Sleep(std::min(left, kStep));
    if (!status.ok()) {  // CancelledError: our group was stopped
      Say(n, "Cancelled!");
      tally->cancelled.fetch_add(1, std::memory_order_relaxed);
      co_return status;
    }
  }
  Say(n, "Task done!");
  tally->done.fetch_add(1, std::memory_order_relaxed);
  co_return absl::OkStatus();
}

// One blocking call's body, on the blocking pool: sleeps in short steps and
// returns early (CancelledError) when its group is stopped.
absl::Status BlockingWork(int n, absl::Duration work, ripcord::StopToken token,
                          Tally* tally, std::atomic<bool>* started) {
  started->store(true, std::memory_order_relaxed);
  tally->started.fetch_add(1, std::memory_order_relaxed);
  Say(n, "Task start!");
  const absl::Time deadline = absl::Now() + work;
  for (absl::Duration left = work; left > absl::ZeroDuration();
       left = deadline - absl::Now()) {
    absl::Status status = ripcord::SleepFor(std::min(left, kStep), token);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  absl::ParseCommandLine(argc, argv);
  // A pipe sees each line as it happens.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  const int num_shielded = absl::GetFlag(FLAGS_shielded);
  const int num_unshielded = absl::GetFlag(FLAGS_unshielded);
  const int num_blocking = absl::GetFlag(FLAGS_blocking);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const int workers = absl::GetFlag(FLAGS_workers);
  if (num_shielded < 0 || num_unshielded < 0 || num_blocking < 0 ||
      !(seconds >= 0) || workers < 0) {
    std::fprintf(stderr,
                 "shutdown_demo: --shielded, --unshielded, --blocking, "
                 "--seconds and --workers must not be negative\n");
    return 2;
  }
  const absl::Duration work = absl::Seconds(seconds);
  const int total = num_shielded + num_unshielded + num_blocking;

  // The first stop signal (0: none), read from the watcher before it goes.
  int first_signal = 0;
  Tally tally;
  {
    ripcord::Executor executor(
        {.num_workers = workers, .trace_path = absl::GetFlag(FLAGS_trace)});
    // started[i]: whether blocking call i ran at all (a call whose group was
    // stopped before it started never runs; its done is called all the same).
    // Declared before the groups: it outlives every done callback.
    auto started = std::make_unique<std::atomic<bool>[]>(num_blocking);
    // The groups exist before the watcher, so a stop signal always finds
    // them: a root group created after a signal starts unstopped (by design,
    // so that a program can open one for its clean-up), and would miss a
    // Ctrl-C that came before it.
    ripcord::TaskGroup demo(executor, {.name = "demo"});
    ripcord::TaskGroup shielded(demo, {.name = "shielded", .shielded = true});
    ripcord::TaskGroup unshielded(demo, {.name = "unshielded"});
    ripcord::TaskGroup blocking(demo, {.name = "blocking"});
    // A signal before this line takes its default action: nothing has
    // started yet.
    ripcord::SignalWatcher watcher(executor);

    int n = 0;
    for (int i = 0; i < num_shielded; ++i) {
      ++n;
      shielded.Spawn([n, work, &tally] { return Worker(n, work, &tally); });
    }
    for (int i = 0; i < num_unshielded; ++i) {
      ++n;
      unshielded.Spawn([n, work, &tally] { return Worker(n, work, &tally); });
    }
    for (int i = 0; i < num_blocking; ++i) {
      ++n;
      std::atomic<bool>* started_i = &started[i];
      blocking.SpawnBlocking(
          [n, work, &tally, started_i](ripcord::StopToken token) {
            return BlockingWork(n, work, token, &tally, started_i);
          },
          [n, &tally, started_i](absl::Status status) {
            if (!started_i->load(std::memory_order_relaxed)) return;
            if (status.ok()) {
              Say(n, "Task done!");
              tally.done.fetch_add(1, std::memory_order_relaxed);
            } else {
              Say(n, "Cancelled!");
              tally.cancelled.fetch_add(1, std::memory_order_relaxed);
            }
          });
    }

    // The children's statuses say how each group ended (CancelledError
    // naming the signal when stopped); the lines above already told it per
    // task. demo.Wait() waits for all three children.
    shielded.Wait().IgnoreError();
    unshielded.Wait().IgnoreError();
    blocking.Wait().IgnoreError();
    demo.Wait().IgnoreError();

    const int started_count = tally.started.load(std::memory_order_relaxed);
    std::string summary =
        absl::StrFormat("summary: %d done, %d cancelled",
                        tally.done.load(std::memory_order_relaxed),
                        tally.cancelled.load(std::memory_order_relaxed));
    if (started_count < total) {
      // Tasks still queued when their group was stopped are dropped unrun.
      absl::StrAppend(&summary, ", ", total - started_count, " never started");
    }
    PrintLine(summary);
    first_signal = watcher.first_signal();
    // Then ~SignalWatcher (first: declared last), the (joined) groups and the
    // executor go.
  }

  if (first_signal != 0) ripcord::ExitBySignal(first_signal);
  return 0;
}
