// Copyright 2026 The ripcord Authors.
//
// first_mirror: "first of N mirrors". Starts one download per mirror as a
// task with a handle, takes the first download that succeeds, and stops the
// others through their handles (asyncio: task.cancel() on the losers).
//
//   bazel run //examples:first_mirror
//   bazel run //examples:first_mirror -- --latencies_ms=300,80,120 --failing=1
//
// The downloads are simulated: mirror i answers after --latencies_ms[i]
// (a cancellable co_await Sleep), then either fails (if i is in --failing)
// or returns its file. What it shows:
//   * TaskGroup::Start returns a TaskHandle<std::string> per download;
//   * the group uses FailurePolicy::kCollectAll, so a failing mirror neither
//     stops the group nor cancels the other downloads (with the default
//     kFailFast the first failure would stop them all);
//   * OnDone on each handle learns how each download ended, on the worker
//     that ended it; the first success stops the losers with
//     handle.RequestStop("<winner> won"), which wakes their Sleep at once;
//   * the group's Wait() then returns OK: stopping a task through its handle
//     does not fail or stop the group, and stats() counts the losers as
//     cancelled.
// Output: one line per mirror as it starts and one as it ends
// ("[mirror-2] failed: ...", "[mirror-1] won: 1001 bytes",
// "[mirror-0] stopped: ..."), then "winner: mirror-1" and the group's counts.
// Exit status 0 with a winner, 1 if every mirror failed, 2 on bad flags.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ripcord/ripcord.h"

ABSL_FLAG(std::string, latencies_ms, "400,150,60,300,250",
          "one mirror per entry: how long it takes to answer, in ms");
ABSL_FLAG(std::string, failing, "2",
          "comma-separated indices of the mirrors whose download fails");

namespace {

// A simulated download: waits `latency` (a checkpoint: a stop through the
// task's handle ends it at once with CancelledError), then fails or returns
// the mirror's file.
ripcord::Task<absl::StatusOr<std::string>> Download(int mirror,
                                                    absl::Duration latency,
                                                    bool fails) {
  absl::Status slept = co_await ripcord::Sleep(latency);
  if (!slept.ok()) co_return slept;  // stopped: another mirror won
  if (fails) co_return absl::UnavailableError("connection reset by mirror");
  co_return std::string(1000 + mirror, 'x');
}

bool ParseInts(const std::string& text, std::vector<int>* out) {
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int v;
    if (!absl::SimpleAtoi(part, &v) || v < 0) return false;
    out->push_back(v);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Starts one simulated download per mirror, keeps the first that "
      "succeeds and stops the others through their task handles.");
  absl::ParseCommandLine(argc, argv);
  std::vector<int> latencies, failing;
  if (!ParseInts(absl::GetFlag(FLAGS_latencies_ms), &latencies) ||
      latencies.empty() || !ParseInts(absl::GetFlag(FLAGS_failing), &failing)) {
    std::fprintf(stderr, "bad --latencies_ms or --failing\n");
    return 2;
  }
  const int n = static_cast<int>(latencies.size());

  ripcord::Executor executor;
  ripcord::TaskGroup downloads(
      executor,
      {.name = "downloads", .on_failure = ripcord::FailurePolicy::kCollectAll});

  // Every handle exists before any OnDone can run: the callbacks stop the
  // others through this vector, which is not resized afterwards.
  std::vector<ripcord::TaskHandle<std::string>> handles;
  handles.reserve(n);
  for (int i = 0; i < n; ++i) {
    bool fails = false;
    for (int f : failing) fails |= f == i;
    const absl::Duration latency = absl::Milliseconds(latencies[i]);
    std::printf("[mirror-%d] start (answers in %d ms%s)\n", i, latencies[i],
                fails ? ", fails" : "");
    handles.push_back(downloads.Start(
        [i, latency, fails] { return Download(i, latency, fails); },
        {.name = absl::StrCat("mirror-", i)}));
  }
  std::fflush(stdout);

  absl::Mutex mu;
  int winner = -1;   // guarded by mu
  std::string file;  // guarded by mu
  for (int i = 0; i < n; ++i) {
    // asyncio: task.add_done_callback(...). Runs on the worker that ends
    // the download (or here, at once, if it already ended).
    handles[i].OnDone([&, i](absl::StatusOr<std::string> result) {
      absl::MutexLock lock(&mu);
      if (result.ok() && winner < 0) {
        winner = i;
        file = *std::move(result);
        std::printf("[mirror-%d] won: %zu bytes\n", i, file.size());
        for (int j = 0; j < n; ++j) {
          // asyncio: loser.cancel(). No effect on a download that ended.
          if (j != i)
            handles[j].RequestStop(absl::StrCat("mirror-", i, " won"));
        }
      } else if (result.ok()) {
        std::printf("[mirror-%d] finished too late\n", i);
      } else if (absl::IsCancelled(result.status())) {
        std::printf("[mirror-%d] stopped: %s\n", i,
                    std::string(result.status().message()).c_str());
      } else {
        std::printf("[mirror-%d] failed: %s\n", i,
                    result.status().ToString().c_str());
      }
      std::fflush(stdout);
    });
  }

  // asyncio: await asyncio.gather(*tasks, return_exceptions=True). Every
  // outcome went to a callback; kCollectAll keeps the group's status OK.
  const absl::Status status = downloads.Wait();
  const ripcord::GroupStats stats = downloads.stats();
  absl::MutexLock lock(&mu);
  std::printf("group: %s; completed=%lld failed=%lld cancelled=%lld\n",
              status.ToString().c_str(),
              static_cast<long long>(stats.completed),
              static_cast<long long>(stats.failed),
              static_cast<long long>(stats.cancelled));
  if (winner < 0) {
    std::printf("no mirror succeeded\n");
    return 1;
  }
  std::printf("winner: mirror-%d\n", winner);
  return 0;
}
