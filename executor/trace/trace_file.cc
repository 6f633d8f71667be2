// Copyright 2026 The ripcord Authors.
//
// trace_file.cc: the flight recorder's file: every ring's snapshot written
// as Trace Event JSON (the format's fields are listed atop trace.h), with
// flow pairs matched and the dropped events counted in the metadata.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/trace/trace.h"
#include "executor/trace/trace_ring.h"

namespace ripcord::internal {

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
