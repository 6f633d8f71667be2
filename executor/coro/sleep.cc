// Copyright 2026 The ripcord Authors.
//
// sleep.cc: Sleep's operation (SleepOp), its state word on which the timer
// and the stop race the suspending coroutine (the completer, arm and finish
// steps), and the stop sweep that completes a stopped group's sleeping
// coroutines in claimed batches. Steps and proofs: docs/design/coroutines.md.
#include <algorithm>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/base/prefetch.h"
#include "executor/sched/scheduler.h"
#include "executor/time/timer.h"
#include "ripcord/internal/coroutine.h"
#include "ripcord/internal/stop_state.h"
#include "ripcord/internal/task_alloc.h"

namespace ripcord::internal {

namespace {

constexpr const char kSleepCancelled[] = "Sleep: the task's group was stopped";

// The requester's own batch (RequestStop's first claim, one segment).
constexpr int kSweepBatch = kStopEntryBatch;
// Entries a worker's sweep claims at once: whole segments, up to this many.
// One claim per few hundred coroutines instead of per 28 makes the chain's
// own costs (a queued task, a steal, the claim lock's two RMWs, the group
// unit) small per coroutine; an owner whose timer won waits for its entry's
// MarkDone, which comes within one pass over the claim.
constexpr int kSweepClaim = 8 * kStopEntryBatch;
// Claimed entries whose timers a sweep takes out per timer lock
// (TimerQueue::CancelMany): a whole claim. Per segment instead cost 8x the
// lock acquisitions and more time (docs/design/coroutines.md, Rejected
// alternatives). The lock's total hold time
// is the same either way (one heap slot per entry); a hold now lasts a few
// microseconds, which a Schedule() or the timer thread may wait out.
constexpr int kCancelBatch = kSweepClaim;

// How far ahead of the entry being completed (the mark-and-unhook step) its
// successors' operations are fetched, and how far ahead of the coroutine being
// resumed its successors' nodes and then frames are. Each coroutine's lines are
// cold (last touched when it suspended); a fixed distance keeps a few
// misses in flight all the time, where fetching a whole batch at once
// asked for more lines than the core can have outstanding.
constexpr int kCompleteAhead = 8;
constexpr int kNodeAhead = 8;
constexpr int kFrameAhead = 4;
// A node is ~80 bytes plus the callable's captures; a frame that sleeps
// holds at least the SleepOp's 80. The root frame usually follows its node
// in one block (FrameRoom, coroutine.h): then the two ranges overlap and
// cover the block together.
constexpr size_t kNodeBytes = 128;
constexpr size_t kFrameBytes = 256;

}  // namespace

// Sleep's CancelledError while a stop sweep resumes its batch, without a
// reference-count RMW per coroutine. absl::Status shares one heap rep among
// copies, and copying or destroying one is a locked RMW on it (a stop of
// 10^5 sleepers spent ~11% of its CPU on the two per coroutine: the copy
// SleepFinish returned and the destruction of the outcome the coroutine
// handed back). A moved Status keeps its reference, so references are
// passed on instead: the sweep builds `error` once; SleepFinish hands out
// the `spare` reference when there is one (a move), else a copy of
// `error`; when a resumed coroutine finishes with a Status equal to
// `error` (the common `co_return co_await Sleep(d)`), the sweep moves that
// Status into `spare` instead of destroying it, for the next coroutine. Any
// Status equal to `error` is as good as a copy of it: absl::Status compares
// by value (code, message, payloads). Thread-compatible: lives on the
// sweep's stack; tls_sleep_cancelled points to it while the sweep resumes
// (a sweep nested in a resumed coroutine, e.g. run by a helping Wait(),
// installs its own and restores ours).
struct SleepCancelledSource {
  SleepCancelledSource() : error(absl::CancelledError(kSleepCancelled)) {}

  // The next Sleep result: the spare reference if any, else a new copy.
  absl::Status Take() {
    if (!spare.ok()) return std::exchange(spare, absl::OkStatus());
    return error;
  }
  // Keeps `s` (a finished coroutine's outcome) for the next Take() if it is
  // a CancelledError equal to `error` and no spare is kept yet; otherwise
  // `s` is destroyed with the caller's copy as usual. Returns true if `s`
  // is equal to `error`.
  bool Recycle(absl::Status& s) {
    if (!(s == error)) return false;
    if (spare.ok()) spare = std::move(s);
    return true;
  }

  const absl::Status error;
  absl::Status spare;  // OkStatus: none kept
};

namespace {

absl::Status SleepCancelledError() {
  if (tls_sleep_cancelled != nullptr) return tls_sleep_cancelled->Take();
  return absl::CancelledError(kSleepCancelled);
}

}  // namespace

// SleepOp's own fields, a base between its StopEntry and TimerEntry bases:
// what a stop sweep's first pass touches (StopEntry's done_, its last
// field; these; TimerEntry's heap_index_, its first) lies within 28 bytes,
// on one cache line for 3 in 4 placements of the 16-aligned operation
// (the line pairs of the whole 80 bytes were two cold lines per entry).
// Thread-safety: see SleepOp.
struct SleepOpFields {
  explicit SleepOpFields(CoroContext* ctx) : ctx_(ctx) {}
  std::atomic<uint32_t> bits_{0};
  bool timer_scheduled_ = false;
  CoroContext* const ctx_;
};

// SleepOp: one pending Sleep, constructed in the awaiter's storage (so in the
// coroutine frame). It is its own timer entry and stop entry (bases, so the
// callbacks can static_cast). Thread-safety: bits_ is the Sleep state word
// (docs/design/coroutines.md); the other fields are written by the suspending
// coroutine before Arm() and then read by a completer, or by the stop sweep
// that owns the suspended coroutine, or by the resumed coroutine.
class alignas(16) SleepOp : private StopEntry,
                            private SleepOpFields,
                            private TimerEntry {
 public:
  // Registers the stop entry; if the group was stopped meanwhile, the
  // operation starts completed (STOPPED).
  explicit SleepOp(CoroContext* ctx)
      : SleepOpFields(ctx), TimerEntry(&OnTimer) {
    if (!StopEntry::Register(ctx->stop_state())) {
      // relaxed: nothing else knows this operation yet.
      bits_.store(kStopped, std::memory_order_relaxed);
    }
  }
  // The finish step, second half: unregisters the stop entry (waiting for a
  // sweep that claimed it); ~TimerEntry then checks it is not scheduled.
  ~SleepOp() { StopEntry::Unregister(); }

  CoroContext* ctx() const { return ctx_; }

  // True if the stop already completed the operation (constructor).
  bool Stopped() const {
    // relaxed: a shortcut only. Our own constructor set it when it matters
    // (same thread); a stop on another thread that this load misses is
    // handled by the protocol.
    return (bits_.load(std::memory_order_relaxed) & kStopped) != 0;
  }

  void ScheduleTimer(absl::Time deadline) {
    timer_scheduled_ = true;
    timers().Schedule(this, deadline);
  }

  // The arm step. Returns true if the coroutine stays suspended.
  bool Arm() {
    // acq_rel: release publishes the suspended coroutine (resume_handle and
    // this operation) to the completer whose acquire RMW (the completer step)
    // sees ARMED and resumes it; acquire pairs with a completer's release when
    // we see its bit and continue without suspending.
    return (bits_.fetch_or(kArmed, std::memory_order_acq_rel) &
            (kStopped | kTimedOut)) == 0;
  }

  // The finish step, first half (the destructor is the second). Returns true
  // for CancelledError.
  bool Finish() {
    if (timer_scheduled_) timers().Cancel(this);  // waits for a running OnTimer
    // relaxed: the bit that resumed us happens-before this load (through the
    // scheduler's queue, the sweep's own thread, or Cancel()'s lock for
    // OnTimer), so it is seen; a stop that is still racing in may or may
    // not be, and either answer is right.
    return (bits_.load(std::memory_order_relaxed) & kStopped) != 0;
  }

  // The operation whose stop entry `e` is (every StopEntry is a SleepOp's).
  static SleepOp* FromEntry(StopEntry* e) { return static_cast<SleepOp*>(e); }

  // The mark-and-unhook step for the claimed entries[0, n): sets STOPPED on
  // each and marks it done (every MarkDone before the caller resumes anything),
  // and stores in won[] the operations whose coroutines the sweep won and must
  // resume. Returns how many. Per kCancelBatch entries, it takes the timers
  // of the suspended ones out of the queue under one lock first: an entry
  // whose timer can no longer fire has no other completer left, so STOPPED
  // is a load and a plain store instead of Complete()'s RMW (a locked
  // instruction per cold entry, which also kept the next entries' misses
  // from overlapping: a quarter of the sweep's samples sat on it), and the
  // coroutine's Finish() skips Cancel().
  // `timers` is the entries' executor's queue (the caller has it at hand:
  // reaching it from an entry would read its cold node).
  static int CompleteStopMany(StopEntry* const* entries, int n,
                              TimerQueue& timers, SleepOp** won) {
    for (int i = 0; i < n && i < kCompleteAhead; ++i) {
      PrefetchStopFields(FromEntry(entries[i]));
    }
    int w = 0;
    for (int base = 0; base < n; base += kCancelBatch) {
      const int end = std::min(n, base + kCancelBatch);
      TimerEntry* timed[kCancelBatch];
      int t = 0;
      for (int i = base; i < end; ++i) {
        if (i + kCompleteAhead < n) {
          PrefetchStopFields(FromEntry(entries[i + kCompleteAhead]));
        }
        SleepOp* const op = FromEntry(entries[i]);
        // acquire: pairs with the release in Arm(); when we see ARMED, the
        // suspended coroutine (resume_handle, timer_scheduled_) is ours to
        // read.
        const uint32_t state = op->bits_.load(std::memory_order_acquire);
        if (state != kArmed) {
          // Not suspended yet, or its timer completed: the RMW protocol.
          if (op->Complete(kStopped)) won[w++] = op;
          op->MarkDone();  // a loser's last touch; a winner stays ours
        } else if (op->timer_scheduled_) {
          timed[t++] = op;  // decided once its timer is out (below)
        } else {
          op->SetStoppedAlone();  // no timer: we are the only completer
          op->MarkDone();
          won[w++] = op;
        }
      }
      if (t == 0) continue;
      TimerQueue::CancelResult result[kCancelBatch];
      timers.CancelMany(timed, t, result);
      for (int j = 0; j < t; ++j) {
        auto* const op = static_cast<SleepOp*>(timed[j]);
        if (result[j] == TimerQueue::CancelResult::kRemoved) {
          // OnTimer will never run: no completer but us is left.
          op->timer_scheduled_ = false;  // Finish() skips Cancel()
          op->SetStoppedAlone();
          won[w++] = op;
        } else if (op->Complete(kStopped)) {
          // kRunning: we beat OnTimer to the state word (kIdle: OnTimer ran
          // and won, so Complete() returns false). Finish() waits for it.
          won[w++] = op;
        }
        op->MarkDone();  // a loser's last touch; a winner stays ours
      }
    }
    return w;
  }

 private:
  static constexpr uint32_t kTimedOut = 1;
  static constexpr uint32_t kStopped = 2;
  static constexpr uint32_t kArmed = 4;

  // The completer step. Returns true if the caller won and must resume the
  // suspended coroutine.
  bool Complete(uint32_t bit) {
    const uint32_t other = (kTimedOut | kStopped) & ~bit;
    // acq_rel: acquire pairs with the release in Arm() (the suspended
    // coroutine is published to us before we resume it); release pairs
    // with Arm()'s acquire when the suspender sees our bit first.
    const uint32_t prev = bits_.fetch_or(bit, std::memory_order_acq_rel);
    return (prev & kArmed) != 0 && (prev & other) == 0;
  }

  // The completer step's alone shortcut, for the stop sweep when no other
  // completer is left: the coroutine is suspended (the sweep saw ARMED, with no
  // completer bit) and its timer can no longer fire (none was scheduled, or
  // CancelMany() removed it before it fired). Nobody else writes bits_ any
  // more, so a plain store sets the bit.
  void SetStoppedAlone() {
    // relaxed: no other writer is left (above). Its readers: Finish() in the
    // resumed coroutine, which this sweep resumes on this thread later.
    bits_.store(kArmed | kStopped, std::memory_order_relaxed);
  }

  static void OnTimer(TimerEntry* e) {
    auto* op = static_cast<SleepOp*>(e);
    CoroContext* const ctx = op->ctx_;
    // Last touch of the operation when we won: the coroutine may run now.
    if (op->Complete(kTimedOut)) ScheduleResume(ctx);
  }

  TimerQueue& timers() { return ctx_->group->executor()->timers(); }

  // Prefetches the cache line(s) of the fields a sweep's first pass
  // touches (SleepOpFields): from StopEntry's done_ (its last 4 bytes hold
  // it) to the end of TimerEntry's heap_index_.
  static void PrefetchStopFields(const SleepOp* op) {
    const char* const begin =
        reinterpret_cast<const char*>(static_cast<const SleepOpFields*>(op)) -
        4;
    const char* const end =
        reinterpret_cast<const char*>(static_cast<const TimerEntry*>(op)) +
        sizeof(int64_t);
    PrefetchRangeForWrite(begin, static_cast<size_t>(end - begin));
  }
};

static_assert(sizeof(SleepOp) <= kSleepOpSize,
              "raise kSleepOpSize in ripcord/internal/coroutine.h");
static_assert(alignof(SleepOp) <= kSleepOpAlign,
              "raise kSleepOpAlign in ripcord/internal/coroutine.h");

bool SleepSuspend(CoroContext* ctx, absl::Duration d, void* storage,
                  SleepOp** op_out, bool* cancelled) {
  const bool stopped = ctx->stop_requested();
  if (stopped) NoteStopSeen();
  if (stopped && (ctx->flags & TaskNode::kOwnStop) == 0) {
    *cancelled = true;
    return false;
  }
  if (!stopped && d <= absl::ZeroDuration()) return false;  // OK at once
  // *op_out before arming: the coroutine may resume elsewhere right after.
  // (A started task already stopped gets an operation too, which starts
  // completed: SleepFinish names the task's stop from its context.)
  auto* op = new (storage) SleepOp(ctx);
  *op_out = op;
  if (d != absl::InfiniteDuration() && !op->Stopped()) {
    op->ScheduleTimer(absl::Now() + d);
  }
  return op->Arm();
}

absl::Status SleepFinish(SleepOp* op, bool cancelled) {
  if (op != nullptr) {
    CoroContext* const ctx = op->ctx();
    cancelled = op->Finish();
    op->~SleepOp();
    if (cancelled && (ctx->flags & TaskNode::kOwnStop) != 0) {
      NoteStopSeen();
      return ctx->OwnStopStatus();
    }
  }
  if (cancelled) {
    NoteStopSeen();
    return SleepCancelledError();
  }
  return absl::OkStatus();
}

// ---- Stopping sleeping coroutines (StopSweep) -------------------------------

namespace {

// The resume step and the batch settle for the winners won[0, w), whose stop
// entries are all marked done, in one pass: the prefetches run ahead across the
// whole claim (no cold start every segment of 28). Returns how many resumed
// coroutines finished with CancelledError and are not settled yet.
int64_t ResumeWinners(GroupState* group, SleepOp* const* won, int w,
                      SleepCancelledSource& cancelled) {
  for (int i = 0; i < w && i < kNodeAhead; ++i) {
    PrefetchRangeForWrite(won[i]->ctx(), kNodeBytes);
  }
  int64_t settle = 0;  // the batch settle's: ended CancelledError, unsettled
  for (int i = 0; i < w; ++i) {
    if (i + kNodeAhead < w) {
      PrefetchRangeForWrite(won[i + kNodeAhead]->ctx(), kNodeBytes);
    }
    if (i + kFrameAhead < w) {
      // The node's line was asked for kNodeAhead - kFrameAhead turns ago.
      PrefetchRangeForWrite(
          won[i + kFrameAhead]->ctx()->resume_handle.address(), kFrameBytes);
    } else if (i == 0) {
      for (int j = 0; j < w && j < kFrameAhead; ++j) {
        PrefetchRangeForWrite(won[j]->ctx()->resume_handle.address(),
                              kFrameBytes);
      }
    }
    CoroContext* const ctx = won[i]->ctx();  // won[i] dies in the run
    absl::Status status;
    if (!CoroContext::Drive(ctx, &status)) continue;  // suspended again
    delete ctx;
    // The group is stopped: FinishTask would count a CancelledError
    // cancelled. Recycle() keeps the common one for the next coroutine.
    if (cancelled.Recycle(status) || absl::IsCancelled(status)) {
      ++settle;
    } else {
      group->FinishTask(std::move(status));
    }
  }
  return settle;
}

// The mark-and-unhook, resume and batch-settle steps for the claimed
// entries[0, n), on the claiming thread, which holds a unit of `group`'s
// join count (so the group is alive throughout). Returns how many resumed
// coroutines finished with CancelledError and are not settled yet: the
// caller settles them (FinishCancelledMany).
int64_t CompleteAndResume(GroupState* group, StopEntry* const* entries, int n) {
  // The mark-and-unhook step: every MarkDone before any user code runs
  // (StopEntry's rule).
  SleepOp* won[kSweepClaim];
  const int w = SleepOp::CompleteStopMany(
      entries, n, group->executor()->timers(), won);
  if (w == 0) return 0;
  SleepCancelledSource cancelled;
  SleepCancelledSource* const saved =
      std::exchange(tls_sleep_cancelled, &cancelled);
  const int64_t settle = ResumeWinners(group, won, w, cancelled);
  tls_sleep_cancelled = saved;
  return settle;
}

// A worker's turn in the chain that claims a stopped group's sleep entries
// (the chain, mark-and-unhook, resume and batch-settle steps of
// docs/design/coroutines.md). Holds one unit of its group's join count
// (AddTask), never a claim. Thread-compatible: owned by the queue holding
// it, then by its runner.
class StopSweep final : public TaskNode, public CacheAllocated<StopSweep> {
 public:
  // Queues a sweep of `group`'s stop state. Returns false, queuing nothing,
  // when there is no memory for it. The caller keeps the group alive.
  static bool Queue(GroupState* group, StopState* state) {
    StopSweep* sweep;
    try {
      sweep = new StopSweep(group, state);
    } catch (const std::bad_alloc&) {
      return false;
    }
    group->AddTask();  // released by the sweep's last FinishCancelledMany
    group->executor()->Schedule(sweep);  // may run elsewhere at once
    return true;
  }

 private:
  StopSweep(GroupState* group, StopState* state)
      : TaskNode(&Run, group, /*flags=*/0), state_(state) {}

  // Not droppable (flags 0): it holds a join count to release.
  static void Run(TaskNode* node, bool /*drop*/) {
    auto* self = static_cast<StopSweep*>(node);
    GroupState* const group = self->group;
    StopState* const state = self->state_;
    delete self;
    StopEntry* batch[kSweepClaim];
    int64_t settle = 0;
    for (;;) {
      const int n = state->ClaimEntries(batch, kSweepClaim);
      if (n == 0) break;
      // The chain step: the next turn of the chain, for an idle worker to
      // steal; without memory for it, this sweep goes on itself.
      const bool handed_on = Queue(group, state);
      settle += CompleteAndResume(group, batch, n);
      if (handed_on) break;
    }
    // The batch settle's flush and our unit, in one release: the last touch.
    group->FinishCancelledMany(settle, /*uncounted=*/1);
  }

  StopState* const state_;
};

}  // namespace

namespace {

// Completes the claimed entries[0, n) (n <= kSweepBatch) on this thread
// (the mark-and-unhook step, timers out of the queue first, as a sweep does)
// and queues each winner's coroutine by itself, as its timer would. Taking the
// timers out here matters beyond the n coroutines: the requester's batch holds
// the newest sleeps, whose slots are the heap array's last; left in until their
// coroutines run (often after the sweeps), they kept the slots the sweeps
// cancelled from being popped off the end, and a compaction of the whole
// heap (a cold line per live entry) ran once cancelled slots outnumbered
// live ones 8 to 1, in some stops and not others.
void CompleteAndQueueEach(StopEntry* const* entries, int n,
                          TimerQueue& timers) {
  SleepOp* won[kSweepBatch];
  const int w = SleepOp::CompleteStopMany(entries, n, timers, won);
  // won[i] is ours until its coroutine is queued; not touched after.
  for (int i = 0; i < w; ++i) ScheduleResume(won[i]->ctx());
}

}  // namespace

void SweepStopEntries(StopEntry* const* entries, int n) noexcept {
  // Every entry is a SleepOp's (the one user of StopEntry). Called inside
  // RequestStop(): the group and its StopState are alive throughout.
  GroupState* const group = SleepOp::FromEntry(entries[0])->ctx()->group;
  StopState* const state = entries[0]->state();
  // The workers claim the rest; the first claim is ours to complete now
  // (StopEntry's rule).
  TimerQueue& timers = group->executor()->timers();
  // A started task's own stop state (CoroContext::stop_state()) gets no
  // sweep: it is one chain, so at most one Sleep is registered at a time,
  // and a queued sweep would outlive the task's state (the group's join
  // count, which a sweep holds, does not keep that state alive).
  if (state == group->stop_state() && StopSweep::Queue(group, state)) {
    CompleteAndQueueEach(entries, n, timers);
    return;
  }
  // No memory for a sweep, or a started task's own stop: complete every
  // entry on this thread.
  StopEntry* batch[kSweepBatch];
  for (int i = 0; i < n; ++i) batch[i] = entries[i];
  do {
    CompleteAndQueueEach(batch, n, timers);
    n = state->ClaimEntries(batch);
  } while (n > 0);
}
}  // namespace ripcord::internal
