// Copyright 2026 The ripcord Authors.
//
// signal_watcher.cc: SignalWatcher, the signal thread.
//
// Protocol (no signal handler anywhere; signals are read synchronously):
//  1. The constructor claims the process-wide slot (g_watcher_alive), blocks
//     the watched signals (stop signals + dump signal) in the constructing
//     thread with pthread_sigmask, and sets SIG_IGN dispositions of watched
//     signals to SIG_DFL (an ignored signal is discarded at generation and
//     would never become pending).
//  2. It opens a signalfd for the watched set and an eventfd for shutdown,
//     then starts "ripcord-signal" with internal::StartThread, so the thread
//     is born with AsyncSignalSet() (a superset of the watched set) blocked.
//  3. The thread polls both fds, with a timeout that is the earliest of the
//     grace deadline and the next progress line. For each signal it reads:
//     a stop signal makes the stop requests, publishes the count (release),
//     writes its line and calls on_signal; the dump signal writes
//     DebugString(); the third stop signal reports and ends the process.
//  4. The destructor writes the eventfd and joins. The thread, on seeing the
//     eventfd, reads the signalfd once more without blocking and handles what
//     it finds, then returns.
//  5. The destructor closes both fds, puts SIG_IGN dispositions back (which
//     discards pending instances of those), unblocks in its own thread the
//     signals step 1 blocked that were not blocked before, and releases the
//     slot (release; pairs with the acq_rel exchange of the next watcher).
//
// Why no signal is lost: every thread of the process that the watcher knows
// about has the watched signals blocked from the moment step 1 returns (the
// constructing thread, every thread it creates afterwards, and the
// executor's threads, born with AsyncSignalSet() blocked), so a
// process-directed signal stays pending in the process until a read of the
// signalfd dequeues it. The signalfd is level-triggered: poll() reports it
// readable while anything is pending, whenever the signal arrived. A signal
// that arrives before step 4's last read is therefore handled; one after it
// stays pending until step 5 unblocks it (documented in the header).
#include "ripcord/signal_watcher.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/check.h"
#include "executor/scheduler.h"
#include "executor/threads.h"
#include "ripcord/executor.h"

namespace ripcord {
namespace internal {
namespace {

using Clock = std::chrono::steady_clock;

// True while a SignalWatcher exists. exchange(acq_rel) in the constructor;
// store(release) at the very end of the destructor, so the next watcher's
// constructor sees the previous one's mask and disposition restored.
std::atomic<bool> g_watcher_alive{false};

std::string SignalName(int signo) {
  switch (signo) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    default:
      return absl::StrCat("signal ", signo);
  }
}

bool IsWatchable(int signo) {
  if (signo < 1 || signo >= NSIG) return false;
  sigset_t allowed = AsyncSignalSet();
  return sigismember(&allowed, signo) == 1;
}

// Writes all of `s` to `fd` (stderr), retrying short writes and EINTR. One
// write(2) per line keeps lines whole next to other writers.
void WriteAll(int fd, absl::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // stderr closed or full: nothing better to do
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

std::string Count(int64_t n, absl::string_view noun) {
  return absl::StrCat(n, " ", noun, n == 1 ? "" : "s");
}

std::string Ordinal(int n) {
  switch (n) {
    case 1:
      return "1st";
    case 2:
      return "2nd";
    case 3:
      return "3rd";
    default:
      return absl::StrCat(n, "th");
  }
}

}  // namespace

// SignalWatcherImpl: the state behind ripcord::SignalWatcher.
// Thread-safety: the constructor and destructor run on the owner's thread;
// Run() and everything it calls on the signal thread. The fields are written
// before the thread starts (happens-before via std::thread's start) and only
// read by it, except received_ (atomic) and the "signal thread only" block.
class SignalWatcherImpl {
 public:
  SignalWatcherImpl(Executor& executor, SignalOptions options);
  ~SignalWatcherImpl();

  int signals_received() const {
    // acquire: pairs with the release store in HandleStop(), made after the
    // stop requests, so a caller that reads n sees those requests done.
    return received_.load(std::memory_order_acquire);
  }

 private:
  void Run();
  void DrainSignals();
  void Handle(int signo);
  void HandleStop(int signo);
  void HandleDump(int signo);
  void OnTimers(Clock::time_point now);
  [[noreturn]] void Die(int signo, int n);
  void CallOnSignal(int signo, int n);
  // "waiting for 2 groups (3 tasks running or queued)" / "nothing left running".
  std::string Waiting(int64_t* tasks_out = nullptr) const;
  // Waiting(), after giving the tasks just stopped a moment to finish.
  std::string WaitingAfterSettling() const;
  void Line(absl::string_view text) const;
  int TimeoutMs(Clock::time_point now) const;
  void StartProgress(Clock::time_point now);

  Executor& executor_;
  const SignalOptions options_;
  sigset_t watched_;  // stop signals + dump signal
  sigset_t stop_;     // stop signals
  sigset_t added_;    // watched signals the constructor blocked (were unblocked)
  std::vector<int> were_ignored_;  // watched signals that had SIG_IGN
  int signal_fd_ = -1;
  int event_fd_ = -1;
  std::thread thread_;

  // Written only by the signal thread; read by any thread.
  std::atomic<int> received_{0};

  // Signal thread only.
  std::string first_name_;  // name of the first stop signal
  Clock::time_point first_time_;
  std::optional<Clock::time_point> grace_deadline_;
  std::optional<Clock::time_point> progress_due_;
};

SignalWatcherImpl::SignalWatcherImpl(Executor& executor, SignalOptions options)
    : executor_(executor), options_(std::move(options)) {
  sigemptyset(&watched_);
  sigemptyset(&stop_);
  sigemptyset(&added_);
  for (int signo : options_.signals) {
    RIPCORD_CHECK(IsWatchable(signo),
                  "SignalWatcher: SignalOptions::signals contains %d (%s); "
                  "only SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 "
                  "can be watched (the signals every executor thread blocks)",
                  signo, signo > 0 && signo < NSIG ? strsignal(signo) : "invalid");
    sigaddset(&stop_, signo);
    sigaddset(&watched_, signo);
  }
  if (options_.dump_signal != 0) {
    const int d = options_.dump_signal;
    RIPCORD_CHECK(IsWatchable(d),
                  "SignalWatcher: SignalOptions::dump_signal is %d (%s); use 0 "
                  "(off) or one of SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, "
                  "SIGUSR2",
                  d, d > 0 && d < NSIG ? strsignal(d) : "invalid");
    sigaddset(&watched_, d);
  }
  RIPCORD_CHECK(options_.progress_interval > absl::ZeroDuration(),
                "SignalWatcher: SignalOptions::progress_interval must be "
                "positive (InfiniteDuration() turns the progress lines off)");

  // Step 1. acq_rel: acquire pairs with the release store at the end of the
  // previous watcher's destructor.
  RIPCORD_CHECK(!g_watcher_alive.exchange(true, std::memory_order_acq_rel),
                "SignalWatcher constructed while another SignalWatcher is "
                "alive; only one may exist at a time (signals are "
                "process-wide): destroy the first one before constructing "
                "another");

  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &watched_, &old_mask);
  for (int signo = 1; signo < NSIG; ++signo) {
    if (sigismember(&watched_, signo) != 1) continue;
    if (sigismember(&old_mask, signo) != 1) sigaddset(&added_, signo);
    struct sigaction current;
    if (sigaction(signo, nullptr, &current) == 0 &&
        !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN) {
      struct sigaction dfl;
      std::memset(&dfl, 0, sizeof dfl);
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      sigaction(signo, &dfl, nullptr);
      were_ignored_.push_back(signo);
    }
  }

  // Step 2.
  signal_fd_ = signalfd(-1, &watched_, SFD_NONBLOCK | SFD_CLOEXEC);
  RIPCORD_CHECK(signal_fd_ >= 0, "SignalWatcher: signalfd failed: %s",
                std::strerror(errno));
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  RIPCORD_CHECK(event_fd_ >= 0, "SignalWatcher: eventfd failed: %s",
                std::strerror(errno));
  thread_ = StartThread("ripcord-signal", [this] { Run(); });
}

SignalWatcherImpl::~SignalWatcherImpl() {
  RIPCORD_CHECK(std::this_thread::get_id() != thread_.get_id(),
                "~SignalWatcher called on the signal thread (from on_signal?); "
                "the thread cannot join itself: destroy the watcher on the "
                "thread that constructed it");
  // Step 4.
  const uint64_t one = 1;
  while (::write(event_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
  // Step 5.
  ::close(signal_fd_);
  ::close(event_fd_);
  for (int signo : were_ignored_) {
    struct sigaction ign;
    std::memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(signo, &ign, nullptr);
  }
  pthread_sigmask(SIG_UNBLOCK, &added_, nullptr);
  // release: pairs with the acq_rel exchange in the next constructor.
  g_watcher_alive.store(false, std::memory_order_release);
}

void SignalWatcherImpl::Run() {
  for (;;) {
    pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {event_fd_, POLLIN, 0}};
    const int r = ::poll(fds, 2, TimeoutMs(Clock::now()));
    if (r < 0 && errno != EINTR) {
      WriteAll(STDERR_FILENO,
               absl::StrCat("ripcord: SignalWatcher: poll failed: ",
                            std::strerror(errno), "; retrying\n"));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (r > 0 && (fds[0].revents & POLLIN)) DrainSignals();
    if (r > 0 && fds[1].revents != 0) {
      DrainSignals();  // step 4: handle what arrived before the destructor
      return;
    }
    OnTimers(Clock::now());
  }
}

void SignalWatcherImpl::DrainSignals() {
  signalfd_siginfo infos[8];
  for (;;) {
    const ssize_t n = ::read(signal_fd_, infos, sizeof infos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: nothing pending
    }
    const size_t count = static_cast<size_t>(n) / sizeof infos[0];
    if (count == 0) return;
    for (size_t i = 0; i < count; ++i) {
      Handle(static_cast<int>(infos[i].ssi_signo));
    }
  }
}

void SignalWatcherImpl::Handle(int signo) {
  if (sigismember(&stop_, signo) == 1) {
    HandleStop(signo);
  } else if (signo == options_.dump_signal) {
    HandleDump(signo);
  }
}

void SignalWatcherImpl::HandleStop(int signo) {
  // relaxed: received_ is written only by this thread.
  const int n = received_.load(std::memory_order_relaxed) + 1;
  const std::string name = SignalName(signo);
  const Clock::time_point now = Clock::now();
  if (auto* t = executor_.impl()->tracer()) t->Signal(name, /*last=*/n >= 3);
  if (n >= 3) {
    received_.store(n, std::memory_order_release);
    Die(signo, n);
  }
  std::string what;
  bool all_stopped = false;
  if (n == 1) {
    first_name_ = name;
    first_time_ = now;
    const int stopped =
        executor_.impl()->RequestStop(StopTarget::kUnshielded, name);
    what = absl::StrCat("stopped ", Count(stopped, "unshielded group"));
    if (options_.grace_period <= absl::ZeroDuration()) {
      const int more = executor_.impl()->RequestStop(
          StopTarget::kAll,
          absl::StrCat(name, ": grace period ",
                       absl::FormatDuration(options_.grace_period), " expired"));
      what = absl::StrCat("stopped ", Count(stopped + more, "group"),
                          ", shielded too (grace period 0)");
      all_stopped = true;
    } else if (options_.grace_period != absl::InfiniteDuration()) {
      grace_deadline_ = now + absl::ToChronoNanoseconds(options_.grace_period);
    }
  } else {
    const int stopped = executor_.impl()->RequestStop(StopTarget::kAll, name);
    grace_deadline_.reset();
    what = absl::StrCat("stopped ", Count(stopped, "more group"),
                        ", shielded too");
    all_stopped = true;
  }
  // release: publishes the stop requests above; pairs with the acquire load
  // in signals_received().
  received_.store(n, std::memory_order_release);
  if (!options_.quiet) {
    std::string label = n == 1 ? name : absl::StrCat(name, " (", Ordinal(n), " signal)");
    std::string next = all_stopped ? "next signal ends the process"
                                   : "next signal stops shielded groups too";
    if (grace_deadline_.has_value()) {
      absl::StrAppend(&next, " (so will the grace period, in ",
                      absl::FormatDuration(options_.grace_period), ")");
    }
    Line(absl::StrCat(label, ": ", what, "; ", WaitingAfterSettling(), "; ",
                      next));
    StartProgress(now);
  }
  CallOnSignal(signo, n);
}

void SignalWatcherImpl::HandleDump(int signo) {
  WriteAll(STDERR_FILENO,
           absl::StrCat("ripcord: ", SignalName(signo),
                        ": state dump (nothing was stopped)\n",
                        executor_.DebugString()));
}

void SignalWatcherImpl::OnTimers(Clock::time_point now) {
  if (grace_deadline_.has_value() && now >= *grace_deadline_) {
    grace_deadline_.reset();
    const std::string grace = absl::FormatDuration(options_.grace_period);
    const int stopped = executor_.impl()->RequestStop(
        StopTarget::kAll,
        absl::StrCat(first_name_, ": grace period ", grace, " expired"));
    if (!options_.quiet) {
      Line(absl::StrCat(first_name_, ": grace period ", grace,
                        " expired: stopped ", Count(stopped, "more group"),
                        ", shielded too; ",
                        WaitingAfterSettling(), "; next signal ends the process"));
      StartProgress(now);
    }
  }
  if (progress_due_.has_value() && now >= *progress_due_) {
    int64_t tasks = 0;
    std::string waiting = Waiting(&tasks);
    if (tasks == 0) {
      progress_due_.reset();  // shutdown no longer waits for anything
    } else {
      const absl::Duration ago = absl::Trunc(
          absl::FromChrono(now - first_time_), absl::Milliseconds(100));
      Line(absl::StrCat(first_name_, " ", absl::FormatDuration(ago),
                        " ago: still ", waiting));
      progress_due_ = now + absl::ToChronoNanoseconds(options_.progress_interval);
    }
  }
}

void SignalWatcherImpl::StartProgress(Clock::time_point now) {
  if (options_.quiet || options_.progress_interval == absl::InfiniteDuration()) {
    return;
  }
  progress_due_ = now + absl::ToChronoNanoseconds(options_.progress_interval);
}

int SignalWatcherImpl::TimeoutMs(Clock::time_point now) const {
  std::optional<Clock::time_point> due = grace_deadline_;
  if (progress_due_.has_value() && (!due || *progress_due_ < *due)) {
    due = progress_due_;
  }
  if (!due) return -1;
  if (*due <= now) return 0;
  // Round up, so the timer never fires early and spins.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*due - now).count();
  return static_cast<int>(std::min<int64_t>(ms, std::numeric_limits<int>::max()));
}

void SignalWatcherImpl::Die(int signo, int n) {
  WriteAll(STDERR_FILENO,
           absl::StrCat("ripcord: ", SignalName(signo), " (", Ordinal(n),
                        " signal): ending the process now; ", Waiting(), "\n",
                        executor_.DebugString()));
  // Restore the default action, unblock the signal in this thread only and
  // raise it at this thread: it is delivered before raise() returns and its
  // default action (terminate, or core for SIGQUIT) ends the whole process.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signo, &dfl, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  raise(signo);
  // Unreachable for the permitted signals, whose default action terminates.
  // Last resort: the exit status a shell would show for the signal.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  _exit(128 + signo);
}

void SignalWatcherImpl::CallOnSignal(int signo, int n) {
  if (!options_.on_signal) return;
  try {
    options_.on_signal(signo, n);
  } catch (const std::exception& e) {
    Line(absl::StrCat("SignalOptions::on_signal threw: ", e.what(),
                      " (ignored)"));
  } catch (...) {
    Line("SignalOptions::on_signal threw a non-std::exception (ignored)");
  }
}

std::string SignalWatcherImpl::Waiting(int64_t* tasks_out) const {
  const std::vector<BusyGroup> busy = executor_.impl()->BusyGroups();
  int64_t running = 0;
  int64_t queued = 0;
  int64_t blocking = 0;
  std::vector<std::string> shielded;
  std::vector<std::string> others;
  for (const BusyGroup& b : busy) {
    running += b.running;
    queued += b.queued;
    blocking += b.blocking;
    (b.shielded ? shielded : others).push_back(b.label);
  }
  if (tasks_out != nullptr) *tasks_out = running + queued;
  if (busy.empty()) return "nothing left running";
  // At most four names per kind: the line must stay one line.
  auto names = [](const std::vector<std::string>& v) {
    std::vector<std::string> head(v.begin(),
                                  v.begin() + std::min<size_t>(v.size(), 4));
    std::string out = absl::StrJoin(head, ", ");
    if (v.size() > 4) absl::StrAppend(&out, ", ...");
    return out;
  };
  std::vector<std::string> parts;
  if (!shielded.empty()) {
    parts.push_back(absl::StrCat(Count(shielded.size(), "shielded group"), " (",
                                 names(shielded), ")"));
  }
  if (!others.empty()) {
    parts.push_back(absl::StrCat(
        Count(others.size(), shielded.empty() ? "group" : "other group"), " (",
        names(others), ")"));
  }
  std::string tasks = absl::StrCat(Count(running, "task"), " running");
  if (queued > 0) absl::StrAppend(&tasks, ", ", queued, " queued");
  if (blocking > 0) {
    absl::StrAppend(&tasks, ", ", Count(blocking, "blocking call"),
                    " among them");
  }
  return absl::StrCat("waiting for ", absl::StrJoin(parts, " and "), ": ",
                      tasks);
}

// Right after a stop request, tasks that honour their token are still
// finishing (SleepFor returns within 1 ms). Reporting them as what shutdown
// waits for would be misleading, so the count is taken once nothing is
// running any more or after kSettle, whichever is first. Costs at most kSettle
// before on_signal runs; a signal arriving meanwhile waits in the signalfd.
std::string SignalWatcherImpl::WaitingAfterSettling() const {
  constexpr auto kSettle = std::chrono::milliseconds(25);
  const Clock::time_point until = Clock::now() + kSettle;
  for (;;) {
    int64_t tasks = 0;
    Waiting(&tasks);
    if (tasks == 0 || Clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Waiting();
}

void SignalWatcherImpl::Line(absl::string_view text) const {
  WriteAll(STDERR_FILENO, absl::StrCat("ripcord: ", text, "\n"));
}

}  // namespace internal

SignalWatcher::SignalWatcher(Executor& executor, SignalOptions options)
    : impl_(std::make_unique<internal::SignalWatcherImpl>(executor,
                                                          std::move(options))) {}

SignalWatcher::~SignalWatcher() = default;

int SignalWatcher::signals_received() const { return impl_->signals_received(); }

}  // namespace ripcord
