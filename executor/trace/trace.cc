// Copyright 2026 The ripcord Authors.
//
// trace.cc: the flight recorder's recording side: the Tracer, each
// thread's ring (trace_ring.h) and the events it appends. The protocol is
// atop trace.h; the file is written by trace_file.cc.
#include "executor/trace/trace.h"

#include "executor/trace/trace_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/base/test_hooks.h"
#include "executor/base/threads.h"

namespace ripcord::internal {

std::atomic<int> g_live_tracers{0};

namespace {

// relaxed: only uniqueness matters.
std::atomic<uint64_t> next_tracer_serial{1};
std::atomic<uint64_t> next_thread_serial{1};

}  // namespace

// Recording's scope (trace.h): this thread's ring for the last Tracer it
// recorded into. External linkage on purpose (see tls_sleep_cancelled in
// ripcord/internal/coroutine.h on internal-linkage thread_locals).
struct TraceThreadCache {
  uint64_t tracer_serial = 0;
  TraceRing* ring = nullptr;
  // GroupName's one entry: the last named group this thread recorded for.
  uint64_t group_tracer_serial = 0;
  uint64_t group_id = 0;
  const char* group_name = nullptr;
  uint32_t spawns = 0;  // Spawn's count
};
thread_local TraceThreadCache tls_trace_cache;
thread_local uint64_t tls_trace_thread_serial = 0;

Tracer::Tracer(std::string path)
    : path_(std::move(path)),
      serial_(next_tracer_serial.fetch_add(1, std::memory_order_relaxed)),
      ring_events_([] {
        size_t n = kDefaultTraceRingEvents;
        RunTestHook(TestHook::kTraceRingEvents, &n);
        return std::max<size_t>(n, 1);
      }()),
      start_ticks_(Now()),
      start_mono_ns_(MonotonicNanos()) {
  g_live_tracers.fetch_add(1, std::memory_order_relaxed);
}

std::unique_ptr<Tracer> Tracer::FromOptions(std::string trace_path) {
  if (trace_path.empty()) {
    if (const char* env = std::getenv("RIPCORD_TRACE")) trace_path = env;
  }
  if (trace_path.empty()) return nullptr;
  return std::make_unique<Tracer>(std::move(trace_path));
}

Tracer::~Tracer() { g_live_tracers.fetch_sub(1, std::memory_order_relaxed); }

uint64_t Tracer::MonotonicNowNanos() {
  return static_cast<uint64_t>(MonotonicNanos());
}

const char* Tracer::Intern(std::string_view s) {
  absl::MutexLock lock(&mu_);
  return strings_.emplace(s).first->c_str();
}

inline TraceRing* Tracer::Local() {
  TraceThreadCache& cache = tls_trace_cache;
  if (cache.tracer_serial == serial_) [[likely]]
    return cache.ring;
  return LocalSlow();
}

TraceRing* Tracer::LocalSlow() {
  TraceThreadCache& cache = tls_trace_cache;
  if (tls_trace_thread_serial == 0) {
    tls_trace_thread_serial =
        next_thread_serial.fetch_add(1, std::memory_order_relaxed);
  }
  TraceRing* ring;
  {
    absl::MutexLock lock(&mu_);
    TraceRing*& slot = by_thread_[tls_trace_thread_serial];
    if (slot == nullptr) {
      // The name in the file: the executor's threads by role and number in
      // the order they first recorded, other threads by their own names.
      std::string name;
      const char* role = ThreadRole();
      if (role != nullptr && std::strcmp(role, "ripcord-worker") == 0) {
        name = absl::StrCat("ripcord-worker-", role_count_[role]++);
      } else if (role != nullptr && std::strcmp(role, "ripcord-block") == 0) {
        name = absl::StrCat("ripcord-blocking-", role_count_[role]++);
      } else if (role != nullptr) {
        name = role;
      } else {
        char buf[64] = {};
        if (pthread_getname_np(pthread_self(), buf, sizeof buf) != 0 ||
            buf[0] == '\0') {
          std::snprintf(buf, sizeof buf, "thread");
        }
        name = buf;
      }
      const int tid = static_cast<int>(rings_.size()) + 1;
      rings_.push_back(
          std::make_unique<TraceRing>(std::move(name), tid, ring_events_));
      slot = rings_.back().get();
    }
    ring = slot;
  }
  cache.tracer_serial = serial_;
  cache.ring = ring;
  return ring;
}

const char* Tracer::GroupName(uint64_t group_id, const std::string& name) {
  if (name.empty()) return nullptr;
  TraceThreadCache& cache = tls_trace_cache;
  if (cache.group_id == group_id && cache.group_tracer_serial == serial_) {
    return cache.group_name;
  }
  cache.group_name = Intern(name);
  cache.group_id = group_id;
  cache.group_tracer_serial = serial_;
  return cache.group_name;
}

void Tracer::Complete(TraceKind kind, const char* label, uint64_t group_id,
                      const char* group_name, uint64_t start, uint64_t end) {
  Local()->Append({start, end, label, group_name, 0, group_id,
                   static_cast<uint8_t>(kind)});
}

void Tracer::CompleteSite(const char* file, uint32_t line, uint32_t flow,
                          uint64_t group_id, const char* group_name,
                          uint64_t start, uint64_t end) {
  Local()->Append(
      {start, end, file, group_name, uint64_t{flow} << 32 | line, group_id,
       static_cast<uint8_t>(static_cast<uint8_t>(TraceKind::kTask) |
                            TraceRing::kSiteLabel)});
}

uint32_t Tracer::Spawn() {
  const TraceThreadState& t = tls_trace_state;
  if (t.depth == 0) return 0;
  // Unique within a file in practice: 6 bits of the thread, 18 of a count
  // that wraps long after the ring overwrote the spawn (Write pairs a run
  // with the newest spawn of its id before it).
  TraceRing* const ring = Local();  // first: it numbers a new thread
  TraceThreadCache& cache = tls_trace_cache;
  uint32_t n = ++cache.spawns & 0x3ffff;
  if (n == 0) n = cache.spawns = 1;
  const uint32_t id =
      static_cast<uint32_t>(tls_trace_thread_serial & 0x3f) << 18 | n;
  ring->Append({t.last_tick, t.last_tick, nullptr, nullptr, id, 0,
                   static_cast<uint8_t>(TraceKind::kSpawn)});
  return id;
}

void Tracer::GroupStopped(uint64_t group_id, const std::string& name,
                          std::string_view reason) {
  const uint64_t now = Now();
  const char* group_name = name.empty() ? nullptr : Intern(name);
  const char* why = Intern(reason);
  Local()->Append({now, now, "stop", group_name,
                   reinterpret_cast<uintptr_t>(why), group_id,
                   static_cast<uint8_t>(TraceKind::kStop)});
}

void Tracer::Signal(std::string_view name, bool last) {
  const uint64_t now = Now();
  Local()->Append({now, now, Intern(name), nullptr, 0, 0,
                   static_cast<uint8_t>(TraceKind::kSignal)});
  if (last) WriteToPath();
}

// The BlockingTraceScope recording on this thread, if any.
thread_local BlockingTraceScope* tls_blocking_scope = nullptr;

BlockingTraceScope::BlockingTraceScope(Tracer* tracer) : tracer_(tracer) {
  if (tracer_ == nullptr) return;
  tls_blocking_scope = this;
  start_ = Tracer::Now();
  TraceThreadState& t = tls_trace_state;
  ++t.depth;
  t.last_tick = start_;
}

BlockingTraceScope::~BlockingTraceScope() {
  if (tracer_ == nullptr) return;
  tls_blocking_scope = nullptr;
  const uint64_t end = Tracer::Now();
  TraceThreadState& t = tls_trace_state;
  --t.depth;
  t.last_tick = end;
  tracer_->Complete(TraceKind::kBlocking, label_, group_id_, group_name_,
                    start_, end);
}

void NameBlockingEvent(const char* label, uint64_t group_id,
                       const std::string& group_name) {
  BlockingTraceScope* const s = tls_blocking_scope;
  if (s == nullptr) return;
  s->label_ = label;
  s->group_id_ = group_id;
  s->group_name_ = s->tracer_->GroupName(group_id, group_name);
}

}  // namespace ripcord::internal
