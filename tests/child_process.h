// Copyright 2026 The ripcord Authors.
//
// child_process.h: testonly scaffolding for tests that need a process of
// their own (real signals, exit(), fork(), closed standard streams), written
// once for every such test file.
//
// Signals and exit() are process-wide, so such a scenario never runs inside
// the gtest process. The test re-executes its own binary (/proc/self/exe)
// with RIPCORD_CHILD_SCENARIO=<scenario> and
// --gtest_filter=ChildProcess.Main, so the child starts from exec with one
// thread (no fork of a multithreaded process) and runs the scenario function
// the test file registered with RIPCORD_CHILD_PROCESS_MAIN. The child
// reports on fd 3 with Say() ("ready" once it is safe to signal it, then
// key=value results) and reads commands on fd 4 (AwaitCommand). The parent
// (class Child) sends real signals with kill(), writes commands, captures
// the child's stderr and checks its waitpid() status. Every wait is bounded
// (kWait); a child still alive when its test ends is killed with SIGKILL.
// The child starts with no signal blocked and the signals used here at
// SIG_DFL, whatever the test process had.
//
// The environment given to the child drops Bazel's and gtest's reporting
// variables (XML_OUTPUT_FILE, TEST_PREMATURE_EXIT_FILE, GTEST_*, sharding),
// so a child that dies by a signal leaves no trace in the parent's results.
// Sanitizer reports in a child's stderr fail the test.
//
//   int ChildHello() { Say("ready"); return 0; }   // child side
//   int RunChild(absl::string_view s) { ... return ChildHello(); }
//   RIPCORD_CHILD_PROCESS_MAIN(RunChild)
//   TEST(Foo, Bar) {                                // parent side
//     Child c("hello");
//     ASSERT_FALSE(c.WaitLine("ready").empty());
//     c.ExpectCleanExit();
//   }
#ifndef RIPCORD_TESTS_CHILD_PROCESS_H_
#define RIPCORD_TESTS_CHILD_PROCESS_H_

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

extern char** environ;

namespace ripcord::child_process {

inline constexpr char kScenarioEnv[] = "RIPCORD_CHILD_SCENARIO";
// Bound of every wait in these tests; generous for TSan on a loaded machine.
inline constexpr absl::Duration kWait = absl::Seconds(20);
inline constexpr int kCtlFd = 3;  // child -> parent: "ready", results
inline constexpr int kCmdFd = 4;  // parent -> child: commands

// ===========================================================================
// Child side: runs in the re-executed binary only.
// ===========================================================================

// Writes one line to the parent (fd 3). Callable from any thread of the
// child, including the signal thread (on_signal): one write(2) per line.
inline void Say(const std::string& line) {
  std::string s = line + "\n";
  const char* p = s.data();
  size_t left = s.size();
  while (left > 0) {
    ssize_t n = ::write(kCtlFd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// A failed expectation inside the child: report it and exit with code 3, so
// the parent's exit-status check fails and prints the child's stderr.
#define CHILD_CHECK(cond)                                                   \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "child check failed: %s [%s:%d]\n", #cond,       \
                   __FILE__, __LINE__);                                     \
      std::fflush(stderr);                                                  \
      Say(absl::StrCat("child check failed: ", #cond));                     \
      std::_Exit(3);                                                        \
    }                                                                       \
  } while (false)

// Waits (bounded) for the command line `expected` from the parent on fd 4.
inline void AwaitCommand(absl::string_view expected) {
  std::string buf;
  const absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    pollfd p = {kCmdFd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char c;
    ssize_t n = ::read(kCmdFd, &c, 1);
    if (n == 0) break;  // parent gone
    if (n < 0) continue;
    if (c != '\n') {
      buf.push_back(c);
      continue;
    }
    CHILD_CHECK(buf == expected);
    return;
  }
  CHILD_CHECK(false && "command from the parent did not arrive");
}

// Polls `pred` every millisecond for at most kWait.
template <class Pred>
bool Eventually(Pred pred) {
  const absl::Time deadline = absl::Now() + kWait;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}


// ===========================================================================
// Parent side.
// ===========================================================================

inline void SetNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// A pipe whose ends are close-on-exec and numbered >= 10, so dup2 onto 2, 3
// and 4 in the child never meets an end already there.
inline void HighPipe(int fds[2]) {
  int raw[2];
  ASSERT_EQ(pipe(raw), 0);
  for (int i = 0; i < 2; ++i) {
    fds[i] = fcntl(raw[i], F_DUPFD_CLOEXEC, 10);
    close(raw[i]);
  }
}

inline bool DroppedFromChildEnv(absl::string_view entry) {
  for (absl::string_view prefix :
       {"XML_OUTPUT_FILE=", "TEST_PREMATURE_EXIT_FILE=", "GTEST_",
        "TEST_SHARD_STATUS_FILE=", "TEST_TOTAL_SHARDS=", "TEST_SHARD_INDEX=",
        "RIPCORD_CHILD_SCENARIO="}) {
    if (absl::StartsWith(entry, prefix)) return true;
  }
  return false;
}

// A re-executed copy of this binary running one scenario.
class Child {
 public:
  explicit Child(const std::string& scenario) : scenario_(scenario) {
    signal(SIGPIPE, SIG_IGN);  // writing to a dead child's fd 4 must not kill us
    int ctl[2], err[2], cmd[2];
    HighPipe(ctl);
    HighPipe(err);
    HighPipe(cmd);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    // The child's gtest banner is noise: its stdout goes to /dev/null.
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_adddup2(&fa, ctl[1], kCtlFd);
    posix_spawn_file_actions_adddup2(&fa, cmd[0], kCmdFd);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // A known start: nothing blocked, the signals we use at SIG_DFL (Bazel or
    // a shell may have left SIGINT ignored or blocked in this process).
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE}) {
      sigaddset(&dfl, s);
    }
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    std::string filter = "--gtest_filter=ChildProcess.Main";
    std::vector<char*> argv = {exe, filter.data(), nullptr};
    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
      if (!DroppedFromChildEnv(*e)) env_store.emplace_back(*e);
    }
    env_store.push_back(absl::StrCat(kScenarioEnv, "=", scenario));
    std::vector<char*> envp;
    for (auto& s : env_store) envp.push_back(s.data());
    envp.push_back(nullptr);

    const int rc = posix_spawn(&pid_, exe, &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(ctl[1]);
    close(err[1]);
    close(cmd[0]);
    ctl_fd_ = ctl[0];
    err_fd_ = err[0];
    cmd_fd_ = cmd[1];
    SetNonBlocking(ctl_fd_);
    SetNonBlocking(err_fd_);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn: " << std::strerror(rc);
      pid_ = -1;
    }
  }

  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
    close(ctl_fd_);
    close(err_fd_);
    close(cmd_fd_);
  }

  // Waits until a line from the child starts with `prefix`; returns it.
  // On timeout or if the child ends first: a test failure and "".
  std::string WaitLine(absl::string_view prefix) {
    const absl::Time deadline = absl::Now() + kWait;
    for (;;) {
      for (const std::string& l : lines_) {
        if (absl::StartsWith(l, prefix)) {
          if (absl::StartsWith(l, "ready")) ready_seen_ = absl::Now();
          return l;
        }
      }
      if (ctl_eof_ || absl::Now() > deadline) break;
      Pump(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "child '" << scenario_ << "' never said '" << prefix
                  << "'" << Transcript();
    return "";
  }

  // The value of the "key=value" line the child wrote ("" if none).
  std::string Value(absl::string_view key) const {
    const std::string p = absl::StrCat(key, "=");
    for (const std::string& l : lines_) {
      if (absl::StartsWith(l, p)) return l.substr(p.size());
    }
    return "";
  }

  // True if a line the child wrote starts with `prefix`.
  bool HasLine(absl::string_view prefix) const {
    for (const std::string& l : lines_) {
      if (absl::StartsWith(l, prefix)) return true;
    }
    return false;
  }

  // Waits until the child's stderr contains `needle`.
  bool WaitStderr(absl::string_view needle) {
    const absl::Time deadline = absl::Now() + kWait;
    while (!absl::StrContains(err_, needle)) {
      if (err_eof_ || absl::Now() > deadline) {
        ADD_FAILURE() << "child '" << scenario_ << "' never wrote '" << needle
                      << "' to stderr" << Transcript();
        return false;
      }
      Pump(absl::Milliseconds(20));
    }
    return true;
  }

  // Reads the child's output for `d`.
  void Drain(absl::Duration d) {
    const absl::Time until = absl::Now() + d;
    while (absl::Now() < until) Pump(absl::Milliseconds(5));
  }

  // Sends `signo` to the child. Under ThreadSanitizer, not within
  // kTsanSettle of the child's "ready" line: TSan puts its own handler in
  // front of the program's, and a signal that reaches the child's main
  // thread just after it wrote that line, as it enters its next blocking
  // call, is in some runs under load consumed by TSan without the
  // program's handler ever running (the kernel's signal_deliver trace shows
  // the delivery; the handler's count stays 0; TSan's pending slot is
  // empty). Plain and ASan builds send at once.
  void Signal(int signo) {
#if defined(__SANITIZE_THREAD__)
    absl::SleepFor(ready_seen_ + kTsanSettle - absl::Now());
#endif
    ASSERT_EQ(kill(pid_, signo), 0);
  }

  static constexpr absl::Duration kTsanSettle = absl::Milliseconds(200);

  void Command(absl::string_view line) {
    std::string s = absl::StrCat(line, "\n");
    ASSERT_EQ(write(cmd_fd_, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }

  // Waits for the child to end (kills it after kWait) and returns its
  // waitpid status; reads its output to the end first.
  int Wait() {
    const absl::Time deadline = absl::Now() + kWait;
    int status = 0;
    for (;;) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (absl::Now() > deadline) {
        ADD_FAILURE() << "child '" << scenario_ << "' still running after "
                      << kWait << "; killing it" << Transcript();
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      Pump(absl::Milliseconds(10));
    }
    reaped_ = true;
    // The child is gone: its pipe ends are closed, so this reaches EOF.
    const absl::Time drain_deadline = absl::Now() + absl::Seconds(5);
    while ((!ctl_eof_ || !err_eof_) && absl::Now() < drain_deadline) {
      Pump(absl::Milliseconds(10));
    }
    EXPECT_FALSE(absl::StrContains(err_, "Sanitizer") ||
                 absl::StrContains(err_, "runtime error:"))
        << "sanitizer report in child '" << scenario_ << "'" << Transcript();
    return status;
  }

  // Expects the child to exit with code 0.
  void ExpectCleanExit() {
    const int status = Wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child '" << scenario_ << "' status " << Describe(status) << Transcript();
  }

  const std::string& err() const { return err_; }
  const std::vector<std::string>& lines() const { return lines_; }

  std::string Transcript() const {
    std::string t = "\n--- child stdout-ctl ---\n";
    for (const auto& l : lines_) absl::StrAppend(&t, l, "\n");
    absl::StrAppend(&t, "--- child stderr ---\n", err_, "--- end ---");
    return t;
  }

  static std::string Describe(int status) {
    if (WIFEXITED(status)) return absl::StrCat("exited ", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
      return absl::StrCat("killed by signal ", WTERMSIG(status), " (",
                          strsignal(WTERMSIG(status)), ")");
    }
    return absl::StrCat("raw ", status);
  }

 private:
  // Reads whatever the child wrote, waiting at most `timeout` for some.
  void Pump(absl::Duration timeout) {
    pollfd fds[2] = {{ctl_eof_ ? -1 : ctl_fd_, POLLIN, 0},
                     {err_eof_ ? -1 : err_fd_, POLLIN, 0}};
    poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    char buf[4096];
    if (!ctl_eof_) {
      for (;;) {
        ssize_t n = read(ctl_fd_, buf, sizeof buf);
        if (n == 0) ctl_eof_ = true;
        if (n <= 0) break;
        ctl_buf_.append(buf, static_cast<size_t>(n));
      }
      size_t nl;
      while ((nl = ctl_buf_.find('\n')) != std::string::npos) {
        lines_.push_back(ctl_buf_.substr(0, nl));
        ctl_buf_.erase(0, nl + 1);
      }
    }
    if (!err_eof_) {
      for (;;) {
        ssize_t n = read(err_fd_, buf, sizeof buf);
        if (n == 0) err_eof_ = true;
        if (n <= 0) break;
        err_.append(buf, static_cast<size_t>(n));
      }
    }
  }

  const std::string scenario_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  absl::Time ready_seen_ = absl::InfinitePast();  // when WaitLine saw "ready..."
  int ctl_fd_ = -1, err_fd_ = -1, cmd_fd_ = -1;
  bool ctl_eof_ = false, err_eof_ = false;
  std::string ctl_buf_, err_;
  std::vector<std::string> lines_;
};

// Number of lines of `text` that contain `needle`.
inline int CountLines(const std::string& text, absl::string_view needle) {
  int n = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (absl::StrContains(absl::string_view(text).substr(start, end - start), needle)) ++n;
    start = end + 1;
  }
  return n;
}


}  // namespace ripcord::child_process

// Defines the child's entry point, TEST(ChildProcess, Main), which runs
// `run(scenario)` (int(absl::string_view)) when the binary was re-executed
// by Child and is skipped in the normal test run. The child leaves with
// _Exit(run's value): the parent reads only its status and its output.
#define RIPCORD_CHILD_PROCESS_MAIN(run)                                      \
  TEST(ChildProcess, Main) {                                                 \
    const char* scenario =                                                   \
        std::getenv(::ripcord::child_process::kScenarioEnv);                 \
    if (scenario == nullptr) {                                               \
      GTEST_SKIP() << "child-process entry point; runs only when re-executed"; \
    }                                                                        \
    const int code = run(scenario);                                          \
    std::fflush(stdout);                                                     \
    std::fflush(stderr);                                                     \
    std::_Exit(code);                                                        \
  }

#endif  // RIPCORD_TESTS_CHILD_PROCESS_H_
