// Copyright 2026 The ripcord Authors.
//
// signal_watcher.h: SignalOptions and SignalWatcher, which turn SIGINT and
// SIGTERM (Ctrl-C, `kill`, `docker stop`, Kubernetes) into stop requests:
// the first signal stops every group that is not shielded, the second (or
// the end of the grace period) stops shielded groups too, the third ends the
// process as if killed by that signal. SIGUSR1 prints the live task tree.
//
//   int main() {
//     ripcord::Executor executor;
//     ripcord::SignalWatcher watcher(executor, {.grace_period = absl::Seconds(30)});
//     ripcord::TaskGroup serve(executor, {.name = "serve"});
//     ripcord::TaskGroup flush(executor, {.name = "flush", .shielded = true});
//     serve.Spawn([](ripcord::StopToken t) { return Serve(t); });
//     flush.Spawn([](ripcord::StopToken t) { return FlushForever(t); });
//     absl::Status s = serve.Wait();   // Ctrl-C: CancelledError naming "SIGINT"
//     flush.Wait().IgnoreError();      // the flush completes its work
//   }
//
// On each stop signal one line goes to stderr, for example
//   ripcord: SIGINT: stopped unshielded groups; waiting for 1 group (2 tasks
//   running or queued); next signal stops shielded groups too
// and while work is still running, a line every `progress_interval`. The
// count is taken once the stopped tasks have had a moment (up to 25 ms) to
// finish, so it shows what shutdown really waits for.
//
// Mechanism (the self-pipe trick of Tokio's signal driver, asyncio's
// set_wakeup_fd and Go's runtime): the watcher installs, with sigaction and
// SA_RESTART, a minimal handler for its signals. The handler runs on
// whichever thread the kernel picks and does only async-signal-safe work: it
// counts the signal and writes to an eventfd (saving and restoring errno).
// One dedicated thread, "ripcord-signal", reads that eventfd and does
// everything else: stop requests, on_signal, the lines on stderr. So no user
// code and no allocation ever runs in signal context.
//
// Signal masks and child processes: no ripcord thread blocks any signal.
// Every thread keeps the mask of the thread that created it (the program's
// own), so a child process started from anywhere (system, popen,
// posix_spawn, fork+exec; from a task, a blocking fn, on_signal or main;
// with a watcher alive or not) starts with the mask the program had, and
// Ctrl-C and SIGTERM reach it. A child started while the watcher lives
// inherits the watcher's handler only until its exec (exec resets caught
// signals to SIG_DFL); a fork() child that does not exec gets the previous
// dispositions back (a pthread_atfork hook) and may construct its own
// watcher. The watcher's eventfd is close-on-exec and numbered 3 or above.
// The one cost: a signal may interrupt a system call on any thread of the
// program. SA_RESTART restarts most of them; those that fail with EINTR
// regardless (poll, nanosleep, sem_wait, ...) must be retried, as any
// program with a signal handler must.
//
// Rejected alternative: blocking the watched signals in every thread and
// reading them from a signalfd keeps all code out of signal context, but a
// thread's mask survives fork and exec, so every child started from an
// executor thread ignored Ctrl-C and `kill -INT`. A pthread_atfork handler
// cannot unblock them there: glibc's posix_spawn (and so system and popen)
// runs no atfork handlers.
#ifndef RIPCORD_SIGNAL_WATCHER_H_
#define RIPCORD_SIGNAL_WATCHER_H_

#include <signal.h>

#include <functional>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "ripcord/executor.h"

namespace ripcord {

namespace internal {
class SignalWatcherImpl;
}  // namespace internal

// SignalOptions: what a SignalWatcher listens to and how it escalates.
//
// Every signal number (in `signals` and `dump_signal`) must be one of SIGINT,
// SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2: the asynchronous control
// signals. Another number is a programming error (a message on stderr, then
// abort, at construction). Duplicates are ignored.
struct SignalOptions {
  // The stop signals. Empty is allowed (a watcher that only dumps).
  std::vector<int> signals = {SIGINT, SIGTERM};
  // When grace_period has passed since the first stop signal and the process
  // is still running, shielded groups are stopped too (as a second signal
  // would): Kubernetes' and systemd's grace period, in-process. Zero or less:
  // the first signal stops shielded groups too, at once. The escalation is
  // not a signal: it does not call on_signal and does not count.
  absl::Duration grace_period = absl::InfiniteDuration();
  // Called on the signal thread for the first and the second stop signal,
  // after the stop requests for that signal have been made and counted
  // (signals_received() == count inside the call). count starts at 1. An
  // exception thrown by it is reported on stderr and otherwise ignored. It
  // must not destroy the watcher (that aborts: the thread cannot join
  // itself); it may call any member of the executor and its groups.
  std::function<void(int signo, int count)> on_signal = nullptr;
  // Writes Executor::DebugString() to stderr and stops nothing; not counted
  // by signals_received(), does not call on_signal, never moves the
  // escalation on. 0 turns it off (the signal keeps its own disposition).
  // A signal listed in `signals` is a stop signal even if it
  // is also the dump signal.
  int dump_signal = SIGUSR1;
  // Silences the line written after each stop signal and the progress lines.
  // The third signal's report and the dump are written regardless.
  bool quiet = false;
  // While tasks are still running or queued after a stop signal, a line
  // "ripcord: SIGINT 4s ago: still waiting for ..." every progress_interval
  // (unless quiet). InfiniteDuration() turns these lines off; zero or less is
  // a programming error (message, abort).
  absl::Duration progress_interval = absl::Seconds(3);
};

// SignalWatcher: turns process-directed signals into stop requests on one
// Executor, through a dedicated thread.
//
// Escalation (stop signals of any listed number count together):
//   1st: executor.RequestStop(StopTarget::kUnshielded, "SIGINT"): the signal's
//        name ("SIGINT", "SIGTERM", "SIGHUP", ...) is the reason, so the
//        stopped groups' Wait() returns CancelledError naming it.
//   2nd, or grace_period elapsed since the 1st:
//        executor.RequestStop(StopTarget::kAll, ...) with the signal's name in
//        the reason ("SIGTERM", or "SIGINT: grace period 30s expired").
//   3rd: writes to stderr how many tasks in how many groups of this
//        executor are still running or queued ("this executor: waiting for
//        ..."; another Executor of the process is not counted) and its live
//        group tree (Executor::DebugString(), which names every group), then
//        ends the process at once as killed by that signal (a shell reports
//        128 + signo): as ExitBySignal(signo), but without flushing stdio,
//        which could wait for a thread blocked in a write.
// Order: create the long-lived root groups before the watcher. A signal stops
// the groups that exist when it arrives; a root group created after it starts
// unstopped (so that clean-up work can run), so a group created after the
// watcher could miss an early Ctrl-C.
// Signals sent to the process (kill(pid, SIGINT), Ctrl-C) are what it
// handles. A watched signal aimed at one thread (raise(), pthread_kill) runs
// the handler on that thread, so it is handled like one sent to the process.
// Standard signals that arrive while one of the same number is still
// pending (not yet delivered to any thread) merge into one (POSIX); every
// signal delivered counts, including two delivered to two threads at once.
// Two different signals that arrive within microseconds of each other may
// be handled in either order (two threads may take them at once).
//
// Dispositions: the watcher replaces the disposition of each watched signal
// with its handler for its lifetime, whatever it was: SIG_DFL, SIG_IGN
// (SIGINT of a background job started by a non-interactive shell, SIGHUP
// under nohup: an explicit SignalWatcher is taken as the program's wish to
// handle the signal, as Go's signal.Notify does) or a handler of the
// program's, which does not run meanwhile. The destructor puts the previous
// disposition back, except for a signal whose disposition the program
// changed while the watcher lived: that one is the program's and stays.
//
// Thread-safety: construct and destroy it on any thread other than the
// signal thread (normally main(), early). signals_received() and
// first_signal() may be called from any thread. At most one SignalWatcher
// may exist at a time in a process (signals are process-wide): constructing
// a second one while another is alive is a programming error (message,
// abort). Once destroyed, a new one may be constructed.
//
// Output: the lines go to fd 2 only if fd 2 was open when the watcher was
// constructed; a program started with stderr closed gets no line (fd 2 may
// later be a file of its own).
//
// Lifetime: the Executor must outlive the watcher. Process life: a watcher
// inherited by a fork() child is inert there (its destructor does nothing; a
// new one may be constructed in the child). A static watcher destroyed by
// exit() called from on_signal puts the dispositions back and does not join
// its own thread, so the exit status is kept.
class SignalWatcher {
 public:
  // SignalWatcher(executor, options): installs the handler for
  // `options.signals` and `options.dump_signal` (when not 0) and starts the
  // thread "ripcord-signal". A signal sent after the constructor returns is
  // never lost and never takes its default action; one sent while it runs
  // is either handled or takes the signal's prior disposition. No thread's
  // mask is changed, except that the signal thread unblocks the watched
  // signals in itself, so that a watched signal the program left blocked
  // everywhere (and one already pending at construction) is still taken.
  // Aborts with a message: another SignalWatcher is alive; a signal number
  // outside the permitted set (see SignalOptions); progress_interval <= 0;
  // the eventfd or the thread cannot be created.
  // Thread-safety: see the class comment.
  explicit SignalWatcher(Executor& executor, SignalOptions options = {});

  // ~SignalWatcher(): puts the dispositions back (see the class comment),
  // then wakes the signal thread and joins it promptly (it does not wait
  // for any group). Before exiting, the thread handles every signal already
  // delivered, so a signal that arrived before the destructor began is
  // handled as usual (counted, stop requested, on_signal called; a third
  // one ends the process). A signal that arrives after the dispositions are
  // put back meets the previous disposition: for SIGINT and SIGTERM at
  // SIG_DFL, the default action ends the process, exactly as if it had
  // arrived after the watcher was gone.
  // Calling it on the signal thread (from on_signal) aborts with a message,
  // except during exit() (see the class comment).
  ~SignalWatcher();

  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // SignalWatcher::signals_received(): the number of stop signals received so
  // far (the dump signal does not count).
  // Memory ordering: the stop requests made for the first n signals
  // happen-before the count n is published, so once signals_received() >= 1
  // every unshielded group that existed when the signal was handled reports
  // stop_requested() (groups created later start unstopped). The count is
  // published before the stderr line and before on_signal.
  // Thread-safety: any thread.
  int signals_received() const;

  // SignalWatcher::first_signal(): the number of the first stop signal
  // received (SIGINT, SIGTERM, ...), 0 if none. With ExitBySignal, a program
  // ends "as killed by the first stop signal" after its clean shutdown:
  //   int signo = watcher.first_signal();   // before the watcher goes
  //   ...
  //   if (signo != 0) ripcord::ExitBySignal(signo);   // 130 for SIGINT
  // Memory ordering: set before signals_received() becomes 1 (the same
  // release store publishes both to a reader that sees the count).
  // Thread-safety: any thread.
  int first_signal() const;

 private:
  std::unique_ptr<internal::SignalWatcherImpl> impl_;
};

// ExitBySignal(signo): ends the process as if killed by `signo`, so that a
// parent sees WIFSIGNALED with that signal and a shell reports 128 + signo
// (130 for SIGINT, 143 for SIGTERM), which tells a script that ran the
// program to stop too. It flushes the C stdio streams, restores the
// signal's default action, unblocks it in the calling thread and raises it
// there. Like a real kill, it runs no atexit handler or destructor. If the
// default action does not end the process (SIGCHLD, SIGWINCH; a stop signal
// once continued), it calls _exit(128 + signo). Never returns.
// Bad input: signo outside 1..NSIG-1 aborts with a message.
// Thread-safety: any thread (including on_signal, which ends the process
// at once).
[[noreturn]] void ExitBySignal(int signo);

}  // namespace ripcord

#endif  // RIPCORD_SIGNAL_WATCHER_H_
