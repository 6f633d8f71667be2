// Copyright 2026 The ripcord Authors.
//
// running_tasks.h: what runs now, for Executor::DebugString() and the
// SignalWatcher's stop-signal lines ("What shutdown waits for" in API.md).
//
// Three kinds of running task, three records:
//  - A plain task runs in a worker frame (Worker::frames, scheduler.h). Each
//    frame slot has a RunRecord beside it (Worker::runs): the start gate
//    writes the task's label and start tick after it published the frame;
//    the frame's end ends the record. The group is the frame's own key.
//    Cost per task: one rdtsc and three stores to the worker's own lines.
//  - A coroutine is listed from its first run until its context is
//    destroyed (ListCoroutine / ~CoroContext), in a sharded registry: it is
//    running while driven on a worker and suspended otherwise.
//  - A blocking call's fn runs on a blocking thread, which has one RunRecord
//    of its own (BlockingRunBegin / BlockingRunEnd), in a registry of such
//    records.
//
// "It looked at its stop": NoteStopSeen(), called only where a stop token
// (or a checkpoint) has already reported the stop, stamps every record of
// the calling thread's running tasks. So a token read stays one load while
// nothing is stopped. A task is `ignoring stop` when its group (or the task
// itself) is stopped and no stamp of its current run is newer than the
// stop.
//
// Readers (the snapshot below) take no lock that the run paths take: they
// read the records with relaxed/acquire loads and accept a torn view of a
// task that starts or ends meanwhile (a label of the next task with the
// start of the previous one, at worst); a group pointer from a record is
// only compared with live groups, never followed.
#ifndef RIPCORD_EXECUTOR_SCHED_RUNNING_TASKS_H_
#define RIPCORD_EXECUTOR_SCHED_RUNNING_TASKS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ripcord/internal/task_node.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace ripcord::internal {

class GroupState;
class ExecutorImpl;
struct CoroContext;

// CLOCK_MONOTONIC in nanoseconds. Thread-safe.
uint64_t MonotonicNanos();

// A tick: the TSC on x86 (one instruction; invariant on every x86-64 CPU
// of the last decade), else CLOCK_MONOTONIC nanoseconds. Never 0 after
// boot (0 marks "nothing"). Thread-safe.
inline uint64_t RunTick() {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return MonotonicNanos();
#endif
}

// The time since `tick` (a RunTick() value), as of now. Thread-safe.
absl::Duration SinceTick(uint64_t tick);

// One running task's record (a worker frame's, or a blocking thread's).
// Written by the running thread only; read by any.
struct RunRecord {
  // label: `file` with `line` > 0 is a spawn site; `line` == 0: `file` is
  // the task's name (static or interned: never freed).
  std::atomic<const char*> file{nullptr};
  std::atomic<uint32_t> line{0};
  std::atomic<uint64_t> start{0};   // RunTick() at the start; 0: idle
  std::atomic<uint64_t> looked{0};  // RunTick() when it last saw its stop
};
// 32 bytes: Worker::runs[slot] is one shift away.
static_assert(sizeof(RunRecord) == 32);

// Records the start of plain task `t` in `r`, its frame's record. relaxed
// stores: readers accept torn views (see above); `start` last, release.
// Nothing clears the record when the task ends: the frame's own end hides
// it (cleared, or kept by a deferred release: the worker flushes those
// before it runs anything else or searches for work, so such a stale
// record shows only between two tasks).
inline void BeginPlainRun(RunRecord& r, const TaskNode* t) {
  r.file.store(t->site_file, std::memory_order_relaxed);
  r.line.store(t->site_line, std::memory_order_relaxed);
  r.start.store(RunTick(), std::memory_order_release);
}

// Blocking calls: the calling blocking thread's record. Thread-safe.
void BlockingRunBegin(const TaskNode* call);
void BlockingRunEnd();

// Coroutines (coroutine.cc): listed at their first run; unlisted by their
// destructor. Running: being driven on a worker now. Thread-safe.
void ListCoroutine(CoroContext* ctx);
void UnlistCoroutine(CoroContext* ctx);
// Brackets a drive of `ctx` on this thread; DriveBegin returns what
// DriveEnd restores. DriveEnd does not touch ctx (an external event may
// own it by then).
const CoroContext* DriveBegin(const CoroContext* ctx);
void DriveEnd(const CoroContext* previous);

// Stamps every running task of the calling thread as having seen its stop:
// call only once a token (or checkpoint) reported the stop. Thread-safe.
[[gnu::cold]] void NoteStopSeen();

// A running task as reports show it.
struct RunningTask {
  enum Kind { kPlain, kCoroutine, kBlocking };
  const GroupState* group = nullptr;
  Kind kind = kPlain;
  std::string label;         // 'name' or file:line
  absl::Duration running;    // since it started
  bool suspended = false;    // a coroutine not being driven now
  uint64_t start = 0;        // its RunTick()
  uint64_t looked = 0;       // see RunRecord::looked
  uint32_t own_stop_ms = 0;  // a started task's own stop (StopClockMs()); 0: none
  // Set by GroupState::ResolveRunning (a group of the executor's tree).
  bool resolved = false;
  std::string group_label;
  bool ignoring = false;
  absl::Duration ignoring_for;

  // Orders by group (for equal_range over a group's tasks).
  struct ByGroup {
    bool operator()(const RunningTask& a, const RunningTask& b) const {
      return std::less<const GroupState*>()(a.group, b.group);
    }
    bool operator()(const RunningTask& a, const GroupState* g) const {
      return std::less<const GroupState*>()(a.group, g);
    }
    bool operator()(const GroupState* g, const RunningTask& b) const {
      return std::less<const GroupState*>()(g, b.group);
    }
  };
};

// Every task running in `exec` now (unordered; groups not resolved).
std::vector<RunningTask> SnapshotRunning(const ExecutorImpl& exec);

// Marks `t` ignoring when its group was stopped `stopped_ago` ago
// (InfiniteDuration: not stopped) and it has not looked since: not
// suspended, and no stamp (looked) in its current run. Thread-safe (pure).
void ResolveIgnoring(RunningTask& t, absl::Duration stopped_ago);

// "coroutine 'x.cc:12' running for 3.2s, ignoring stop for 1s"
std::string FormatRunning(const RunningTask& t);

// The label of a spawn site: "file:line" with the file's folders dropped;
// "'name'" when `line` is 0 (a name from LabelFor).
std::string SiteLabel(const char* file, uint32_t line);
// SiteLabel as a C string kept for the life of the process (the flight
// recorder's event names); null when `file` is. Cached per thread.
// Thread-safe.
const char* LabelText(const char* file, uint32_t line);

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_SCHED_RUNNING_TASKS_H_
