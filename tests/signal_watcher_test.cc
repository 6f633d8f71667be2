// Copyright 2026 The ripcord Authors.
//
// signal_watcher_test.cc: SignalWatcher and SignalOptions with real signals.
//
// Each scenario runs in a child process of its own (tests/child_process.h):
// the test sends it real signals, reads what it reports and checks how it
// ended.
#include "ripcord/signal_watcher.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/child_process.h"

namespace ripcord {
namespace {

using child_process::Child;
using child_process::CountLines;
using child_process::kWait;
using child_process::Say;
using child_process::AwaitCommand;
using child_process::Eventually;

std::string Str(const absl::Status& s) { return s.ToString(); }

// Never set: a task that waits on it ignores its stop token ("stubborn").
std::atomic<bool> g_never{false};

void SpawnStubborn(TaskGroup& group) {
  group.Spawn([] {
    while (!g_never.load(std::memory_order_relaxed)) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
}

// Sleeps 60 s or until its group is stopped (then CancelledError).
void SpawnSleeper(TaskGroup& group) {
  group.Spawn(
      [](StopToken t) { return SleepFor(absl::Seconds(60), t); });
}

// A shielded task that waits until `other` is stopped, then works `work`
// more, ignoring its own token, and records that it finished.
void SpawnWorkAfterStopOf(TaskGroup& group, TaskGroup& other,
                          absl::Duration work, std::atomic<bool>* done) {
  group.Spawn([&other, work, done]() -> absl::Status {
    if (!Eventually([&] { return other.stop_requested(); })) {
      return absl::DeadlineExceededError("the other group was never stopped");
    }
    absl::SleepFor(work);
    done->store(true);
    return absl::OkStatus();
  });
}

// Reports on_signal calls to the parent: "on_signal <signo> <count> ...".
std::function<void(int, int)> ReportingOnSignal(TaskGroup* unshielded,
                                                TaskGroup* shielded,
                                                std::atomic<int>* calls,
                                                std::atomic<const SignalWatcher*>* w) {
  return [=](int signo, int count) {
    calls->fetch_add(1);
    Say(absl::StrFormat(
        "on_signal %d %d unshielded_stopped=%d shielded_stopped=%d "
        "received=%d",
        signo, count, unshielded->stop_requested() ? 1 : 0,
        shielded->stop_requested() ? 1 : 0,
        w->load() != nullptr ? w->load()->signals_received() : -1));
  };
}

// The calling thread's mask, as a bit string over 1..NSIG-1.
std::string MaskString() {
  sigset_t m;
  pthread_sigmask(SIG_SETMASK, nullptr, &m);
  std::string s;
  for (int i = 1; i < NSIG; ++i) s.push_back(sigismember(&m, i) == 1 ? '1' : '0');
  return s;
}

int ChildFirstSignal() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup flush(ex, {.name = "flush", .shielded = true});
  std::atomic<bool> flushed{false};
  std::atomic<int> calls{0};
  std::atomic<int> blocking_result{0};
  std::atomic<bool> blocking_started{false};
  // Set after construction; atomic because the signal thread reads it (a
  // signal from the parent is no happens-before edge TSan can see).
  std::atomic<const SignalWatcher*> wp{nullptr};
  SignalWatcher w(ex, {.on_signal = ReportingOnSignal(&web, &flush, &calls, &wp)});
  wp = &w;
  SpawnSleeper(web);
  SpawnSleeper(web);
  // Blocking work: runs until its token is stopped, then returns 42, which
  // done must receive (fn is started before the parent may signal).
  web.SpawnBlocking(
      [&blocking_started](StopToken t) {
        blocking_started = true;
        while (!t.stop_requested()) absl::SleepFor(absl::Milliseconds(2));
        return 42;
      },
      [&](absl::StatusOr<int> r) { blocking_result = r.ok() ? *r : -1; });
  SpawnWorkAfterStopOf(flush, web, absl::Milliseconds(300), &flushed);
  CHILD_CHECK(Eventually([&] { return blocking_started.load(); }));
  Say("ready");
  absl::Status ws = web.Wait();
  absl::Status fs = flush.Wait();
  CHILD_CHECK(Eventually([&] { return w.signals_received() == 1; }));
  Say(absl::StrCat("web=", Str(ws)));
  Say(absl::StrCat("flush=", Str(fs)));
  Say(absl::StrCat("flushed=", flushed.load() ? 1 : 0));
  Say(absl::StrCat("flush_stopped=", flush.stop_requested() ? 1 : 0));
  Say(absl::StrCat("blocking=", blocking_result.load()));
  Say(absl::StrCat("received=", w.signals_received()));
  Say(absl::StrCat("calls=", calls.load()));
  return 0;
}

int ChildSecondSignal() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup flush(ex, {.name = "flush", .shielded = true});
  std::atomic<int> calls{0};
  // Set after construction; atomic because the signal thread reads it (a
  // signal from the parent is no happens-before edge TSan can see).
  std::atomic<const SignalWatcher*> wp{nullptr};
  SignalWatcher w(ex, {.on_signal = ReportingOnSignal(&web, &flush, &calls, &wp)});
  wp = &w;
  SpawnSleeper(web);
  SpawnSleeper(flush);
  Say("ready");
  absl::Status ws = web.Wait();
  absl::Status fs = flush.Wait();
  CHILD_CHECK(Eventually([&] { return calls.load() == 2; }));
  Say(absl::StrCat("web=", Str(ws)));
  Say(absl::StrCat("flush=", Str(fs)));
  Say(absl::StrCat("received=", w.signals_received()));
  return 0;
}

int64_t MonotonicNanos() {  // CLOCK_MONOTONIC: comparable across processes
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int ChildGrace() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup flush(ex, {.name = "flush", .shielded = true});
  std::atomic<int> calls{0};
  SignalWatcher w(ex, {.grace_period = absl::Milliseconds(300),
                       .on_signal = [&](int, int) { calls.fetch_add(1); }});
  SpawnSleeper(web);
  SpawnSleeper(flush);
  Say("ready");
  absl::Status ws = web.Wait();
  absl::Status fs = flush.Wait();
  Say(absl::StrCat("flush_end_ns=", MonotonicNanos()));
  CHILD_CHECK(Eventually([&] { return calls.load() == 1; }));
  Say(absl::StrCat("web=", Str(ws)));
  Say(absl::StrCat("flush=", Str(fs)));
  absl::SleepFor(absl::Milliseconds(100));  // on_signal must not run again
  Say(absl::StrCat("calls=", calls.load()));
  Say(absl::StrCat("received=", w.signals_received()));
  return 0;
}

// Three signals: the child must die by the third one with a report.
int ChildThird() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup stubborn(ex, {.name = "stubborn", .shielded = true});
  std::atomic<int> calls{0};
  // Set after construction; atomic because the signal thread reads it (a
  // signal from the parent is no happens-before edge TSan can see).
  std::atomic<const SignalWatcher*> wp{nullptr};
  SignalWatcher w(ex, {.on_signal = ReportingOnSignal(&web, &stubborn, &calls, &wp)});
  wp = &w;
  SpawnSleeper(web);
  SpawnStubborn(stubborn);
  Say("ready");
  CHILD_CHECK(web.Wait().code() == absl::StatusCode::kCancelled);
  Say("web_done");
  absl::Status s = stubborn.Wait();  // never returns: the stubborn task ignores stops
  Say(absl::StrCat("survived: ", Str(s)));
  return 4;
}

// Two watchers one after the other; the thread's mask is never changed.
int ChildRecreate() {
  const std::string mask0 = MaskString();
  Executor ex({.num_workers = 2});
  {
    TaskGroup g1(ex, {.name = "round1"});
    SpawnSleeper(g1);
    {
      SignalWatcher w1(ex);
      CHILD_CHECK(MaskString() == mask0);  // the watcher blocks nothing
      Say("ready1");
      Say(absl::StrCat("round1=", Str(g1.Wait())));
      CHILD_CHECK(Eventually([&] { return w1.signals_received() == 1; }));
      Say(absl::StrCat("received1=", w1.signals_received()));
    }
    Say(absl::StrCat("mask_restored1=", MaskString() == mask0 ? 1 : 0));
  }
  {
    TaskGroup g2(ex, {.name = "round2"});
    SpawnSleeper(g2);
    {
      SignalWatcher w2(ex, {.signals = {SIGTERM, SIGINT}});
      Say("ready2");
      Say(absl::StrCat("round2=", Str(g2.Wait())));
      CHILD_CHECK(Eventually([&] { return w2.signals_received() == 1; }));
      Say(absl::StrCat("received2=", w2.signals_received()));
    }
    Say(absl::StrCat("mask_restored2=", MaskString() == mask0 ? 1 : 0));
  }
  return 0;
}

int ChildBackToBack() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup flush(ex, {.name = "flush", .shielded = true});
  std::atomic<int> calls{0};
  // Set after construction; atomic because the signal thread reads it (a
  // signal from the parent is no happens-before edge TSan can see).
  std::atomic<const SignalWatcher*> wp{nullptr};
  SignalWatcher w(ex, {.on_signal = ReportingOnSignal(&web, &flush, &calls, &wp)});
  wp = &w;
  SpawnSleeper(web);
  SpawnSleeper(flush);
  Say("ready");
  absl::Status ws = web.Wait();
  absl::Status fs = flush.Wait();
  CHILD_CHECK(Eventually([&] { return w.signals_received() == 2; }));
  CHILD_CHECK(Eventually([&] { return calls.load() == 2; }));
  Say(absl::StrCat("web=", Str(ws)));
  Say(absl::StrCat("flush=", Str(fs)));
  Say(absl::StrCat("received=", w.signals_received()));
  return 0;
}

// SIGUSR1 dumps and changes nothing; a later SIGINT is still the first.
int ChildDump() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web-frontend"});
  TaskGroup flush(ex, {.name = "flush-journal", .shielded = true});
  std::atomic<int> calls{0};
  // Set after construction; atomic because the signal thread reads it (a
  // signal from the parent is no happens-before edge TSan can see).
  std::atomic<const SignalWatcher*> wp{nullptr};
  SignalWatcher w(ex, {.on_signal = ReportingOnSignal(&web, &flush, &calls, &wp)});
  wp = &w;
  SpawnSleeper(web);
  SpawnSleeper(flush);
  Say("ready");
  AwaitCommand("check");  // the parent saw the dump on our stderr
  Say(absl::StrFormat("after_dump web_stopped=%d flush_stopped=%d received=%d calls=%d",
                      web.stop_requested() ? 1 : 0, flush.stop_requested() ? 1 : 0,
                      w.signals_received(), calls.load()));
  Say("ready_for_sigint");
  absl::Status ws = web.Wait();
  CHILD_CHECK(Eventually([&] { return w.signals_received() == 1; }));
  Say(absl::StrCat("web=", Str(ws)));
  Say(absl::StrCat("flush_stopped=", flush.stop_requested() ? 1 : 0));
  flush.RequestStop("test over");
  CHILD_CHECK(absl::IsCancelled(flush.Wait()));
  return 0;
}

// A signal listed in `signals` is a stop signal even if it is the dump signal.
int ChildDumpSignalListedAsStop() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  SpawnSleeper(web);
  SignalWatcher w(ex, {.signals = {SIGINT, SIGUSR1}, .dump_signal = SIGUSR1});
  Say("ready");
  Say(absl::StrCat("web=", Str(web.Wait())));
  CHILD_CHECK(Eventually([&] { return w.signals_received() == 1; }));
  Say(absl::StrCat("received=", w.signals_received()));
  return 0;
}

// dump_signal = 0: SIGUSR1 is neither blocked nor read; its default action
// ends the process.
int ChildDumpOff() {
  Executor ex({.num_workers = 2});
  SignalWatcher w(ex, {.dump_signal = 0});
  sigset_t m;
  pthread_sigmask(SIG_SETMASK, nullptr, &m);
  Say(absl::StrCat("usr1_blocked=", sigismember(&m, SIGUSR1)));
  Say("ready");
  absl::SleepFor(kWait);
  return 4;
}

// quiet = true: no line at all, even with progress lines due.
int ChildQuiet() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup flush(ex, {.name = "flush", .shielded = true});
  std::atomic<bool> flushed{false};
  SignalWatcher w(ex, {.quiet = true, .progress_interval = absl::Milliseconds(20)});
  SpawnSleeper(web);
  SpawnWorkAfterStopOf(flush, web, absl::Milliseconds(300), &flushed);
  Say("ready");
  Say(absl::StrCat("web=", Str(web.Wait())));
  Say(absl::StrCat("flush=", Str(flush.Wait())));
  return 0;
}

// Progress lines while shielded work runs after the first signal.
int ChildProgress() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup flush(ex, {.name = "flush", .shielded = true});
  std::atomic<bool> flushed{false};
  SignalWatcher w(ex, {.progress_interval = absl::Milliseconds(100)});
  SpawnSleeper(web);
  SpawnWorkAfterStopOf(flush, web, absl::Milliseconds(800), &flushed);
  Say("ready");
  Say(absl::StrCat("web=", Str(web.Wait())));
  Say(absl::StrCat("flush=", Str(flush.Wait())));
  absl::SleepFor(absl::Milliseconds(300));  // no progress line once idle
  Say("done");
  return 0;
}

// An exception from on_signal is reported and the watcher keeps working.
int ChildThrowingOnSignal() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup flush(ex, {.name = "flush", .shielded = true});
  std::atomic<int> calls{0};
  SignalWatcher w(ex, {.on_signal = [&](int, int count) {
                         calls.fetch_add(1);
                         Say(absl::StrCat("on_signal ", count));
                         throw std::runtime_error("boom from on_signal");
                       }});
  SpawnSleeper(web);
  SpawnSleeper(flush);
  Say("ready");
  Say(absl::StrCat("web=", Str(web.Wait())));
  Say(absl::StrCat("flush=", Str(flush.Wait())));
  CHILD_CHECK(Eventually([&] { return calls.load() == 2; }));
  return 0;
}

// A signal pending when ~SignalWatcher begins is handled before the thread
// exits, and nothing is left pending to kill the process once the mask is
// restored.
int ChildPendingAtDestruction() {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "g"});
  SpawnSleeper(g);
  std::atomic<int> calls{0};
  {
    SignalWatcher w(ex, {.on_signal = [&](int, int) { calls.fetch_add(1); }});
    // A signal sent to oneself with the signal unblocked in the calling
    // thread (the main thread, which the kernel prefers) is delivered before
    // kill() returns: the handler has counted it before the destructor.
    CHILD_CHECK(kill(getpid(), SIGTERM) == 0);
  }
  Say(absl::StrCat("calls=", calls.load()));
  Say(absl::StrCat("g=", Str(g.Wait())));
  sigset_t pending;
  sigpending(&pending);
  Say(absl::StrCat("pending=", sigismember(&pending, SIGTERM)));
  return 0;
}

// A signal ignored at construction is handled while the watcher lives and
// ignored again after it.
int ChildIgnoredAtStart() {
  signal(SIGINT, SIG_IGN);
  Executor ex({.num_workers = 2});
  {
    TaskGroup g(ex, {.name = "g"});
    SpawnSleeper(g);
    SignalWatcher w(ex);
    Say("ready");
    Say(absl::StrCat("g=", Str(g.Wait())));
  }
  struct sigaction sa;
  sigaction(SIGINT, nullptr, &sa);
  Say(absl::StrCat("ign_restored=", sa.sa_handler == SIG_IGN ? 1 : 0));
  Say("ready_ignored");
  AwaitCommand("exit");  // the parent sent SIGINT before this: ignored
  return 0;
}

int ChildSecondWatcher() {
  Executor ex({.num_workers = 1});
  SignalWatcher a(ex);
  Say("first constructed");
  SignalWatcher b(ex);  // aborts
  Say("second constructed");
  return 4;
}

int ChildBadSignal() {
  Executor ex({.num_workers = 1});
  SignalWatcher a(ex, {.signals = {SIGINT, SIGSEGV}});
  return 4;
}

// first_signal() and ExitBySignal(): the program ends as killed by the
// first stop signal after its clean shutdown.
int ChildFirstSignalThenExit() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  SpawnSleeper(web);
  int first = 0;
  {
    SignalWatcher w(ex);
    Say(absl::StrCat("before=", w.first_signal()));
    Say("ready");
    CHILD_CHECK(absl::IsCancelled(web.Wait()));
    CHILD_CHECK(Eventually([&] { return w.signals_received() == 1; }));
    first = w.first_signal();
  }
  Say(absl::StrCat("first=", first));
  std::printf("buffered line on stdout\n");  // flushed by ExitBySignal
  ExitBySignal(first);
}

// A stop signal raised on a worker thread (from a task) runs the handler
// there: it is counted and handled, and takes no default action.
int ChildRaiseOnWorker() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup raiser(ex, {.name = "raiser", .shielded = true});
  SpawnSleeper(web);
  SignalWatcher w(ex);
  raiser.Spawn([] { raise(SIGTERM); });
  CHILD_CHECK(raiser.Wait().ok());
  Say(absl::StrCat("web=", Str(web.Wait())));
  CHILD_CHECK(Eventually([&] { return w.signals_received() == 1; }));
  Say(absl::StrCat("received=", w.signals_received()));
  return 0;
}

// Two SIGINTs delivered to two threads at the same moment (thread-directed,
// so the kernel cannot merge them) are two signals.
int ChildTwoThreadsAtOnce() {
  Executor ex({.num_workers = 2});
  TaskGroup web(ex, {.name = "web"});
  TaskGroup flush(ex, {.name = "flush", .shielded = true});
  SpawnSleeper(web);
  SpawnSleeper(flush);
  SignalWatcher w(ex);
  std::atomic<int> arrived{0};
  auto raiser = [&arrived] {
    arrived.fetch_add(1);
    while (arrived.load() < 2) {
    }
    raise(SIGINT);
  };
  std::thread a(raiser);
  std::thread b(raiser);
  a.join();
  b.join();
  Say(absl::StrCat("web=", Str(web.Wait())));
  Say(absl::StrCat("flush=", Str(flush.Wait())));
  CHILD_CHECK(Eventually([&] { return w.signals_received() == 2; }));
  absl::SleepFor(absl::Milliseconds(50));  // no third count may follow
  Say(absl::StrCat("received=", w.signals_received()));
  return 0;
}

// Dispositions: one the program changed while the watcher lived is left
// alone by the destructor; an unchanged one is put back (here SIG_IGN).
void ProgramHandler(int) {}

int ChildDispositionChanged() {
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  Executor ex({.num_workers = 1});
  {
    SignalWatcher w(ex);
    signal(SIGTERM, ProgramHandler);  // the program's own, meanwhile
  }
  struct sigaction sa;
  sigaction(SIGINT, nullptr, &sa);
  Say(absl::StrCat("sigint_ign=", sa.sa_handler == SIG_IGN ? 1 : 0));
  sigaction(SIGTERM, nullptr, &sa);
  Say(absl::StrCat("sigterm_program=",
                   sa.sa_handler == ProgramHandler ? 1 : 0));
  return 0;
}

int RunChild(absl::string_view scenario) {
  static const std::map<std::string, int (*)(), std::less<>> kScenarios = {
      {"first_signal", ChildFirstSignal},
      {"second_signal", ChildSecondSignal},
      {"grace", ChildGrace},
      {"third", ChildThird},
      {"recreate", ChildRecreate},
      {"back_to_back", ChildBackToBack},
      {"dump", ChildDump},
      {"dump_listed_as_stop", ChildDumpSignalListedAsStop},
      {"dump_off", ChildDumpOff},
      {"quiet", ChildQuiet},
      {"progress", ChildProgress},
      {"throwing_on_signal", ChildThrowingOnSignal},
      {"pending_at_destruction", ChildPendingAtDestruction},
      {"ignored_at_start", ChildIgnoredAtStart},
      {"second_watcher", ChildSecondWatcher},
      {"bad_signal", ChildBadSignal},
      {"first_signal_then_exit", ChildFirstSignalThenExit},
      {"raise_on_worker", ChildRaiseOnWorker},
      {"two_threads_at_once", ChildTwoThreadsAtOnce},
      {"disposition_changed", ChildDispositionChanged},
  };
  auto it = kScenarios.find(scenario);
  if (it == kScenarios.end()) {
    std::fprintf(stderr, "unknown scenario '%s'\n", std::string(scenario).c_str());
    return 5;
  }
  return it->second();
}

}  // namespace
}  // namespace ripcord

RIPCORD_CHILD_PROCESS_MAIN(ripcord::RunChild)

namespace ripcord {
namespace {

// Invariant: the first SIGINT stops unshielded groups (their Wait() names
// SIGINT, blocking work returns early and done gets its value) and leaves
// shielded groups running to completion; on_signal runs once, after the
// stops, with signals_received() already 1; one line on stderr says so.
TEST(SignalWatcher, FirstSigintStopsUnshieldedOnlyAndShieldedComplete) {
  Child c("first_signal");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGINT);
  c.ExpectCleanExit();
  bool saw = false;
  for (const auto& l : c.lines()) {
    if (absl::StartsWith(l, "on_signal ")) {
      EXPECT_EQ(l, "on_signal 2 1 unshielded_stopped=1 shielded_stopped=0 received=1");
      saw = true;
    }
  }
  EXPECT_TRUE(saw) << c.Transcript();
  EXPECT_TRUE(absl::StartsWith(c.Value("web"), "CANCELLED")) << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.Value("web"), "SIGINT")) << c.Transcript();
  EXPECT_EQ(c.Value("flush"), "OK") << c.Transcript();
  EXPECT_EQ(c.Value("flushed"), "1");
  EXPECT_EQ(c.Value("flush_stopped"), "0");
  EXPECT_EQ(c.Value("blocking"), "42");
  EXPECT_EQ(c.Value("received"), "1");
  EXPECT_EQ(c.Value("calls"), "1");
  EXPECT_EQ(CountLines(c.err(), "ripcord: SIGINT: stopped "), 1)
      << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.err(), " unshielded group")) << c.Transcript();
  // The flush group was still at work when the line was written, and the
  // line names it as the shielded group shutdown waits for.
  EXPECT_TRUE(absl::StrContains(c.err(), "; waiting for 1 shielded group ("))
      << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.err(), "'flush'")) << c.Transcript();
}

// Invariant: the second stop signal stops shielded groups too (their Wait()
// names the signal); on_signal saw the shielded group unstopped after the
// first signal and stopped after the second.
TEST(SignalWatcher, SecondSigintStopsShielded) {
  Child c("second_signal");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGINT);
  EXPECT_EQ(c.WaitLine("on_signal 2 1"),
            "on_signal 2 1 unshielded_stopped=1 shielded_stopped=0 received=1");
  c.Signal(SIGINT);
  EXPECT_EQ(c.WaitLine("on_signal 2 2"),
            "on_signal 2 2 unshielded_stopped=1 shielded_stopped=1 received=2");
  c.ExpectCleanExit();
  EXPECT_TRUE(absl::StrContains(c.Value("web"), "SIGINT")) << c.Transcript();
  EXPECT_TRUE(absl::StartsWith(c.Value("flush"), "CANCELLED")) << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.Value("flush"), "SIGINT")) << c.Transcript();
  EXPECT_EQ(c.Value("received"), "2");
  EXPECT_EQ(CountLines(c.err(), "ripcord: SIGINT: stopped "), 1)
      << c.Transcript();
  EXPECT_EQ(CountLines(c.err(), "ripcord: SIGINT (2nd signal): stopped "), 1)
      << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.err(), ", shielded too; ")) << c.Transcript();
}

// Invariant: with no second signal, shielded groups are stopped once
// grace_period has passed since the first, not before; the reason names the
// signal and the grace period; on_signal runs only for the real signal.
TEST(SignalWatcher, GracePeriodEscalatesWithoutSecondSignal) {
  Child c("grace");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  const int64_t kill_ns = MonotonicNanos();
  c.Signal(SIGINT);
  c.ExpectCleanExit();
  EXPECT_TRUE(absl::StrContains(c.Value("web"), "SIGINT")) << c.Transcript();
  const std::string flush = c.Value("flush");
  EXPECT_TRUE(absl::StartsWith(flush, "CANCELLED")) << c.Transcript();
  EXPECT_TRUE(absl::StrContains(flush, "SIGINT")) << flush;
  EXPECT_TRUE(absl::StrContains(flush, "grace period 300ms expired")) << flush;
  // The grace period runs from the watcher's receipt of the signal, which is
  // after kill(): the shielded group cannot end less than 300 ms after it.
  const int64_t ms =
      (std::atoll(c.Value("flush_end_ns").c_str()) - kill_ns) / 1000000;
  EXPECT_GE(ms, 300) << c.Transcript();
  EXPECT_LT(ms, 15000) << c.Transcript();
  EXPECT_EQ(c.Value("calls"), "1");
  EXPECT_EQ(c.Value("received"), "1");
  EXPECT_TRUE(absl::StrContains(
      c.err(), "ripcord: SIGINT: grace period 300ms expired: stopped "))
      << c.Transcript();
}

// Invariant: the third stop signal ends the process as killed by that
// signal (what a shell reports as 128 + signo), after a report on stderr
// naming the group still running and counting its task.
void ExpectThirdSignalKills(int signo, const char* name) {
  Child c("third");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(signo);
  c.WaitLine(absl::StrCat("on_signal ", signo, " 1 "));
  c.WaitLine("web_done");  // so that only the stubborn task is left
  c.Signal(signo);
  c.WaitLine(absl::StrCat("on_signal ", signo, " 2 "));
  c.Signal(signo);
  const int status = c.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == signo)
      << Child::Describe(status) << c.Transcript();
  EXPECT_TRUE(absl::StrContains(
      c.err(), absl::StrCat("ripcord: ", name,
                            " (3rd signal): ending the process now; this "
                            "executor: waiting for 1 ")))
      << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.err(), ": 1 task running")) << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.err(), "stubborn")) << c.Transcript();
  EXPECT_FALSE(c.HasLine("survived")) << c.Transcript();
}

TEST(SignalWatcher, ThirdSigintKillsTheProcessBySigint) {
  ExpectThirdSignalKills(SIGINT, "SIGINT");
}

TEST(SignalWatcher, ThirdSigtermKillsTheProcessBySigterm) {
  ExpectThirdSignalKills(SIGTERM, "SIGTERM");
}

// Invariant: a watcher can be destroyed and another constructed in the same
// process; each counts its own signals; the thread's mask is restored after
// each.
TEST(SignalWatcher, DestroyedAndRecreatedInOneProcess) {
  Child c("recreate");
  ASSERT_FALSE(c.WaitLine("ready1").empty());
  c.Signal(SIGINT);
  ASSERT_FALSE(c.WaitLine("ready2").empty());
  c.Signal(SIGTERM);
  c.ExpectCleanExit();
  EXPECT_TRUE(absl::StrContains(c.Value("round1"), "SIGINT")) << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.Value("round2"), "SIGTERM")) << c.Transcript();
  EXPECT_EQ(c.Value("received1"), "1");
  EXPECT_EQ(c.Value("received2"), "1");
  EXPECT_EQ(c.Value("mask_restored1"), "1");
  EXPECT_EQ(c.Value("mask_restored2"), "1");
}

// Invariant: two different stop signals sent back to back are both received
// (no loss): signals_received() reaches 2; one stops the unshielded group
// and the other the shielded one. Which is handled first is not fixed: the
// two may be taken by two threads at once (see signal_watcher.h).
TEST(SignalWatcher, BackToBackSignalsBothCount) {
  Child c("back_to_back");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGINT);
  c.Signal(SIGTERM);
  c.ExpectCleanExit();
  EXPECT_EQ(c.Value("received"), "2") << c.Transcript();
  const std::string web = c.Value("web");
  const std::string flush = c.Value("flush");
  EXPECT_TRUE(absl::StartsWith(flush, "CANCELLED")) << c.Transcript();
  const bool int_first = absl::StrContains(web, "SIGINT") &&
                         absl::StrContains(flush, "SIGTERM");
  const bool term_first = absl::StrContains(web, "SIGTERM") &&
                          absl::StrContains(flush, "SIGINT");
  EXPECT_TRUE(int_first || term_first) << c.Transcript();
}

// Invariant: SIGUSR1 writes DebugString() (naming every group) to stderr and
// changes nothing: no group stopped, nothing counted, no on_signal, and the
// next SIGINT is still a first signal (shielded groups keep running).
TEST(SignalWatcher, DumpSignalDumpsAndStopsNothing) {
  Child c("dump");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGUSR1);
  ASSERT_TRUE(c.WaitStderr("ripcord: SIGUSR1: state dump"));
  ASSERT_TRUE(c.WaitStderr("flush-journal"));
  EXPECT_TRUE(absl::StrContains(c.err(), "web-frontend")) << c.Transcript();
  c.Command("check");
  EXPECT_EQ(c.WaitLine("after_dump"),
            "after_dump web_stopped=0 flush_stopped=0 received=0 calls=0");
  ASSERT_FALSE(c.WaitLine("ready_for_sigint").empty());
  c.Signal(SIGINT);
  c.ExpectCleanExit();
  EXPECT_TRUE(absl::StrContains(c.Value("web"), "SIGINT")) << c.Transcript();
  EXPECT_EQ(c.Value("flush_stopped"), "0") << c.Transcript();
}

// Invariant: a signal listed in `signals` is a stop signal even if it is
// also the dump signal: it stops and counts, and dumps nothing.
TEST(SignalWatcher, DumpSignalListedInSignalsIsAStopSignal) {
  Child c("dump_listed_as_stop");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGUSR1);
  c.ExpectCleanExit();
  EXPECT_TRUE(absl::StrContains(c.Value("web"), "SIGUSR1")) << c.Transcript();
  EXPECT_EQ(c.Value("received"), "1");
  EXPECT_FALSE(absl::StrContains(c.err(), "state dump")) << c.Transcript();
}

// Invariant: dump_signal = 0 leaves SIGUSR1 alone: not blocked, so its
// default action ends the process.
TEST(SignalWatcher, DumpSignalZeroTurnsTheDumpOff) {
  Child c("dump_off");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  EXPECT_EQ(c.Value("usr1_blocked"), "0");
  c.Signal(SIGUSR1);
  const int status = c.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1)
      << Child::Describe(status) << c.Transcript();
}

// Invariant: quiet = true writes no line, even with progress lines due.
TEST(SignalWatcher, QuietWritesNoLine) {
  Child c("quiet");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGINT);
  c.ExpectCleanExit();
  EXPECT_TRUE(absl::StrContains(c.Value("web"), "SIGINT")) << c.Transcript();
  EXPECT_EQ(c.Value("flush"), "OK") << c.Transcript();
  EXPECT_FALSE(absl::StrContains(c.err(), "ripcord:")) << c.Transcript();
}

// Invariant: while work runs after a stop signal, a progress line says what
// shutdown still waits for; once nothing runs, the lines stop.
TEST(SignalWatcher, ProgressLinesWhileShieldedWorkRuns) {
  Child c("progress");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGINT);
  ASSERT_TRUE(c.WaitStderr("ago: still waiting for 1 "));
  EXPECT_TRUE(absl::StrContains(c.err(), ": 1 task running")) << c.Transcript();
  ASSERT_FALSE(c.WaitLine("flush=").empty());
  c.Drain(absl::Milliseconds(20));  // lines written before flush ended
  const int while_busy = CountLines(c.err(), "ago: still waiting for");
  c.ExpectCleanExit();
  EXPECT_EQ(c.Value("flush"), "OK") << c.Transcript();
  // 800 ms of work at one line per 100 ms: several lines.
  EXPECT_GE(while_busy, 2) << c.Transcript();
  // The child idles 300 ms more (3 intervals): at most one line that raced
  // with the end of the work, then none.
  EXPECT_LE(CountLines(c.err(), "ago: still waiting for") - while_busy, 1)
      << c.Transcript();
}

// Invariant: an exception from on_signal is reported on stderr and does not
// end the signal thread: the next signal still escalates.
TEST(SignalWatcher, ThrowingOnSignalIsReportedAndIgnored) {
  Child c("throwing_on_signal");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGTERM);
  c.WaitLine("on_signal 1");
  ASSERT_TRUE(c.WaitStderr("on_signal threw: boom from on_signal (ignored)"));
  c.Signal(SIGTERM);
  c.ExpectCleanExit();
  EXPECT_TRUE(absl::StrContains(c.Value("web"), "SIGTERM")) << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.Value("flush"), "SIGTERM")) << c.Transcript();
}

// Invariant: a signal already pending when ~SignalWatcher() begins is
// handled (stop requested, on_signal called) before the destructor returns,
// and none is left pending to take its default action afterwards.
TEST(SignalWatcher, SignalPendingAtDestructionIsHandled) {
  Child c("pending_at_destruction");
  c.ExpectCleanExit();
  EXPECT_EQ(c.Value("calls"), "1") << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.Value("g"), "SIGTERM")) << c.Transcript();
  EXPECT_EQ(c.Value("pending"), "0");
}

// Invariant: a watched signal whose disposition was SIG_IGN is handled while
// the watcher lives (else the kernel would discard it) and is ignored again
// after the watcher is destroyed.
TEST(SignalWatcher, IgnoredSignalIsWatchedThenIgnoredAgain) {
  Child c("ignored_at_start");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGINT);
  ASSERT_FALSE(c.WaitLine("ready_ignored").empty());
  EXPECT_TRUE(absl::StrContains(c.Value("g"), "SIGINT")) << c.Transcript();
  EXPECT_EQ(c.Value("ign_restored"), "1");
  c.Signal(SIGINT);  // ignored again: the child must survive it
  absl::SleepFor(absl::Milliseconds(50));
  c.Command("exit");
  c.ExpectCleanExit();
}

// Invariant: a second live SignalWatcher is a programming error: abort with
// a message that says why.
TEST(SignalWatcher, SecondConcurrentWatcherAborts) {
  Child c("second_watcher");
  const int status = c.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
      << Child::Describe(status) << c.Transcript();
  EXPECT_TRUE(absl::StrContains(
      c.err(), "SignalWatcher constructed while another SignalWatcher is alive"))
      << c.Transcript();
  EXPECT_TRUE(c.HasLine("first constructed")) << c.Transcript();
  EXPECT_FALSE(c.HasLine("second constructed")) << c.Transcript();
}

// Invariant: a signal outside the permitted set aborts with a message.
TEST(SignalWatcher, UnwatchableSignalAborts) {
  Child c("bad_signal");
  const int status = c.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
      << Child::Describe(status) << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.err(), "SignalOptions::signals contains 11"))
      << c.Transcript();
}

// Invariant: first_signal() is 0 until a stop signal, then its number; and
// ExitBySignal(first) ends the process as killed by it, stdout flushed.
TEST(SignalWatcher, FirstSignalAndExitBySignal) {
  Child c("first_signal_then_exit");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGTERM);
  const int status = c.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
      << Child::Describe(status) << c.Transcript();
  EXPECT_EQ(c.Value("before"), "0");
  EXPECT_EQ(c.Value("first"), absl::StrCat(SIGTERM)) << c.Transcript();
}

// Invariant: a watched signal taken by a worker thread (raised in a task) is
// handled like one sent to the process, and takes no default action there.
TEST(SignalWatcher, SignalOnAWorkerThreadIsHandled) {
  Child c("raise_on_worker");
  c.ExpectCleanExit();
  EXPECT_TRUE(absl::StrContains(c.Value("web"), "SIGTERM")) << c.Transcript();
  EXPECT_EQ(c.Value("received"), "1") << c.Transcript();
}

// Invariant: two signals delivered to two threads at once both count (none
// is lost, none counted twice): the second stops shielded groups too.
TEST(SignalWatcher, TwoSignalsOnTwoThreadsAtOnceCountTwice) {
  for (int round = 0; round < 5; ++round) {
    Child c("two_threads_at_once");
    c.ExpectCleanExit();
    EXPECT_EQ(c.Value("received"), "2") << c.Transcript();
    EXPECT_TRUE(absl::StrContains(c.Value("flush"), "SIGINT"))
        << c.Transcript();
  }
}

// Invariant: the destructor puts back a disposition it replaced (SIG_IGN)
// but leaves one the program changed while the watcher lived.
TEST(SignalWatcher, DispositionChangedByTheProgramIsKept) {
  Child c("disposition_changed");
  c.ExpectCleanExit();
  EXPECT_EQ(c.Value("sigint_ign"), "1") << c.Transcript();
  EXPECT_EQ(c.Value("sigterm_program"), "1") << c.Transcript();
}

}  // namespace
}  // namespace ripcord
