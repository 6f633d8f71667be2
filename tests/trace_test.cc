// Copyright 2026 The ripcord Authors.
//
// The flight recorder (API.md, "What shutdown waits for, and the flight
// recorder"): the file is valid JSON (read back by a small reader below, so
// the test needs nothing but the standard library), and holds, for a known
// workload, the thread names, one complete event per task run (each
// coroutine resumption is a run), one per blocking call, an instant per
// group's first stop with its reason, and one per stop signal. WriteTrace's
// errors, and rings that keep the newest events when full.
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/base/test_hooks.h"
#include "executor/trace/trace.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"

namespace ripcord {
namespace {

// ---- a small JSON reader ----------------------------------------------------

struct Json;
using JsonObject = std::map<std::string, Json>;
using JsonArray = std::vector<Json>;
struct Json {
  std::variant<std::nullptr_t, bool, double, std::string, JsonArray, JsonObject>
      v;
  bool is_object() const { return std::holds_alternative<JsonObject>(v); }
  const JsonObject& object() const { return std::get<JsonObject>(v); }
  const JsonArray& array() const { return std::get<JsonArray>(v); }
  const std::string& str() const { return std::get<std::string>(v); }
  double num() const { return std::get<double>(v); }
  // Member `k` of an object, or null.
  const Json* get(const std::string& k) const {
    if (!is_object()) return nullptr;
    auto it = object().find(k);
    return it == object().end() ? nullptr : &it->second;
  }
  std::string get_str(const std::string& k) const {
    const Json* j = get(k);
    return j != nullptr && std::holds_alternative<std::string>(j->v) ? j->str()
                                                                     : "";
  }
};

// Strict RFC 8259 reader: Parse() returns false on any syntax error,
// trailing garbage, an invalid escape, a raw control character in a string,
// or bytes that are not valid UTF-8.
class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}
  bool Parse(Json* out) {
    if (!Value(out)) return false;
    Ws();
    return i_ == s_.size();
  }

 private:
  void Ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' ||
                              s_[i_] == '\r' || s_[i_] == '\t')) {
      ++i_;
    }
  }
  bool Lit(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool Value(Json* out) {
    Ws();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') return Object(out);
    if (c == '[') return Array(out);
    if (c == '"') {
      std::string str;
      if (!String(&str)) return false;
      out->v = std::move(str);
      return true;
    }
    if (Lit("true")) return out->v = true, true;
    if (Lit("false")) return out->v = false, true;
    if (Lit("null")) return out->v = nullptr, true;
    return Number(out);
  }
  bool Number(Json* out) {
    const size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    auto digits = [&] {
      const size_t d = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ > d;
    };
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digits()) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    out->v =
        std::strtod(std::string(s_.substr(start, i_ - start)).c_str(), nullptr);
    return true;
  }
  static void PutUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | cp >> 6));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | cp >> 12));
      out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | cp >> 18));
      out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
  bool Hex4(uint32_t* cp) {
    if (i_ + 4 > s_.size()) return false;
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      *cp <<= 4;
      if (h >= '0' && h <= '9') {
        *cp |= h - '0';
      } else if (h >= 'a' && h <= 'f') {
        *cp |= h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        *cp |= h - 'A' + 10;
      } else {
        return false;
      }
    }
    return true;
  }
  bool String(std::string* out) {
    ++i_;  // the opening quote
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= s_.size()) return false;
        const char e = s_[i_++];
        switch (e) {
          case '"':
            out->push_back('"');
            break;
          case '\\':
            out->push_back('\\');
            break;
          case '/':
            out->push_back('/');
            break;
          case 'b':
            out->push_back('\b');
            break;
          case 'f':
            out->push_back('\f');
            break;
          case 'n':
            out->push_back('\n');
            break;
          case 'r':
            out->push_back('\r');
            break;
          case 't':
            out->push_back('\t');
            break;
          case 'u': {
            uint32_t cp;
            if (!Hex4(&cp)) return false;
            if (cp >= 0xd800 && cp <= 0xdbff) {
              uint32_t lo;
              if (!Lit("\\u") || !Hex4(&lo) || lo < 0xdc00 || lo > 0xdfff) {
                return false;
              }
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
              return false;
            }
            PutUtf8(out, cp);
            break;
          }
          default:
            return false;
        }
        continue;
      }
      if (c < 0x80) {
        out->push_back(static_cast<char>(c));
        ++i_;
        continue;
      }
      // Multi-byte UTF-8: validate and copy.
      int len = c >= 0xc2 && c <= 0xdf   ? 2
                : c >= 0xe0 && c <= 0xef ? 3
                : c >= 0xf0 && c <= 0xf4 ? 4
                                         : 0;
      if (len == 0 || i_ + len > s_.size()) return false;
      uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
      for (int k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s_[i_ + k]);
        if ((cc & 0xc0) != 0x80) return false;
        cp = cp << 6 | (cc & 0x3f);
      }
      if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
          (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
        return false;
      }
      out->append(s_.substr(i_, len));
      i_ += len;
    }
    return false;
  }
  bool Array(Json* out) {
    ++i_;
    JsonArray a;
    Ws();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      out->v = std::move(a);
      return true;
    }
    for (;;) {
      Json e;
      if (!Value(&e)) return false;
      a.push_back(std::move(e));
      Ws();
      if (i_ >= s_.size()) return false;
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] != ']') return false;
      ++i_;
      out->v = std::move(a);
      return true;
    }
  }
  bool Object(Json* out) {
    ++i_;
    JsonObject o;
    Ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      out->v = std::move(o);
      return true;
    }
    for (;;) {
      Ws();
      if (i_ >= s_.size() || s_[i_] != '"') return false;
      std::string key;
      if (!String(&key)) return false;
      Ws();
      if (i_ >= s_.size() || s_[i_] != ':') return false;
      ++i_;
      Json val;
      if (!Value(&val)) return false;
      o.emplace(std::move(key), std::move(val));
      Ws();
      if (i_ >= s_.size()) return false;
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] != '}') return false;
      ++i_;
      out->v = std::move(o);
      return true;
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

TEST(JsonReader, AcceptsAndRejects) {
  Json j;
  EXPECT_TRUE(
      JsonReader(R"({"a":[1,-2.5e3,true,null,"x\u00e9\n"]})").Parse(&j));
  EXPECT_EQ(j.get("a")->array()[4].str(), "x\xc3\xa9\n");
  EXPECT_FALSE(JsonReader(R"({"a":1,})").Parse(&j));
  EXPECT_FALSE(JsonReader("{\"a\":\"\x01\"}").Parse(&j));
  EXPECT_FALSE(JsonReader("{\"a\":\"\xff\"}").Parse(&j));
  EXPECT_FALSE(JsonReader(R"({"a":"\q"})").Parse(&j));
  EXPECT_FALSE(JsonReader(R"({"a":1} x)").Parse(&j));
}

// ---- helpers ---------------------------------------------------------------

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Parses the file at `path` (failing the test if it is not JSON).
Json ParseTrace(const std::string& path) {
  const std::string text = ReadFile(path);
  Json j;
  EXPECT_TRUE(JsonReader(text).Parse(&j)) << "not JSON:\n"
                                          << text.substr(0, 2000);
  EXPECT_TRUE(j.is_object());
  return j;
}

std::vector<Json> EventsOf(const Json& trace) {
  const Json* events = trace.get("traceEvents");
  if (events == nullptr) {
    ADD_FAILURE() << "no traceEvents";
    return {};
  }
  return events->array();
}

// A reason holding everything JSON must escape, and bytes that are not
// UTF-8 (which the writer replaces by U+FFFD). The trace holds the reason
// as the group records it, control characters escaped (CapStopReason), so
// it reads like the group's Wait() status.
const std::string kNastyReason =
    std::string("quote \" backslash \\ newline \n tab \t ctrl \x01 \x1f del ") +
    "\x7f utf8 \xc3\xa9 \xe2\x82\xac bad \xff \xc3 end";
const std::string kNastyReasonRead =
    std::string("quote \" backslash \\ newline \\n tab \\t ctrl \\x01 ") +
    "\\x1f del \\x7f utf8 \xc3\xa9 \xe2\x82\xac bad \xef\xbf\xbd " +
    "\xef\xbf\xbd end";

// ---- the workload ----------------------------------------------------------

// The known workload: 10 plain tasks of 'plain', a coroutine of 'coro'
// that sleeps twice (so 3 runs, or 2 if a sleep ended before it suspended), a blocking call of 'blocking', a group
// 'stopped' stopped with kNastyReason; WriteTrace then holds all of it.
// The file is the one the Executor's destructor writes: by then every
// thread has been joined, so every event is in (WriteTrace, earlier, could
// miss the blocking call's, recorded when the job's function has returned,
// after the done callback may already have run).
TEST(Trace, FileHoldsTheWorkloadsEvents) {
  const std::string path = TempPath("workload.json");
  {
    Executor executor({.num_workers = 2, .trace_path = path});
    TaskGroup plain(executor, {.name = "plain"});
    std::atomic<int> ran{0};
    for (int i = 0; i < 10; ++i) plain.Spawn([&ran] { ran.fetch_add(1); });
    ASSERT_TRUE(plain.Wait().ok());
    ASSERT_EQ(ran.load(), 10);

    TaskGroup coro(executor, {.name = "coro"});
    coro.Spawn([]() -> Task<absl::Status> {
      absl::Status s = co_await Sleep(absl::Milliseconds(1));
      if (!s.ok()) co_return s;
      co_return co_await Sleep(absl::Milliseconds(1));
    });
    ASSERT_TRUE(coro.Wait().ok());

    TaskGroup blocking(executor, {.name = "blocking"});
    absl::Notification done;
    blocking.SpawnBlocking([] { absl::SleepFor(absl::Milliseconds(2)); },
                           [&done](absl::Status) { done.Notify(); });
    ASSERT_TRUE(blocking.Wait().ok());
    ASSERT_TRUE(done.HasBeenNotified());

    TaskGroup stopped(executor, {.name = "stopped"});
    stopped.RequestStop(kNastyReason);
    stopped.RequestStop("a second stop is not recorded");
    EXPECT_FALSE(stopped.Wait().ok());
  }
  const Json trace = ParseTrace(path);
  ASSERT_NE(trace.get("metadata"), nullptr);
  EXPECT_EQ(trace.get("metadata")->get("dropped_events")->num(), 0);

  std::map<double, std::string> thread_names;  // tid -> name
  std::map<std::string, int> task_runs;        // group -> "X" task events
  int blocking_runs = 0;
  std::string blocking_thread;
  std::vector<std::pair<std::string, std::string>> stops;  // group, reason
  std::vector<double> ts;
  std::map<std::string, std::pair<double, double>> spans;  // group: b, e
  for (const Json& e : EventsOf(trace)) {
    const std::string ph = e.get_str("ph");
    const std::string cat = e.get_str("cat");
    if (ph == "M") {
      if (e.get_str("name") == "thread_name") {
        thread_names[e.get("tid")->num()] = e.get("args")->get_str("name");
      }
      continue;
    }
    ASSERT_NE(e.get("ts"), nullptr);
    ASSERT_NE(e.get("pid"), nullptr);
    ASSERT_NE(e.get("tid"), nullptr);
    ts.push_back(e.get("ts")->num());
    if (ph == "X") {
      ASSERT_NE(e.get("dur"), nullptr);
      EXPECT_GE(e.get("dur")->num(), 0);
    }
    if (ph == "X" && cat == "task") {
      ++task_runs[e.get("args")->get_str("group")];
      EXPECT_FALSE(e.get_str("name").empty());
    } else if (ph == "X" && cat == "blocking") {
      ++blocking_runs;
      blocking_thread = thread_names[e.get("tid")->num()];
      EXPECT_EQ(e.get("args")->get_str("group"), "blocking");
      EXPECT_GE(e.get("dur")->num(), 1000);  // slept 2 ms
    } else if (ph == "i" && cat == "stop") {
      stops.emplace_back(e.get("args")->get_str("group"),
                         e.get("args")->get_str("reason"));
    } else if ((ph == "b" || ph == "e") && cat == "group") {
      auto& [b, e2] = spans[e.get_str("name")];
      (ph == "b" ? b : e2) = e.get("ts")->num();
    } else {
      ADD_FAILURE() << "unexpected event ph=" << ph << " cat=" << cat;
    }
  }
  EXPECT_EQ(task_runs["plain"], 10);
  // The first run and one per resumption: 3, or 2 when a sleep's timer
  // fired before its coroutine had suspended (a slow TSan run): it then
  // goes on in the same run, as SleepSuspend's Arm() allows.
  EXPECT_GE(task_runs["coro"], 2);
  EXPECT_LE(task_runs["coro"], 3);
  // Each named group with events has its span, from its first to its last.
  ASSERT_EQ(spans.size(), 4u);
  for (const char* g : {"plain", "coro", "blocking", "stopped"}) {
    ASSERT_TRUE(spans.count(g)) << g;
    EXPECT_GT(spans[g].first, 0) << g;
    EXPECT_GE(spans[g].second, spans[g].first) << g;
  }
  EXPECT_LT(spans["plain"].second, spans["coro"].first);
  EXPECT_EQ(blocking_runs, 1);
  EXPECT_TRUE(absl::StartsWith(blocking_thread, "ripcord-blocking-"))
      << blocking_thread;
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].first, "stopped");
  EXPECT_EQ(stops[0].second, kNastyReasonRead);
  bool worker_named = false;
  for (const auto& [tid, name] : thread_names) {
    if (absl::StartsWith(name, "ripcord-worker-")) worker_named = true;
  }
  EXPECT_TRUE(worker_named);
  // Microseconds of CLOCK_MONOTONIC: within the last minute of that clock.
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  const double now_us = now.tv_sec * 1e6 + now.tv_nsec / 1e3;
  for (double t : ts) {
    EXPECT_LE(t, now_us + 1000);
    EXPECT_GE(t, now_us - 60e6);
  }
}

// Every thread that recorded is named: workers by number, the test's own
// thread (which stops a group) by its own name.
TEST(Trace, ThreadsAreNamed) {
  const std::string path = TempPath("names.json");
  Executor executor({.num_workers = 2, .trace_path = path});
  {
    TaskGroup g(executor, {.name = "g"});
    g.RequestStop("from the test thread");
    g.Wait().IgnoreError();
  }
  ASSERT_TRUE(executor.WriteTrace(path).ok());
  const Json trace = ParseTrace(path);
  std::map<double, std::string> names;
  std::set<double> recorded;
  for (const Json& e : EventsOf(trace)) {
    if (e.get_str("ph") == "M" && e.get_str("name") == "thread_name") {
      names[e.get("tid")->num()] = e.get("args")->get_str("name");
    } else if (e.get_str("ph") == "X" || e.get_str("ph") == "i") {
      recorded.insert(e.get("tid")->num());
    }
  }
  ASSERT_EQ(recorded.size(), 1u);
  char own[64] = {};
  pthread_getname_np(pthread_self(), own, sizeof own);
  EXPECT_EQ(names[*recorded.begin()], own);
}

// Tracing is off unless trace_path or $RIPCORD_TRACE says otherwise.
TEST(Trace, WriteTraceWhenOffIsFailedPrecondition) {
  unsetenv("RIPCORD_TRACE");
  Executor executor({.num_workers = 1});
  const absl::Status s = executor.WriteTrace(TempPath("off.json"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

TEST(Trace, EnvironmentVariableTurnsItOn) {
  const std::string path = TempPath("env.json");
  setenv("RIPCORD_TRACE", path.c_str(), 1);
  {
    Executor executor({.num_workers = 1});
    unsetenv("RIPCORD_TRACE");
    TaskGroup g(executor, {.name = "env"});
    g.Spawn([] {});
    ASSERT_TRUE(g.Wait().ok());
  }  // the destructor writes the file
  const Json trace = ParseTrace(path);
  int runs = 0;
  for (const Json& e : EventsOf(trace)) {
    if (e.get_str("cat") == "task") ++runs;
  }
  EXPECT_EQ(runs, 1);
}

TEST(Trace, UnwritablePathIsTheFileSystemsError) {
  Executor executor({.num_workers = 1, .trace_path = TempPath("x.json")});
  const std::string missing = TempPath("no/such/folder/trace.json");
  absl::Status s = executor.WriteTrace(missing);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), missing)) << s;
  // A folder is not a file: EISDIR.
  const std::string dir = TempPath("");
  s = executor.WriteTrace(dir);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), dir)) << s;
}

// Ring sizes for the Tracers created while a RingEvents lives, through
// TestHook::kTraceRingEvents (builds without NDEBUG only).
std::atomic<size_t> ring_events{0};
bool SetRingEvents(const void* arg) {
  *static_cast<size_t*>(const_cast<void*>(arg)) = ring_events.load();
  return false;
}
class RingEvents {
 public:
  explicit RingEvents(size_t n) {
    ring_events.store(n);
    internal::SetTestHook(internal::TestHook::kTraceRingEvents,
                          &SetRingEvents);
  }
  ~RingEvents() {
    internal::SetTestHook(internal::TestHook::kTraceRingEvents, nullptr);
  }
};

// A full ring keeps the newest events and counts the others dropped.
TEST(Trace, FullRingKeepsTheNewestEvents) {
  if (!internal::TestHooksAvailable()) GTEST_SKIP() << "no test hooks";
  const std::string path = TempPath("ring.json");
  auto ring = std::make_unique<RingEvents>(8);
  Executor executor({.num_workers = 1, .trace_path = path});
  ring.reset();
  {
    // One group per task, named by its number, all from this thread in
    // order: the worker runs them in order (one worker, FIFO injection).
    for (int i = 0; i < 20; ++i) {
      TaskGroup g(executor, {.name = absl::StrCat("g", i)});
      g.Spawn([] {});
      // WaitFor: this thread runs no task (Wait() may, in its own ring).
      ASSERT_TRUE(g.WaitFor(absl::Seconds(20)).ok());
    }
  }
  ASSERT_TRUE(executor.WriteTrace(path).ok());
  const Json trace = ParseTrace(path);
  std::vector<std::string> groups;
  for (const Json& e : EventsOf(trace)) {
    if (e.get_str("cat") == "task") {
      groups.push_back(e.get("args")->get_str("group"));
    }
  }
  const std::vector<std::string> newest = {"g12", "g13", "g14", "g15",
                                           "g16", "g17", "g18", "g19"};
  EXPECT_EQ(groups, newest);
  EXPECT_EQ(trace.get("metadata")->get("dropped_events")->num(), 12);
}

// WriteTrace while workers record: every file is valid and holds no event
// twice (a torn slot would show up as a stray or duplicated event).
TEST(Trace, WriteWhileRecordingStress) {
  if (!internal::TestHooksAvailable()) GTEST_SKIP() << "no test hooks";
  const std::string path = TempPath("stress.json");
  auto ring = std::make_unique<RingEvents>(64);
  Executor executor({.num_workers = 2, .trace_path = path});
  ring.reset();
  std::atomic<bool> stop{false};
  TaskGroup g(executor, {.name = "busy"});
  for (int w = 0; w < 2; ++w) {
    g.Spawn([&stop, &g] {
      while (!stop.load(std::memory_order_relaxed)) {
        TaskGroup child(g, {.name = "child"});
        for (int i = 0; i < 16; ++i) child.Spawn([] {});
        child.Wait().IgnoreError();
      }
    });
  }
  for (int round = 0; round < 20; ++round) {
    const std::string p = TempPath(absl::StrCat("stress", round, ".json"));
    ASSERT_TRUE(executor.WriteTrace(p).ok());
    const Json trace = ParseTrace(p);
    for (const Json& e : EventsOf(trace)) {
      if (e.get_str("ph") != "X") continue;
      EXPECT_EQ(e.get_str("cat"), "task");
      const std::string group = e.get("args")->get_str("group");
      EXPECT_TRUE(group == "child" || group == "busy") << group;
    }
  }
  stop.store(true);
  ASSERT_TRUE(g.Wait().ok());
}

// A stop signal is an instant named after it, and the group it stopped has
// its stop instant with the signal as reason.
TEST(Trace, StopSignalIsRecorded) {
  const std::string path = TempPath("signal.json");
  Executor executor({.num_workers = 1, .trace_path = path});
  {
    SignalWatcher watcher(executor, {.quiet = true});
    TaskGroup g(executor, {.name = "served"});
    kill(getpid(), SIGINT);
    for (int i = 0; i < 5000 && watcher.signals_received() < 1; ++i) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_EQ(watcher.signals_received(), 1);
    g.Wait().IgnoreError();
  }
  ASSERT_TRUE(executor.WriteTrace(path).ok());
  const Json trace = ParseTrace(path);
  int signals = 0;
  std::string stop_reason;
  for (const Json& e : EventsOf(trace)) {
    if (e.get_str("cat") == "signal") {
      ++signals;
      EXPECT_EQ(e.get_str("name"), "SIGINT");
      EXPECT_EQ(e.get_str("ph"), "i");
    } else if (e.get_str("cat") == "stop") {
      stop_reason = e.get("args")->get_str("reason");
      EXPECT_EQ(e.get("args")->get_str("group"), "served");
    }
  }
  EXPECT_EQ(signals, 1);
  EXPECT_EQ(stop_reason, "SIGINT");
}

// The third stop signal ends the process: the SignalWatcher writes the file
// first. A child process runs a task that ignores its stop; the parent sends
// SIGINT three times (each after the child reported the previous one
// handled, so none coalesce) and reads the child's file.
TEST(Trace, ThirdSignalWritesTheFileBeforeTheProcessEnds) {
  const std::string path = TempPath("third.json");
  std::remove(path.c_str());
  int handled[2];
  ASSERT_EQ(pipe(handled), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(handled[0]);
    Executor executor({.num_workers = 1, .trace_path = path});
    TaskGroup stubborn(executor, {.name = "stubborn"});
    SignalWatcher watcher(executor, {.on_signal =
                                         [fd = handled[1]](int, int) {
                                           const char c = 's';
                                           (void)!write(fd, &c, 1);
                                         },
                                     .quiet = true});
    stubborn.Spawn([] { absl::SleepFor(absl::Seconds(60)); });
    const char c = 'r';
    (void)!write(handled[1], &c, 1);  // ready
    absl::SleepFor(absl::Seconds(60));
    _exit(3);  // not reached: the third SIGINT ends the process
  }
  close(handled[1]);
  for (int i = 0; i < 3; ++i) {
    char c = 0;
    ASSERT_EQ(read(handled[0], &c, 1), 1) << "child gone before signal " << i;
    kill(pid, SIGINT);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  close(handled[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  const Json trace = ParseTrace(path);
  int signals = 0;
  for (const Json& e : EventsOf(trace)) {
    if (e.get_str("cat") == "signal") ++signals;
  }
  EXPECT_EQ(signals, 3);
}

// The "X" task events of group `group` in the file at `path`, by name.
std::map<std::string, int> TaskEventsOf(const std::string& path,
                                        const std::string& cat,
                                        const std::string& group) {
  std::map<std::string, int> names;
  for (const Json& e : EventsOf(ParseTrace(path))) {
    if (e.get_str("ph") != "X" || e.get_str("cat") != cat) continue;
    const Json* args = e.get("args");
    if (args == nullptr || args->get_str("group") != group) continue;
    ++names[e.get_str("name")];
  }
  return names;
}

// A started plain task's run is one task event like a spawned one's,
// labelled with its name, else its Start's file:line.
TEST(Trace, StartedTaskRunIsATaskEvent) {
  const std::string path = TempPath("started.json");
  int line = 0;
  {
    Executor executor({.num_workers = 2, .trace_path = path});
    TaskGroup g(executor, {.name = "handles"});
    auto named = g.Start([] { return 7; }, {.name = "seven"});
    line = __LINE__ + 1;
    auto unnamed = g.Start([] { absl::SleepFor(absl::Milliseconds(1)); });
    const absl::StatusOr<int> seven = named.Wait();
    ASSERT_TRUE(seven.ok()) << seven.status();
    EXPECT_EQ(*seven, 7);
    ASSERT_TRUE(unnamed.Wait().ok());
    ASSERT_TRUE(g.Wait().ok());
  }
  const std::map<std::string, int> expected = {
      {"'seven'", 1}, {absl::StrCat("trace_test.cc:", line), 1}};
  EXPECT_EQ(TaskEventsOf(path, "task", "handles"), expected);
}

// A blocking call's event carries its spawn site and its group, named or
// not.
TEST(Trace, BlockingCallHasItsLabelAndGroup) {
  const std::string path = TempPath("blocking.json");
  int line = 0;
  {
    Executor executor({.num_workers = 1, .trace_path = path});
    TaskGroup io(executor, {.name = "io"});
    line = __LINE__ + 1;
    io.SpawnBlocking([] { absl::SleepFor(absl::Milliseconds(1)); },
                     [](absl::Status s) { EXPECT_TRUE(s.ok()) << s; });
    ASSERT_TRUE(io.Wait().ok());
    TaskGroup unnamed(executor);
    unnamed.SpawnBlocking([] {}, [](absl::Status) {});
    ASSERT_TRUE(unnamed.Wait().ok());
  }
  const std::map<std::string, int> expected = {
      {absl::StrCat("trace_test.cc:", line), 1}};
  EXPECT_EQ(TaskEventsOf(path, "blocking", "io"), expected);
  int unnamed_calls = 0;
  for (const Json& e : EventsOf(ParseTrace(path))) {
    if (e.get_str("cat") != "blocking") continue;
    ASSERT_NE(e.get("args"), nullptr);
    const std::string group = e.get("args")->get_str("group");
    if (group == "io") continue;
    ++unnamed_calls;
    EXPECT_TRUE(absl::StartsWith(group, "unnamed group #")) << group;
    EXPECT_TRUE(absl::StartsWith(e.get_str("name"), "trace_test.cc:"));
  }
  EXPECT_EQ(unnamed_calls, 1);
}

// A coroutine's co_await Blocking(...) is a blocking event named after the
// coroutine (its spawn site) in the coroutine's group.
TEST(Trace, CoroutineBlockingCallHasItsLabelAndGroup) {
  const std::string path = TempPath("coro_blocking.json");
  int line = 0;
  {
    Executor executor({.num_workers = 1, .trace_path = path});
    TaskGroup io(executor, {.name = "coro-io"});
    line = __LINE__ + 1;
    io.Spawn([]() -> Task<absl::Status> {
      co_return co_await Blocking(
          [] { absl::SleepFor(absl::Milliseconds(1)); });
    });
    ASSERT_TRUE(io.Wait().ok());
  }
  const std::map<std::string, int> expected = {
      {absl::StrCat("trace_test.cc:", line), 1}};
  EXPECT_EQ(TaskEventsOf(path, "blocking", "coro-io"), expected);
}

// A plain task spawned inside a run has a flow arrow from that run to its
// own: an "s" inside the spawning run's slice and an "f" at the start of
// the spawned task's run ("bp":"e"), with the same id. A task spawned
// outside any run (from the test's thread) has none.
TEST(Trace, SpawnToRunFlowsPairUp) {
  const std::string path = TempPath("flows.json");
  int parent_line = 0;
  {
    Executor executor({.num_workers = 2, .trace_path = path});
    TaskGroup g(executor, {.name = "flows"});
    parent_line = __LINE__ + 1;
    g.Spawn([&g] {
      for (int i = 0; i < 3; ++i) g.Spawn([] {});
    });
    ASSERT_TRUE(g.Wait().ok());
  }
  struct Slice {
    double tid, ts, dur;
    std::string name;
  };
  std::vector<Slice> runs;
  std::map<double, std::vector<std::pair<double, double>>> s_by_id;  // tid,ts
  std::map<double, std::vector<std::pair<double, double>>> f_by_id;
  for (const Json& e : EventsOf(ParseTrace(path))) {
    const std::string ph = e.get_str("ph");
    if (ph == "X" && e.get_str("cat") == "task") {
      runs.push_back({e.get("tid")->num(), e.get("ts")->num(),
                      e.get("dur")->num(), e.get_str("name")});
    } else if (ph == "s" || ph == "f") {
      EXPECT_EQ(e.get_str("cat"), "flow");
      ASSERT_NE(e.get("id"), nullptr);
      if (ph == "f") {
        EXPECT_EQ(e.get_str("bp"), "e");
      }
      (ph == "s" ? s_by_id : f_by_id)[e.get("id")->num()].emplace_back(
          e.get("tid")->num(), e.get("ts")->num());
    }
  }
  ASSERT_EQ(runs.size(), 4u);
  const std::string parent_name = absl::StrCat("trace_test.cc:", parent_line);
  const Slice* parent = nullptr;
  for (const Slice& r : runs) {
    if (r.name == parent_name) parent = &r;
  }
  ASSERT_NE(parent, nullptr);
  ASSERT_EQ(s_by_id.size(), 3u);
  ASSERT_EQ(f_by_id.size(), 3u);
  for (const auto& [id, starts] : s_by_id) {
    ASSERT_EQ(starts.size(), 1u) << id;
    ASSERT_EQ(f_by_id.count(id), 1u) << id;
    ASSERT_EQ(f_by_id[id].size(), 1u) << id;
    // The arrow leaves the parent's run...
    EXPECT_EQ(starts[0].first, parent->tid);
    EXPECT_GE(starts[0].second, parent->ts);
    EXPECT_LE(starts[0].second, parent->ts + parent->dur);
    // ...and reaches a child's run, at its start.
    const auto [tid, ts] = f_by_id[id][0];
    int reached = 0;
    for (const Slice& r : runs) {
      if (&r != parent && r.tid == tid && r.ts == ts) ++reached;
    }
    EXPECT_EQ(reached, 1) << id;
  }
}

}  // namespace
}  // namespace ripcord
