// Copyright 2026 The ripcord Authors.
//
// process_life_test.cc: API.md's "Process life": what a program that uses
// ripcord sees across its life as a process. Child processes started from
// anywhere (system, popen, posix_spawn, fork+exec; from main, a task or a
// blocking fn; with a SignalWatcher alive or not) start with no signal
// blocked and die by a SIGINT; the library's descriptors are close-on-exec
// and never 0, 1 or 2, even when the program started with them closed;
// exit(n) with live groups keeps status n; an Executor inherited by a fork()
// child aborts with a message when used, and a new one works there.
//
// Every scenario runs in a process of its own (tests/child_process.h).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
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

// ===========================================================================
// Child side.
// ===========================================================================

// How a wait status reads in the reports: "sigint", "signal N", "exit N".
std::string Ending(int status) {
  if (WIFSIGNALED(status)) {
    if (WTERMSIG(status) == SIGINT) return "sigint";
    return absl::StrCat("signal ", WTERMSIG(status));
  }
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  return absl::StrCat("raw ", status);
}

int WaitFor(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp",
                                 "/process_life_XXXXXX");
  CHILD_CHECK(mkdtemp(dir.data()) != nullptr);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return "<missing>";
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

// Finds this process's child running `sleep` (after its exec), reads the
// SigBlk line of its /proc/<pid>/status, then sends it SIGINT. Bounded by
// kWait. Returns the SigBlk line ("" if no such child appeared).
std::string ReadSigBlkAndInterruptChild() {
  const std::string ppid_line = absl::StrCat("PPid:\t", getpid(), "\n");
  const absl::Time deadline = absl::Now() + child_process::kWait;
  while (absl::Now() < deadline) {
    DIR* d = opendir("/proc");
    CHILD_CHECK(d != nullptr);
    while (struct dirent* e = readdir(d)) {
      const int pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      const std::string status =
          ReadFile(absl::StrCat("/proc/", pid, "/status"));
      if (!absl::StrContains(status, ppid_line) ||
          !absl::StartsWith(status, "Name:\tsleep\n")) {
        continue;
      }
      closedir(d);
      const size_t at = status.find("SigBlk:");
      const std::string sigblk =
          status.substr(at, status.find('\n', at) - at);
      kill(pid, SIGINT);
      return sigblk;
    }
    closedir(d);
    absl::SleepFor(absl::Milliseconds(1));
  }
  return "";
}

// Starts `sleep 30` by `method` (system and popen through `sh -c "exec
// sleep 30"`, so the shell hands its mask on unchanged) and returns its
// wait status. A watcher thread reads the child's SigBlk and interrupts it;
// the child ends by SIGINT unless SIGINT is blocked in it.
int RunSleeper(const std::string& method, std::string* sigblk) {
  std::thread monitor([sigblk] { *sigblk = ReadSigBlkAndInterruptChild(); });
  int status = -1;
  const char* argv[] = {"sleep", "30", nullptr};
  if (method == "system") {
    status = std::system("exec sleep 30");
  } else if (method == "popen") {
    FILE* p = popen("exec sleep 30", "r");
    CHILD_CHECK(p != nullptr);
    status = pclose(p);
  } else if (method == "posix_spawn") {
    pid_t pid = -1;
    CHILD_CHECK(posix_spawn(&pid, "/bin/sleep", nullptr, nullptr,
                            const_cast<char**>(argv), environ) == 0);
    status = WaitFor(pid);
  } else {  // fork_exec
    const pid_t pid = fork();
    CHILD_CHECK(pid >= 0);
    if (pid == 0) {
      execv("/bin/sleep", const_cast<char**>(argv));
      _exit(127);
    }
    status = WaitFor(pid);
  }
  monitor.join();
  return status;
}

// Every method from the calling thread; one report line per method:
// "case <place>/<method> <SigBlk line> end=<ending>".
void RunAllMethods(const std::string& place) {
  for (const char* method : {"system", "popen", "posix_spawn", "fork_exec"}) {
    std::string sigblk;
    const int status = RunSleeper(method, &sigblk);
    Say(absl::StrCat("case ", place, "/", method, " ", sigblk,
                     " end=", Ending(status)));
  }
}

int ChildSubprocessMasks(bool with_watcher) {
  Executor ex({.num_workers = 2});
  std::unique_ptr<SignalWatcher> watcher;
  if (with_watcher) watcher = std::make_unique<SignalWatcher>(ex);
  RunAllMethods("main");
  TaskGroup g(ex, {.name = "spawner"});
  g.Spawn([] { RunAllMethods("task"); });
  CHILD_CHECK(g.Wait().ok());
  g.SpawnBlocking([] { RunAllMethods("blocking"); },
                  [](absl::Status s) { CHILD_CHECK(s.ok()); });
  CHILD_CHECK(g.Wait().ok());
  if (watcher != nullptr) {
    CHILD_CHECK(watcher->signals_received() == 0);
    watcher.reset();
  }
  Say("done");
  return 0;
}

// The descriptors open in this process, except the directory stream's own.
std::set<int> OpenFds() {
  std::set<int> fds;
  DIR* d = opendir("/proc/self/fd");
  CHILD_CHECK(d != nullptr);
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd != dirfd(d)) fds.insert(fd);
  }
  closedir(d);
  return fds;
}

// In a fork()ed child (one thread), closes fds `lowest`..2 as a shell's
// `>&- 2>&-` (lowest = 1) or `<&- >&- 2>&-` (lowest = 0) would, then builds
// an Executor and a SignalWatcher and checks where their fds went. Reports
// on fd 3, which stays open.
int ClosedFdsGrandchild(int lowest) {
  for (int fd = lowest; fd <= 2; ++fd) close(fd);
  const std::set<int> before = OpenFds();
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "g"});
  g.Spawn([](StopToken t) { return SleepFor(absl::Seconds(60), t); });
  SignalWatcher w(ex);
  bool ok = true;
  for (int fd : OpenFds()) {
    if (before.count(fd) != 0) continue;
    const int flags = fcntl(fd, F_GETFD);
    Say(absl::StrCat("new_fd=", fd, " cloexec=", (flags & FD_CLOEXEC) ? 1 : 0));
    if (fd <= 2 || (flags & FD_CLOEXEC) == 0) ok = false;
  }
  Say(absl::StrCat("fds_ok=", ok ? 1 : 0));
  if (lowest == 1) {
    // The program's own write to fd 2 fails (nothing is there) and cannot
    // reach a descriptor of the watcher's.
    const ssize_t r = write(2, "warning\n", 8);
    Say(absl::StrCat("write2=", r < 0 && errno == EBADF ? "ebadf" : "wrote"));
    kill(getpid(), SIGINT);
    CHILD_CHECK(Eventually([&] { return w.signals_received() == 1; }));
    kill(getpid(), SIGINT);
    CHILD_CHECK(Eventually([&] { return w.signals_received() == 2; }));
    Say(absl::StrCat("received=", w.signals_received()));
  } else {
    // The program's next open()s get 0, 1 and 2: fd 2 is now its own file,
    // and no stop line may land in it.
    const std::string path = absl::StrCat(TempDir(), "/user_file");
    for (int i = 0; i < 3; ++i) {
      const int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_APPEND, 0600);
      CHILD_CHECK(fd == i);
    }
    kill(getpid(), SIGINT);
    CHILD_CHECK(Eventually([&] { return w.signals_received() == 1; }));
    CHILD_CHECK(absl::IsCancelled(g.Wait()));
    Say(absl::StrCat("received=", w.signals_received()));
    Say(absl::StrCat("user_file=[", ReadFile(path), "]"));
  }
  g.RequestStop("done");
  g.Wait().IgnoreError();
  return 0;
}

int ChildClosedFds(int lowest) {
  const pid_t pid = fork();
  CHILD_CHECK(pid >= 0);
  if (pid == 0) _exit(ClosedFdsGrandchild(lowest));
  Say(absl::StrCat("grandchild=", Ending(WaitFor(pid))));
  return 0;
}

// ---- exit() ----------------------------------------------------------------

void SpawnSleeper(TaskGroup& g) {
  g.Spawn([](StopToken t) { return SleepFor(absl::Seconds(60), t); });
}

// A static Executor, a local group with a running task, exit(3) from main.
int ChildExitMainStaticExecutor() {
  static Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "local"});
  SpawnSleeper(g);
  Say("exiting");
  std::exit(3);
}

// A static Executor, a local group, exit(1) from one of its tasks.
int ChildExitTaskStaticExecutor() {
  static Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "local"});
  SpawnSleeper(g);
  g.Spawn([] { std::exit(1); });
  absl::SleepFor(absl::Seconds(20));
  return 4;
}

// A static Executor and a static group, exit(1) from a task of the group.
int ChildExitTaskStaticGroup() {
  static Executor ex({.num_workers = 2});
  static TaskGroup g(ex, {.name = "static"});
  SpawnSleeper(g);
  g.Spawn([] { std::exit(1); });
  absl::SleepFor(absl::Seconds(20));
  return 4;
}

// A static watcher whose on_signal calls exit(5).
int ChildExitFromOnSignal() {
  static Executor ex({.num_workers = 2});
  static TaskGroup g(ex, {.name = "static"});
  static SignalWatcher w(ex, {.on_signal = [](int, int) { std::exit(5); }});
  SpawnSleeper(g);
  Say("ready");
  absl::SleepFor(absl::Seconds(20));
  return 4;
}

// An Executor owned by a static pointer made before it: exit(6) from main
// with a group alive.
int ChildExitStaticOwner() {
  static std::unique_ptr<Executor> ex;
  ex = std::make_unique<Executor>(ExecutorOptions{.num_workers = 2});
  TaskGroup g(*ex, {.name = "local"});
  SpawnSleeper(g);
  std::exit(6);
}

// ---- fork() ----------------------------------------------------------------

// Waits until every other thread of this process is blocked in a system
// call that waits (futex, poll, nanosleep, clock_nanosleep), read from
// /proc/self/task/<tid>/syscall. A fork() while another thread is inside
// the sanitizer runtime (starting up, allocating) can leave a lock of that
// runtime held forever in the child; ripcord's own threads are never in
// such a state while they wait.
void WaitUntilOtherThreadsWait() {
  const absl::Time deadline = absl::Now() + child_process::kWait;
  const std::string self = absl::StrCat(gettid());
  for (;;) {
    bool all = true;
    DIR* d = opendir("/proc/self/task");
    CHILD_CHECK(d != nullptr);
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] == '.' || self == e->d_name) continue;
      const std::string sc =
          ReadFile(absl::StrCat("/proc/self/task/", e->d_name, "/syscall"));
      const int nr = std::atoi(sc.c_str());
      if (nr != SYS_futex && nr != SYS_poll && nr != SYS_nanosleep &&
          nr != SYS_clock_nanosleep) {
        all = false;
      }
    }
    closedir(d);
    if (all || absl::Now() > deadline) return;
    absl::SleepFor(absl::Milliseconds(1));
  }
}

// Forks with an Executor, a group with a running task and a watcher alive;
// the grandchild runs `in_child` and then leaves through the destructors of
// everything it inherited (they must do nothing: no hang, no abort). The
// parent reports the grandchild's ending.
template <class F>
int ForkWithLiveExecutor(F in_child) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "parent-group"});
  SpawnSleeper(g);
  SignalWatcher w(ex);
  WaitUntilOtherThreadsWait();
  const pid_t pid = fork();
  CHILD_CHECK(pid >= 0);
  if (pid == 0) return in_child(ex, g);
  Say(absl::StrCat("grandchild=", Ending(WaitFor(pid))));
  g.RequestStop("done");
  CHILD_CHECK(absl::IsCancelled(g.Wait()));
  return 0;
}

int ChildForkSpawnInherited() {
  return ForkWithLiveExecutor([](Executor&, TaskGroup& g) {
    g.Spawn([] {});  // aborts
    g.Wait().IgnoreError();
    return 9;
  });
}

int ChildForkWaitInherited() {
  return ForkWithLiveExecutor([](Executor&, TaskGroup& g) {
    g.Wait().IgnoreError();  // aborts
    return 9;
  });
}

int ChildForkNewGroupOnInherited() {
  return ForkWithLiveExecutor([](Executor& ex, TaskGroup&) {
    TaskGroup h(ex);  // aborts
    return 9;
  });
}

// A new Executor and a new SignalWatcher work in the child; the inherited
// watcher's handler is gone there (SIGINT is back to SIG_DFL until the new
// watcher is made).
int ChildForkNewExecutor() {
  return ForkWithLiveExecutor([](Executor&, TaskGroup&) {
    struct sigaction sa;
    sigaction(SIGINT, nullptr, &sa);
    if (sa.sa_handler != SIG_DFL) return 10;
    Executor ex2({.num_workers = 2});
    TaskGroup g2(ex2, {.name = "child-group"});
    std::atomic<int> ran{0};
    for (int i = 0; i < 100; ++i) g2.Spawn([&ran] { ran.fetch_add(1); });
    if (!g2.Wait().ok() || ran.load() != 100) return 11;
    SpawnSleeper(g2);
    SignalWatcher w2(ex2);
    kill(getpid(), SIGINT);
    if (!absl::IsCancelled(g2.Wait())) return 12;
    // The count is published just after the stop requests.
    if (!Eventually([&] { return w2.signals_received() == 1; })) return 13;
    return 0;
  });
}

int RunChild(absl::string_view scenario) {
  static const std::map<std::string, int (*)(), std::less<>> kScenarios = {
      {"masks_watcher", [] { return ChildSubprocessMasks(true); }},
      {"masks_no_watcher", [] { return ChildSubprocessMasks(false); }},
      {"closed_12", [] { return ChildClosedFds(1); }},
      {"closed_012", [] { return ChildClosedFds(0); }},
      {"exit_main_static_executor", ChildExitMainStaticExecutor},
      {"exit_task_static_executor", ChildExitTaskStaticExecutor},
      {"exit_task_static_group", ChildExitTaskStaticGroup},
      {"exit_on_signal", ChildExitFromOnSignal},
      {"exit_static_owner", ChildExitStaticOwner},
      {"fork_spawn_inherited", ChildForkSpawnInherited},
      {"fork_wait_inherited", ChildForkWaitInherited},
      {"fork_group_on_inherited", ChildForkNewGroupOnInherited},
      {"fork_new_executor", ChildForkNewExecutor},
  };
  auto it = kScenarios.find(scenario);
  if (it == kScenarios.end()) {
    std::fprintf(stderr, "unknown scenario '%s'\n",
                 std::string(scenario).c_str());
    return 5;
  }
  return it->second();
}

}  // namespace
}  // namespace ripcord

RIPCORD_CHILD_PROCESS_MAIN(ripcord::RunChild)

namespace ripcord {
namespace {

// ===========================================================================
// Parent side.
// ===========================================================================

// Invariant: a child process started by system, popen, posix_spawn or
// fork+exec, from main, a task or a blocking fn, starts with no signal
// blocked, and a SIGINT sent to it ends it.
void ExpectSubprocessesUnblocked(const std::string& scenario) {
  Child c(scenario);
  c.ExpectCleanExit();
  int cases = 0;
  for (const std::string& l : c.lines()) {
    if (!absl::StartsWith(l, "case ")) continue;
    ++cases;
    EXPECT_TRUE(absl::StrContains(l, "SigBlk:\t0000000000000000 end=sigint"))
        << l << c.Transcript();
  }
  EXPECT_EQ(cases, 12) << c.Transcript();
  EXPECT_TRUE(c.HasLine("done")) << c.Transcript();
}

TEST(ProcessLife, SubprocessesStartUnblockedWithWatcher) {
  ExpectSubprocessesUnblocked("masks_watcher");
}

TEST(ProcessLife, SubprocessesStartUnblockedWithoutWatcher) {
  ExpectSubprocessesUnblocked("masks_no_watcher");
}

// Invariant: started as `prog >&- 2>&-`, the library takes none of fds 1
// and 2 (its descriptors are >= 3 and close-on-exec), the program's write to
// fd 2 fails instead of reaching the watcher, and signals keep working.
TEST(ProcessLife, ClosedStdoutAndStderr) {
  Child c("closed_12");
  c.ExpectCleanExit();
  EXPECT_EQ(c.Value("grandchild"), "exit 0") << c.Transcript();
  EXPECT_EQ(c.Value("fds_ok"), "1") << c.Transcript();
  EXPECT_EQ(c.Value("write2"), "ebadf") << c.Transcript();
  EXPECT_EQ(c.Value("received"), "2") << c.Transcript();
}

// Invariant: started as `prog <&- >&- 2>&-`, the program's own open()s get
// 0, 1 and 2, and no stop line is written into its file at fd 2.
TEST(ProcessLife, ClosedStdinStdoutAndStderr) {
  Child c("closed_012");
  c.ExpectCleanExit();
  EXPECT_EQ(c.Value("grandchild"), "exit 0") << c.Transcript();
  EXPECT_EQ(c.Value("fds_ok"), "1") << c.Transcript();
  EXPECT_EQ(c.Value("received"), "1") << c.Transcript();
  EXPECT_EQ(c.Value("user_file"), "[]") << c.Transcript();
}

// Invariant: exit(n) with live ripcord objects ends the process with n.
void ExpectExitStatus(Child& c, int code) {
  const int status = c.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == code)
      << Child::Describe(status) << c.Transcript();
  EXPECT_FALSE(absl::StrContains(c.err(), "fatal")) << c.Transcript();
}

TEST(ProcessLife, ExitFromMainWithStaticExecutorAndLocalGroup) {
  Child c("exit_main_static_executor");
  ExpectExitStatus(c, 3);
}

TEST(ProcessLife, ExitFromTaskWithStaticExecutor) {
  Child c("exit_task_static_executor");
  ExpectExitStatus(c, 1);
}

TEST(ProcessLife, ExitFromTaskOfStaticGroup) {
  Child c("exit_task_static_group");
  ExpectExitStatus(c, 1);
}

TEST(ProcessLife, ExitFromOnSignalOfStaticWatcher) {
  Child c("exit_on_signal");
  ASSERT_FALSE(c.WaitLine("ready").empty());
  c.Signal(SIGINT);
  ExpectExitStatus(c, 5);
}

TEST(ProcessLife, ExitWithExecutorOwnedByStaticPointer) {
  Child c("exit_static_owner");
  ExpectExitStatus(c, 6);
}

// Invariant: in a fork() child, using an inherited Executor aborts with a
// message that says so (never a hang).
void ExpectForkChildAborts(const std::string& scenario, const char* api) {
  Child c(scenario);
  c.ExpectCleanExit();
  EXPECT_EQ(c.Value("grandchild"), absl::StrCat("signal ", SIGABRT))
      << c.Transcript();
  EXPECT_TRUE(absl::StrContains(
      c.err(), absl::StrCat(api, ": Executor used in a fork() child")))
      << c.Transcript();
  EXPECT_TRUE(absl::StrContains(c.err(), "create a new Executor"))
      << c.Transcript();
}

TEST(ProcessLife, ForkChildSpawnOnInheritedExecutorAborts) {
  ExpectForkChildAborts("fork_spawn_inherited", "TaskGroup::Spawn");
}

TEST(ProcessLife, ForkChildWaitOnInheritedExecutorAborts) {
  ExpectForkChildAborts("fork_wait_inherited", "TaskGroup::Wait");
}

TEST(ProcessLife, ForkChildNewGroupOnInheritedExecutorAborts) {
  ExpectForkChildAborts("fork_group_on_inherited", "TaskGroup::TaskGroup");
}

// Invariant: in a fork() child, a new Executor and a new SignalWatcher
// work; the inherited watcher's handler is gone; and leaving the child
// through the destructors of the inherited objects does not hang.
TEST(ProcessLife, ForkChildNewExecutorAndWatcherWork) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer cannot start threads in the child of a "
                  "multithreaded fork (it ends the child with status 66)";
#endif
  Child c("fork_new_executor");
  c.ExpectCleanExit();
  EXPECT_EQ(c.Value("grandchild"), "exit 0") << c.Transcript();
}

}  // namespace
}  // namespace ripcord
