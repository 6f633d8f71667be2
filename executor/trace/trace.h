// Copyright 2026 The ripcord Authors.
//
// trace.h: the flight recorder behind ExecutorOptions::trace_path and
// Executor::WriteTrace (API.md, "What shutdown waits for, and the flight
// recorder"): per-thread bounded rings of events, written out as Trace Event
// JSON (the format Perfetto, chrome://tracing and speedscope open).
//
// Recording (the owning thread of a ring only; the steps are named the
// active check, the scope and the append):
//  1. A hook first reads TraceActive(), one relaxed load of a process-wide
//     count of live Tracers: with tracing off, that load and a predictable
//     branch are all a task pays (once where it runs, once where a plain
//     task is spawned: SpawnPlain, spawn.h).
//  2. On, the hook asks its executor for its Tracer (null: another executor
//     of the process traces, not this one) and opens a scope: it captures
//     the group's id and name (the group may be gone once the task ran; a
//     named group's name is interned, cached per thread) and the start
//     tick (a plain task's: the one its running-task record already read,
//     PlainTraceScope). The scope's end reads the clock and appends one
//     complete event to this thread's ring (a one-entry thread-local cache,
//     else the Tracer's map under its mutex). A plain task's event holds
//     its raw site (file, line), which Write turns into its label.
//  3. Append: writing_ = n (relaxed), the slot's fields (release stores),
//     then head_ = n + 1 (release). When the ring is full the slot of event
//     n - capacity is overwritten: the newest events are kept.
// Flows: a plain task spawned inside a traced run (tls_trace_state.depth
// > 0) appends a spawn event stamped with the thread's last run boundary
// (no clock read) and carries its flow id in its TaskNode's flags; its run's
// event carries the id, and Write pairs them into "s"/"f" arrows.
// Reading (Tracer::Write, any thread, while the owners keep recording;
// the head load, the copy and the torn check):
//  1. head = head_ (acquire): events [head - capacity, head) were complete.
//  2. Copy them with acquire loads of the fields.
//  3. w = writing_ (relaxed, ordered after step 2's acquire loads): a slot
//     the owner has started to overwrite since (event j >= i + capacity) is
//     one whose copy may be torn. Every release store of event j follows
//     its writing_ = j, so a copy that read any of j's fields sees
//     writing_ >= j here: events i <= w - capacity are discarded and counted
//     dropped. This is a seqlock with the ring index as its sequence; on
//     x86 every one of these atomics is a plain mov.
// Timestamps: the TSC on x86-64 (invariant on every machine we run: the
// constant_tsc and nonstop_tsc flags; 19 ns a read, clock_gettime 40),
// mapped to CLOCK_MONOTONIC microseconds by a line through two (TSC,
// CLOCK_MONOTONIC) pairs: one taken when the Tracer starts, one when the
// file is written. Elsewhere CLOCK_MONOTONIC itself.
// Cost, on: per plain task one clock read (19 ns a read on the 2-vCPU EPYC
// VM we measure on) and about 210 instructions (120 for the run's event,
// 90 for the spawn's); off: the two active checks, about 5 instructions
// (BENCHMARKS.md has the figures). A spawn-heavy workload fills a ring
// twice as fast, with the spawn events.
//
// Named groups' activity is written as async spans derived from their
// events (Write), so recording pays nothing for them.
#ifndef RIPCORD_EXECUTOR_TRACE_H_
#define RIPCORD_EXECUTOR_TRACE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "ripcord/internal/task_node.h"

namespace ripcord::internal {

// The number of live Tracers in the process (relaxed: a gate; a hook that
// reads it stale records nothing, or asks its executor and finds no Tracer).
extern std::atomic<int> g_live_tracers;

// A plain task's flow id (Tracer::Spawn) travels in its TaskNode's flags,
// above the flag bits (task_node.h): 24 bits, 0 for none.
inline constexpr int kTraceFlowShift = 8;
static_assert(TaskNode::kOwnStop < (uint32_t{1} << kTraceFlowShift));

// Recording's active check: true if some executor of the process traces.
inline bool TraceActive() {
  return g_live_tracers.load(std::memory_order_relaxed) != 0;
}

// What an event is: the "cat" it gets in the file.
enum class TraceKind : uint8_t {
  kTask,      // "X", cat "task": one run of a task or coroutine
  kBlocking,  // "X", cat "blocking": one blocking call
  kStop,      // "i", cat "stop": a group's first stop
  kSignal,    // "i", cat "signal": a stop signal the SignalWatcher received
  kSpawn,     // a plain task's spawn: the "s" of its flow to its first run
};

// The calling thread's recording state, kept by the scopes below: how many
// traced runs it is inside, and the clock's value at its last run boundary
// (a spawn's time in its flow: inside the run that spawns, read for free).
struct TraceThreadState {
  int depth = 0;
  uint64_t last_tick = 0;
};
inline thread_local constinit TraceThreadState tls_trace_state{};

// The size of a Tracer's rings (events per thread). Tests choose another
// through TestHook::kTraceRingEvents (executor/base/test_hooks.h).
inline constexpr size_t kDefaultTraceRingEvents = size_t{1} << 16;

class TraceRing;

// Tracer: one executor's recorder. Thread-safe: every member may be called
// from any thread; Write() runs concurrently with recording.
class Tracer {
 public:
  // `path`: where the file goes at destruction and on the last signal
  // (WriteToPath). Bumps g_live_tracers.
  explicit Tracer(std::string path);
  // The Tracer of an executor whose ExecutorOptions::trace_path is
  // `trace_path`: writing there, else to $RIPCORD_TRACE; null (tracing off)
  // when both are empty.
  static std::unique_ptr<Tracer> FromOptions(std::string trace_path);
  // Frees every ring. Call once no thread records any more.
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  const std::string& path() const { return path_; }

  // The clock of every event, in ticks (see the file comment).
  static uint64_t Now() {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return MonotonicNowNanos();
#endif
  }
  // CLOCK_MONOTONIC in nanoseconds.
  static uint64_t MonotonicNowNanos();

  // A copy of `s` that lives as long as the Tracer (for labels, group names
  // and reasons that an event points to). Takes the Tracer's mutex.
  const char* Intern(std::string_view s) ABSL_LOCKS_EXCLUDED(mu_);

  // Appends a complete event ("X") to this thread's ring. `label` must
  // outlive the Tracer (a literal, a source_location's file name, or an
  // Intern()ed copy); null means "the group's name, else 'task'" for tasks
  // and "blocking" for blocking calls. `group_id` 0: no group.
  void Complete(TraceKind kind, const char* label, uint64_t group_id,
                const char* group_name, uint64_t start, uint64_t end);
  // Complete() of a plain task's run, labelled by its TaskNode's site
  // (site_file/site_line: a spawn site, or a name with line 0), which the
  // file's writer turns into text, so the run pays no lookup. `flow`: the
  // id its spawn recorded (Spawn), 0 for none.
  void CompleteSite(const char* file, uint32_t line, uint32_t flow,
                    uint64_t group_id, const char* group_name,
                    uint64_t start, uint64_t end);
  // A plain task is being spawned on this thread: inside a traced run,
  // records the spawn and returns the flow id (never 0) that its first run
  // passes to CompleteSite; outside one (no slice to draw the arrow from),
  // records nothing and returns 0.
  uint32_t Spawn();
  // `group_name` for a group's events: its Intern()ed name, null when the
  // group is unnamed. Cached per thread for the last group seen.
  const char* GroupName(uint64_t group_id, const std::string& name);
  // A group's first stop ("i", cat "stop", args.group and args.reason).
  void GroupStopped(uint64_t group_id, const std::string& name,
                    std::string_view reason);
  // A stop signal received (name: "SIGINT", ...). `last`: the process is
  // about to end, so the file is written to path() now, before returning
  // (errors go to stderr).
  void Signal(std::string_view name, bool last);

  // Writes what the rings hold now as Trace Event JSON to `path`
  // (truncating). Returns the file system's error (with the path) if the
  // file cannot be opened or written.
  [[nodiscard]] absl::Status Write(std::string_view path) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Write(path()); an error is printed to stderr, prefixed "ripcord: ".
  void WriteToPath() const;

 private:
  // This thread's ring, created on first use (LocalSlow).
  TraceRing* Local() ABSL_LOCKS_EXCLUDED(mu_);
  [[gnu::noinline]] TraceRing* LocalSlow() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string path_;
  const uint64_t serial_;  // unique per Tracer: keys the thread-local cache
  const size_t ring_events_;
  // The clock's first calibration point (see the file comment).
  const uint64_t start_ticks_;
  const int64_t start_mono_ns_;

  mutable absl::Mutex mu_;
  // Rings by thread serial (a per-thread number never reused), in creation
  // order in rings_.
  absl::flat_hash_map<uint64_t, TraceRing*> by_thread_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<TraceRing>> rings_ ABSL_GUARDED_BY(mu_);
  // Threads that recorded, by role, for their names ("ripcord-worker-N").
  absl::flat_hash_map<std::string, int> role_count_ ABSL_GUARDED_BY(mu_);
  absl::node_hash_set<std::string> strings_ ABSL_GUARDED_BY(mu_);
};

// Executor::WriteTrace: tracer->Write(path), or FailedPrecondition when
// `tracer` is null (tracing is off).
[[nodiscard]] absl::Status WriteTrace(const Tracer* tracer,
                                      std::string_view path);

// TraceScope: one complete event around a run: reads the clock at
// construction and appends the event at destruction, on the same thread. A
// null tracer records nothing. Thread-compatible (a stack object).
class TraceScope {
 public:
  // Inline, so that a traced run costs two clock reads and one call.
  TraceScope(Tracer* tracer, TraceKind kind, const char* label,
             uint64_t group_id, const std::string* group_name)
      : tracer_(tracer), kind_(kind), label_(label), group_id_(group_id) {
    if (tracer_ == nullptr) return;
    if (group_name != nullptr && !group_name->empty()) {
      group_name_ = tracer_->GroupName(group_id, *group_name);
    }
    start_ = Tracer::Now();
    TraceThreadState& t = tls_trace_state;
    ++t.depth;
    t.last_tick = start_;
  }
  ~TraceScope() {
    if (tracer_ == nullptr) return;
    const uint64_t end = Tracer::Now();
    TraceThreadState& t = tls_trace_state;
    --t.depth;
    t.last_tick = end;
    tracer_->Complete(kind_, label_, group_id_, group_name_, start_, end);
  }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  Tracer* const tracer_;
  const TraceKind kind_;
  const char* const label_;
  const uint64_t group_id_;
  const char* group_name_ = nullptr;
  uint64_t start_ = 0;
};

// PlainTraceScope: TraceScope for a plain task's run (the scheduler's
// start gate): `start` is the clock's value the gate already read for the
// running-task record (RunTick() is Tracer::Now()), so a traced run reads
// the clock once more, at its end. `t` is read here: the run frees it.
class PlainTraceScope {
 public:
  PlainTraceScope(Tracer* tracer, const TaskNode* t, uint64_t group_id,
                  const std::string& group_name, uint64_t start)
      : tracer_(tracer),
        file_(t->site_file),
        line_(t->site_line),
        flow_(t->flags >> kTraceFlowShift),
        group_id_(group_id),
        start_(start) {
    if (tracer_ == nullptr) return;
    if (!group_name.empty()) [[unlikely]] {
      group_name_ = tracer_->GroupName(group_id, group_name);
    }
    TraceThreadState& s = tls_trace_state;
    ++s.depth;
    s.last_tick = start;
  }
  ~PlainTraceScope() {
    if (tracer_ == nullptr) return;
    const uint64_t end = Tracer::Now();
    TraceThreadState& s = tls_trace_state;
    --s.depth;
    s.last_tick = end;
    tracer_->CompleteSite(file_, line_, flow_, group_id_, group_name_, start_,
                          end);
  }
  PlainTraceScope(const PlainTraceScope&) = delete;
  PlainTraceScope& operator=(const PlainTraceScope&) = delete;

 private:
  Tracer* const tracer_;
  const char* const file_;
  const uint32_t line_;
  const uint32_t flow_;
  const uint64_t group_id_;
  const char* group_name_ = nullptr;
  const uint64_t start_;
};

// BlockingTraceScope: the complete event of one job of a blocking pool
// (cat "blocking"), like TraceScope, with the label and group that the job
// gives it while it runs (NameBlockingEvent); a job that gives none is
// "blocking", without a group. A null tracer records nothing. A stack
// object on the blocking thread; one at a time per thread.
class BlockingTraceScope {
 public:
  explicit BlockingTraceScope(Tracer* tracer);
  ~BlockingTraceScope();
  BlockingTraceScope(const BlockingTraceScope&) = delete;
  BlockingTraceScope& operator=(const BlockingTraceScope&) = delete;

 private:
  friend void NameBlockingEvent(const char*, uint64_t, const std::string&);
  Tracer* const tracer_;
  const char* label_ = nullptr;
  uint64_t group_id_ = 0;
  const char* group_name_ = nullptr;
  uint64_t start_ = 0;
};

// Names the event of the blocking job running on this thread: `label` (it
// must outlive the Tracer, as Complete's), the group's id and name. Does
// nothing outside a BlockingTraceScope that records. Thread-safe (it
// touches only the calling thread's scope).
void NameBlockingEvent(const char* label, uint64_t group_id,
                       const std::string& group_name);

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_TRACE_H_
