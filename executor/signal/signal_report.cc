// Copyright 2026 The ripcord Authors.
//
// signal_report.cc: formatting the SignalWatcher's stderr lines (names,
// counts, the groups and tasks shutdown waits for). What each line says and
// when it is written: docs/design/signals.md.
#include "executor/signal/signal_report.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "executor/sched/running_tasks.h"
#include "executor/sched/scheduler.h"

namespace ripcord::internal {

std::string SignalName(int signo) {
  switch (signo) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    default:
      return absl::StrCat("signal ", signo);
  }
}

std::string CountOf(int64_t n, absl::string_view noun) {
  return absl::StrCat(n, " ", noun, n == 1 ? "" : "s");
}

std::string Ordinal(int n) {
  switch (n) {
    case 1:
      return "1st";
    case 2:
      return "2nd";
    case 3:
      return "3rd";
    default:
      return absl::StrCat(n, "th");
  }
}

void WriteAll(int fd, absl::string_view s) {
  if (fd < 0) return;
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stderr closed or full: nothing better to do
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

std::string DescribeWaiting(const ExecutorImpl& executor, int64_t* tasks_out,
                            size_t max_named) {
  const std::vector<BusyGroup> busy = executor.BusyGroups();
  int64_t running = 0;
  int64_t queued = 0;
  int64_t blocking = 0;
  std::vector<std::string> shielded;
  std::vector<std::string> others;
  for (const BusyGroup& b : busy) {
    running += b.running;
    queued += b.queued;
    blocking += b.blocking;
    (b.shielded ? shielded : others).push_back(b.label);
  }
  if (tasks_out != nullptr) *tasks_out = running + queued;
  if (busy.empty()) return "nothing left running";
  // At most four names per kind: the line must stay one line.
  auto names = [](const std::vector<std::string>& v) {
    std::vector<std::string> head(v.begin(),
                                  v.begin() + std::min<size_t>(v.size(), 4));
    std::string out = absl::StrJoin(head, ", ");
    if (v.size() > 4) absl::StrAppend(&out, ", ...");
    return out;
  };
  std::vector<std::string> parts;
  if (!shielded.empty()) {
    parts.push_back(absl::StrCat(CountOf(shielded.size(), "shielded group"),
                                 " (", names(shielded), ")"));
  }
  if (!others.empty()) {
    parts.push_back(absl::StrCat(
        CountOf(others.size(), shielded.empty() ? "group" : "other group"),
        " (", names(others), ")"));
  }
  std::string tasks = absl::StrCat(CountOf(running, "task"), " running");
  if (queued > 0) absl::StrAppend(&tasks, ", ", queued, " queued");
  if (blocking > 0) {
    absl::StrAppend(&tasks, ", ", CountOf(blocking, "blocking call"),
                    " among them");
  }
  std::string out =
      absl::StrCat("waiting for ", absl::StrJoin(parts, " and "), ": ", tasks);
  if (max_named == 0) return out;
  const std::vector<RunningTask> longest = executor.RunningTasks();
  for (size_t i = 0; i < longest.size() && i < max_named; ++i) {
    absl::StrAppend(&out, i == 0 ? "; longest: " : "; ",
                    FormatRunning(longest[i]), " in ", longest[i].group_label);
  }
  if (longest.size() > max_named) {
    absl::StrAppend(&out, "; ", longest.size() - max_named, " more");
  }
  return out;
}

}  // namespace ripcord::internal
