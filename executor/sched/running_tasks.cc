// Copyright 2026 The ripcord Authors.
//
// running_tasks.cc: the coroutine and blocking-call registries, the tick
// clock's conversion, and the snapshot that reports read (running_tasks.h).
#include "executor/sched/running_tasks.h"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/container/node_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "executor/sched/scheduler.h"
#include "ripcord/internal/coroutine.h"
#include "ripcord/internal/spawn.h"
#include "ripcord/internal/stop_state.h"

namespace ripcord::internal {

uint64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u +
         static_cast<uint64_t>(ts.tv_nsec);
}

namespace {

// The tick clock's origin, paired with CLOCK_MONOTONIC at load time: the
// rate is measured over the life of the process when a report asks.
struct Anchor {
  uint64_t tick;
  uint64_t ns;
};
const Anchor kAnchor = {RunTick(), MonotonicNanos()};

double NanosPerTick() {
#if defined(__x86_64__) || defined(__i386__)
  const uint64_t tick = RunTick();
  const uint64_t ns = MonotonicNanos();
  if (tick <= kAnchor.tick || ns <= kAnchor.ns) return 1.0;
  return static_cast<double>(ns - kAnchor.ns) /
         static_cast<double>(tick - kAnchor.tick);
#else
  return 1.0;
#endif
}

// ---- coroutines --------------------------------------------------------
constexpr int kCoroShards = 16;
struct CoroShard {
  absl::Mutex mu;
  CoroContext* head ABSL_GUARDED_BY(mu) = nullptr;
};
CoroShard& ShardOf(const CoroContext* ctx) {
  static CoroShard* const shards = new CoroShard[kCoroShards];
  return shards[(reinterpret_cast<uintptr_t>(ctx) >> 6) % kCoroShards];
}
void ForEachShard(void (*fn)(CoroShard&, void*), void* arg) {
  for (int i = 0; i < kCoroShards; ++i) {
    // Any pointer that maps to shard i.
    fn(ShardOf(reinterpret_cast<const CoroContext*>(uintptr_t{64} * i)), arg);
  }
}

// The coroutine being driven on this thread (null: none).
thread_local const CoroContext* tls_running_coro = nullptr;

// ---- blocking calls ------------------------------------------------------
// A blocking thread's record: its call's, and the call's group (compared
// with the executor's live groups only, never followed).
struct BlockingRecord {
  RunRecord run;
  std::atomic<const GroupState*> group{nullptr};
};
struct BlockingRegistry {
  absl::Mutex mu;
  std::vector<BlockingRecord*> records ABSL_GUARDED_BY(mu);
};
BlockingRegistry& Blocking() {
  static BlockingRegistry* const r = new BlockingRegistry;
  return *r;
}
// A blocking thread's record, registered at its first call and unregistered
// when the thread ends.
struct BlockingSlot {
  BlockingRecord record;
  bool registered = false;
  ~BlockingSlot() {
    if (!registered) return;
    BlockingRegistry& r = Blocking();
    absl::MutexLock lock(&r.mu);
    r.records.erase(std::find(r.records.begin(), r.records.end(), &record));
  }
};
thread_local BlockingSlot tls_blocking;
thread_local bool tls_in_blocking = false;

// ---- started plain tasks ------------------------------------------------
struct StartedShard {
  absl::Mutex mu;
  StartedRun* head ABSL_GUARDED_BY(mu) = nullptr;
};
constexpr int kStartedShards = 8;
StartedShard& StartedShardOf(const StartedRun* r) {
  static StartedShard* const shards = new StartedShard[kStartedShards];
  return shards[(reinterpret_cast<uintptr_t>(r) >> 6) % kStartedShards];
}
thread_local StartedRun* tls_started_run = nullptr;

// ---- labels ------------------------------------------------------------
// Names and "file:line" texts, kept for the life of the process.
constexpr size_t kMaxInterned = 1 << 16;
struct Interned {
  absl::Mutex mu;
  absl::node_hash_set<std::string> names ABSL_GUARDED_BY(mu);
  absl::node_hash_map<std::pair<const char*, uint32_t>, std::string> texts
      ABSL_GUARDED_BY(mu);
};
Interned& Interns() {
  static Interned* const i = new Interned;
  return *i;
}

}  // namespace

uint32_t StopClockMs() {
  static const uint64_t origin = MonotonicNanos();
  return static_cast<uint32_t>((MonotonicNanos() - origin) / 1000000) + 1;
}

SpawnSite LabelFor(SpawnSite site, std::string_view name) {
  if (name.empty()) return site;
  Interned& in = Interns();
  absl::MutexLock lock(&in.mu);
  auto it = in.names.find(absl::string_view(name.data(), name.size()));
  if (it == in.names.end()) {
    if (in.names.size() >= kMaxInterned) return {"(more names)", 0};
    it = in.names.emplace(std::string(name)).first;
  }
  return {it->c_str(), 0};
}

const char* LabelText(const char* file, uint32_t line) {
  if (file == nullptr) return nullptr;  // unlabelled: the recorder's default
  // A direct-mapped per-thread cache in front of the interned texts.
  struct Entry {
    const char* file;
    uint32_t line;
    const char* text;
  };
  static constexpr size_t kCache = 64;
  thread_local Entry cache[kCache] = {};
  const size_t h = (reinterpret_cast<uintptr_t>(file) >> 3 ^ line * 31u) %
                   kCache;
  Entry& e = cache[h];
  if (e.text != nullptr && e.file == file && e.line == line) return e.text;
  Interned& in = Interns();
  absl::MutexLock lock(&in.mu);
  std::string& text = in.texts[{file, line}];  // nodes never move
  if (text.empty()) text = SiteLabel(file, line);
  e = {file, line, text.c_str()};
  return e.text;
}

StartedRun::StartedRun(const TaskNode* node, const StopState* own)
    : group(node->group),
      file(node->site_file),
      line(node->site_line),
      own_stop(own),
      start(RunTick()),
      below(tls_started_run) {
  tls_started_run = this;
  StartedShard& s = StartedShardOf(this);
  absl::MutexLock lock(&s.mu);
  next = s.head;
  if (s.head != nullptr) s.head->prev = this;
  s.head = this;
}

StartedRun::~StartedRun() {
  tls_started_run = below;
  StartedShard& s = StartedShardOf(this);
  absl::MutexLock lock(&s.mu);
  if (prev != nullptr) {
    prev->next = next;
  } else {
    s.head = next;
  }
  if (next != nullptr) next->prev = prev;
}

absl::Duration SinceTick(uint64_t tick) {
  const uint64_t now = RunTick();
  if (tick == 0 || now <= tick) return absl::ZeroDuration();
  return absl::Nanoseconds(
      static_cast<int64_t>(static_cast<double>(now - tick) * NanosPerTick()));
}

void BlockingRunBegin(const TaskNode* call) {
  BlockingSlot& s = tls_blocking;
  if (!s.registered) {
    BlockingRegistry& r = Blocking();
    absl::MutexLock lock(&r.mu);
    r.records.push_back(&s.record);
    s.registered = true;
  }
  s.record.group.store(call->group, std::memory_order_relaxed);
  s.record.run.file.store(call->site_file, std::memory_order_relaxed);
  s.record.run.line.store(call->site_line, std::memory_order_relaxed);
  // release: a reader that sees the start sees the fields above.
  s.record.run.start.store(RunTick(), std::memory_order_release);
  tls_in_blocking = true;
}

void BlockingRunEnd() {
  tls_blocking.record.run.start.store(0, std::memory_order_relaxed);
  tls_in_blocking = false;
}

void ListCoroutine(CoroContext* ctx) {
  ctx->live_since = RunTick();
  CoroShard& s = ShardOf(ctx);
  absl::MutexLock lock(&s.mu);
  ctx->live_prev = nullptr;
  ctx->live_next = s.head;
  if (s.head != nullptr) s.head->live_prev = ctx;
  s.head = ctx;
}

void UnlistCoroutine(CoroContext* ctx) {
  CoroShard& s = ShardOf(ctx);
  absl::MutexLock lock(&s.mu);
  if (ctx->live_prev != nullptr) {
    ctx->live_prev->live_next = ctx->live_next;
  } else {
    s.head = ctx->live_next;
  }
  if (ctx->live_next != nullptr) ctx->live_next->live_prev = ctx->live_prev;
  ctx->live_since = 0;
}

const CoroContext* DriveBegin(const CoroContext* ctx) {
  const CoroContext* previous = tls_running_coro;
  tls_running_coro = ctx;
  // relaxed: a report's snapshot; no other data depends on it.
  if (Worker* w = tls_worker) w->driving.store(ctx, std::memory_order_relaxed);
  return previous;
}

void DriveEnd(const CoroContext* previous) {
  tls_running_coro = previous;
  if (Worker* w = tls_worker) {
    w->driving.store(previous, std::memory_order_relaxed);
  }
}

void NoteStopSeen() {
  const uint64_t now = RunTick();
  // relaxed: reports read these; nothing else depends on them.
  if (Worker* w = tls_worker) {
    const int depth = std::min(w->frame_depth, Worker::kTrackedFrames);
    for (int i = 0; i < depth; ++i) {
      w->runs[i].looked.store(now, std::memory_order_relaxed);
    }
  }
  if (const CoroContext* c = tls_running_coro) {
    const_cast<CoroContext*>(c)->looked_stop.store(now,
                                                   std::memory_order_relaxed);
  }
  for (StartedRun* r = tls_started_run; r != nullptr; r = r->below) {
    r->looked.store(now, std::memory_order_relaxed);
  }
  if (tls_in_blocking) {
    tls_blocking.record.run.looked.store(now, std::memory_order_relaxed);
  }
}

std::string SiteLabel(const char* file, uint32_t line) {
  if (file == nullptr) return "?";
  if (line == 0) return absl::StrCat("'", file, "'");
  const char* slash = std::strrchr(file, '/');
  return absl::StrCat(slash != nullptr ? slash + 1 : file, ":", line);
}

void ExecutorImpl::SnapshotPlainRunning(
    std::vector<RunningTask>* out,
    std::vector<const CoroContext*>* driving) const {
  for (const auto& w : workers_) {
    // relaxed: a snapshot for a report.
    if (const CoroContext* c = w->driving.load(std::memory_order_relaxed)) {
      driving->push_back(c);
    }
    for (int i = 0; i < Worker::kTrackedFrames; ++i) {
      // acquire loads: pair with the release store of the start
      // (BeginPlainRun); a torn view is accepted (running_tasks.h).
      const uintptr_t f = w->frames[i].load(std::memory_order_acquire);
      if (f == 0 ||
          (f & (Worker::kFrameStarting | Worker::kFrameDropping)) != 0) {
        continue;
      }
      const RunRecord& r = w->runs[i];
      const uint64_t start = r.start.load(std::memory_order_acquire);
      if (start == 0) continue;
      RunningTask t;
      t.group = reinterpret_cast<const GroupState*>(f);
      t.kind = RunningTask::kPlain;
      t.label = SiteLabel(r.file.load(std::memory_order_relaxed),
                          r.line.load(std::memory_order_relaxed));
      t.start = start;
      t.looked = r.looked.load(std::memory_order_relaxed);
      t.running = SinceTick(start);
      out->push_back(std::move(t));
    }
  }
}

std::vector<RunningTask> SnapshotRunning(const ExecutorImpl& exec) {
  std::vector<RunningTask> out;
  std::vector<const CoroContext*> driving;
  exec.SnapshotPlainRunning(&out, &driving);
  std::sort(driving.begin(), driving.end());
  struct Arg {
    const ExecutorImpl* exec;
    std::vector<RunningTask>* out;
    const std::vector<const CoroContext*>* driving;
  } arg{&exec, &out, &driving};
  ForEachShard(
      [](CoroShard& s, void* p) {
        auto* a = static_cast<Arg*>(p);
        absl::MutexLock lock(&s.mu);
        for (CoroContext* c = s.head; c != nullptr; c = c->live_next) {
          // A listed coroutine holds a unit of its group: the group lives.
          if (c->group->executor() != a->exec) continue;
          RunningTask t;
          t.group = c->group;
          t.kind = RunningTask::kCoroutine;
          t.label = SiteLabel(c->site.file, c->site.line);
          t.start = c->live_since;
          t.looked = c->looked_stop.load(std::memory_order_relaxed);
          t.suspended = !std::binary_search(a->driving->begin(),
                                            a->driving->end(), c);
          // A started coroutine's own stop source lives as long as it (a
          // context leaves the list before it is destroyed: Drive()). Not
          // through c->flags, which its driving worker writes unlocked: a
          // spawned coroutine's OwnStopState() is its group's.
          const StopState* own = c->OwnStopState();
          if (own != c->group->stop_state()) t.own_stop_ms = own->stop_ms();
          t.running = SinceTick(t.start);
          a->out->push_back(std::move(t));
        }
      },
      &arg);
  for (int i = 0; i < kStartedShards; ++i) {
    StartedShard& sh = StartedShardOf(
        reinterpret_cast<const StartedRun*>(uintptr_t{64} * i));
    absl::MutexLock lock(&sh.mu);
    for (const StartedRun* r = sh.head; r != nullptr; r = r->next) {
      // Listed: its run (and so its group and own stop source) is alive.
      if (r->group->executor() != &exec) continue;
      RunningTask t;
      t.group = r->group;
      t.kind = RunningTask::kPlain;
      t.label = SiteLabel(r->file, r->line);
      t.start = r->start;
      t.looked = r->looked.load(std::memory_order_relaxed);
      t.own_stop_ms = r->own_stop->stop_ms();
      t.running = SinceTick(r->start);
      out.push_back(std::move(t));
    }
  }
  {
    BlockingRegistry& r = Blocking();
    absl::MutexLock lock(&r.mu);
    for (const BlockingRecord* b : r.records) {
      const RunRecord* rec = &b->run;
      const uint64_t start = rec->start.load(std::memory_order_acquire);
      if (start == 0) continue;
      RunningTask t;
      // Compared with the executor's live groups only (ResolveRunning).
      t.group = b->group.load(std::memory_order_relaxed);
      t.kind = RunningTask::kBlocking;
      t.label = SiteLabel(rec->file.load(std::memory_order_relaxed),
                          rec->line.load(std::memory_order_relaxed));
      t.start = start;
      t.looked = rec->looked.load(std::memory_order_relaxed);
      t.running = SinceTick(start);
      out.push_back(std::move(t));
    }
  }
  // By group (ByGroup's order, for equal_range), longest first within one.
  std::sort(out.begin(), out.end(),
            [](const RunningTask& a, const RunningTask& b) {
              if (a.group != b.group) return RunningTask::ByGroup()(a, b);
              return a.running > b.running;
            });
  return out;
}

void ResolveIgnoring(RunningTask& t, absl::Duration stopped_ago) {
  t.ignoring = false;
  if (t.own_stop_ms != 0) {  // its own stop (a handle's, or its group's)
    const absl::Duration own =
        absl::Milliseconds(static_cast<uint32_t>(StopClockMs() - t.own_stop_ms));
    if (stopped_ago == absl::InfiniteDuration() || own > stopped_ago) {
      stopped_ago = own;
    }
  }
  if (stopped_ago == absl::InfiniteDuration() || t.suspended) return;
  if (t.looked != 0 && t.looked >= t.start) return;  // looked in this run
  t.ignoring = true;
  t.ignoring_for = std::max(absl::ZeroDuration(),
                            std::min(stopped_ago, t.running));
}

std::string FormatRunning(const RunningTask& t) {
  static constexpr const char* kKind[] = {"task", "coroutine",
                                          "blocking call"};
  std::string out = absl::StrCat(
      kKind[t.kind], " ", t.label, " running for ",
      absl::FormatDuration(absl::Trunc(t.running, absl::Milliseconds(1))));
  if (t.suspended) absl::StrAppend(&out, " (suspended)");
  if (t.ignoring) {
    absl::StrAppend(&out, ", ignoring stop for ",
                    absl::FormatDuration(
                        absl::Trunc(t.ignoring_for, absl::Milliseconds(1))));
  }
  return out;
}

std::vector<RunningTask> ExecutorImpl::RunningTasks() const {
  std::vector<RunningTask> v = SnapshotRunning(*this);
  const absl::Time now = absl::Now();
  for (const auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    for (GroupState* g = shard->head; g != nullptr; g = g->next_root_) {
      g->ResolveRunning(&v, now);
    }
  }
  v.erase(std::remove_if(v.begin(), v.end(),
                         [](const RunningTask& t) { return !t.resolved; }),
          v.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const RunningTask& a, const RunningTask& b) {
                     return a.running > b.running;
                   });
  return v;
}

}  // namespace ripcord::internal
