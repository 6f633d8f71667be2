// Copyright 2026 The ripcord Authors.
//
// The chaos harness (see chaos.h and docs/chaos.md).
//
// Structure:
//   Run()            epochs: an Executor with random sizes, `drivers` driver
//                    threads, one meddler thread (DebugString, executor
//                    stops), one watchdog for the whole run.
//   Driver::Program  one random program: a tree of groups (depth <= 6) and a
//                    list of operations drawn from DriverOp; all groups are
//                    waited, checked and destroyed leaf first at its end.
//   TaskBody         what a spawned task does, drawn from TaskKind; tasks
//                    spawn more tasks and open child groups while their
//                    budget lasts.
//   GroupRec         the harness's own tally for one group; CheckJoined()
//                    compares it with stats() and the Wait() status.
// Adding an operation is one enumerator and one case: DriverOp for what a
// driver does to its tree, TaskKind for what a task does.
//
// Synchronization in the harness uses std::mutex and std::atomic only.
#include "tests/chaos/chaos.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ripcord/ripcord.h"

namespace ripcord::chaos {
namespace {

constexpr int kMaxDepth = 6;

// ---------------------------------------------------------------------------
// Failure reporting and progress.

struct Global {
  Options options;
  absl::Time start;
  std::atomic<int64_t> progress{0};
  std::atomic<int64_t> next_id{0};
  std::atomic<int64_t> programs{0};
  std::atomic<int64_t> tasks_spawned{0};
  std::atomic<int64_t> tasks_run{0};
  std::atomic<int64_t> waits_checked{0};
  std::atomic<int64_t> handles_started{0};
  std::atomic<int64_t> outcomes_checked{0};
  std::atomic<int64_t> ondone_registered{0};  // OnDone calls with a task
  std::atomic<int64_t> ondone_ran{0};         // their callbacks, run
  std::mutex executor_mu;
  Executor* executor = nullptr;  // guarded by executor_mu; for reports
  std::mutex fail_mu;
  std::atomic<bool> tolerated_ok_after_error{false};
};

Global* g_global = nullptr;

std::string DescribeReplay() {
  const Options& o = g_global->options;
  return absl::StrCat(
      "seed ", o.seed, "; replay: ",
      o.replay_command.empty() ? ReplayCommand(o) : o.replay_command);
}

[[noreturn]] void Fail(const std::string& what) {
  std::lock_guard<std::mutex> lock(g_global->fail_mu);
  std::string tree;
  {
    std::lock_guard<std::mutex> ex_lock(g_global->executor_mu);
    if (g_global->executor != nullptr) {
      tree = g_global->executor->DebugString();
    }
  }
  std::fprintf(stderr,
               "\nCHAOS FAILURE after %.1f s: %s\n%s\n"
               "Executor::DebugString():\n%s\n",
               absl::ToDoubleSeconds(absl::Now() - g_global->start),
               what.c_str(), DescribeReplay().c_str(), tree.c_str());
  std::fflush(stderr);
  std::abort();
}

#define CHAOS_CHECK(cond, ...)                                         \
  do {                                                                 \
    if (!(cond)) Fail(absl::StrCat("CHECK(" #cond ") ", __VA_ARGS__)); \
  } while (false)

void Progress() { g_global->progress.fetch_add(1, std::memory_order_relaxed); }

int64_t NextId() { return g_global->next_id.fetch_add(1) + 1; }

// ---------------------------------------------------------------------------
// The harness's tally of one group.

struct BlockingRec {
  std::atomic<int> dones{0};
  std::atomic<bool> fn_ran{false};
  absl::Status fn_status;  // written by fn before it returns
};

struct HandleRec;

struct GroupRec {
  GroupRec(const GroupOptions& o, int d)
      : name(o.name),
        depth(d),
        shielded(o.shielded),
        collect_all(o.on_failure == FailurePolicy::kCollectAll),
        limit(o.max_concurrency) {}
  const std::string name;
  const int depth;
  const bool shielded;         // as created (for reports)
  const bool collect_all;      // FailurePolicy::kCollectAll
  const int limit;             // max_concurrency (0: none)
  TaskGroup* group = nullptr;  // set right after construction

  // Tasks of the group inside the harness's slot window right now: a plain
  // task or blocking fn from TaskStarts to TaskEnds, a coroutine until its
  // first co_await. That window lies inside the library's slot, so this
  // never exceeds `limit`.
  std::atomic<int> running_now{0};

  std::atomic<int64_t> spawned{0};
  std::atomic<int64_t> started{0};
  std::atomic<int64_t> finished{0};
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> failed{0};     // non-OK and not a CancelledError
  std::atomic<int64_t> cancelled{0};  // CancelledError after a seen stop
  std::atomic<int64_t> ambiguous{0};  // CancelledError, stop not seen
  // Set when a Wait() of the group returned and it is not reopened: no task
  // of the group may start then.
  std::atomic<bool> sealed{false};

  std::mutex mu;
  std::vector<std::string> errors;       // messages of failing tasks
  std::vector<std::string> ambiguities;  // messages of ambiguous ones
  // Ambiguous ones of started tasks: a stop through the handle may have
  // been what the library saw, and that fails nothing.
  std::vector<std::string> started_ambiguities;
  std::vector<std::unique_ptr<BlockingRec>> blocking;
  std::vector<std::shared_ptr<HandleRec>> handles;  // tasks Start()ed here

  BlockingRec* AddBlocking() {
    std::lock_guard<std::mutex> lock(mu);
    blocking.push_back(std::make_unique<BlockingRec>());
    return blocking.back().get();
  }
};

// A task (or blocking fn) starts: count it, and check its group was not
// already joined.
// It also enters the group's slot window (see GroupRec::running_now).
void TaskStarts(GroupRec* g) {
  CHAOS_CHECK(!g->sealed.load(), "a task of group '", g->name,
              "' started after its Wait() returned");
  g->started.fetch_add(1);
  g_global->tasks_run.fetch_add(1, std::memory_order_relaxed);
  const int now = g->running_now.fetch_add(1) + 1;
  CHAOS_CHECK(g->limit == 0 || now <= g->limit, now, " tasks of group '",
              g->name, "' run at once; max_concurrency ", g->limit);
}

// A task leaves the slot window (a coroutine before its first co_await).
void LeaveSlot(GroupRec* g) { g->running_now.fetch_sub(1); }

// A task ends with `s`; `saw_stop` is its token's stop_requested() read
// after s was decided. `fails_group`: a task's error fails its group, a
// blocking fn's does not (done decides). `started`: a task started with a
// handle.
void TaskEnds(GroupRec* g, const absl::Status& s, bool saw_stop,
              bool fails_group, bool in_slot = true, bool started = false) {
  if (in_slot) LeaveSlot(g);
  if (s.ok()) {
    g->ok.fetch_add(1);
  } else if (absl::IsCancelled(s) && saw_stop) {
    g->cancelled.fetch_add(1);
  } else if (absl::IsCancelled(s)) {
    // The group may or may not have been stopped when the library looked.
    g->ambiguous.fetch_add(1);
    if (fails_group) {
      std::lock_guard<std::mutex> lock(g->mu);
      (started ? g->started_ambiguities : g->ambiguities)
          .push_back(std::string(s.message()));
    }
  } else {
    g->failed.fetch_add(1);
    if (fails_group) {
      std::lock_guard<std::mutex> lock(g->mu);
      g->errors.push_back(std::string(s.message()));
    }
  }
  g->finished.fetch_add(1);
}

// The harness's record of one task started with TaskGroup::Start. Shared by
// the task's callable, the group's tally and every OnDone callback, so it
// outlives the group when a handle does.
struct HandleRec {
  HandleRec(int64_t i, bool v, const GroupRec* g)
      : id(i), value(v), group(g), group_name(g->name) {}
  const int64_t id;
  const bool value;         // TaskHandle<int64_t> (id on OK), else <void>
  const GroupRec* group;    // identity only: never read after its Wait()
  const std::string group_name;
  std::atomic<bool> ran{false};  // f (or its coroutine) started
  absl::Status returned;         // what f returned; written before it ends
  std::atomic<int> takes{0};     // outcomes taken (must end at <= 1)
  std::atomic<bool> ondone_registered{false};
  std::atomic<int> ondone_runs{0};
};

absl::Status StatusOf(const absl::Status& s) { return s; }
absl::Status StatusOf(const absl::StatusOr<int64_t>& s) { return s.status(); }

// The outcome of a started task, taken by Wait(), Join(), OnDone() or
// WaitAll(): what f returned (UnknownError with what() for a throw; the
// id as the value); CancelledError when f returned one (the message may be
// replaced by the stop's cause); CancelledError naming a stop (a chaos
// reason or a timeout) when f never ran.
template <class O>
void CheckOutcome(HandleRec* h, const O& out) {
  g_global->outcomes_checked.fetch_add(1, std::memory_order_relaxed);
  const absl::Status s = StatusOf(out);
  const std::string where =
      absl::StrCat(" (started task ", h->id, " of group '", h->group_name,
                   "', outcome ", s.ToString(), ")");
  const int takes = h->takes.fetch_add(1) + 1;
  CHAOS_CHECK(takes == 1, "an outcome taken ", takes, " times", where);
  if (h->ran.load()) {
    const absl::Status& r = h->returned;
    if (absl::IsCancelled(r)) {
      CHAOS_CHECK(absl::IsCancelled(s), "f returned ", r.ToString(), where);
    } else {
      CHAOS_CHECK(s.code() == r.code() &&
                      absl::StrContains(s.message(), r.message()),
                  "f returned ", r.ToString(), where);
    }
    if constexpr (!std::is_same_v<O, absl::Status>) {
      if (s.ok()) CHAOS_CHECK(*out == h->id, "value ", *out, where);
    }
  } else {
    CHAOS_CHECK(absl::IsCancelled(s) &&
                    (absl::StrContains(s.message(), "chaos") ||
                     absl::StrContains(s.message(), "timeout")),
                "f never ran, and the outcome names no stop", where);
  }
}

// A handle that was taken (or emptied): Wait() and OnDone() give
// FailedPrecondition at once.
template <class T>
void CheckTaken(TaskHandle<T>& h) {
  CHAOS_CHECK(!h.valid(), "a taken handle is valid()");
  const absl::Status w = StatusOf(h.Wait());
  CHAOS_CHECK(absl::IsFailedPrecondition(w), "Wait() on a taken handle: ",
              w.ToString());
  bool ran = false;
  h.OnDone([&ran](auto out) {
    ran = true;
    CHAOS_CHECK(absl::IsFailedPrecondition(StatusOf(out)),
                "OnDone on a taken handle received ",
                StatusOf(out).ToString());
  });
  CHAOS_CHECK(ran, "OnDone on a taken handle did not run at once");
}

// Registers an OnDone callback that checks the outcome and counts its runs.
template <class T>
void OnDoneChecked(TaskHandle<T>& h, const std::shared_ptr<HandleRec>& rec) {
  if (!h.valid()) {
    CheckTaken(h);
    return;
  }
  rec->ondone_registered.store(true);
  g_global->ondone_registered.fetch_add(1);
  h.OnDone([rec](auto out) {
    const int runs = rec->ondone_runs.fetch_add(1) + 1;
    CHAOS_CHECK(runs == 1, "OnDone ran ", runs, " times (started task ",
                rec->id, ")");
    CheckOutcome(rec.get(), out);
    g_global->ondone_ran.fetch_add(1);
  });
  CHAOS_CHECK(!h.valid(), "valid() after OnDone");
}

// One started task's handle, of either type, with its record.
struct HeldHandle {
  std::shared_ptr<HandleRec> rec;
  TaskHandle<void> v;
  TaskHandle<int64_t> i;

  bool valid() const { return rec->value ? i.valid() : v.valid(); }
  bool done() const { return rec->value ? i.done() : v.done(); }
  void RequestStop(const std::string& reason) {
    if (rec->value) {
      i.RequestStop(reason);
    } else {
      v.RequestStop(reason);
    }
  }
  // Blocks until the task ended (never call it from a plain task on a task
  // that may not have started).
  void WaitChecked() {
    if (!valid()) {
      if (rec->value) CheckTaken(i); else CheckTaken(v);
      return;
    }
    if (rec->value) {
      CheckOutcome(rec.get(), i.Wait());
    } else {
      CheckOutcome(rec.get(), v.Wait());
    }
    CHAOS_CHECK(!valid() && done(), "after Wait(): valid() ", valid(),
                " done() ", done());
  }
  void OnDone() {
    if (rec->value) {
      OnDoneChecked(i, rec);
    } else {
      OnDoneChecked(v, rec);
    }
  }
};

void CheckStats(const GroupStats& s, const std::string& name) {
  CHAOS_CHECK(s.spawned >= 0 && s.completed >= 0 && s.failed >= 0 &&
                  s.cancelled >= 0 && s.running >= 0 && s.queued >= 0,
              "negative stats of '", name, "'");
}

bool ContainsAny(const std::string& message,
                 const std::vector<std::string>& tags) {
  for (const std::string& t : tags) {
    if (absl::StrContains(message, t)) return true;
  }
  return false;
}

// The invariants after a Wait() (or Join(), or WaitFor() that did not time
// out) of g returned `st`. `stopped_before`: g.stop_requested() read
// before the wait began.
void CheckJoined(GroupRec* g, const absl::Status& st, bool stopped_before) {
  g_global->waits_checked.fetch_add(1, std::memory_order_relaxed);
  const std::string where =
      absl::StrCat(" (group '", g->name, "', Wait() ", st.ToString(), ")");
  CHAOS_CHECK(!absl::IsFailedPrecondition(st), where);
  CHAOS_CHECK(!absl::IsDeadlineExceeded(st), where);
  g->sealed.store(true);
  const GroupStats s = g->group->stats();
  CheckStats(s, g->name);
  CHAOS_CHECK(s.running == 0 && s.queued == 0, "running ", s.running,
              " queued ", s.queued, " after Wait()", where);
  CHAOS_CHECK(s.spawned == s.completed + s.failed + s.cancelled, "spawned ",
              s.spawned, " != completed ", s.completed, " + failed ", s.failed,
              " + cancelled ", s.cancelled, where);
  const int64_t spawned = g->spawned.load();
  const int64_t started = g->started.load();
  const int64_t finished = g->finished.load();
  const int64_t ambiguous = g->ambiguous.load();
  if (g_global->options.exact_spawned) {
    CHAOS_CHECK(s.spawned == spawned, "stats().spawned ", s.spawned,
                " but the harness spawned ", spawned, where);
  }
  CHAOS_CHECK(started == finished, started - finished,
              " task(s) still running after Wait()", where);
  const int64_t dropped = spawned - started;
  CHAOS_CHECK(s.completed == g->ok.load(), "stats().completed ", s.completed,
              " but ", g->ok.load(), " task(s) returned OK", where);
  const int64_t failed = g->failed.load();
  CHAOS_CHECK(s.failed >= failed && s.failed <= failed + ambiguous,
              "stats().failed ", s.failed, " but the harness saw ", failed,
              " failing and ", ambiguous, " ambiguous", where);
  const int64_t cancelled = dropped + g->cancelled.load();
  if (g_global->options.exact_spawned) {
    CHAOS_CHECK(
        s.cancelled >= cancelled && s.cancelled <= cancelled + ambiguous,
        "stats().cancelled ", s.cancelled, " but the harness saw ", dropped,
        " dropped, ", g->cancelled.load(), " cancelled and ", ambiguous,
        " ambiguous", where);
  }
  std::vector<std::string> errors, ambiguities, started_ambiguities;
  {
    std::lock_guard<std::mutex> lock(g->mu);
    errors = g->errors;
    ambiguities = g->ambiguities;
    started_ambiguities = g->started_ambiguities;
    for (const auto& b : g->blocking) {
      CHAOS_CHECK(b->dones.load() == 1, "a done callback ran ", b->dones.load(),
                  " times by the time Wait() returned", where);
    }
    for (const auto& h : g->handles) {
      if (h->ondone_registered.load()) {
        CHAOS_CHECK(h->ondone_runs.load() == 1, "OnDone of started task ",
                    h->id, " ran ", h->ondone_runs.load(),
                    " times by the time Wait() returned", where);
      }
    }
  }
  // Wait()'s status: the first error, else the stop's cause, else OK.
  const std::string message(st.message());
  if (g->collect_all) {
    // kCollectAll: OK unless stopped, then the stop's cause; failures only
    // in stats() (checked above) and handles.
    if (!st.ok()) {
      CHAOS_CHECK(absl::IsCancelled(st), "kCollectAll", where);
      CHAOS_CHECK(g->group->stop_requested(),
                  "kCollectAll: CancelledError from a group that is not "
                  "stopped",
                  where);
      CHAOS_CHECK(absl::StrContains(message, "chaos") ||
                      absl::StrContains(message, "timeout"),
                  "a stop without its cause", where);
    }
  } else if (!errors.empty() && st.ok() &&
             !g_global->options.check_stop_visible) {
    // The same open bug as check_stop_visible: the failing task's Stop()
    // returned before the stop bit was set (another Stop() was recording
    // the first stop), and Wait() reads "not stopped" as OK.
    if (!g_global->tolerated_ok_after_error.exchange(true)) {
      std::fprintf(stderr,
                   "chaos: note: Wait() returned OK after a task of '%s' "
                   "failed (tolerated: --check_stop_visible=false)\n",
                   g->name.c_str());
    }
  } else if (!errors.empty()) {
    CHAOS_CHECK(!st.ok() && (ContainsAny(message, errors) ||
                             (absl::IsCancelled(st) &&
                              (ContainsAny(message, ambiguities) ||
                               ContainsAny(message, started_ambiguities)))),
                "a task failed but Wait() does not return its error", where);
  } else if (!ambiguities.empty()) {
    CHAOS_CHECK(absl::IsCancelled(st), where);
  } else if (!st.ok() && !(absl::IsCancelled(st) &&
                            ContainsAny(message, started_ambiguities))) {
    CHAOS_CHECK(absl::IsCancelled(st), "an error nobody returned", where);
    CHAOS_CHECK(g->group->stop_requested(),
                "CancelledError from a group that is not stopped", where);
    CHAOS_CHECK(absl::StrContains(message, "chaos") ||
                    absl::StrContains(message, "timeout"),
                "a stop without its cause", where);
  }
  if (stopped_before) {
    CHAOS_CHECK(!st.ok(), "OK from a group stopped before Wait()", where);
  }
}

// ---------------------------------------------------------------------------
// Random choices.

using Rng = std::mt19937_64;

int Uniform(Rng& rng, int lo, int hi) {  // [lo, hi]
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}
bool Chance(Rng& rng, int percent) { return Uniform(rng, 1, 100) <= percent; }

GroupOptions RandomGroupOptions(Rng& rng, const std::string& name) {
  GroupOptions o;
  o.name = name;
  o.shielded = Chance(rng, 20);
  if (Chance(rng, 30)) o.timeout = absl::Milliseconds(Uniform(rng, 0, 20));
  if (g_global->options.collect_all && Chance(rng, 25)) {
    o.on_failure = FailurePolicy::kCollectAll;
  }
  if (g_global->options.max_concurrency && Chance(rng, 20)) {
    o.max_concurrency = Uniform(rng, 1, 3);
  }
  return o;
}

void Stop(TaskGroup& group, const std::string& reason) {
  group.RequestStop(reason);
  if (g_global->options.check_stop_visible) {
    CHAOS_CHECK(group.stop_requested(), "stop_requested() false after ",
                "RequestStop() returned, group '", group.name(), "'");
  }
}

// ---------------------------------------------------------------------------
// Tasks.

// What a spawned task does. Adding one is an enumerator and a case in
// TaskBody::Run (plain) or RunCoroutine (coroutine kinds).
enum class TaskKind {
  kVoid,         // void(StopToken), a little work
  kOk,           // absl::Status(): OkStatus
  kFail,         // returns an error
  kThrow,        // throws
  kSpin,         // spins on its token for up to 5 ms
  kSleepFor,     // SleepFor(0-2 ms, token), returns its status
  kSpawner,      // spawns 1-3 more tasks into its own group
  kChildGroup,   // opens a child group, fills it, maybe waits or stops it
  kSelfWait,     // Wait() on its own group: FailedPrecondition
  kStopOwn,      // RequestStop() on its own group
  kStats,        // stats() and Executor::DebugString()
  kParallelFor,  // ParallelFor over its own group
  kBlocking,     // SpawnBlocking into its own group
  kCoroutine,    // a coroutine task (below)
  kSleeper,      // a coroutine that only sleeps (0-10 ms, 1-3 times)
  kStartHandles,  // Start 1-3 tasks into its own group; stop, OnDone, drop
  kAwaitHandles,  // a coroutine: Start 1-3 tasks, stop some, Join them
  kNumKinds
};

void SpawnRandom(Executor& ex, GroupRec* g, Rng& rng, int budget);
HeldHandle StartInto(Executor& ex, GroupRec* g, Rng& rng, int budget);
void SpawnBlockingInto(GroupRec* g, Rng& rng);
void FillChild(Executor& ex, GroupRec* g, Rng& rng, int budget);

// A plain task: trivially copyable, so the callable has no destructor
// (unless wrapped with a keep-alive below).
struct TaskBody {
  Executor* ex;
  GroupRec* g;
  uint64_t seed;
  int budget;
  TaskKind kind;
  int64_t id;
  bool started = false;  // with a handle (TaskEnds)

  absl::Status Run(StopToken token) const {
    TaskStarts(g);
    Rng rng(seed);
    absl::Status s = Body(token, rng);
    const bool saw_stop = token.stop_requested();
    if (kind == TaskKind::kThrow) {
      const std::string what = absl::StrCat("chaos-throw-", id, "#");
      TaskEnds(g, absl::UnknownError(what), saw_stop, true, true, started);
      throw std::runtime_error(what);
    }
    TaskEnds(g, s, saw_stop, true, true, started);
    return s;
  }

  absl::Status Body(StopToken token, Rng& rng) const {
    switch (kind) {
      case TaskKind::kVoid:
      case TaskKind::kThrow: {
        volatile int x = 0;
        for (int i = 0; i < Uniform(rng, 0, 2000); ++i) x = x + i;
        return absl::OkStatus();
      }
      case TaskKind::kOk:
        return absl::OkStatus();
      case TaskKind::kFail:
        return absl::InternalError(absl::StrCat("chaos-fail-", id, "#"));
      case TaskKind::kSpin: {
        const absl::Time deadline =
            absl::Now() + absl::Microseconds(Uniform(rng, 0, 5000));
        while (!token.stop_requested() && absl::Now() < deadline) {
        }
        if (token.stop_requested()) {
          return absl::CancelledError("chaos-spin saw its stop");
        }
        return absl::OkStatus();
      }
      case TaskKind::kSleepFor: {
        absl::Status s =
            SleepFor(absl::Microseconds(Uniform(rng, 0, 2000)), token);
        if (absl::IsCancelled(s)) {
          CHAOS_CHECK(token.stop_requested(),
                      "SleepFor returned CancelledError on a live token");
        }
        return s;
      }
      case TaskKind::kSpawner:
        for (int i = Uniform(rng, 1, 3); i > 0; --i) {
          SpawnRandom(*ex, g, rng, budget - 1);
        }
        return absl::OkStatus();
      case TaskKind::kChildGroup: {
        if (g->depth >= kMaxDepth) return absl::OkStatus();
        GroupOptions o =
            RandomGroupOptions(rng, absl::StrCat(g->name, "/t", id));
        GroupRec rec(o, g->depth + 1);
        GroupRec* r = &rec;
        TaskGroup child(*g->group, o);
        r->group = &child;
        FillChild(*ex, r, rng, budget - 1);
        if (Chance(rng, 20)) Stop(child, absl::StrCat("chaos-stop-", id));
        if (g_global->options.destroy_unwaited && Chance(rng, 25)) {
          // Joined by its destructor, silently.
          return absl::OkStatus();
        }
        const bool stopped_before = child.stop_requested();
        absl::Status s = child.Wait();
        CheckJoined(r, s, stopped_before);
        // Pass the child's outcome on, or not.
        return Chance(rng, 50) ? s : absl::OkStatus();
      }
      case TaskKind::kSelfWait: {
        absl::Status s = g->group->Wait();
        CHAOS_CHECK(absl::IsFailedPrecondition(s),
                    "Wait() from a task of the group returned ", s.ToString());
        return absl::OkStatus();
      }
      case TaskKind::kStopOwn:
        Stop(*g->group, absl::StrCat("chaos-task-stop-", id));
        return absl::OkStatus();
      case TaskKind::kStats:
        CheckStats(g->group->stats(), g->name);
        CHAOS_CHECK(!ex->DebugString().empty(), "empty DebugString()");
        return absl::OkStatus();
      case TaskKind::kParallelFor: {
        const int n = Uniform(rng, 0, 300);
        std::vector<std::atomic<int>> hits(n);
        ParallelForOptions o;
        o.grain = Uniform(rng, 0, 16);
        o.group.name = absl::StrCat(g->name, "/pf", id);
        absl::Status s = ParallelFor(
            *g->group, 0, n,
            [&hits](int lo, int hi) {
              for (int i = lo; i < hi; ++i) hits[i].fetch_add(1);
            },
            o);
        for (int i = 0; i < n; ++i) {
          CHAOS_CHECK(hits[i].load() <= 1, "ParallelFor ran index ", i, " ",
                      hits[i].load(), " times");
          if (s.ok()) {
            CHAOS_CHECK(hits[i].load() == 1,
                        "ParallelFor returned OK but "
                        "skipped index ",
                        i);
          }
        }
        CHAOS_CHECK(s.ok() || absl::IsCancelled(s),
                    "ParallelFor: ", s.ToString());
        if (!s.ok()) {
          // A started task's own token follows its group's stop through a
          // StopCallback, a moment later than the group's children do.
          CHAOS_CHECK(token.stop_requested() || g->group->stop_requested(),
                      "ParallelFor cancelled, its parent is not stopped: ",
                      s.ToString());
        }
        return s;
      }
      case TaskKind::kBlocking:
        SpawnBlockingInto(g, rng);
        return absl::OkStatus();
      case TaskKind::kStartHandles: {
        // A plain task never blocks on a sibling that may not have started
        // (with every worker so blocked, nothing would run it); it takes
        // an outcome only once done() says the task ended.
        for (int i = Uniform(rng, 1, 3); i > 0; --i) {
          HeldHandle h = StartInto(*ex, g, rng, budget - 1);
          switch (Uniform(rng, 0, 4)) {
            case 0:
              h.RequestStop(absl::StrCat("chaos-hstop-", id));
              break;
            case 1:
              h.OnDone();
              break;
            case 2:
              if (h.done()) h.WaitChecked();
              break;
            case 3:
              h.RequestStop(absl::StrCat("chaos-hstop-", id));
              h.OnDone();
              break;
            default:  // dropped
              break;
          }
        }
        return absl::OkStatus();
      }
      case TaskKind::kCoroutine:
      case TaskKind::kSleeper:
      case TaskKind::kAwaitHandles:
      case TaskKind::kNumKinds:
        break;
    }
    return absl::OkStatus();
  }
};

// A coroutine task: a random list of Sleep, Yield, Blocking, a child group
// joined with Join, and stats().
Task<absl::Status> RunCoroutine(Executor* ex, GroupRec* g, uint64_t seed,
                                int budget, int64_t id, StopToken token,
                                bool started) {
  TaskStarts(g);
  // The slot window ends at the first co_await: a resumed coroutine may run
  // without a slot once its group is stopped.
  bool in_slot = true;
  const auto leave = [&in_slot, g] {
    if (in_slot) LeaveSlot(g);
    in_slot = false;
  };
  Rng rng(seed);
  absl::Status result;
  for (int step = Uniform(rng, 1, 5); step > 0 && result.ok(); --step) {
    switch (Uniform(rng, 0, 4)) {
      case 0: {
        leave();
        absl::Status s =
            co_await Sleep(absl::Microseconds(Uniform(rng, 0, 2000)));
        if (!s.ok()) {
          CHAOS_CHECK(absl::IsCancelled(s) && token.stop_requested(),
                      "Sleep returned ", s.ToString(), " on a live token");
        }
        result = s;
        break;
      }
      case 1: {
        leave();
        absl::Status s = co_await Yield();
        if (!s.ok()) {
          CHAOS_CHECK(absl::IsCancelled(s) && token.stop_requested(),
                      "Yield returned ", s.ToString(), " on a live token");
        }
        result = s;
        break;
      }
      case 2: {
        // By reference: gcc 12 destroys a by-value capture of a Blocking
        // temporary twice.
        const int us = Uniform(rng, 0, 1000);
        leave();
        absl::Status s = co_await Blocking(
            [&us](StopToken t) { return SleepFor(absl::Microseconds(us), t); });
        if (!s.ok()) {
          CHAOS_CHECK(absl::IsCancelled(s) && token.stop_requested(),
                      "Blocking returned ", s.ToString(), " on a live token");
        }
        result = s;
        break;
      }
      case 3: {
        if (g->depth >= kMaxDepth || budget <= 0) break;
        GroupOptions o =
            RandomGroupOptions(rng, absl::StrCat(g->name, "/c", id, "-", step));
        GroupRec rec(o, g->depth + 1);
        TaskGroup child(*g->group, o);
        rec.group = &child;
        FillChild(*ex, &rec, rng, budget - 1);
        const bool stopped_before = child.stop_requested();
        leave();
        absl::Status s = co_await child.Join();
        CheckJoined(&rec, s, stopped_before);
        if (Chance(rng, 30)) result = s;
        break;
      }
      default:
        CheckStats(g->group->stats(), g->name);
        break;
    }
  }
  const bool saw_stop = token.stop_requested();
  TaskEnds(g, result, saw_stop, true, in_slot, started);
  co_return result;
}

// A coroutine that starts 1-3 tasks into its own group, stops some of them
// (before or after a short Sleep), and takes their outcomes with
// co_await Join() (then checks that a second Join() fails at once), OnDone,
// or drops the handle.
Task<absl::Status> RunAwaitHandles(Executor* ex, GroupRec* g, uint64_t seed,
                                   int budget, int64_t id, StopToken token,
                                   bool started) {
  TaskStarts(g);
  Rng rng(seed);
  std::vector<HeldHandle> handles;
  for (int i = Uniform(rng, 1, 3); i > 0; --i) {
    handles.push_back(StartInto(*ex, g, rng, budget - 1));
    if (Chance(rng, 25)) {
      handles.back().RequestStop(absl::StrCat("chaos-hstop-", id));
    }
  }
  LeaveSlot(g);
  absl::Status result;
  if (Chance(rng, 50)) {
    result = co_await Sleep(absl::Microseconds(Uniform(rng, 0, 1000)));
    if (!result.ok()) {
      CHAOS_CHECK(absl::IsCancelled(result) && token.stop_requested(),
                  "Sleep returned ", result.ToString(), " on a live token");
    }
  }
  for (HeldHandle& h : handles) {
    if (Chance(rng, 25)) h.RequestStop(absl::StrCat("chaos-hstop-", id));
    const int what = Uniform(rng, 0, 9);
    if (what < 6) {
      if (h.rec->value) {
        CheckOutcome(h.rec.get(), co_await h.i.Join());
        absl::StatusOr<int64_t> again = co_await h.i.Join();
        CHAOS_CHECK(absl::IsFailedPrecondition(again.status()),
                    "a second Join(): ", again.status().ToString());
      } else {
        CheckOutcome(h.rec.get(), co_await h.v.Join());
        absl::Status again = co_await h.v.Join();
        CHAOS_CHECK(absl::IsFailedPrecondition(again),
                    "a second Join(): ", again.ToString());
      }
      CHAOS_CHECK(h.done() && !h.valid(), "after Join(): done() ", h.done(),
                  " valid() ", h.valid());
    } else if (what < 8) {
      h.OnDone();
    }  // else dropped
  }
  TaskEnds(g, result, token.stop_requested(), true, /*in_slot=*/false,
           started);
  co_return result;
}

// A coroutine that sleeps 1-3 times for 0-10 ms: many of them suspended
// at once are what a stop's sweep cancels in batches.
Task<absl::Status> RunSleeper(GroupRec* g, uint64_t seed, StopToken token) {
  TaskStarts(g);
  LeaveSlot(g);
  Rng rng(seed);
  absl::Status result;
  for (int i = Uniform(rng, 1, 3); i > 0 && result.ok(); --i) {
    result = co_await Sleep(absl::Microseconds(Uniform(rng, 0, 10000)));
    if (!result.ok()) {
      CHAOS_CHECK(absl::IsCancelled(result) && token.stop_requested(),
                  "Sleep returned ", result.ToString(), " on a live token");
    }
  }
  TaskEnds(g, result, token.stop_requested(), true, /*in_slot=*/false);
  co_return result;
}

void SpawnSleeper(GroupRec* g, Rng& rng) {
  const uint64_t seed = rng();
  g->spawned.fetch_add(1);
  g_global->tasks_spawned.fetch_add(1, std::memory_order_relaxed);
  g->group->Spawn([g, seed](StopToken t) { return RunSleeper(g, seed, t); });
}

TaskKind RandomKind(Rng& rng, int budget) {
  while (true) {
    const auto kind = static_cast<TaskKind>(
        Uniform(rng, 0, static_cast<int>(TaskKind::kNumKinds) - 1));
    const bool nests =
        kind == TaskKind::kSpawner || kind == TaskKind::kChildGroup ||
        kind == TaskKind::kParallelFor || kind == TaskKind::kCoroutine ||
        kind == TaskKind::kStartHandles || kind == TaskKind::kAwaitHandles;
    const bool handles =
        kind == TaskKind::kStartHandles || kind == TaskKind::kAwaitHandles;
    if (budget <= 0 && nests) continue;
    if (!g_global->options.handles && handles) continue;
    return kind;
  }
}

// The coroutine a coroutine kind runs (kCoroutine, kAwaitHandles).
Task<absl::Status> CoroutineOf(TaskKind kind, Executor* ex, GroupRec* g,
                               uint64_t seed, int budget, int64_t id,
                               StopToken t, bool started) {
  if (kind == TaskKind::kAwaitHandles) {
    return RunAwaitHandles(ex, g, seed, budget, id, t, started);
  }
  return RunCoroutine(ex, g, seed, budget, id, t, started);
}

// A started coroutine: records that it ran and what it returned around the
// task's coroutine, awaited inline.
Task<absl::Status> StartedCoroutine(std::shared_ptr<HandleRec> h,
                                    Task<absl::Status> inner) {
  h->ran.store(true);
  absl::Status s = co_await std::move(inner);
  h->returned = s;
  co_return s;
}

Task<absl::StatusOr<int64_t>> StartedValueCoroutine(
    std::shared_ptr<HandleRec> h, Task<absl::Status> inner) {
  h->ran.store(true);
  absl::Status s = co_await std::move(inner);
  h->returned = s;
  if (!s.ok()) co_return s;
  co_return h->id;
}

// Starts one random task into g (TaskGroup::Start) and returns its handle:
// plain or coroutine, TaskHandle<void> or TaskHandle<int64_t> (the task's
// id), named or not.
HeldHandle StartInto(Executor& ex, GroupRec* g, Rng& rng, int budget) {
  TaskKind kind = RandomKind(rng, budget);
  if (kind == TaskKind::kSleeper) kind = TaskKind::kCoroutine;
  if (kind == TaskKind::kCoroutine && budget <= 0) kind = TaskKind::kSleepFor;
  const int64_t id = NextId();
  const uint64_t seed = rng();
  const bool value = Chance(rng, 50);
  HeldHandle held;
  held.rec = std::make_shared<HandleRec>(id, value, g);
  {
    std::lock_guard<std::mutex> lock(g->mu);
    g->handles.push_back(held.rec);
  }
  g->spawned.fetch_add(1);
  g_global->tasks_spawned.fetch_add(1, std::memory_order_relaxed);
  g_global->handles_started.fetch_add(1, std::memory_order_relaxed);
  TaskOptions to;
  if (Chance(rng, 50)) to.name = absl::StrCat("t", id);
  TaskGroup& group = *g->group;
  Executor* exp = &ex;
  std::shared_ptr<HandleRec> h = held.rec;
  if (kind == TaskKind::kCoroutine || kind == TaskKind::kAwaitHandles) {
    if (value) {
      held.i = group.Start(
          [exp, g, seed, budget, id, kind, h](StopToken t) {
            return StartedValueCoroutine(
                h, CoroutineOf(kind, exp, g, seed, budget, id, t, true));
          },
          to);
    } else {
      held.v = group.Start(
          [exp, g, seed, budget, id, kind, h](StopToken t) {
            return StartedCoroutine(
                h, CoroutineOf(kind, exp, g, seed, budget, id, t, true));
          },
          to);
    }
    return held;
  }
  const TaskBody body{exp, g, seed, budget, kind, id, /*started=*/true};
  const auto run = [body, h](StopToken t) -> absl::Status {
    h->ran.store(true);
    try {
      absl::Status s = body.Run(t);
      h->returned = s;
      return s;
    } catch (const std::exception& e) {
      h->returned = absl::UnknownError(e.what());
      throw;
    }
  };
  if (value) {
    held.i = group.Start(
        [run, id](StopToken t) -> absl::StatusOr<int64_t> {
          absl::Status s = run(t);
          if (!s.ok()) return s;
          return id;
        },
        to);
  } else if (Chance(rng, 50)) {
    held.v = group.Start(run, to);  // an lvalue callable: copied
  } else {
    held.v = group.Start([run](StopToken t) { return run(t); }, to);
  }
  return held;
}

void SpawnRandom(Executor& ex, GroupRec* g, Rng& rng, int budget) {
  const TaskKind kind = RandomKind(rng, budget);
  if (kind == TaskKind::kSleeper) {
    SpawnSleeper(g, rng);
    return;
  }
  const int64_t id = NextId();
  const uint64_t seed = rng();
  g->spawned.fetch_add(1);
  g_global->tasks_spawned.fetch_add(1, std::memory_order_relaxed);
  TaskGroup& group = *g->group;
  Executor* exp = &ex;
  if (kind == TaskKind::kCoroutine || kind == TaskKind::kAwaitHandles) {
    group.Spawn([exp, g, seed, budget, id, kind](StopToken t) {
      return CoroutineOf(kind, exp, g, seed, budget, id, t, false);
    });
    return;
  }
  const TaskBody body{exp, g, seed, budget, kind, id};
  switch (Uniform(rng, 0, 3)) {
    case 0:  // trivially destructible, with a token
      group.Spawn([body](StopToken t) { return body.Run(t); });
      break;
    case 1:  // a callable with a destructor
      group.Spawn([body, keep = std::make_shared<int>(1)](StopToken t) {
        return body.Run(t);
      });
      break;
    case 2: {  // void, no token (the error is recorded, then dropped:
               // only for kinds that cannot fail)
      if (kind == TaskKind::kFail || kind == TaskKind::kSleepFor ||
          kind == TaskKind::kSpin || kind == TaskKind::kChildGroup ||
          kind == TaskKind::kParallelFor) {
        group.Spawn([body](StopToken t) { return body.Run(t); });
      } else {
        StopToken t = group.stop_token();
        group.Spawn([body, t] { (void)body.Run(t); });
      }
      break;
    }
    default: {  // an lvalue callable: copied
      auto f = [body](StopToken t) { return body.Run(t); };
      group.Spawn(f);
      break;
    }
  }
}

void SpawnBlockingInto(GroupRec* g, Rng& rng) {
  BlockingRec* b = g->AddBlocking();
  g->spawned.fetch_add(1);
  g_global->tasks_spawned.fetch_add(1, std::memory_order_relaxed);
  const int us = Uniform(rng, 0, 2000);
  const int outcome = Uniform(rng, 0, 3);  // 0 fails, 1 throws, else sleeps
  const int64_t id = NextId();
  g->group->SpawnBlocking(
      [g, b, us, outcome, id](StopToken t) -> absl::Status {
        TaskStarts(g);
        b->fn_ran.store(true);
        absl::Status s;
        if (outcome == 0) {
          s = absl::InternalError(absl::StrCat("chaos-blocking-fail-", id));
        } else if (outcome == 1) {
          s = absl::UnknownError(absl::StrCat("chaos-blocking-throw-", id));
        } else {
          s = SleepFor(absl::Microseconds(us), t);
        }
        b->fn_status = s;
        TaskEnds(g, s, t.stop_requested(), false);
        if (outcome == 1) throw std::runtime_error(std::string(s.message()));
        return s;
      },
      [g, b](absl::Status s) {
        const int dones = b->dones.fetch_add(1) + 1;
        CHAOS_CHECK(dones == 1, "a done callback ran ", dones, " times");
        if (b->fn_ran.load()) {
          const absl::Status& fn = b->fn_status;
          CHAOS_CHECK(
              s.ok() == fn.ok() && absl::StrContains(s.message(), fn.message()),
              "done received ", s.ToString(), ", fn returned ",
              b->fn_status.ToString());
        } else {
          CHAOS_CHECK(absl::IsCancelled(s) && g->group->stop_requested(),
                      "done received ", s.ToString(), " and fn never ran");
        }
      });
}

// Spawns 0-4 random tasks and blocking calls into a fresh child group.
void FillChild(Executor& ex, GroupRec* g, Rng& rng, int budget) {
  for (int i = Uniform(rng, 0, 4); i > 0; --i) {
    if (Chance(rng, 20)) {
      SpawnBlockingInto(g, rng);
    } else {
      SpawnRandom(ex, g, rng, budget);
    }
  }
}

// ---------------------------------------------------------------------------
// Drivers.

// What a driver does to its tree of groups. Adding an operation is one
// enumerator here and one case in Driver::Step.
enum class DriverOp {
  kSpawn,            // a random task into a random group
  kSpawnBlocking,    // SpawnBlocking with a done callback
  kChildGroup,       // open a child group (depth <= 6)
  kStopGroup,        // RequestStop on a random group
  kWaitFor,          // WaitFor(0-2 ms)
  kWait,             // Wait() on a random group (reopened later, maybe)
  kDestroyLeaf,      // Wait() and destroy a group with no live child
  kDestroyUnwaited,  // destroy a leaf without Wait(): its destructor joins
  kStats,            // stats() of a random group
  kDebugString,      // Executor::DebugString()
  kParallelFor,      // ParallelFor over a random group, from the driver
  kPause,            // sleep 0-2 ms
  kSleepers,         // 2-40 sleeping coroutines, then maybe a stop
  kStart,            // Start 1-3 tasks, keep (or drop, stop, OnDone) handles
  kHandleOp,         // one held handle: stop, Wait, OnDone, drop, move, read
  kWaitAll,          // WaitAll over the held handles of one type
  kNumOps
};

// Handles a program holds when it ends are taken after its executor is
// gone: a handle outlives its group and its executor.
std::mutex g_leftovers_mu;
std::vector<HeldHandle>* g_leftovers = nullptr;  // guarded by g_leftovers_mu

struct Node {
  std::unique_ptr<GroupRec> rec;
  std::unique_ptr<TaskGroup> group;
  Node* parent = nullptr;
  int live_children = 0;
};

class Driver {
 public:
  Driver(Executor& ex, uint64_t seed) : ex_(ex), rng_(seed) {}

  void Program() {
    AddGroup(nullptr);
    for (int ops = Uniform(rng_, 5, 60); ops > 0; --ops) {
      Step(static_cast<DriverOp>(
          Uniform(rng_, 0, static_cast<int>(DriverOp::kNumOps) - 1)));
      Progress();
      if (nodes_.empty()) AddGroup(nullptr);
    }
    while (!nodes_.empty()) DestroyLeaf(/*wait=*/true);
    for (HeldHandle& h : handles_) {
      CHAOS_CHECK(!h.valid() || h.done(), "started task ", h.rec->id,
                  " not done() after its group was destroyed");
    }
    {
      std::lock_guard<std::mutex> lock(g_leftovers_mu);
      for (HeldHandle& h : handles_) {
        if (Chance(rng_, 50)) g_leftovers->push_back(std::move(h));
      }
    }
    handles_.clear();
    g_global->programs.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  Node* AddGroup(Node* parent) {
    auto node = std::make_unique<Node>();
    const int depth = parent == nullptr ? 1 : parent->rec->depth + 1;
    const std::string name = absl::StrCat("g", NextId());
    GroupOptions o = RandomGroupOptions(rng_, name);
    node->rec = std::make_unique<GroupRec>(o, depth);
    node->group = parent == nullptr
                      ? std::make_unique<TaskGroup>(ex_, o)
                      : std::make_unique<TaskGroup>(*parent->group, o);
    node->rec->group = node->group.get();
    node->parent = parent;
    if (parent != nullptr) {
      ++parent->live_children;
      // A child of a group already joined reopens it.
      parent->rec->sealed.store(false);
    }
    nodes_.push_back(std::move(node));
    return nodes_.back().get();
  }

  Node* RandomNode() {
    return nodes_[Uniform(rng_, 0, static_cast<int>(nodes_.size()) - 1)].get();
  }

  // A group to spawn into: an unjoined one, or a joined one reopened when
  // reuse_after_wait is on. Null when there is none.
  Node* SpawnTarget() {
    Node* n = RandomNode();
    if (n->rec->sealed.load()) {
      if (!g_global->options.reuse_after_wait) return nullptr;
      n->rec->sealed.store(false);
    }
    return n;
  }

  void Wait(Node* n) {
    const bool stopped_before = n->group->stop_requested();
    absl::Status s = n->group->Wait();
    CheckJoined(n->rec.get(), s, stopped_before);
    CheckTreeStats(n);
    for (HeldHandle& h : handles_) {
      if (h.rec->group == n->rec.get() && h.valid()) {
        CHAOS_CHECK(h.done(), "started task ", h.rec->id, " of '",
                    n->rec->name, "' not done() after its group's Wait()");
      }
    }
    if (!s.ok() && Chance(rng_, 30)) {
      absl::Status again = n->group->Wait();
      CHAOS_CHECK(again == s, "a second Wait() returned ", again.ToString(),
                  ", the first ", s.ToString(), " (group '", n->rec->name,
                  "')");
    }
  }

  // After n's Wait(): nothing of its subtree runs, so tree_stats() is the
  // sum of stats() over n and its live descendants (all in nodes_: groups
  // that tasks open are gone by the time those tasks finish).
  void CheckTreeStats(Node* n) {
    GroupStats sum;
    for (const auto& m : nodes_) {
      bool under = false;
      for (Node* a = m.get(); a != nullptr; a = a->parent) {
        if (a == n) under = true;
      }
      if (!under) continue;
      const GroupStats s = m->group->stats();
      sum.spawned += s.spawned;
      sum.completed += s.completed;
      sum.failed += s.failed;
      sum.cancelled += s.cancelled;
      sum.running += s.running;
      sum.queued += s.queued;
    }
    const GroupStats t = n->group->tree_stats();
    CHAOS_CHECK(t.spawned == sum.spawned && t.completed == sum.completed &&
                    t.failed == sum.failed && t.cancelled == sum.cancelled &&
                    t.running == sum.running && t.queued == sum.queued,
                "tree_stats() of '", n->rec->name, "' after Wait(): spawned ",
                t.spawned, " completed ", t.completed, " failed ", t.failed,
                " cancelled ", t.cancelled, " running ", t.running,
                " queued ", t.queued, "; the sum of stats(): ", sum.spawned,
                " ", sum.completed, " ", sum.failed, " ", sum.cancelled, " ",
                sum.running, " ", sum.queued);
  }

  // WaitAll over the held handles of one type (plus an empty handle, now
  // and then): one outcome per handle, in order; invalid ones give
  // FailedPrecondition.
  template <class T>
  void WaitAllOf(bool value, TaskHandle<T> HeldHandle::*member) {
    std::vector<TaskHandle<T>> hs;
    std::vector<std::shared_ptr<HandleRec>> recs;  // null: invalid handle
    for (HeldHandle& h : handles_) {
      if (h.rec->value != value || !Chance(rng_, 70)) continue;
      recs.push_back(h.valid() ? h.rec : nullptr);
      hs.push_back(std::move(h.*member));
    }
    if (Chance(rng_, 20)) {
      hs.emplace_back();
      recs.push_back(nullptr);
    }
    auto outcomes = WaitAll(hs);
    CHAOS_CHECK(outcomes.size() == hs.size(), "WaitAll gave ",
                outcomes.size(), " outcomes for ", hs.size(), " handles");
    for (size_t k = 0; k < outcomes.size(); ++k) {
      if (recs[k] == nullptr) {
        CHAOS_CHECK(absl::IsFailedPrecondition(StatusOf(outcomes[k])),
                    "WaitAll on an invalid handle: ",
                    StatusOf(outcomes[k]).ToString());
      } else {
        CheckOutcome(recs[k].get(), outcomes[k]);
      }
      CHAOS_CHECK(!hs[k].valid(), "valid() after WaitAll");
    }
  }

  void HandleOp() {
    if (handles_.empty()) return;
    const size_t k = Uniform(rng_, 0, static_cast<int>(handles_.size()) - 1);
    HeldHandle& h = handles_[k];
    switch (Uniform(rng_, 0, 5)) {
      case 0:
        h.RequestStop(absl::StrCat("chaos-hstop-", NextId()));
        break;
      case 1:
        h.WaitChecked();
        break;
      case 2:
        h.OnDone();
        break;
      case 3:  // dropped: the task goes on
        handles_.erase(handles_.begin() + k);
        break;
      case 4: {  // moved: the source is empty
        HeldHandle moved;
        moved.rec = h.rec;
        const bool was_valid = h.valid();
        moved.v = std::move(h.v);
        moved.i = std::move(h.i);
        CHAOS_CHECK(!h.valid() && !h.done(), "a moved-from handle is ",
                    h.valid() ? "valid()" : "done()");
        CHAOS_CHECK(moved.valid() == was_valid, "valid() changed by a move");
        h = std::move(moved);
        break;
      }
      default: {  // done() and valid() agree with the record
        const bool done = h.done();
        if (h.valid()) {
          CHAOS_CHECK(h.rec->takes.load() == 0, "valid() after a take");
        } else if (h.rec->value) {
          CheckTaken(h.i);
        } else {
          CheckTaken(h.v);
        }
        (void)done;
        break;
      }
    }
  }

  void DestroyLeaf(bool wait) {
    // The newest node is always a leaf (children come after parents).
    Node* n = nodes_.back().get();
    if (wait) Wait(n);
    GroupRec* rec = n->rec.get();
    n->group.reset();  // joins
    CHAOS_CHECK(rec->started.load() == rec->finished.load(), "a task of '",
                rec->name, "' runs after its group died");
    {
      std::lock_guard<std::mutex> lock(rec->mu);
      for (const auto& b : rec->blocking) {
        CHAOS_CHECK(b->dones.load() == 1, "a done callback ran ",
                    b->dones.load(), " times by the time '", rec->name,
                    "' was destroyed");
      }
    }
    if (n->parent != nullptr) --n->parent->live_children;
    nodes_.pop_back();
  }

  void Step(DriverOp op) {
    switch (op) {
      case DriverOp::kSpawn: {
        Node* n = SpawnTarget();
        if (n == nullptr) break;
        for (int i = Uniform(rng_, 1, 4); i > 0; --i) {
          SpawnRandom(ex_, n->rec.get(), rng_, 3);
        }
        break;
      }
      case DriverOp::kSpawnBlocking: {
        Node* n = SpawnTarget();
        if (n != nullptr) SpawnBlockingInto(n->rec.get(), rng_);
        break;
      }
      case DriverOp::kChildGroup: {
        Node* n = RandomNode();
        if (n->rec->depth >= kMaxDepth) break;
        if (n->rec->sealed.load() && !g_global->options.reuse_after_wait) {
          break;
        }
        AddGroup(n);
        break;
      }
      case DriverOp::kStopGroup:
        Stop(*RandomNode()->group, absl::StrCat("chaos-stop-", NextId()));
        break;
      case DriverOp::kWaitFor: {
        Node* n = RandomNode();
        const bool stopped_before = n->group->stop_requested();
        absl::Status s =
            n->group->WaitFor(absl::Microseconds(Uniform(rng_, 0, 2000)));
        if (!absl::IsDeadlineExceeded(s)) {
          CheckJoined(n->rec.get(), s, stopped_before);
        }
        break;
      }
      case DriverOp::kWait:
        Wait(RandomNode());
        break;
      case DriverOp::kDestroyLeaf:
        DestroyLeaf(/*wait=*/true);
        break;
      case DriverOp::kDestroyUnwaited:
        DestroyLeaf(/*wait=*/!g_global->options.destroy_unwaited);
        break;
      case DriverOp::kStats: {
        Node* n = RandomNode();
        CheckStats(n->group->stats(), n->rec->name);
        CheckStats(n->group->tree_stats(), n->rec->name);
        break;
      }
      case DriverOp::kDebugString:
        CHAOS_CHECK(!ex_.DebugString().empty(), "empty DebugString()");
        break;
      case DriverOp::kParallelFor: {
        Node* n = SpawnTarget();  // it opens a child group of n
        if (n == nullptr) break;
        const int size = Uniform(rng_, 0, 500);
        std::atomic<int64_t> sum{0};
        absl::Status s =
            ParallelFor(*n->group, 0, size,
                        [&sum](int lo, int hi) { sum.fetch_add(hi - lo); });
        CHAOS_CHECK(!s.ok() || sum.load() == size, "ParallelFor covered ",
                    sum.load(), " of ", size);
        CHAOS_CHECK(s.ok() || absl::IsCancelled(s), s.ToString());
        break;
      }
      case DriverOp::kPause:
        absl::SleepFor(absl::Microseconds(Uniform(rng_, 0, 2000)));
        break;
      case DriverOp::kSleepers: {
        Node* n = SpawnTarget();
        if (n == nullptr) break;
        for (int i = Uniform(rng_, 2, 40); i > 0; --i) {
          SpawnSleeper(n->rec.get(), rng_);
        }
        if (Chance(rng_, 50)) {
          absl::SleepFor(absl::Microseconds(Uniform(rng_, 0, 3000)));
          Stop(*n->group, absl::StrCat("chaos-stop-", NextId()));
        }
        break;
      }
      case DriverOp::kStart: {
        if (!g_global->options.handles) break;
        Node* n = SpawnTarget();
        if (n == nullptr) break;
        for (int i = Uniform(rng_, 1, 3); i > 0; --i) {
          HeldHandle h = StartInto(ex_, n->rec.get(), rng_, 3);
          const int what = Uniform(rng_, 0, 9);
          if (what == 0) continue;  // dropped at once
          if (what == 1) h.OnDone();
          if (what == 2) h.RequestStop(absl::StrCat("chaos-hstop-", NextId()));
          handles_.push_back(std::move(h));
        }
        while (handles_.size() > 32) handles_.erase(handles_.begin());
        break;
      }
      case DriverOp::kHandleOp:
        HandleOp();
        break;
      case DriverOp::kWaitAll:
        if (Chance(rng_, 50)) {
          WaitAllOf<int64_t>(true, &HeldHandle::i);
        } else {
          WaitAllOf<void>(false, &HeldHandle::v);
        }
        break;
      case DriverOp::kNumOps:
        break;
    }
  }

  Executor& ex_;
  Rng rng_;
  std::vector<std::unique_ptr<Node>> nodes_;  // parents before children
  std::vector<HeldHandle> handles_;           // started by this program
};

// Runs random operations on the executor from outside the drivers:
// DebugString(), and Executor::RequestStop now and then.
void Meddle(Executor& ex, Rng& rng, const std::atomic<bool>& done) {
  while (!done.load()) {
    absl::SleepFor(absl::Microseconds(Uniform(rng, 0, 20000)));
    CHAOS_CHECK(!ex.DebugString().empty(), "empty DebugString()");
    if (g_global->options.executor_stops && Chance(rng, 5)) {
      ex.RequestStop(
          Chance(rng, 50) ? StopTarget::kAll : StopTarget::kUnshielded,
          absl::StrCat("chaos-executor-stop-", NextId()));
    }
  }
}

}  // namespace

std::string ReplayFlags(const Options& o) {
  std::string flags = absl::StrCat(
      "--seed=", o.seed, " --seconds=",
      static_cast<int64_t>(absl::ToDoubleSeconds(o.duration) + 0.5),
      " --drivers=", o.drivers);
  const auto flag = [&flags](const char* name, bool value) {
    absl::StrAppend(&flags, " --", name, "=", value ? "true" : "false");
  };
  flag("executor_stops", o.executor_stops);
  flag("reuse_after_wait", o.reuse_after_wait);
  flag("destroy_unwaited", o.destroy_unwaited);
  flag("check_stop_visible", o.check_stop_visible);
  flag("exact_spawned", o.exact_spawned);
  flag("handles", o.handles);
  flag("collect_all", o.collect_all);
  flag("max_concurrency", o.max_concurrency);
  return flags;
}

std::string ReplayCommand(const Options& o) {
  const char* config = "";
#if defined(__SANITIZE_THREAD__)
  config = "--config=tsan ";
#elif defined(__SANITIZE_ADDRESS__)
  config = "--config=asan ";
#endif
  return absl::StrCat("bazel run ", config, "//tests:chaos -- ",
                      ReplayFlags(o));
}

Result Run(const Options& options) {
  Global global;
  global.options = options;
  global.start = absl::Now();
  g_global = &global;
  std::vector<HeldHandle> leftovers;
  {
    std::lock_guard<std::mutex> lock(g_leftovers_mu);
    g_leftovers = &leftovers;
  }
  std::fprintf(stderr, "chaos: seed %llu, %lld s, %d drivers; %s\n",
               static_cast<unsigned long long>(options.seed),
               static_cast<long long>(absl::ToInt64Seconds(options.duration)),
               options.drivers, DescribeReplay().c_str());

  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    int64_t last = -1;
    absl::Time last_change = absl::Now();
    while (!finished.load()) {
      absl::SleepFor(absl::Milliseconds(100));
      const int64_t now = global.progress.load();
      if (now != last) {
        last = now;
        last_change = absl::Now();
      } else if (absl::Now() - last_change > options.watchdog) {
        Fail(absl::StrCat("watchdog: no driver progressed for ",
                          absl::FormatDuration(options.watchdog)));
      }
    }
  });

  Rng epoch_rng(options.seed);
  Result result;
  const absl::Time end = global.start + options.duration;
  while (absl::Now() < end) {
    ExecutorOptions eo;
    eo.num_workers = Uniform(epoch_rng, 1, 4);
    eo.max_blocking_threads = Uniform(epoch_rng, 1, 6);
    eo.blocking_keep_alive = absl::Milliseconds(Uniform(epoch_rng, 0, 50));
    const absl::Time epoch_end = std::min(
        end, absl::Now() + absl::Milliseconds(Uniform(epoch_rng, 200, 3000)));
    std::vector<uint64_t> seeds;
    for (int i = 0; i < options.drivers; ++i) seeds.push_back(epoch_rng());
    Rng meddler_rng(epoch_rng());
    Rng leftover_rng(epoch_rng());
    {
      Executor ex(eo);
      {
        std::lock_guard<std::mutex> lock(global.executor_mu);
        global.executor = &ex;
      }
      std::atomic<bool> epoch_done{false};
      std::thread meddler([&] { Meddle(ex, meddler_rng, epoch_done); });
      std::vector<std::thread> drivers;
      for (uint64_t seed : seeds) {
        drivers.emplace_back([&ex, seed, epoch_end] {
          Rng programs(seed);
          while (absl::Now() < epoch_end) {
            Driver d(ex, programs());
            d.Program();
          }
        });
      }
      for (std::thread& t : drivers) t.join();
      epoch_done.store(true);
      meddler.join();
      std::lock_guard<std::mutex> lock(global.executor_mu);
      global.executor = nullptr;
    }
    // The executor is gone; the handles kept from its programs still work.
    {
      std::lock_guard<std::mutex> lock(g_leftovers_mu);
      for (HeldHandle& h : leftovers) {
        CHAOS_CHECK(!h.valid() || h.done(), "started task ", h.rec->id,
                    " not done() after its executor was destroyed");
        if (h.valid() && Chance(leftover_rng, 50)) {
          h.OnDone();
        } else {
          h.WaitChecked();
        }
      }
      leftovers.clear();
    }
    CHAOS_CHECK(global.ondone_ran.load() == global.ondone_registered.load(),
                global.ondone_registered.load(), " OnDone callbacks ",
                "registered, ", global.ondone_ran.load(),
                " ran, after every group was destroyed");
    ++result.epochs;
  }
  finished.store(true);
  watchdog.join();
  result.programs = global.programs.load();
  result.tasks_spawned = global.tasks_spawned.load();
  result.tasks_run = global.tasks_run.load();
  result.waits_checked = global.waits_checked.load();
  result.handles_started = global.handles_started.load();
  result.outcomes_checked = global.outcomes_checked.load();
  std::fprintf(stderr,
               "chaos: clean after %.1f s: %lld epochs, %lld programs, %lld "
               "tasks spawned, %lld run, %lld waits checked, %lld started "
               "with a handle, %lld outcomes checked (seed %llu)\n",
               absl::ToDoubleSeconds(absl::Now() - global.start),
               static_cast<long long>(result.epochs),
               static_cast<long long>(result.programs),
               static_cast<long long>(result.tasks_spawned),
               static_cast<long long>(result.tasks_run),
               static_cast<long long>(result.waits_checked),
               static_cast<long long>(result.handles_started),
               static_cast<long long>(result.outcomes_checked),
               static_cast<unsigned long long>(options.seed));
  {
    std::lock_guard<std::mutex> lock(g_leftovers_mu);
    g_leftovers = nullptr;
  }
  g_global = nullptr;
  return result;
}

}  // namespace ripcord::chaos
