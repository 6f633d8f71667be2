// Copyright 2026 The ripcord Authors.
//
// signal_watcher.cc: SignalWatcher and its signal thread, which turns the
// counts of the handler (signal_handler.cc) into staged stop requests, the
// grace period and the progress lines (signal_report.cc). No thread blocks
// any signal. The install, thread, restore and close steps, and the rejected
// signalfd design: docs/design/signals.md.
#include "ripcord/signal_watcher.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
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

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/base/check.h"
#include "executor/base/process_life.h"
#include "executor/base/threads.h"
#include "executor/sched/scheduler.h"
#include "executor/signal/signal_handler.h"
#include "executor/signal/signal_report.h"
#include "ripcord/executor.h"

namespace ripcord {
namespace internal {
namespace {

using Clock = std::chrono::steady_clock;

// Whether fd 2 was open when the watcher was constructed. If it was not
// (the program was started with `2>&-`), the watcher never writes to fd 2:
// a file the program opens later may take that number.
bool Fd2Open() { return ::fcntl(STDERR_FILENO, F_GETFD) != -1; }

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
  int first_signal() const {
    // acquire: pairs with the release store in HandleStop().
    return first_signal_.load(std::memory_order_acquire);
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

 public:
  bool InheritedByFork() const { return ForkGeneration() != fork_generation_; }
  bool OnSignalThread() const {
    return std::this_thread::get_id() == thread_.get_id();
  }

 private:
  // "waiting for 2 groups (3 tasks running or queued)" / "nothing left
  // running".
  // Names up to `max_named` running tasks, longest first ("; longest: task
  // x.cc:12 in group 'web' running for 2s, ignoring stop for 1.5s").
  std::string Waiting(int64_t* tasks_out = nullptr,
                      size_t max_named = kNamedTasks) const;
  // Waiting(), after giving the tasks just stopped a moment to finish.
  std::string WaitingAfterSettling() const;
  void Line(absl::string_view text) const;
  int TimeoutMs(Clock::time_point now) const;
  void StartProgress(Clock::time_point now);

  Executor& executor_;
  const SignalOptions options_;
  sigset_t watched_;  // stop signals + dump signal
  sigset_t stop_;     // stop signals
  int event_fd_ = -1;
  // fd 2 if it was open at construction, else -1 (nothing is written).
  int err_fd_ = -1;
  // internal::ForkGeneration() at construction: a different value in the
  // destructor means this watcher was inherited by a fork child.
  const unsigned fork_generation_;
  std::thread thread_;
  // Set by the destructor (release) before it wakes the thread; read by the
  // thread (acquire) after each wake-up.
  std::atomic<bool> stopping_{false};

  // Written only by the signal thread; read by any thread.
  std::atomic<int> received_{0};
  std::atomic<int> first_signal_{0};

  // Signal thread only.
  std::string first_name_;  // name of the first stop signal
  Clock::time_point first_time_;
  std::optional<Clock::time_point> grace_deadline_;
  std::optional<Clock::time_point> progress_due_;
};

SignalWatcherImpl::SignalWatcherImpl(Executor& executor, SignalOptions options)
    : executor_(executor),
      options_(std::move(options)),
      fork_generation_(ForkGeneration()) {
  sigemptyset(&watched_);
  sigemptyset(&stop_);
  for (int signo : options_.signals) {
    RIPCORD_CHECK(IsWatchable(signo),
                  "SignalWatcher: SignalOptions::signals contains %d (%s); "
                  "only SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 "
                  "can be watched",
                  signo,
                  signo > 0 && signo < NSIG ? strsignal(signo) : "invalid");
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
  NoteProcessLifeObject();
  InstallForkHook();

  // The install step.
  RIPCORD_CHECK(ClaimWatcherSlot(),
                "SignalWatcher constructed while another SignalWatcher is "
                "alive; only one may exist at a time (signals are "
                "process-wide): destroy the first one before constructing "
                "another");
  err_fd_ = Fd2Open() ? STDERR_FILENO : -1;
  // At 3 or above, so that it never takes 0, 1 or 2 when the program was
  // started with them closed: a later open() of the program's, or its
  // write(2, ...), would meet the watcher's descriptor.
  const int raw = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  RIPCORD_CHECK(raw >= 0, "SignalWatcher: eventfd failed: %s",
                std::strerror(errno));
  event_fd_ = raw >= 3 ? raw : fcntl(raw, F_DUPFD_CLOEXEC, 3);
  RIPCORD_CHECK(event_fd_ >= 0, "SignalWatcher: fcntl(F_DUPFD_CLOEXEC): %s",
                std::strerror(errno));
  if (event_fd_ != raw) ::close(raw);
  InstallHandlers(event_fd_, watched_);

  // The thread step.
  thread_ = StartThread("ripcord-signal", [this] {
    pthread_sigmask(SIG_UNBLOCK, &watched_, nullptr);
    Run();
  });
}

SignalWatcherImpl::~SignalWatcherImpl() {
  RIPCORD_CHECK(std::this_thread::get_id() != thread_.get_id(),
                "~SignalWatcher called on the signal thread (from on_signal?); "
                "the thread cannot join itself: destroy the watcher on the "
                "thread that constructed it");
  // The restore step.
  RestoreDispositions();
  stopping_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  while (::write(event_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
  // The close step.
  CloseWakeFd(event_fd_);
  ReleaseWatcherSlot();
}

void SignalWatcherImpl::Run() {
  for (;;) {
    pollfd fd = {event_fd_, POLLIN, 0};
    const int r = ::poll(&fd, 1, TimeoutMs(Clock::now()));
    if (r < 0 && errno != EINTR) {
      WriteAll(err_fd_, absl::StrCat("ripcord: SignalWatcher: poll failed: ",
                                     std::strerror(errno), "; retrying\n"));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (r > 0) {
      uint64_t value;
      while (::read(event_fd_, &value, sizeof value) < 0 && errno == EINTR) {
      }
      // acquire: pairs with the release store in the destructor (the restore
      // step): every signal counted before the destructor began is in the
      // counters read below.
      const bool stopping = stopping_.load(std::memory_order_acquire);
      DrainSignals();
      if (stopping) return;
    }
    OnTimers(Clock::now());
  }
}

void SignalWatcherImpl::DrainSignals() {
  // Increasing signal number, as the kernel dequeues pending signals.
  for (int signo = 1; signo < NSIG; ++signo) {
    if (sigismember(&watched_, signo) != 1) continue;
    uint32_t n = TakeSignalCount(signo);
    for (; n > 0; --n) Handle(signo);
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
    // release: pairs with the acquire load in first_signal().
    first_signal_.store(signo, std::memory_order_release);
    first_name_ = name;
    first_time_ = now;
    const int stopped =
        executor_.impl()->RequestStop(StopTarget::kUnshielded, name);
    what = absl::StrCat("stopped ", CountOf(stopped, "unshielded group"));
    if (options_.grace_period <= absl::ZeroDuration()) {
      const int more = executor_.impl()->RequestStop(
          StopTarget::kAll,
          absl::StrCat(name, ": grace period ",
                       absl::FormatDuration(options_.grace_period),
                       " expired"));
      what = absl::StrCat("stopped ", CountOf(stopped + more, "group"),
                          ", shielded too (grace period 0)");
      all_stopped = true;
    } else if (options_.grace_period != absl::InfiniteDuration()) {
      grace_deadline_ = now + absl::ToChronoNanoseconds(options_.grace_period);
    }
  } else {
    const int stopped = executor_.impl()->RequestStop(StopTarget::kAll, name);
    grace_deadline_.reset();
    what = absl::StrCat("stopped ", CountOf(stopped, "more group"),
                        ", shielded too");
    all_stopped = true;
  }
  // release: publishes the stop requests above; pairs with the acquire load
  // in signals_received().
  received_.store(n, std::memory_order_release);
  if (!options_.quiet) {
    std::string label =
        n == 1 ? name : absl::StrCat(name, " (", Ordinal(n), " signal)");
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
  WriteAll(err_fd_, absl::StrCat("ripcord: ", SignalName(signo),
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
                        " expired: stopped ", CountOf(stopped, "more group"),
                        ", shielded too; ", WaitingAfterSettling(),
                        "; next signal ends the process"));
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
      progress_due_ =
          now + absl::ToChronoNanoseconds(options_.progress_interval);
    }
  }
}

void SignalWatcherImpl::StartProgress(Clock::time_point now) {
  if (options_.quiet ||
      options_.progress_interval == absl::InfiniteDuration()) {
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
  const auto ms =
      std::chrono::ceil<std::chrono::milliseconds>(*due - now).count();
  return static_cast<int>(
      std::min<int64_t>(ms, std::numeric_limits<int>::max()));
}

void SignalWatcherImpl::Die(int signo, int n) {
  // The report covers this executor only: another Executor of the process
  // may still be running tasks that it does not count.
  WriteAll(
      err_fd_,
      absl::StrCat("ripcord: ", SignalName(signo), " (", Ordinal(n),
                   " signal): ending the process now; this executor: ",
                   Waiting(nullptr, SIZE_MAX), "\n", executor_.DebugString()));
  // Not ExitBySignal(): its fflush could wait forever for a stdio lock held
  // by a thread blocked in a write (stdout into a full pipe), and the third
  // signal must end the process at once.
  RaiseWithDefaultAction(signo);
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

std::string SignalWatcherImpl::Waiting(int64_t* tasks_out,
                                       size_t max_named) const {
  return DescribeWaiting(*executor_.impl(), tasks_out, max_named);
}

// Right after a stop request, tasks that honour their token are still
// finishing (SleepFor returns within 1 ms). Reporting them as what shutdown
// waits for would be misleading, so the count is taken once nothing is
// running any more or after kSettle, whichever is first. Costs at most kSettle
// before on_signal runs; a signal arriving meanwhile waits in its counter.
std::string SignalWatcherImpl::WaitingAfterSettling() const {
  constexpr auto kSettle = std::chrono::milliseconds(25);
  const Clock::time_point until = Clock::now() + kSettle;
  for (;;) {
    int64_t tasks = 0;
    Waiting(&tasks, /*max_named=*/0);
    if (tasks == 0 || Clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Waiting();
}

void SignalWatcherImpl::Line(absl::string_view text) const {
  WriteAll(err_fd_, absl::StrCat("ripcord: ", text, "\n"));
}

}  // namespace internal

SignalWatcher::SignalWatcher(Executor& executor, SignalOptions options)
    : impl_(std::make_unique<internal::SignalWatcherImpl>(
          executor, std::move(options))) {}

SignalWatcher::~SignalWatcher() {
  // Process life (executor/base/process_life.h). Inherited by a fork child: the
  // thread is not there to join (the child hook already put the
  // dispositions back). Destroyed on its own thread by exit() (a static
  // watcher whose on_signal called exit): the thread cannot join itself;
  // put the dispositions back and leave the rest to the ending process.
  if (impl_->InheritedByFork()) {
    internal::LeakOnPurpose(impl_.release());
    return;
  }
  if (impl_->OnSignalThread() && internal::ExitingFor(this)) {
    internal::RestoreDispositions();
    internal::LeakOnPurpose(impl_.release());
  }
}

int SignalWatcher::signals_received() const {
  return impl_->signals_received();
}

int SignalWatcher::first_signal() const { return impl_->first_signal(); }

}  // namespace ripcord
