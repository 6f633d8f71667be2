// Copyright 2026 The ripcord Authors.
//
// signal_handler.cc: the watched signals' handler, the dispositions it
// replaces, the fork child hook and ExitBySignal. A minimal handler counts
// each signal and writes an eventfd; the signal thread does the rest. Why no
// signal is lost and why g_in_handler: docs/design/signals.md.
#include "executor/signal/signal_handler.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "executor/base/check.h"
#include "executor/base/threads.h"
#include "ripcord/signal_watcher.h"

namespace ripcord {
namespace internal {
namespace {

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
// Handlers between their increment and decrement (the close step waits for 0).
std::atomic<int> g_in_handler{0};
// Signals counted by the handler and not yet taken by the signal thread.
std::atomic<uint32_t> g_counts[NSIG];

extern "C" void OnWatchedSignal(int signo) {
  const int saved_errno = errno;
  // seq_cst: orders this increment before the load of g_wake_fd below, in
  // the total order shared with the close step's store of -1 and load
  // of g_in_handler (docs/design/signals.md, "No write to a closed fd").
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

struct SavedDisposition {
  int signo;
  struct sigaction action;
};
constexpr int kMaxWatched = 8;
// Written by the constructor and destructor (under g_watcher_alive), read
// by the fork child hook while the child has one thread.
SavedDisposition g_saved[kMaxWatched];
std::atomic<int> g_num_saved{0};

// Fork child hook: the watcher's thread does not exist in the child, so the
// child gets the dispositions back that the watcher replaced (else a SIGINT
// to the child would be counted for a thread that is not there, and the
// child could not be interrupted), drops the parent's eventfd, and may
// construct a watcher of its own. Only async-signal-safe calls.
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

}  // namespace

bool ClaimWatcherSlot() {
  // acq_rel: acquire pairs with the release store in ReleaseWatcherSlot()
  // at the end of the previous watcher's destructor.
  return !g_watcher_alive.exchange(true, std::memory_order_acq_rel);
}

void ReleaseWatcherSlot() {
  // release: pairs with the acq_rel exchange in the next ClaimWatcherSlot().
  g_watcher_alive.store(false, std::memory_order_release);
}

void InstallForkHook() {
  static std::once_flag once;
  std::call_once(once,
                 [] { pthread_atfork(nullptr, nullptr, WatcherForkChild); });
}

bool IsWatchable(int signo) {
  if (signo < 1 || signo >= NSIG) return false;
  sigset_t allowed = AsyncSignalSet();
  return sigismember(&allowed, signo) == 1;
}

void InstallHandlers(int wake_fd, const sigset_t& watched) {
  g_wake_fd.store(wake_fd, std::memory_order_seq_cst);
  int n = 0;
  for (int signo = 1; signo < NSIG; ++signo) {
    if (sigismember(&watched, signo) != 1) continue;
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
}

void RestoreDispositions() {
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

uint32_t TakeSignalCount(int signo) {
  // acquire: pairs with the handler's release increment.
  return g_counts[signo].exchange(0, std::memory_order_acquire);
}

void CloseWakeFd(int wake_fd) {
  // seq_cst: see docs/design/signals.md ("No write to a closed fd"); pairs
  // with the handler's seq_cst increment and load of g_wake_fd.
  g_wake_fd.store(-1, std::memory_order_seq_cst);
  while (g_in_handler.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
  ::close(wake_fd);
}

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
