// Copyright 2026 The ripcord Authors.
//
// forensics_test.cc: what shutdown waits for. Executor::DebugString() lists
// each running task (plain task, coroutine, blocking call) under its group
// with its label and how long it has run, marks those that ignore their
// group's stop, and the SignalWatcher's stop-signal line names them.
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/child_process.h"

namespace ripcord {
namespace {

using child_process::Child;
using child_process::Eventually;
using child_process::Say;

// The line of `dump` that contains `needle` ("" if none).
std::string LineWith(const std::string& dump, const std::string& needle) {
  size_t at = dump.find(needle);
  if (at == std::string::npos) return "";
  const size_t begin = dump.rfind('\n', at);
  const size_t end = dump.find('\n', at);
  return dump.substr(begin == std::string::npos ? 0 : begin + 1,
                     end == std::string::npos ? std::string::npos
                                              : end - begin - 1);
}

std::string Site(int line) { return absl::StrCat("forensics_test.cc:", line); }

// Spins until `release`, never reading a stop token.
void Stubborn(std::atomic<bool>* started, const std::atomic<bool>* release) {
  started->store(true);
  while (!release->load()) absl::SleepFor(absl::Milliseconds(1));
}

TEST(Forensics, PlainTaskListedUnderItsGroupWithItsSpawnSite) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "plain"});
  std::atomic<bool> started{false}, release{false};
  // A failed ASSERT must not leave a task spinning under the join.
  absl::Cleanup unblock = [&] { release = true; };
  const int line = __LINE__; g.Spawn([&] { Stubborn(&started, &release); });
  ASSERT_TRUE(Eventually([&] { return started.load(); }));
  absl::SleepFor(absl::Milliseconds(20));
  const std::string dump = ex.DebugString();
  const std::string task = LineWith(dump, Site(line));
  EXPECT_TRUE(absl::StrContains(task, "task " + Site(line) + " running for"))
      << dump;
  EXPECT_FALSE(absl::StrContains(task, "ignoring stop")) << dump;
  // Under its group's line, indented one level deeper.
  const size_t group_at = dump.find("'plain'");
  ASSERT_NE(group_at, std::string::npos) << dump;
  EXPECT_LT(group_at, dump.find(Site(line))) << dump;
  release = true;
  EXPECT_TRUE(g.Wait().ok());
  EXPECT_FALSE(absl::StrContains(ex.DebugString(), Site(line)));
}

TEST(Forensics, SuspendedCoroutineAndBlockingCallListed) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "mixed"});
  std::atomic<bool> blocking_started{false};
  absl::Notification release;
  const int coro_line = __LINE__; g.Spawn([]() -> Task<> {
    co_await Sleep(absl::Hours(1));
  });
  const int blocking_line = __LINE__; g.SpawnBlocking([&] {
        blocking_started = true;
        release.WaitForNotification();
      },
      [](absl::Status) {});
  ASSERT_TRUE(Eventually([&] { return blocking_started.load(); }));
  std::string dump;
  ASSERT_TRUE(Eventually([&] {
    dump = ex.DebugString();
    return absl::StrContains(dump, Site(coro_line));
  })) << dump;
  EXPECT_TRUE(absl::StrContains(LineWith(dump, Site(coro_line)),
                                "coroutine " + Site(coro_line) +
                                    " running for"))
      << dump;
  EXPECT_TRUE(absl::StrContains(LineWith(dump, Site(blocking_line)),
                                "blocking call " + Site(blocking_line) +
                                    " running for"))
      << dump;
  g.RequestStop("test");
  // A sleeping coroutine is woken by the stop; it never ignores it.
  release.Notify();
  EXPECT_TRUE(absl::IsCancelled(g.Wait()));
}

TEST(Forensics, IgnoringStopOnlyForTheTaskThatNeverLooks) {
  Executor ex({.num_workers = 3});
  TaskGroup g(ex, {.name = "stopped"});
  std::atomic<bool> stubborn_started{false}, release{false};
  // A failed ASSERT must not leave a task spinning under the join.
  absl::Cleanup unblock = [&] { release = true; };
  std::atomic<bool> polite_saw_stop{false}, polite_started{false};
  const int stubborn = __LINE__; g.Spawn([&] {
    Stubborn(&stubborn_started, &release);
  });
  const int polite = __LINE__; g.Spawn([&](StopToken t) {
    polite_started = true;
    while (!t.stop_requested()) absl::SleepFor(absl::Milliseconds(1));
    polite_saw_stop = true;
    while (!release.load()) absl::SleepFor(absl::Milliseconds(1));
  });
  // Both running before the stop: a task still queued then is dropped.
  ASSERT_TRUE(Eventually([&] { return stubborn_started.load(); }));
  ASSERT_TRUE(Eventually([&] { return polite_started.load(); }));
  g.RequestStop("test stop");
  ASSERT_TRUE(Eventually([&] { return polite_saw_stop.load(); }));
  std::string dump;
  ASSERT_TRUE(Eventually([&] {
    dump = ex.DebugString();
    return absl::StrContains(dump, Site(polite));
  })) << dump;
  EXPECT_TRUE(
      absl::StrContains(LineWith(dump, Site(stubborn)), ", ignoring stop for"))
      << dump;
  EXPECT_FALSE(absl::StrContains(LineWith(dump, Site(polite)), "ignoring"))
      << dump;
  release = true;
  EXPECT_TRUE(absl::IsCancelled(g.Wait()));
}

TEST(Forensics, CoroutineSuspendedInJoinIsWaitingNotIgnoring) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "outer"});
  std::atomic<bool> started{false}, release{false};
  // A failed ASSERT must not leave a task spinning under the join.
  absl::Cleanup unblock = [&] { release = true; };
  const int line = __LINE__; g.Spawn([&]() -> Task<> {
    TaskGroup child(g, {.name = "inner", .shielded = true});
    child.Spawn([&] { Stubborn(&started, &release); });
    co_await child.Join();
  });
  ASSERT_TRUE(Eventually([&] { return started.load(); }));
  g.RequestStop("test stop");
  std::string dump;
  ASSERT_TRUE(Eventually([&] {
    dump = ex.DebugString();
    return absl::StrContains(dump, Site(line));
  })) << dump;
  const std::string coro = LineWith(dump, Site(line));
  EXPECT_TRUE(absl::StrContains(coro, "(suspended)")) << dump;
  EXPECT_FALSE(absl::StrContains(coro, "ignoring")) << dump;
  release = true;
  (void)g.Wait();
}

TEST(Forensics, StartedTasksShowTheirNameOrSpawnSite) {
  Executor ex({.num_workers = 3});
  TaskGroup g(ex, {.name = "started"});
  std::atomic<bool> a{false}, b{false}, release{false};
  // A failed ASSERT must not leave a task spinning under the join.
  absl::Cleanup unblock = [&] { release = true; };
  TaskHandle<> named =
      g.Start([&] { Stubborn(&a, &release); }, {.name = "fetch"});
  const int line = __LINE__; TaskHandle<> unnamed = g.Start([&] {
    Stubborn(&b, &release);
  });
  TaskHandle<> sleeper = g.Start(
      []() -> Task<> { co_await Sleep(absl::Hours(1)); }, {.name = "nap"});
  ASSERT_TRUE(Eventually([&] { return a.load() && b.load(); }));
  std::string dump;
  ASSERT_TRUE(Eventually([&] {
    dump = ex.DebugString();
    return absl::StrContains(dump, "'nap'");
  })) << dump;
  EXPECT_TRUE(absl::StrContains(dump, "task 'fetch' running for")) << dump;
  EXPECT_TRUE(absl::StrContains(dump, "task " + Site(line) + " running for"))
      << dump;
  EXPECT_TRUE(absl::StrContains(LineWith(dump, "'nap'"),
                                "coroutine 'nap' running for"))
      << dump;
  release = true;
  sleeper.RequestStop("done");
  (void)g.Wait();
}

// A stop through a task's own handle counts: the group is not stopped.
TEST(Forensics, HandleStopMarksTheTaskThatIgnoresIt) {
  Executor ex({.num_workers = 3});
  TaskGroup g(ex, {.name = "handles"});
  std::atomic<bool> started{false}, release{false}, polite_saw{false};
  // A failed ASSERT must not leave a task spinning under the join.
  absl::Cleanup unblock = [&] { release = true; };
  std::atomic<bool> polite_started{false};
  TaskHandle<> stubborn =
      g.Start([&] { Stubborn(&started, &release); }, {.name = "stubborn"});
  TaskHandle<> polite = g.Start(
      [&](StopToken t) {
        polite_started = true;
        while (!t.stop_requested()) absl::SleepFor(absl::Milliseconds(1));
        polite_saw = true;
        while (!release.load()) absl::SleepFor(absl::Milliseconds(1));
      },
      {.name = "polite"});
  // Both run before the stops (a task stopped before it starts never runs).
  ASSERT_TRUE(
      Eventually([&] { return started.load() && polite_started.load(); }));
  stubborn.RequestStop("not needed");
  polite.RequestStop("not needed");
  ASSERT_TRUE(Eventually([&] { return polite_saw.load(); }));
  const std::string dump = ex.DebugString();
  EXPECT_FALSE(g.stop_requested());
  EXPECT_TRUE(absl::StrContains(LineWith(dump, "'stubborn'"),
                                ", ignoring stop for"))
      << dump;
  EXPECT_TRUE(absl::StrContains(LineWith(dump, "'polite'"), "running for"))
      << dump;
  EXPECT_FALSE(absl::StrContains(LineWith(dump, "'polite'"), "ignoring"))
      << dump;
  release = true;
  (void)g.Wait();
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

// The flight recorder names each task event by the task's label.
TEST(Forensics, TraceEventsCarryTheLabels) {
  const std::string path = TempPath("forensics_trace.json");
  int line = 0;
  {
    Executor ex({.num_workers = 2, .trace_path = path});
    TaskGroup g(ex, {.name = "traced"});
    line = __LINE__; g.Spawn([] {});
    g.Start([] {}, {.name = "named one"});
    g.Spawn([]() -> Task<> { co_return; });
    ASSERT_TRUE(g.Wait().ok());
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(absl::StrContains(
      text.str(), absl::StrCat("\"name\":\"", Site(line), "\"")))
      << text.str();
  EXPECT_TRUE(absl::StrContains(
      text.str(), absl::StrCat("\"name\":\"", Site(line + 2), "\"")))
      << text.str();
}

// ---- the stop-signal line, in a child process ----------------------------

int ChildStubbornOnSigint() {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "stubborn"});
  std::atomic<bool> started{false}, release{false};
  g.Spawn([&] { Stubborn(&started, &release); });  // kStubbornLine
  CHILD_CHECK(Eventually([&] { return started.load(); }));
  SignalWatcher w(ex, {.grace_period = absl::InfiniteDuration()});
  Say("ready");
  CHILD_CHECK(Eventually([&] { return w.signals_received() == 1; }));
  child_process::AwaitCommand("release");
  release = true;
  (void)g.Wait();
  return 0;
}
constexpr int kStubbornLine = __LINE__ - 10;  // the Spawn above

int RunChild(absl::string_view scenario) {
  if (scenario == "stubborn") return ChildStubbornOnSigint();
  return 2;
}

}  // namespace
}  // namespace ripcord

RIPCORD_CHILD_PROCESS_MAIN(ripcord::RunChild)

namespace ripcord {
namespace {

TEST(Forensics, StopSignalLineNamesTheStubbornTask) {
  Child c("stubborn");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGINT);
  ASSERT_TRUE(c.WaitStderr("ignoring stop")) << c.err();
  const std::string line = LineWith(c.err(), "SIGINT");
  EXPECT_TRUE(absl::StrContains(
      line, absl::StrCat("longest: task ", Site(kStubbornLine),
                         " running for")))
      << c.err();
  EXPECT_TRUE(absl::StrContains(line, "group 'stubborn'")) << c.err();
  c.Command("release");
  c.ExpectCleanExit();
}

}  // namespace
}  // namespace ripcord
