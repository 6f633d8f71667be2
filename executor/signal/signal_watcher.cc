// Copyright 2026 The ripcord Authors.
//
// signal_watcher.cc: SignalWatcher, its signal handler and the signal thread.
//
// Protocol (the self-pipe trick of Tokio, asyncio and Go; no thread blocks
// any signal):
//  1. The constructor claims the process-wide slot (g_watcher_alive),
//     creates the wake-up eventfd at fd 3 or above, close-on-exec, publishes
//     it in g_wake_fd, zeroes the counters of the watched signals (stop
//     signals + dump signal), and installs OnWatchedSignal for each with
//     sigaction (SA_RESTART), remembering the disposition it replaced.
//  2. OnWatchedSignal runs on whichever thread the kernel picked. It only
//     does async-signal-safe work: saves errno, adds 1 to the signal's
//     counter (g_counts), writes 1 to the eventfd, restores errno.
//     g_in_handler brackets its use of the fd.
//  3. "ripcord-signal" (started with internal::StartThread, then unblocking
//     the watched signals in itself so that at least one thread takes them
//     even if the program blocked them) polls the eventfd, with a timeout
//     that is the earliest of the grace deadline and the next progress line.
//     On wake-up it resets the eventfd, then takes every counter (exchange
//     with 0) in increasing signal number and handles each signal counted:
//     a stop signal makes the stop requests, publishes the count (release),
//     writes its line and calls on_signal; the dump signal writes
//     DebugString(); the third stop signal reports and ends the process.
//  4. The destructor puts back the replaced dispositions (only where the
//     disposition is still OnWatchedSignal: one the program installed
//     meanwhile is left alone), sets stopping_ (release) and writes the
//     eventfd. The thread, on seeing stopping_, takes the counters once more
//     and handles what it finds, then returns; the destructor joins it.
//  5. The destructor unpublishes the fd (g_wake_fd = -1), waits until no
//     handler is inside step 2, closes the fd, and releases the slot
//     (release; pairs with the acq_rel exchange of the next watcher).
//
// Why no signal is lost: a watched signal that reaches the process while
// the handler is installed runs it on some thread (every thread may take
// it); the handler counts it before waking the thread, and the thread reads
// the counters after resetting the eventfd, so a count added after its read
// comes with a new wake-up. Counting in the handler (not one pending bit)
// means two SIGINTs delivered to two threads at once are two signals.
// Standard signals that arrive while one of the same number is still
// pending (not yet delivered to a thread) merge in the kernel, as POSIX
// says. A signal handled before the destructor began (step 4 sets stopping_
// after it) is handled by the thread's last pass.
//
// Why g_in_handler: a handler that loaded g_wake_fd just before step 5
// could write to the fd after close() and hit a descriptor the program has
// opened since. Step 5 stores -1 (seq_cst) and then waits for
// g_in_handler == 0; a handler increments g_in_handler (seq_cst) before
// loading g_wake_fd. In the single total order either the destructor sees
// the handler inside and waits, or the handler's load follows the store of
// -1 and it writes nothing.
//
// Design choice, and the rejected alternative: the earlier design blocked
// the watched signals in every executor thread and read them from a
// signalfd, so that no code ran in signal context. But a thread's mask is
// inherited across fork and exec: every child process started from a
// worker, a blocking thread or the watcher's own thread (system, popen,
// posix_spawn, fork+exec) started with SIGINT and SIGTERM blocked and
// ignored Ctrl-C. A pthread_atfork hook cannot repair it: glibc's
// posix_spawn (and so system and popen) runs no atfork handlers. With a
// handler, masks stay the program's own and children inherit them.
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
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
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
#include "executor/base/check.h"
#include "executor/base/process_life.h"
#include "executor/sched/scheduler.h"
#include "executor/base/threads.h"
#include "ripcord/executor.h"

namespace ripcord {
namespace internal {
namespace {

using Clock = std::chrono::steady_clock;

// True while a SignalWatcher exists. exchange(acq_rel) in the constructor;
// store(release) at the very end of the destructor, so the next watcher's
// constructor sees the previous one's dispositions restored. Reset by the
// fork child hook.
std::atomic<bool> g_watcher_alive{false};

// The handler's state (see the protocol above). Lock-free atomics only: the
// handler may run on any thread, at any point of that thread's code.
static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
// The eventfd the handler writes, -1 when none.
std::atomic<int> g_wake_fd{-1};
// Handlers between their increment and decrement (step 5 waits for 0).
std::atomic<int> g_in_handler{0};
// Signals counted by the handler and not yet taken by the signal thread.
std::atomic<uint32_t> g_counts[NSIG];

extern "C" void OnWatchedSignal(int signo) {
  const int saved_errno = errno;
  // seq_cst: orders this increment before the load of g_wake_fd below, in
  // the total order shared with step 5's store of -1 and load of
  // g_in_handler (see "Why g_in_handler").
  g_in_handler.fetch_add(1, std::memory_order_seq_cst);
  if (signo > 0 && signo < NSIG) {
    // release: the count is visible to the thread that is woken below (it
    // reads the counters with acquire exchanges after reading the eventfd).
    g_counts[signo].fetch_add(1, std::memory_order_release);
  }
  const int fd = g_wake_fd.load(std::memory_order_seq_cst);
  if (fd >= 0) {
    const uint64_t one = 1;
    // Cannot block (EFD_NONBLOCK); a failed write (counter saturated) still
    // leaves the eventfd readable, so the thread wakes either way.
    ssize_t ignored = ::write(fd, &one, sizeof one);
    (void)ignored;
  }
  g_in_handler.fetch_sub(1, std::memory_order_seq_cst);
  errno = saved_errno;
}

// Fork child hook: the watcher's thread does not exist in the child, so the
// child gets the dispositions back that the watcher replaced (else a SIGINT
// to the child would be counted for a thread that is not there, and the
// child could not be interrupted), drops the parent's eventfd, and may
// construct a watcher of its own. Only async-signal-safe calls.
struct SavedDisposition {
  int signo;
  struct sigaction action;
};
constexpr int kMaxWatched = 8;
// Written by the constructor and destructor (under g_watcher_alive), read
// by the fork child hook while the child has one thread.
SavedDisposition g_saved[kMaxWatched];
std::atomic<int> g_num_saved{0};

void WatcherForkChild() {
  if (!g_watcher_alive.load(std::memory_order_relaxed)) return;
  const int n = g_num_saved.load(std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) {
    struct sigaction current;
    if (sigaction(g_saved[i].signo, nullptr, &current) == 0 &&
        current.sa_handler == OnWatchedSignal) {
      sigaction(g_saved[i].signo, &g_saved[i].action, nullptr);
    }
  }
  const int fd = g_wake_fd.exchange(-1, std::memory_order_relaxed);
  if (fd >= 0) ::close(fd);
  g_num_saved.store(0, std::memory_order_relaxed);
  g_watcher_alive.store(false, std::memory_order_relaxed);
}

// Whether fd 2 was open when the watcher was constructed. If it was not
// (the program was started with `2>&-`), the watcher never writes to fd 2:
// a file the program opens later may take that number.
bool Fd2Open() { return ::fcntl(STDERR_FILENO, F_GETFD) != -1; }

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
// write(2) per line keeps lines whole next to other writers. fd < 0: nothing.
void WriteAll(int fd, absl::string_view s) {
  if (fd < 0) return;
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

// Restores signo's default action, unblocks it in the calling thread and
// raises it there; _exit(128 + signo) if the process survives that.
[[noreturn]] void RaiseWithDefaultAction(int signo);

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
  // Puts back the dispositions the constructor replaced (only those that are
  // still ours).
  void RestoreDispositions();
  bool InheritedByFork() const { return ForkGeneration() != fork_generation_; }
  bool OnSignalThread() const {
    return std::this_thread::get_id() == thread_.get_id();
  }

 private:
  // "waiting for 2 groups (3 tasks running or queued)" / "nothing left
  // running".
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
  NoteProcessLifeObject();
  static std::once_flag once;
  std::call_once(once,
                 [] { pthread_atfork(nullptr, nullptr, WatcherForkChild); });

  // Step 1. acq_rel: acquire pairs with the release store at the end of the
  // previous watcher's destructor.
  RIPCORD_CHECK(!g_watcher_alive.exchange(true, std::memory_order_acq_rel),
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
  g_wake_fd.store(event_fd_, std::memory_order_seq_cst);
  int n = 0;
  for (int signo = 1; signo < NSIG; ++signo) {
    if (sigismember(&watched_, signo) != 1) continue;
    // relaxed: no handler of ours is installed for signo yet.
    g_counts[signo].store(0, std::memory_order_relaxed);
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = OnWatchedSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    RIPCORD_CHECK(n < kMaxWatched, "SignalWatcher: too many signals");
    g_saved[n].signo = signo;
    RIPCORD_CHECK(sigaction(signo, &sa, &g_saved[n].action) == 0,
                  "SignalWatcher: sigaction(%d) failed: %s", signo,
                  std::strerror(errno));
    ++n;
    g_num_saved.store(n, std::memory_order_relaxed);
  }

  // Step 3.
  thread_ = StartThread("ripcord-signal", [this] {
    pthread_sigmask(SIG_UNBLOCK, &watched_, nullptr);
    Run();
  });
}

void SignalWatcherImpl::RestoreDispositions() {
  const int n = g_num_saved.load(std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) {
    struct sigaction current;
    // A disposition the program changed while the watcher lived is the
    // program's: leave it.
    if (sigaction(g_saved[i].signo, nullptr, &current) == 0 &&
        !(current.sa_flags & SA_SIGINFO) &&
        current.sa_handler == OnWatchedSignal) {
      sigaction(g_saved[i].signo, &g_saved[i].action, nullptr);
    }
  }
  g_num_saved.store(0, std::memory_order_relaxed);
}

SignalWatcherImpl::~SignalWatcherImpl() {
  RIPCORD_CHECK(std::this_thread::get_id() != thread_.get_id(),
                "~SignalWatcher called on the signal thread (from on_signal?); "
                "the thread cannot join itself: destroy the watcher on the "
                "thread that constructed it");
  // Step 4.
  RestoreDispositions();
  stopping_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  while (::write(event_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
  // Step 5. seq_cst: see "Why g_in_handler".
  g_wake_fd.store(-1, std::memory_order_seq_cst);
  while (g_in_handler.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
  ::close(event_fd_);
  // release: pairs with the acq_rel exchange in the next constructor.
  g_watcher_alive.store(false, std::memory_order_release);
}

void SignalWatcherImpl::Run() {
  for (;;) {
    pollfd fd = {event_fd_, POLLIN, 0};
    const int r = ::poll(&fd, 1, TimeoutMs(Clock::now()));
    if (r < 0 && errno != EINTR) {
      WriteAll(err_fd_,
               absl::StrCat("ripcord: SignalWatcher: poll failed: ",
                            std::strerror(errno), "; retrying\n"));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (r > 0) {
      uint64_t value;
      while (::read(event_fd_, &value, sizeof value) < 0 && errno == EINTR) {
      }
      // acquire: pairs with the release store in the destructor (step 4):
      // every signal counted before the destructor began is in the counters
      // read below.
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
    // acquire: pairs with the handler's release increment.
    uint32_t n = g_counts[signo].exchange(0, std::memory_order_acquire);
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
  WriteAll(err_fd_,
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
  // The report covers this executor only: another Executor of the process
  // may still be running tasks that it does not count.
  WriteAll(err_fd_,
           absl::StrCat("ripcord: ", SignalName(signo), " (", Ordinal(n),
                        " signal): ending the process now; this executor: ",
                        Waiting(), "\n", executor_.DebugString()));
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
// before on_signal runs; a signal arriving meanwhile waits in its counter.
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
  WriteAll(err_fd_, absl::StrCat("ripcord: ", text, "\n"));
}

}  // namespace internal

SignalWatcher::SignalWatcher(Executor& executor, SignalOptions options)
    : impl_(std::make_unique<internal::SignalWatcherImpl>(executor,
                                                          std::move(options))) {}


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
    impl_->RestoreDispositions();
    internal::LeakOnPurpose(impl_.release());
  }
}

int SignalWatcher::signals_received() const { return impl_->signals_received(); }

int SignalWatcher::first_signal() const { return impl_->first_signal(); }

namespace internal {

void RaiseWithDefaultAction(int signo) {
  // Default action, unblocked in this thread, raised at this thread: the
  // signal is delivered before raise() returns, and a default action that
  // terminates (SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2; core for SIGQUIT)
  // ends the whole process.
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
  // A signal whose default action does not terminate (SIGCHLD, SIGWINCH,
  // or a stop signal once continued): the status a shell would show.
  _exit(128 + signo);
}

}  // namespace internal

void ExitBySignal(int signo) {
  if (signo <= 0 || signo >= NSIG) {
    std::fprintf(stderr, "ripcord: fatal: ExitBySignal(%d): not a signal\n",
                 signo);
    std::fflush(stderr);
    std::abort();
  }
  // What was written so far reaches its destination (a killed process does
  // not flush C stdio; std::cout writes through to stdout by default).
  std::fflush(nullptr);
  internal::RaiseWithDefaultAction(signo);
}

}  // namespace ripcord
