// Copyright 2026 The ripcord Authors.
//
// signal_report.h: the SignalWatcher's lines on stderr: signal names, counts
// and what shutdown still waits for ("waiting for 2 groups (...): 3 tasks
// running; longest: ..."). The lines' wording: docs/design/signals.md.
#ifndef RIPCORD_EXECUTOR_SIGNAL_SIGNAL_REPORT_H_
#define RIPCORD_EXECUTOR_SIGNAL_SIGNAL_REPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace ripcord::internal {

class ExecutorImpl;

// Every function here is thread-safe (DescribeWaiting reads the executor
// through its thread-safe snapshots).

// The stop-signal and progress lines name this many running tasks, longest
// first; the third signal's report names them all.
inline constexpr size_t kNamedTasks = 5;

// "SIGINT", ..., or "signal 34" for one without a name here.
std::string SignalName(int signo);

// "1 group", "3 groups": `n` and `noun`, plural unless n == 1.
std::string CountOf(int64_t n, absl::string_view noun);

// "1st", "2nd", "3rd", "4th", ... (n >= 1; 11 to 13 are not special-cased,
// as n counts signals and stops at 3).
std::string Ordinal(int n);

// Writes all of `s` to `fd` (stderr), retrying short writes and EINTR. One
// write(2) per line keeps lines whole next to other writers. fd < 0: nothing.
void WriteAll(int fd, absl::string_view s);

// "waiting for 2 groups ('a', 'b'): 3 tasks running" or "nothing left
// running". Names up to `max_named` running tasks, longest first ("; longest:
// task x.cc:12 in group 'web' running for 2s, ignoring stop for 1.5s").
// Stores the running plus queued tasks in *tasks_out unless it is null.
std::string DescribeWaiting(const ExecutorImpl& executor, int64_t* tasks_out,
                            size_t max_named);

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_SIGNAL_SIGNAL_REPORT_H_
