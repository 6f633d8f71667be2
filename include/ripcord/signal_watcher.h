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
// Mechanism: no signal handler is installed. The watcher blocks its signals
// in the constructing thread (the executor's own threads are born with them
// blocked), and one dedicated thread, "ripcord-signal", reads them from a
// signalfd. So no user code and no allocation ever runs in signal context;
// RequestStop and on_signal run on an ordinary thread.
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
// SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2: the signals the executor's
// threads block from birth. Any other signal could land on a thread that does
// not block it and take its default action there, so the watcher could not
// see it reliably: another number is a programming error (a message on
// stderr, then abort, at construction). Duplicates are ignored.
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
  // escalation on. 0 turns it off (the signal keeps its own disposition and
  // is not blocked). A signal listed in `signals` is a stop signal even if it
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
//   3rd: writes to stderr how many tasks in how many groups are still running
//        or queued and the live group tree (Executor::DebugString(), which
//        names every group), then restores the default action of that signal
//        and re-raises it, so the process ends as killed by it (a shell
//        reports 128 + signo). Should the process survive that (it cannot,
//        for the permitted signals), it calls _exit(128 + signo).
// Order: create the long-lived root groups before the watcher. A signal stops
// the groups that exist when it arrives; a root group created after it starts
// unstopped (so that clean-up work can run), so a group created after the
// watcher could miss an early Ctrl-C.
// Signals sent to the process (kill(pid, SIGINT), Ctrl-C) are what it
// handles; a signal aimed at one thread (raise(), pthread_kill) reaches that
// thread only and is not its business. Standard signals that arrive while one
// of the same number is still pending merge into one (POSIX); every signal
// the watcher receives counts.
//
// Ignored signals: a listed signal whose disposition is SIG_IGN at
// construction (SIGINT of a background job started by a non-interactive
// shell, SIGHUP under nohup) is set to SIG_DFL for the watcher's lifetime, or
// the kernel would discard it before the watcher sees it; the destructor puts
// SIG_IGN back. An explicit SignalWatcher is taken as the program's wish to
// handle the signal (Go's signal.Notify does the same).
//
// Thread-safety: construct and destroy it on the same thread (normally main(),
// before any thread of your own is started: threads started earlier keep
// their signal mask, and a signal the kernel delivers to one of them takes
// its default action, which ends the process). signals_received() may be
// called from any thread. At most one SignalWatcher may exist at a time in a
// process (signals are process-wide): constructing a second one while
// another is alive is a programming error (message, abort). Once destroyed, a
// new one may be constructed.
//
// Lifetime: the Executor must outlive the watcher.
class SignalWatcher {
 public:
  // SignalWatcher(executor, options): blocks `options.signals` and
  // `options.dump_signal` (when not 0) in the calling thread with
  // pthread_sigmask (threads it creates afterwards inherit that mask; the
  // executor's own threads block them already) and starts the thread
  // "ripcord-signal", which waits for them on a signalfd. A signal sent after
  // the constructor returns is never lost and never kills the process
  // (provided no thread started earlier has it unblocked: see the class
  // comment); one sent while it runs is either handled or, before the mask
  // is set, takes the signal's prior disposition. A watched signal already
  // pending at construction is handled at once.
  // Aborts with a message: another SignalWatcher is alive; a signal number
  // outside the permitted set (see SignalOptions); progress_interval <= 0;
  // the signalfd, eventfd or thread cannot be created.
  // Thread-safety: see the class comment.
  explicit SignalWatcher(Executor& executor, SignalOptions options = {});

  // ~SignalWatcher(): wakes the signal thread and joins it promptly (it does
  // not wait for any group). Before exiting, the thread handles every signal
  // already pending, so a signal that arrived before the destructor began is
  // handled as usual (counted, stop requested, on_signal called; a third one
  // ends the process). A signal that arrives after that last read stays
  // pending until the restored mask lets it through, and then its
  // disposition applies: for SIGINT and SIGTERM, the default action ends the
  // process, exactly as if it had arrived after the watcher was gone.
  // Restoring: the signals the constructor blocked that were not blocked
  // before are unblocked in the calling thread (other changes made to its
  // mask meanwhile are kept), and SIG_IGN dispositions are put back.
  // Calling it on the signal thread (from on_signal) aborts with a message.
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

 private:
  std::unique_ptr<internal::SignalWatcherImpl> impl_;
};

}  // namespace ripcord

#endif  // RIPCORD_SIGNAL_WATCHER_H_
