// Copyright 2026 The ripcord Authors.
//
// examples_test: //examples:shutdown_demo and //examples:checkpointed_batch
// end to end, as separate processes that receive real signals (kill(2)).
//
// Every wait on a child is bounded: a child still running at its deadline is
// killed with SIGKILL and the test fails, so nothing hangs. The bounds are
// generous (tens of seconds for work of a few seconds) because they catch
// hangs, not slowness: this test runs on a loaded 2-core machine, often next
// to other builds, and under ThreadSanitizer.
//
// The children inherit the environment, so under --config=tsan/asan their
// sanitizer reports (TSAN_OPTIONS=halt_on_error=1, ...) end them with a
// non-zero exit status and fail the test like any other wrong exit.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

extern char** environ;

namespace {

// The bound on any one child process. Its work takes at most a few seconds;
// this catches a hang, not slowness (see the file comment).
constexpr absl::Duration kChildTimeout = absl::Seconds(60);

std::string BinaryPath(const char* name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "ripcord",
                      "/examples/", name);
}

std::string TempPath(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
}

// "SIGINT" for SIGINT (sigabbrev_np gives "INT").
std::string SignalName(int signo) {
  return absl::StrCat("SIG", sigabbrev_np(signo));
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  }
  return absl::StrCat("wait status ", status);
}

// Child: one child process with its stdout and stderr captured through pipes.
// Thread-compatible. The destructor kills (SIGKILL) and reaps a child that is
// still running, so a failing ASSERT never leaves one behind.
class Child {
 public:
  // Starts `path` with `args`, in this process's environment plus `env`
  // ("NAME=value" entries, which replace variables of the same name).
  Child(const std::string& path, const std::vector<std::string>& args,
        const std::vector<std::string>& env = {}) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    // The child starts with no signal blocked and SIGINT/SIGTERM at their
    // default action, whatever the test runner gave us.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<std::string> argv_storage = {path};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_storage = env;
    for (char** e = environ; *e != nullptr; ++e) {
      const absl::string_view entry(*e);
      const absl::string_view name = entry.substr(0, entry.find('=') + 1);
      bool replaced = false;
      for (const std::string& mine : env) {
        replaced |= absl::StartsWith(mine, name);
      }
      if (!replaced) env_storage.emplace_back(entry);
    }
    std::vector<char*> envp;
    for (std::string& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc = posix_spawn(&pid_, path.c_str(), &actions, &attr,
                               argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << path << ": " << std::strerror(rc);
      pid_ = -1;
    }
    start_ = absl::Now();
  }

  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool ok() const { return pid_ > 0; }
  void Signal(int signo) {
    if (pid_ > 0 && !reaped_) ::kill(pid_, signo);
  }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

  // Reads the child's output until pred() holds (true), or `timeout` passes
  // or both pipes are closed, i.e. the child has ended (false). pred is
  // checked after every read and at least every 2 ms.
  bool ReadUntil(const std::function<bool()>& pred, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      if (pred()) return true;
      if (absl::Now() >= deadline) return false;
      if (!Pump(absl::Milliseconds(2))) return pred();
    }
  }

  // Waits `d` while reading the child's output; returns early if it ends.
  void Pause(absl::Duration d) {
    ReadUntil([] { return false; }, d);
  }

  // Reads everything until the child exits and reaps it. A child still
  // running after `timeout` is killed with SIGKILL and *timed_out is set.
  // Returns the wait status.
  int Finish(absl::Duration timeout, bool* timed_out) {
    *timed_out = false;
    const absl::Time deadline = absl::Now() + timeout;
    int status = 0;
    for (;;) {
      const bool open = Pump(absl::Milliseconds(10));
      if (!open) {
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) break;
        absl::SleepFor(absl::Milliseconds(5));
      }
      if (absl::Now() >= deadline) {
        *timed_out = true;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        while (Pump(absl::Milliseconds(10))) {
        }
        break;
      }
    }
    reaped_ = true;
    end_ = absl::Now();
    return status;
  }

  // How long the child ran (valid after Finish).
  absl::Duration elapsed() const { return end_ - start_; }

  std::string Transcript() const {
    return absl::StrCat("--- stdout ---\n", out_, "--- stderr ---\n", err_,
                        "--------------");
  }

 private:
  // One poll of the open pipes (at most `wait`); appends what is readable.
  // False once both pipes are closed.
  bool Pump(absl::Duration wait) {
    pollfd fds[2];
    int* owners[2];
    std::string* sinks[2];
    int n = 0;
    if (out_fd_ >= 0) {
      fds[n] = {out_fd_, POLLIN, 0};
      owners[n] = &out_fd_;
      sinks[n++] = &out_;
    }
    if (err_fd_ >= 0) {
      fds[n] = {err_fd_, POLLIN, 0};
      owners[n] = &err_fd_;
      sinks[n++] = &err_;
    }
    if (n == 0) return false;
    const int r =
        ::poll(fds, n, static_cast<int>(absl::ToInt64Milliseconds(wait)));
    if (r <= 0) return true;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(*owners[i]);
        *owners[i] = -1;
      }
    }
    return out_fd_ >= 0 || err_fd_ >= 0;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool reaped_ = false;
  std::string out_;
  std::string err_;
  absl::Time start_;
  absl::Time end_;
};

// ---------------------------------------------------------------------------
// shutdown_demo

// DemoOutput: shutdown_demo's stdout, parsed. Lines are "[n] Task start!",
// "[n] Task done!", "[n] Cancelled!" and one "summary: D done, C cancelled".
struct DemoOutput {
  std::map<int, int> starts;              // n -> number of start lines
  std::map<int, int> dones;               // n -> number of done lines
  std::map<int, int> cancels;             // n -> number of cancelled lines
  std::vector<std::string> order_errors;  // an end line before its start
  std::vector<std::string> bad_lines;     // anything else
  int summaries = 0;
  int summary_done = -1;
  int summary_cancelled = -1;

  int count_starts() const { return Sum(starts); }
  static int Sum(const std::map<int, int>& m) {
    int s = 0;
    for (const auto& [n, c] : m) s += c;
    return s;
  }
};

DemoOutput ParseDemo(const std::string& out) {
  DemoOutput d;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "summary: ")) {
      ++d.summaries;
      if (std::sscanf(std::string(line).c_str(),
                      "summary: %d done, %d cancelled", &d.summary_done,
                      &d.summary_cancelled) != 2) {
        d.bad_lines.emplace_back(line);
      }
      continue;
    }
    int n = 0;
    const size_t close = line.find("] ");
    if (line.empty() || line[0] != '[' || close == absl::string_view::npos ||
        !absl::SimpleAtoi(line.substr(1, close - 1), &n) || n < 1) {
      d.bad_lines.emplace_back(line);
      continue;
    }
    absl::string_view what = line.substr(close + 2);
    if (what == "Task start!") {
      ++d.starts[n];
    } else if (what == "Task done!" || what == "Cancelled!") {
      if (d.starts[n] == 0) d.order_errors.emplace_back(line);
      ++(what == "Task done!" ? d.dones : d.cancels)[n];
    } else {
      d.bad_lines.emplace_back(line);
    }
  }
  return d;
}

// Checks the invariant of every run: each task 1..total printed exactly one
// start line, then exactly one end line, which is "Task done!" for the tasks
// in `expect_done` and "Cancelled!" for the others; one summary line whose
// counts agree; nothing else.
void ExpectDemoOutput(const DemoOutput& d, int total,
                      const std::function<bool(int)>& expect_done,
                      const std::string& transcript) {
  SCOPED_TRACE(transcript);
  EXPECT_TRUE(d.bad_lines.empty()) << "unexpected line: " << d.bad_lines[0];
  EXPECT_TRUE(d.order_errors.empty())
      << "end before start: " << d.order_errors[0];
  int want_done = 0;
  for (int n = 1; n <= total; ++n) {
    const bool done = expect_done(n);
    want_done += done ? 1 : 0;
    EXPECT_EQ(d.starts.count(n) ? d.starts.at(n) : 0, 1) << "task " << n;
    EXPECT_EQ(d.dones.count(n) ? d.dones.at(n) : 0, done ? 1 : 0)
        << "task " << n << " should " << (done ? "" : "not ") << "be done";
    EXPECT_EQ(d.cancels.count(n) ? d.cancels.at(n) : 0, done ? 0 : 1)
        << "task " << n << " should " << (done ? "not " : "") << "be cancelled";
  }
  for (const auto* m : {&d.starts, &d.dones, &d.cancels}) {
    for (const auto& [n, c] : *m) {
      EXPECT_TRUE(n >= 1 && n <= total) << "a line for task " << n;
    }
  }
  EXPECT_EQ(d.summaries, 1);
  EXPECT_EQ(d.summary_done, want_done);
  EXPECT_EQ(d.summary_cancelled, total - want_done);
}

bool AllStarted(const Child& child, int total) {
  return ParseDemo(child.out()).count_starts() >= total;
}

// Without a signal every task works to the end and the process exits 0.
TEST(ShutdownDemo, NoSignalEveryTaskDoneExitZero) {
  Child child(BinaryPath("shutdown_demo"), {"--seconds=1"});
  ASSERT_TRUE(child.ok());
  bool timed_out;
  const int status = child.Finish(kChildTimeout, &timed_out);
  ASSERT_FALSE(timed_out) << child.Transcript();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status) << "\n"
      << child.Transcript();
  // Defaults: 3 shielded, 3 unshielded, 1 blocking call.
  ExpectDemoOutput(
      ParseDemo(child.out()), 7, [](int) { return true; }, child.Transcript());
}

// One stop signal once every task has started: shielded tasks (1..3) finish
// their work, unshielded tasks (4..6) and the blocking call (7) are
// cancelled, and the process ends as killed by that signal.
class ShutdownDemoSignal : public ::testing::TestWithParam<int> {};

TEST_P(ShutdownDemoSignal, ShieldedFinishUnshieldedCancelledKilledBySignal) {
  const int signo = GetParam();
  // 5 s of work: the signal lands while every task is still working even if
  // this machine stalls the test for a few seconds.
  Child child(BinaryPath("shutdown_demo"), {"--seconds=5"});
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE(
      child.ReadUntil([&] { return AllStarted(child, 7); }, kChildTimeout))
      << child.Transcript();
  child.Signal(signo);
  bool timed_out;
  const int status = child.Finish(kChildTimeout, &timed_out);
  ASSERT_FALSE(timed_out) << child.Transcript();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == signo)
      << DescribeStatus(status) << "\n"
      << child.Transcript();
  ExpectDemoOutput(
      ParseDemo(child.out()), 7, [](int n) { return n <= 3; },
      child.Transcript());
  // The watcher says what it stopped, naming the signal.
  EXPECT_TRUE(absl::StrContains(child.err(), SignalName(signo)))
      << child.Transcript();
}

INSTANTIATE_TEST_SUITE_P(SigintAndSigterm, ShutdownDemoSignal,
                         ::testing::Values(SIGINT, SIGTERM),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return SignalName(info.param);
                         });

// A second SIGINT, sent after the first was handled, cancels the shielded
// tasks too; the process still ends as killed by SIGINT.
TEST(ShutdownDemo, SecondSigintCancelsShieldedToo) {
  Child child(BinaryPath("shutdown_demo"), {"--seconds=30"});
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE(
      child.ReadUntil([&] { return AllStarted(child, 7); }, kChildTimeout))
      << child.Transcript();
  child.Signal(SIGINT);
  // An unshielded task's "Cancelled!" proves the first signal was handled, so
  // the second cannot merge with it into one pending signal.
  ASSERT_TRUE(child.ReadUntil(
      [&] { return DemoOutput::Sum(ParseDemo(child.out()).cancels) > 0; },
      kChildTimeout))
      << child.Transcript();
  child.Signal(SIGINT);
  bool timed_out;
  // The shielded tasks work for 30 s; ending well before that shows that the
  // second signal cancelled them.
  const int status = child.Finish(absl::Seconds(25), &timed_out);
  ASSERT_FALSE(timed_out) << child.Transcript();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)
      << DescribeStatus(status) << "\n"
      << child.Transcript();
  ExpectDemoOutput(
      ParseDemo(child.out()), 7, [](int) { return false; }, child.Transcript());
}

// More coroutine tasks than workers: 101 tasks on 2 workers. Sleeping tasks
// hold no worker, so all of them start at once and the run ends about 2 s
// after it started, interrupted or not. The 15 s bound is generous on
// purpose (a loaded machine, TSan): a design that held a worker per sleeping
// task would need 50 x 2 s / 2 workers = 50 s.
TEST(ShutdownDemo, FiftyFiftyOnTwoWorkersUninterrupted) {
  Child child(BinaryPath("shutdown_demo"), {"--shielded=50", "--unshielded=50",
                                            "--seconds=2", "--workers=2"});
  ASSERT_TRUE(child.ok());
  bool timed_out;
  const int status = child.Finish(absl::Seconds(15), &timed_out);
  ASSERT_FALSE(timed_out) << child.Transcript();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status) << "\n"
      << child.Transcript();
  ExpectDemoOutput(
      ParseDemo(child.out()), 101, [](int) { return true; },
      child.Transcript());
}

TEST(ShutdownDemo, FiftyFiftyOnTwoWorkersInterrupted) {
  Child child(BinaryPath("shutdown_demo"), {"--shielded=50", "--unshielded=50",
                                            "--seconds=2", "--workers=2"});
  ASSERT_TRUE(child.ok());
  // All 101 must start although there are 2 workers: the first 50 sleeping
  // tasks hold none.
  ASSERT_TRUE(child.ReadUntil([&] { return AllStarted(child, 101); },
                              absl::Seconds(15)))
      << child.Transcript();
  child.Signal(SIGINT);
  bool timed_out;
  const int status = child.Finish(absl::Seconds(15), &timed_out);
  ASSERT_FALSE(timed_out) << child.Transcript();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)
      << DescribeStatus(status) << "\n"
      << child.Transcript();
  // Whether a shielded task finished before the signal or after, it is done;
  // an unshielded one could only finish if the signal came after 2 s of work,
  // which the 101st start line rules out unless the machine stalled for 2 s.
  // So: shielded (1..50) all done; unshielded and blocking all report one end.
  const DemoOutput d = ParseDemo(child.out());
  EXPECT_TRUE(d.bad_lines.empty()) << child.Transcript();
  for (int n = 1; n <= 101; ++n) {
    const int done = d.dones.count(n) ? d.dones.at(n) : 0;
    const int cancelled = d.cancels.count(n) ? d.cancels.at(n) : 0;
    EXPECT_EQ(d.starts.count(n) ? d.starts.at(n) : 0, 1) << "task " << n;
    EXPECT_EQ(done + cancelled, 1) << "task " << n;
    if (n <= 50) {
      EXPECT_EQ(done, 1) << "shielded task " << n;
    }
  }
  EXPECT_EQ(d.summaries, 1);
  EXPECT_EQ(d.summary_done + d.summary_cancelled, 101);
}

// --help documents the flags and the task numbering.
TEST(ShutdownDemo, HelpDocumentsNumbering) {
  // Abseil 20220623's ParseCommandLine calls exit() for --help while holding
  // a global absl::Mutex; with //bazel:absl_tsan_shim, TSan then reports
  // "destroy of a locked mutex" at exit and (halt_on_error) ends the process
  // before stdio is flushed. That is Abseil's, not the demo's: silence it.
  std::string tsan_options = "TSAN_OPTIONS=";
  if (const char* t = std::getenv("TSAN_OPTIONS")) {
    absl::StrAppend(&tsan_options, t, ":");
  }
  absl::StrAppend(&tsan_options, "report_destroy_locked=0");
  Child child(BinaryPath("shutdown_demo"), {"--help"}, {tsan_options});
  ASSERT_TRUE(child.ok());
  bool timed_out;
  child.Finish(kChildTimeout, &timed_out);
  ASSERT_FALSE(timed_out);
  const std::string all = child.out() + child.err();
  for (const char* s : {"--shielded", "--unshielded", "--seconds", "--blocking",
                        "1..S", "S+1..S+U", "S+U+1..S+U+B"}) {
    EXPECT_TRUE(absl::StrContains(all, s)) << s << "\n" << child.Transcript();
  }
}

// ---------------------------------------------------------------------------
// checkpointed_batch

// The job: a second or two on 2 cores. Not scaled down under sanitizers:
// their builds are -O1, so this arithmetic runs faster there than in the -O0
// fastbuild (only process start, threads and writes cost more). The moments
// of the interrupts are scaled to the measured speed instead (MeasuredTiming).
constexpr uint64_t kItems = 20000;
constexpr int kRounds = 10000;
// Bytes per output line for a 5-digit item: "12345\t" + 16 hex + "\n".
constexpr int kLineBytes = 23;

uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The expected result of every item, computed once (on 2 threads).
const std::vector<uint64_t>& Expected() {
  static const std::vector<uint64_t>* expected = [] {
    const absl::Time start = absl::Now();
    auto* v = new std::vector<uint64_t>(kItems);
    auto fill = [v](uint64_t begin, uint64_t end) {
      for (uint64_t i = begin; i < end; ++i) {
        uint64_t z = i;
        for (int r = 0; r < kRounds; ++r) z = Mix(z);
        (*v)[i] = z;
      }
    };
    std::thread other(fill, 0, kItems / 2);
    fill(kItems / 2, kItems);
    other.join();
    std::printf("expected results of %llu items computed in %s\n",
                static_cast<unsigned long long>(kItems),
                absl::FormatDuration(absl::Now() - start).c_str());
    return v;
  }();
  return *expected;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// OutputCheck: what an output file holds.
struct OutputCheck {
  uint64_t lines = 0;     // whole, correct lines
  std::string error;      // the first problem, empty if none
  std::string torn_tail;  // bytes after the last '\n'
};

// Verifies the output line by line: each line whole ("item<TAB>16 lowercase
// hex digits\n"), item < kItems, result == mix^kRounds(item), no item twice.
OutputCheck CheckOutput(const std::string& path) {
  OutputCheck c;
  const std::string data = ReadFile(path);
  const std::vector<uint64_t>& expected = Expected();
  std::vector<bool> seen(kItems, false);
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) {
      c.torn_tail = data.substr(pos);
      break;
    }
    const absl::string_view line(data.data() + pos, nl - pos);
    pos = nl + 1;
    const size_t tab = line.find('\t');
    uint64_t item = 0;
    bool ok = tab != absl::string_view::npos && tab > 0 &&
              line.size() - tab - 1 == 16 &&
              line.substr(0, tab).find_first_not_of("0123456789") ==
                  absl::string_view::npos &&
              absl::SimpleAtoi(line.substr(0, tab), &item) &&
              line.substr(tab + 1).find_first_not_of("0123456789abcdef") ==
                  absl::string_view::npos;
    if (!ok || item >= kItems) {
      c.error = absl::StrCat("malformed line ", c.lines + 1, ": '", line, "'");
      return c;
    }
    if (line.substr(tab + 1) != absl::StrFormat("%016x", expected[item])) {
      c.error =
          absl::StrCat("wrong result on line ", c.lines + 1, ": '", line,
                       "', want ", absl::StrFormat("%016x", expected[item]));
      return c;
    }
    if (seen[item]) {
      c.error = absl::StrCat("item ", item, " appears twice (line ",
                             c.lines + 1, ")");
      return c;
    }
    seen[item] = true;
    ++c.lines;
  }
  return c;
}

off_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

std::vector<std::string> BatchArgs(const std::string& output) {
  return {absl::StrCat("--output=", output), absl::StrCat("--items=", kItems),
          absl::StrCat("--rounds=", kRounds), "--chunk=512", "--workers=2"};
}

// Runs checkpointed_batch to completion and checks: exit 0, every item
// exactly once, every line whole and correct. Returns how long it ran.
absl::Duration RunToCompletionAndVerify(const std::string& output) {
  Child child(BinaryPath("checkpointed_batch"), BatchArgs(output));
  EXPECT_TRUE(child.ok());
  bool timed_out;
  const int status = child.Finish(kChildTimeout, &timed_out);
  EXPECT_FALSE(timed_out) << child.Transcript();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status) << "\n"
      << child.Transcript();
  const OutputCheck c = CheckOutput(output);
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(c.torn_tail, "");
  EXPECT_EQ(c.lines, kItems) << "every item exactly once";
  return child.elapsed();
}

// Timing: how long a run takes to get going (process start, flags, recovery
// of an empty file, executor and watcher) and how long the whole job takes,
// measured once on this machine in this build, so that "random moments" fall
// in the same places of a run whether the build is -O0, -O1 with sanitizers,
// or the machine is loaded. The uninterrupted calibration run is itself
// checked line by line.
struct Timing {
  absl::Duration startup;
  absl::Duration job;
};

const Timing& MeasuredTiming() {
  static const Timing* timing = [] {
    auto* t = new Timing;
    Expected();
    const std::string empty = TempPath("calibrate_empty.tsv");
    std::remove(empty.c_str());
    Child child(BinaryPath("checkpointed_batch"),
                {absl::StrCat("--output=", empty), "--items=0"});
    bool timed_out;
    child.Finish(kChildTimeout, &timed_out);
    t->startup = child.elapsed();
    const std::string full = TempPath("calibrate_full.tsv");
    std::remove(full.c_str());
    t->job = RunToCompletionAndVerify(full);
    std::printf("startup %s, whole job %s\n",
                absl::FormatDuration(t->startup).c_str(),
                absl::FormatDuration(t->job).c_str());
    return t;
  }();
  return *timing;
}

// A random moment between the process start and `fraction` of the job.
absl::Duration RandomMoment(std::mt19937& rng, double fraction) {
  const Timing& t = MeasuredTiming();
  const absl::Duration span =
      t.startup + std::max(absl::ZeroDuration(), t.job - t.startup) * fraction;
  return absl::Milliseconds(rng() % (absl::ToInt64Milliseconds(span) + 1));
}

// Interrupted at random moments (seeded), 20 times, by SIGINT or SIGTERM,
// sometimes twice: after each run the output holds only whole, correct lines
// and no item twice, and the run ended as killed by the signal (or exited 0
// if it had finished before the signal arrived). Then one run without a
// signal completes the output: every item exactly once.
//
// The moments, a third of the runs each: (a) any time from the process start
// to a tenth of the job (this catches startup, before the watcher, and
// recovery); (b) soon after the writer first appended (up to 1/20 of the
// job later); (c) once this run has appended a random number of lines (up to
// 1/20 of the job), i.e. while the writer is busy. Each run does a few
// percent of the job, so most of the 20 runs find work left.
TEST(CheckpointedBatch, InterruptedRunsThenCompleteRunHoldEveryItemOnce) {
  const std::string output = TempPath("interrupted.tsv");
  std::remove(output.c_str());
  MeasuredTiming();  // before the timing-sensitive part
  std::mt19937 rng(20260601);
  int partial_runs = 0;  // runs that wrote something and left work to do
  for (int run = 0; run < 20; ++run) {
    SCOPED_TRACE(absl::StrCat("run ", run));
    const int signo = (rng() % 2 == 0) ? SIGINT : SIGTERM;
    const bool twice = rng() % 4 == 0;
    const int mode = static_cast<int>(rng() % 3);
    const off_t size_before = FileSize(output);
    const uint64_t lines_before = CheckOutput(output).lines;

    Child child(BinaryPath("checkpointed_batch"), BatchArgs(output));
    ASSERT_TRUE(child.ok());
    std::string when;
    if (mode == 0) {
      const absl::Duration d = RandomMoment(rng, 0.1);
      child.Pause(d);
      when = absl::StrCat("after ", absl::FormatDuration(d));
    } else {
      // Wait for the file to grow (or for the child to end: an output
      // already complete never grows).
      const off_t grow =
          mode == 1 ? 1 : kLineBytes * (1 + rng() % (kItems / 20));
      child.ReadUntil([&] { return FileSize(output) >= size_before + grow; },
                      kChildTimeout);
      const int64_t max_ms =
          absl::ToInt64Milliseconds(MeasuredTiming().job / 20);
      const absl::Duration d = mode == 1
                                   ? absl::Milliseconds(rng() % (max_ms + 1))
                                   : absl::ZeroDuration();
      child.Pause(d);
      when =
          absl::StrCat("after +", grow, " bytes + ", absl::FormatDuration(d));
    }
    child.Signal(signo);
    if (twice) {
      child.Pause(absl::Milliseconds(rng() % 20));
      child.Signal(signo);
    }
    bool timed_out;
    const int status = child.Finish(kChildTimeout, &timed_out);
    ASSERT_FALSE(timed_out) << child.Transcript();
    EXPECT_TRUE((WIFSIGNALED(status) && WTERMSIG(status) == signo) ||
                (WIFEXITED(status) && WEXITSTATUS(status) == 0))
        << DescribeStatus(status) << "\n"
        << child.Transcript();

    const OutputCheck c = CheckOutput(output);
    ASSERT_EQ(c.error, "") << child.Transcript();
    ASSERT_EQ(c.torn_tail, "") << "a torn line after SIGINT/SIGTERM\n"
                               << child.Transcript();
    if (c.lines > lines_before && c.lines < kItems) ++partial_runs;
    std::printf("run %2d: %s%s %s: %s after %s, %llu -> %llu lines\n", run,
                SignalName(signo).c_str(), twice ? " x2" : "", when.c_str(),
                DescribeStatus(status).c_str(),
                absl::FormatDuration(child.elapsed()).c_str(),
                static_cast<unsigned long long>(lines_before),
                static_cast<unsigned long long>(c.lines));
  }
  // The test is not vacuous: some run was cut off in the middle of the work.
  EXPECT_GE(partial_runs, 1);
  RunToCompletionAndVerify(output);
}

// A process killed mid-write (SIGKILL, or the watcher's third signal) may
// leave a torn last line; the next run cuts it off and neither repeats nor
// skips an item.
TEST(CheckpointedBatch, TornLastLineIsCutOffOnRestart) {
  const std::string output = TempPath("torn.tsv");
  {
    std::ofstream out(output, std::ios::binary | std::ios::trunc);
    for (uint64_t i : {7, 3, 11}) {
      out << i << '\t' << absl::StrFormat("%016x", Expected()[i]) << '\n';
    }
    out << "5\t" << absl::StrFormat("%016x", Expected()[5]).substr(0, 9);
  }
  RunToCompletionAndVerify(output);
}

// SIGKILL at random moments (it may cut a write in the middle), then a
// complete run: every complete line is always correct and unique, and the
// final output holds every item exactly once.
TEST(CheckpointedBatch, KilledRunsThenCompleteRun) {
  const std::string output = TempPath("killed.tsv");
  std::remove(output.c_str());
  MeasuredTiming();
  std::mt19937 rng(7);
  for (int run = 0; run < 5; ++run) {
    SCOPED_TRACE(absl::StrCat("run ", run));
    Child child(BinaryPath("checkpointed_batch"), BatchArgs(output));
    ASSERT_TRUE(child.ok());
    child.Pause(RandomMoment(rng, 0.3));
    child.Signal(SIGKILL);
    bool timed_out;
    child.Finish(kChildTimeout, &timed_out);
    ASSERT_FALSE(timed_out);
    const OutputCheck c = CheckOutput(output);
    ASSERT_EQ(c.error, "") << child.Transcript();
  }
  RunToCompletionAndVerify(output);
}

TEST(CheckpointedBatch, MissingOutputFlagIsAnError) {
  Child child(BinaryPath("checkpointed_batch"), {"--items=10"});
  ASSERT_TRUE(child.ok());
  bool timed_out;
  const int status = child.Finish(kChildTimeout, &timed_out);
  ASSERT_FALSE(timed_out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
      << DescribeStatus(status) << "\n"
      << child.Transcript();
  EXPECT_TRUE(absl::StrContains(child.err(), "--output")) << child.Transcript();
}

// ---------------------------------------------------------------------------
// first_mirror

// Runs first_mirror with `args` to its end; returns its wait status.
int RunFirstMirror(const std::vector<std::string>& args, std::string* out) {
  Child child(BinaryPath("first_mirror"), args);
  EXPECT_TRUE(child.ok());
  bool timed_out;
  const int status = child.Finish(kChildTimeout, &timed_out);
  EXPECT_FALSE(timed_out) << child.Transcript();
  *out = child.out();
  return status;
}

// Invariant: the first mirror that succeeds wins; a failing mirror fails
// alone (kCollectAll); the slower ones are stopped through their handles
// (counted cancelled) and the group's Wait() is OK. The latencies are far
// apart (50 ms to 20 s) so that a loaded machine cannot change the order.
TEST(FirstMirror, FirstSuccessWinsLosersStopped) {
  std::string out;
  const int status = RunFirstMirror(
      {"--latencies_ms=20000,300,50,20000", "--failing=2"}, &out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << DescribeStatus(status) << "\n"
      << out;
  EXPECT_TRUE(absl::StrContains(out, "[mirror-2] failed: UNAVAILABLE")) << out;
  EXPECT_TRUE(absl::StrContains(out, "[mirror-1] won: 1001 bytes")) << out;
  EXPECT_TRUE(absl::StrContains(
      out, "[mirror-0] stopped: task 'mirror-0' stopped: mirror-1 won"))
      << out;
  EXPECT_TRUE(absl::StrContains(
      out, "[mirror-3] stopped: task 'mirror-3' stopped: mirror-1 won"))
      << out;
  EXPECT_TRUE(absl::StrContains(
      out, "group: OK; completed=1 failed=1 cancelled=2"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "winner: mirror-1")) << out;
}

// Invariant: when every mirror fails, each failure is reported, nothing is
// stopped, and the program exits 1.
TEST(FirstMirror, EveryMirrorFailsExitOne) {
  std::string out;
  const int status =
      RunFirstMirror({"--latencies_ms=10,20,30", "--failing=0,1,2"}, &out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
      << DescribeStatus(status) << "\n"
      << out;
  EXPECT_TRUE(absl::StrContains(
      out, "group: OK; completed=0 failed=3 cancelled=0"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "no mirror succeeded")) << out;
}

}  // namespace
