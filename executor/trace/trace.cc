// Copyright 2026 The ripcord Authors.
//
// trace.cc: the flight recorder (the protocol is atop trace.h).
#include "executor/trace/trace.h"

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

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

size_t RoundUpPow2(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

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

// TraceRing: one thread's events for one Tracer. Append() is called by the
// owning thread only; Snapshot() by any thread (the seqlock atop trace.h).
// Slots live in chunks allocated by the owner as the ring first fills, so a
// thread that records three events costs one small chunk, not a full ring.
class TraceRing {
 public:
  // `kind` as stored: a TraceKind, with kSiteLabel set when `label` is a
  // TaskNode's site_file and `aux`'s low half its site_line (CompleteSite).
  // `aux`: a stop's reason (a const char*); for a run, its site line and,
  // in the high half, its flow id; for a spawn, its flow id.
  static constexpr uint8_t kSiteLabel = 0x80;
  struct Event {
    uint64_t start;
    uint64_t end;
    const char* label;
    const char* group_name;
    uint64_t aux;
    uint64_t group_id;
    uint8_t kind;
    TraceKind Kind() const { return static_cast<TraceKind>(kind & 0x7f); }
  };

  TraceRing(std::string name, int tid, size_t events)
      : name_(std::move(name)),
        tid_(tid),
        capacity_(RoundUpPow2(std::max<size_t>(events, 1))),
        chunk_shift_(
            std::countr_zero(std::min<size_t>(capacity_, kChunkEvents))),
        chunks_(new std::atomic<Slot*>[capacity_ >> chunk_shift_]) {
    for (size_t i = 0; i < capacity_ >> chunk_shift_; ++i) {
      chunks_[i].store(nullptr, std::memory_order_relaxed);
    }
  }
  ~TraceRing() {
    for (size_t i = 0; i < capacity_ >> chunk_shift_; ++i) {
      delete[] chunks_[i].load(std::memory_order_relaxed);
    }
  }
  TraceRing(const TraceRing&) = delete;
  TraceRing& operator=(const TraceRing&) = delete;

  const std::string& name() const { return name_; }
  int tid() const { return tid_; }

  // Owner only. Recording's append (trace.h).
  [[gnu::always_inline]] void Append(const Event& e) {
    const uint64_t n = next_;
    // relaxed: ordered before the slot's stores by their release.
    writing_.store(n, std::memory_order_relaxed);
    Slot* s = SlotFor(n);
    // release, each: orders writing_ = n before it; pairs with Snapshot's
    // acquire loads of the same fields.
    s->start.store(e.start, std::memory_order_release);
    s->end.store(e.end, std::memory_order_release);
    s->label.store(e.label, std::memory_order_release);
    s->group_name.store(e.group_name, std::memory_order_release);
    s->aux.store(e.aux, std::memory_order_release);
    s->group_id_kind.store(e.group_id << 8 | e.kind,
                           std::memory_order_release);
    next_ = n + 1;
    // release: publishes the slot; pairs with the acquire load in Snapshot.
    head_.store(n + 1, std::memory_order_release);
  }

  // Any thread: the events still held, oldest first; adds to *dropped
  // those recorded and no longer held (overwritten, or torn by a concurrent
  // overwrite while copying).
  std::vector<Event> Snapshot(uint64_t* dropped) const {
    // acquire: pairs with the release store in Append (reading's head load,
    // trace.h).
    const uint64_t head = head_.load(std::memory_order_acquire);
    const uint64_t first = head > capacity_ ? head - capacity_ : 0;
    std::vector<Event> out;
    out.reserve(head - first);
    for (uint64_t i = first; i < head; ++i) {  // the copy
      const Slot* s = SlotAt(i);
      Event e;
      // acquire, each: pairs with Append's release stores, so that a field
      // of a later event orders that event's writing_ store before our
      // load of writing_ below.
      e.start = s->start.load(std::memory_order_acquire);
      e.end = s->end.load(std::memory_order_acquire);
      e.label = s->label.load(std::memory_order_acquire);
      e.group_name = s->group_name.load(std::memory_order_acquire);
      e.aux = s->aux.load(std::memory_order_acquire);
      const uint64_t gk = s->group_id_kind.load(std::memory_order_acquire);
      e.group_id = gk >> 8;
      e.kind = static_cast<uint8_t>(gk & 0xff);
      out.push_back(e);
    }
    // The torn check. relaxed: after the acquire loads above (see trace.h).
    const uint64_t w = writing_.load(std::memory_order_relaxed);
    uint64_t valid_from = first;
    if (w + 1 > capacity_ && w + 1 - capacity_ > first) {
      valid_from = w + 1 - capacity_;  // i <= w - capacity may be torn
    }
    const uint64_t torn = std::min(valid_from, head) - first;
    out.erase(out.begin(), out.begin() + static_cast<ptrdiff_t>(torn));
    *dropped += first + torn;
    return out;
  }

 private:
  static constexpr size_t kChunkEvents = 1024;
  struct Slot {
    std::atomic<uint64_t> start{0};
    std::atomic<uint64_t> end{0};
    std::atomic<const char*> label{nullptr};
    std::atomic<const char*> group_name{nullptr};
    std::atomic<uint64_t> aux{0};
    std::atomic<uint64_t> group_id_kind{0};
  };

  Slot* SlotFor(uint64_t n) {  // owner only
    const size_t i = n & (capacity_ - 1);
    std::atomic<Slot*>& chunk = chunks_[i >> chunk_shift_];
    // relaxed: only the owner writes chunk pointers.
    Slot* c = chunk.load(std::memory_order_relaxed);
    if (c == nullptr) [[unlikely]] {
      c = new Slot[size_t{1} << chunk_shift_];
      // release: publishes the chunk (readers reach it only through a
      // head_ that covers it, which is a release store too).
      chunk.store(c, std::memory_order_release);
    }
    return &c[i & ((size_t{1} << chunk_shift_) - 1)];
  }
  const Slot* SlotAt(uint64_t n) const {
    const size_t i = n & (capacity_ - 1);
    // acquire: pairs with the release store in SlotFor. Non-null: every
    // event below head_ was appended into an allocated chunk.
    return &chunks_[i >> chunk_shift_].load(
        std::memory_order_acquire)[i & ((size_t{1} << chunk_shift_) - 1)];
  }

  const std::string name_;  // the thread's name in the file
  const int tid_;           // the thread's "tid" in the file
  const size_t capacity_;   // a power of two
  const int chunk_shift_;   // log2 of the events per chunk (<= capacity_)
  const std::unique_ptr<std::atomic<Slot*>[]> chunks_;
  uint64_t next_ = 0;  // owner only: the next event's number
  // The event being written (relaxed) and one past the last complete one
  // (release/acquire): the seqlock atop trace.h.
  std::atomic<uint64_t> writing_{0};
  std::atomic<uint64_t> head_{0};
};

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

// ---- the file ---------------------------------------------------------------

namespace {

// Appends `s` as a JSON string: quotes, backslashes and control characters
// escaped, and every byte that is not part of valid UTF-8 replaced by
// U+FFFD, so that any reason (they can hold anything) stays valid JSON.
void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          *out += "\\\"";
          break;
        case '\\':
          *out += "\\\\";
          break;
        case '\n':
          *out += "\\n";
          break;
        case '\r':
          *out += "\\r";
          break;
        case '\t':
          *out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            absl::StrAppendFormat(out, "\\u%04x", c);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: its length from the lead byte, then checks
    // for continuation bytes, overlong forms, surrogates and > U+10FFFF.
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xc0) == 0x80;
      cp = cp << 6 | (cc & 0x3f);
    }
    if (ok) {
      ok = !(len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
           !(len == 4 && (cp < 0x10000 || cp > 0x10ffff));
    }
    if (ok) {
      out->append(s.data() + i, len);
      i += len;
    } else {
      *out += "\\ufffd";
      ++i;
    }
  }
  out->push_back('"');
}

// "unnamed group #a.b" as GroupState::Label() spells an unnamed group.
std::string GroupLabel(uint64_t id, const char* name) {
  if (name != nullptr) return name;
  return absl::StrCat("unnamed group #", id >> 40, ".",
                      id & ((uint64_t{1} << 40) - 1));
}

const char* KindCategory(TraceKind kind) {
  switch (kind) {
    case TraceKind::kTask:
      return "task";
    case TraceKind::kBlocking:
      return "blocking";
    case TraceKind::kStop:
      return "stop";
    case TraceKind::kSignal:
      return "signal";
    case TraceKind::kSpawn:
      return "flow";
  }
  return "unknown";
}

absl::Status FileError(int err, std::string_view what, std::string_view path) {
  return absl::ErrnoToStatus(
      err, absl::StrCat("Executor::WriteTrace: cannot ", std::string(what),
                        " '", std::string(path), "'"));
}

}  // namespace

absl::Status Tracer::Write(std::string_view path) const {
  // The clock's second calibration point, at least 20 ms after the first
  // (a shorter base would magnify clock_gettime's jitter).
  int64_t mono = MonotonicNanos();
  if (mono - start_mono_ns_ < 20'000'000) {
    absl::SleepFor(absl::Nanoseconds(20'000'000 - (mono - start_mono_ns_)));
  }
  uint64_t ticks = Now();
  mono = MonotonicNanos();
  const double ns_per_tick = ticks > start_ticks_
                                 ? static_cast<double>(mono - start_mono_ns_) /
                                       static_cast<double>(ticks - start_ticks_)
                                 : 1.0;
  auto micros = [&](uint64_t t) {
    const double d =
        static_cast<double>(static_cast<int64_t>(t - start_ticks_)) *
        ns_per_tick;
    return (static_cast<double>(start_mono_ns_) + d) / 1000.0;
  };

  struct RingView {
    std::string name;
    int tid;
    std::vector<TraceRing::Event> events;
  };
  std::vector<RingView> views;
  uint64_t dropped = 0;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& r : rings_) {
      views.push_back({r->name(), r->tid(), r->Snapshot(&dropped)});
    }
  }
  const int pid = static_cast<int>(getpid());
  std::string out = "{\"traceEvents\":[\n";
  absl::StrAppendFormat(&out,
                        "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,"
                        "\"tid\":0,\"args\":{\"name\":\"ripcord\"}}",
                        pid);
  for (const RingView& v : views) {
    absl::StrAppendFormat(
        &out,
        ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,"
        "\"tid\":%d,\"args\":{\"name\":",
        pid, v.tid);
    AppendJsonString(&out, v.name);
    out += "}}";
  }
  // Site labels as running_tasks.cc spells them: 'name' (line 0), else the
  // file without its folders, ':', the line.
  absl::flat_hash_map<std::pair<const char*, uint32_t>, std::string> sites;
  auto site_label = [&sites](const char* file,
                             uint32_t line) -> const std::string& {
    std::string& text = sites[{file, line}];
    if (text.empty()) {
      if (line == 0) {
        text = absl::StrCat("'", file, "'");
      } else {
        const char* slash = std::strrchr(file, '/');
        text = absl::StrCat(slash != nullptr ? slash + 1 : file, ":", line);
      }
    }
    return text;
  };
  // Flows: spawns by id (tick, tid), and the runs that name one.
  struct FlowEnd {
    uint64_t tick;
    int tid;
    bool used;
  };
  absl::flat_hash_map<uint32_t, std::vector<FlowEnd>> spawns;
  std::vector<std::pair<uint32_t, FlowEnd>> flow_runs;
  for (RingView& v : views) {
    // Oldest first by start: a nested run ends before its outer one, so
    // the ring holds it first.
    std::stable_sort(v.events.begin(), v.events.end(),
                     [](const TraceRing::Event& a, const TraceRing::Event& b) {
                       return a.start < b.start;
                     });
    for (const TraceRing::Event& e : v.events) {
      const TraceKind kind = e.Kind();
      if (kind == TraceKind::kSpawn) {
        spawns[static_cast<uint32_t>(e.aux)].push_back({e.start, v.tid, false});
        continue;
      }
      const bool instant = kind == TraceKind::kStop || kind == TraceKind::kSignal;
      const bool site = (e.kind & TraceRing::kSiteLabel) != 0;
      if (site && e.aux >> 32 != 0) {
        flow_runs.push_back(
            {static_cast<uint32_t>(e.aux >> 32), {e.start, v.tid, false}});
      }
      absl::StrAppendFormat(&out, ",\n{\"ph\":\"%s\",\"cat\":\"%s\",\"name\":",
                            instant ? "i" : "X", KindCategory(kind));
      if (site && e.label != nullptr) {
        AppendJsonString(&out, site_label(e.label, static_cast<uint32_t>(e.aux)));
      } else if (e.label != nullptr) {
        AppendJsonString(&out, e.label);
      } else if (kind == TraceKind::kTask && e.group_name != nullptr) {
        AppendJsonString(&out, e.group_name);
      } else {
        AppendJsonString(&out, kind == TraceKind::kBlocking ? "blocking" : "task");
      }
      absl::StrAppendFormat(&out, ",\"pid\":%d,\"tid\":%d,\"ts\":%.3f", pid,
                            v.tid, micros(e.start));
      if (instant) {
        absl::StrAppendFormat(&out, ",\"s\":\"%s\"",
                              kind == TraceKind::kSignal ? "g" : "t");
      } else {
        absl::StrAppendFormat(&out, ",\"dur\":%.3f",
                              std::max(0.0, micros(e.end) - micros(e.start)));
      }
      const char* reason = kind == TraceKind::kStop
                               ? reinterpret_cast<const char*>(e.aux)
                               : nullptr;
      if (e.group_id != 0 || reason != nullptr) {
        out += ",\"args\":{";
        if (e.group_id != 0) {
          out += "\"group\":";
          AppendJsonString(&out, GroupLabel(e.group_id, e.group_name));
        }
        if (reason != nullptr) {
          if (e.group_id != 0) out += ",";
          out += "\"reason\":";
          AppendJsonString(&out, reason);
        }
        out += "}";
      }
      out += "}";
    }
  }
  // Flow arrows from a spawn to its task's run ("s" on the spawning
  // thread, bound to the run it was spawned from; "f" bound to the run it
  // leads to), paired by id: a run takes the newest unpaired spawn of its
  // id at or before its start (ids wrap, see Tracer::Spawn). Runs whose
  // spawn the ring no longer holds get none. Each pair gets a fresh id.
  for (auto& [id, list] : spawns) {
    std::sort(list.begin(), list.end(), [](const FlowEnd& a, const FlowEnd& b) {
      return a.tick < b.tick;
    });
  }
  int64_t next_flow = 1;
  for (const auto& [id, run] : flow_runs) {
    auto it = spawns.find(id);
    if (it == spawns.end()) continue;
    std::vector<FlowEnd>& list = it->second;
    auto pos = std::upper_bound(
        list.begin(), list.end(), run.tick,
        [](uint64_t t, const FlowEnd& f) { return t < f.tick; });
    while (pos != list.begin() && std::prev(pos)->used) --pos;
    if (pos == list.begin()) continue;
    FlowEnd& from = *std::prev(pos);
    from.used = true;
    // 2 ns into the spawning run: the tick is that run's start or the end
    // of a run nested in it, which must not be the slice it binds to.
    absl::StrAppendFormat(
        &out,
        ",\n{\"ph\":\"s\",\"cat\":\"flow\",\"name\":\"spawn\",\"id\":%d,"
        "\"pid\":%d,\"tid\":%d,\"ts\":%.3f}",
        next_flow, pid, from.tid, micros(from.tick) + 0.002);
    absl::StrAppendFormat(
        &out,
        ",\n{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"flow\",\"name\":\"spawn\","
        "\"id\":%d,\"pid\":%d,\"tid\":%d,\"ts\":%.3f}",
        next_flow, pid, run.tid, micros(run.tick));
    ++next_flow;
  }
  // Named groups' activity as async spans ("b"/"e", cat "group", a track
  // per group): from the group's first recorded event to its last. Derived
  // here, so recording pays nothing for it; unnamed groups (fib opens one
  // per call) would be a track each, so they get none.
  struct Span {
    const char* name;
    uint64_t first;
    uint64_t last;
  };
  absl::flat_hash_map<uint64_t, Span> spans;
  for (const RingView& v : views) {
    for (const TraceRing::Event& e : v.events) {
      if (e.group_id == 0 || e.group_name == nullptr) continue;
      auto it =
          spans.try_emplace(e.group_id, Span{e.group_name, e.start, e.end})
              .first;
      it->second.first = std::min(it->second.first, e.start);
      it->second.last = std::max(it->second.last, e.end);
    }
  }
  std::vector<std::pair<uint64_t, Span>> sorted(spans.begin(), spans.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.first < b.second.first;
  });
  for (const auto& [id, span] : sorted) {
    for (const bool begin : {true, false}) {
      absl::StrAppendFormat(&out, ",\n{\"ph\":\"%s\",\"cat\":\"group\",",
                            begin ? "b" : "e");
      out += "\"name\":";
      AppendJsonString(&out, span.name);
      absl::StrAppendFormat(&out,
                            ",\"id\":\"0x%x\",\"pid\":%d,\"tid\":0,"
                            "\"ts\":%.3f}",
                            id, pid, micros(begin ? span.first : span.last));
    }
  }
  absl::StrAppendFormat(
      &out,
      "\n],\n\"displayTimeUnit\":\"ms\",\n\"metadata\":{\"dropped_events\":%d,"
      "\"ring_events\":%d,\"clock\":\"CLOCK_MONOTONIC\",\"threads\":%d}}\n",
      static_cast<int64_t>(dropped), static_cast<int64_t>(ring_events_),
      static_cast<int>(views.size()));

  const std::string p(path);
  const int fd =
      ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return FileError(errno, "open", p);
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return FileError(err, "write", p);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return FileError(errno, "close", p);
  return absl::OkStatus();
}

absl::Status WriteTrace(const Tracer* tracer, std::string_view path) {
  if (tracer == nullptr) {
    return absl::FailedPreconditionError(
        "Executor::WriteTrace: tracing is off (set ExecutorOptions::"
        "trace_path or $RIPCORD_TRACE before creating the Executor)");
  }
  return tracer->Write(path);
}

void Tracer::WriteToPath() const {
  const absl::Status s = Write(path_);
  if (!s.ok()) {
    std::fprintf(stderr, "ripcord: %s\n", s.ToString().c_str());
  }
}

}  // namespace ripcord::internal
