// Copyright 2026 The ripcord Authors.
//
// stop_state.cc: StopState (the one-shot stop source behind every group's
// StopToken) and SleepFor.
//
// Protocol (libunifex's inplace_stop_source; stdexec uses the same):
//  1. state_ holds STOP_REQUESTED and LOCKED. LOCKED guards head_, every
//     callback's next_/prev_, and notifying_thread_.
//  2. TryAddCallback locks unless STOP_REQUESTED is set; if it is set the
//     caller runs the callback itself, so a callback registered after the
//     stop still runs exactly once.
//  3. RequestStop sets STOP_REQUESTED and LOCKED in one CAS (only one caller
//     wins), records its thread, then repeatedly: unlinks up to kRound
//     callbacks from the head (a round), pointing each one's
//     removed_during_callback at its own flag on the requester's stack;
//     unlocks; runs each callback of the round whose flag is still clear and
//     marks it completed; relocks. (One callback per round, as libunifex
//     does, cost two RMWs of the state word per callback, a word the
//     workers keep reading: a stop of 100,000 sleeping coroutines spent
//     ~6% of its CPU there.)
//  4. RemoveCallback locks; if the callback is still linked it unlinks it and
//     is done (it never ran and never will). Otherwise the requester has
//     unlinked it: if the requester is this thread, the callback is being
//     destroyed by a callback of the current round (itself, or an earlier
//     one: then it has not run yet), so it sets its removed_during_callback
//     flag, and the requester neither runs it nor touches it again;
//     otherwise it waits for callback_completed_ (set once the requester has
//     run it, later in the round if it has not yet).
//  5. (Stop entries, below.) Before the callbacks, RequestStop claims the
//     first batch of StopEntries under its lock and, once unlocked, hands it
//     to SweepStopEntries(), which completes it and has workers claim the
//     rest.
//  6. Unregister skips the lock when callback_completed_ is already set:
//     the requester has unlinked and run the callback and will not touch it
//     again (the common case for a coroutine resumed by the stop, which is
//     queued in bulk after its callback, step 5, and usually runs after the
//     requester marked it completed).
// Why nothing is lost: a callback is either linked before STOP_REQUESTED was
// set (then the requester unlinks and runs it, step 3) or sees the bit when it
// tries to link (step 2) and runs inline. Both happen under LOCKED, so there is
// no third case.
//
// Stop entries (StopEntry; a coroutine's Sleep is the one user): per entry,
// the requesting thread did an unlink, a flag store and a callback on a cold
// cache line, i.e. ~70 ns per sleeping coroutine, 7 ms for 100,000. Now:
//  E1. TryAddEntry (under LOCKED, unless STOP_REQUESTED: then it fails and
//      the owner handles the stop itself) stores the entry's pointer in the
//      first segment of segments_ (a new segment when that one is full) and
//      the segment and index in the entry.
//  E2. RemoveEntry (under LOCKED): if the entry's segment is not claimed,
//      the segment's last entry moves into its slot (freeing the segment
//      when it empties) and no stop will ever touch it. Otherwise a stop
//      claimed it: it waits (spins) for MarkDone.
//  E3. A claim (ClaimEntries, under LOCKED, only after STOP_REQUESTED) pops
//      whole segments from the front (one, or as many as fit the caller's
//      room: a worker's sweep takes several per lock, so the lock word and
//      the sweep chain are paid per few hundred entries, not per 28), marks
//      each claimed, moves it to retired_ (freed by ~StopState: an owner may
//      still read its mark, step E2) and copies the pointers out. It writes
//      nothing into the entries, which sit on cold lines (doing so under the
//      lock was ~10% of a stop's CPU). Whoever claims processes the claimed
//      entries at once (MarkDone on each) without blocking and without
//      running user code in between. The requester claims the first
//      segment before running callbacks and passes it to SweepStopEntries()
//      after unlocking, which starts the workers' chain of sweeps that claim
//      the rest (executor/coro/coroutine.cc).
// Why an owner's wait (E2) ends: a claimed entry is on a running thread that
// marks it done before it does anything that could wait (E3); a claimed
// batch is never queued. Why nothing is missed: after STOP_REQUESTED no
// entry is added (E1), so every entry not removed (E2) is in segments_ and
// is claimed by the sweep chain, which continues while segments_ is
// non-empty. Why the StopState is alive at each claim: the requester is
// inside RequestStop(); a sweep holds a unit of its group's join count.
#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <thread>
#include <utility>

#include "executor/base/check.h"
#include "executor/base/prefetch.h"
#include "ripcord/internal/mutex.h"
#include "ripcord/internal/stop_state.h"
#include "ripcord/internal/task_alloc.h"
#include "ripcord/stop_token.h"

namespace ripcord {
namespace internal {
namespace {

void SpinPause(int& spins) {
  if (++spins < 64) {
    CpuRelax();
  } else {
    sched_yield();
  }
}

// Callbacks RequestStop() unlinks per lock acquisition (step 3).
constexpr int kRound = 32;

}  // namespace

// One array of registered StopEntries (step E1). Guarded by LOCKED.
struct StopSegment {
  StopSegment* next;
  StopSegment** prev;  // the pointer that points to this segment
  uint32_t count;      // entries[0, count) are live, never 0 in the list
  bool claimed;        // popped by a claim (step E3); then never changes
  StopEntry* entries[kStopEntryBatch];
};
static_assert(sizeof(StopSegment) <= kMaxCachedTaskSize,
              "a StopSegment should come from the task cache");

namespace {

StopSegment* NewSegment() {
  return new (AllocateTask(sizeof(StopSegment))) StopSegment{};
}
void FreeSegment(StopSegment* seg) {
  if (seg != nullptr) FreeTask(seg, sizeof(StopSegment));
}
void PrefetchSegment(const StopSegment* seg) {
  // For writing: the claim marks it.
  PrefetchRangeForWrite(seg, sizeof(StopSegment));
}

}  // namespace

bool StopState::Lock(bool fail_if_stopped) noexcept {
  int spins = 0;
  // relaxed: only a first guess for the CAS below, which re-reads on failure.
  uint32_t cur = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (fail_if_stopped && (cur & kStopRequested)) {
      // acquire: pairs with the release in RequestStop's CAS; the caller is
      // about to run its callback and must see what the requester published.
      state_.load(std::memory_order_acquire);
      return false;
    }
    if (cur & kLocked) {
      SpinPause(spins);
      cur = state_.load(std::memory_order_relaxed);
      continue;
    }
    // acquire: pairs with the release in Unlock(); makes the list as the last
    // holder left it visible.
    if (state_.compare_exchange_weak(cur, cur | kLocked,
                                     std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
}

void StopState::Unlock() noexcept {
  // release: publishes list changes to the next Lock() (acquire CAS).
  state_.fetch_and(~kLocked, std::memory_order_release);
}

bool StopState::RequestStop(void (*on_stop)(void*), void* arg) noexcept {
  int spins = 0;
  uint32_t cur = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (cur & kStopRequested) return false;
    if (cur & kLocked) {
      SpinPause(spins);
      cur = state_.load(std::memory_order_relaxed);
      continue;
    }
    // acq_rel: release publishes what the caller wrote before stopping (a
    // failing task's error) to every acquire load in stop_requested(); acquire
    // takes the lock like Lock().
    if (state_.compare_exchange_weak(cur, kStopRequested | kLocked,
                                     std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
      break;
    }
  }
  notifying_thread_ = std::this_thread::get_id();
  StopCallbackBase* round[kRound];
  bool removed[kRound];
  // Step 3: detach up to kRound callbacks under this lock acquisition. The
  // first round is detached before the lock is first released, so that a
  // ~StopCallback that has seen the bit waits for its callback (step 4)
  // instead of removing it unrun.
  auto detach_round = [&] {
    int n = 0;
    for (; head_ != nullptr && n < kRound; ++n) {
      StopCallbackBase* cb = head_;
      head_ = cb->next_;
      cb->prev_ = nullptr;  // unlinked: RemoveCallback() now waits or flags.
      removed[n] = false;
      cb->removed_during_callback_ = &removed[n];
      round[n] = cb;
    }
    if (head_ != nullptr) head_->prev_ = &head_;
    return n;
  };
  int n = detach_round();
  if (on_stop != nullptr) {
    // The bit is set and visible; the caller's bookkeeping (the group's
    // reason, under its mutex) runs with the lock released, as the sweep
    // below does, so that it never waits while holding LOCKED.
    Unlock();
    on_stop(arg);
    Lock(/*fail_if_stopped=*/false);
  }
  if (segments_ != nullptr) {
    // Step 5: the first claim of stop entries, handed over before the
    // callbacks run so that workers complete them meanwhile.
    StopEntry* first[kStopEntryBatch];
    const int claimed = ClaimEntriesLocked(first, kStopEntryBatch);
    Unlock();
    SweepStopEntries(first, claimed);
    Lock(/*fail_if_stopped=*/false);
  }
  for (;;) {
    Unlock();
    for (int i = 0; i < n; ++i) {
      // An earlier callback of this round, on this thread, may have
      // destroyed this one (step 4): then it must not run, nor be touched.
      if (removed[i]) continue;
      StopCallbackBase* cb = round[i];
      cb->Execute();
      if (!removed[i]) {
        cb->removed_during_callback_ = nullptr;
        // release: pairs with the acquire spin in RemoveCallback() and the
        // acquire load in Unregister(); after it the requester no longer
        // touches cb.
        cb->callback_completed_.store(true, std::memory_order_release);
      }
    }
    Lock(/*fail_if_stopped=*/false);
    if (head_ == nullptr) break;
    n = detach_round();
  }
  Unlock();
  return true;
}

bool StopState::TryAddCallback(StopCallbackBase* cb) noexcept {
  if (!Lock(/*fail_if_stopped=*/true)) return false;
  cb->next_ = head_;
  cb->prev_ = &head_;
  if (head_ != nullptr) head_->prev_ = &cb->next_;
  head_ = cb;
  Unlock();
  return true;
}

void StopState::RemoveCallback(StopCallbackBase* cb) noexcept {
  Lock(/*fail_if_stopped=*/false);
  if (cb->prev_ != nullptr) {
    *cb->prev_ = cb->next_;
    if (cb->next_ != nullptr) cb->next_->prev_ = cb->prev_;
    cb->prev_ = nullptr;
    Unlock();
    return;
  }
  std::thread::id notifier = notifying_thread_;
  Unlock();
  if (notifier == std::this_thread::get_id()) {
    // Destroyed from inside its own run (or after it, on the requester's
    // thread): tell RequestStop not to touch cb again.
    if (cb->removed_during_callback_ != nullptr) {
      *cb->removed_during_callback_ = true;
    }
    return;
  }
  // Another thread runs it: wait for the end of that run. A spin, not a
  // futex: the requester must not touch cb after the release store that ends
  // the wait, so it cannot issue a wake on cb afterwards. Runs only when a
  // callback is destroyed while it runs, which is rare and short.
  int spins = 0;
  // acquire: pairs with the release store after cb->Execute() in RequestStop.
  while (!cb->callback_completed_.load(std::memory_order_acquire)) {
    SpinPause(spins);
  }
}

bool StopState::TryAddEntry(StopEntry* e) noexcept {
  // Step E1. The segment is allocated before locking (rarely wasted).
  StopSegment* spare = nullptr;
  for (;;) {
    if (!Lock(/*fail_if_stopped=*/true)) {
      FreeSegment(spare);
      return false;
    }
    StopSegment* seg = segments_;
    if (seg == nullptr || seg->count == kStopEntryBatch) {
      if (spare == nullptr) {
        Unlock();
        spare = NewSegment();
        continue;
      }
      seg = std::exchange(spare, nullptr);
      seg->next = segments_;
      seg->prev = &segments_;
      if (segments_ != nullptr) segments_->prev = &seg->next;
      segments_ = seg;
    }
    e->segment_ = seg;
    e->index_ = seg->count;
    seg->entries[seg->count++] = e;
    Unlock();
    FreeSegment(spare);
    return true;
  }
}

void StopState::RemoveEntry(StopEntry* e) noexcept {
  Lock(/*fail_if_stopped=*/false);
  StopSegment* const seg = e->segment_;
  if (!seg->claimed) {
    // Step E2: unclaimed; no stop will touch it.
    const uint32_t last = --seg->count;
    if (e->index_ != last) {
      StopEntry* const moved = seg->entries[last];
      seg->entries[e->index_] = moved;
      moved->index_ = e->index_;
    }
    e->segment_ = nullptr;
    const bool emptied = seg->count == 0;
    if (emptied) {
      *seg->prev = seg->next;
      if (seg->next != nullptr) seg->next->prev = seg->prev;
    }
    Unlock();
    if (emptied) FreeSegment(seg);
    return;
  }
  Unlock();
  // Claimed by a stop sweep, which is processing it now (step E2).
  int spins = 0;
  // acquire: pairs with the release store in MarkDone().
  while (!e->done_.load(std::memory_order_acquire)) SpinPause(spins);
}

int StopState::ClaimEntriesLocked(StopEntry** out, int max) noexcept {
  int n = 0;
  for (StopSegment* seg = segments_; seg != nullptr; seg = segments_) {
    const int count = static_cast<int>(seg->count);
    if (n + count > max) break;
    // The next segment is the next claim's (ours or another worker's): its
    // header and entries are cold, fetch them while we copy this one.
    if (seg->next != nullptr) PrefetchSegment(seg->next);
    segments_ = seg->next;
    if (segments_ != nullptr) segments_->prev = &segments_;
    seg->claimed = true;  // step E3
    seg->next = retired_;
    retired_ = seg;
    for (int i = 0; i < count; ++i) out[n + i] = seg->entries[i];
    n += count;
  }
  return n;
}

int StopState::ClaimEntries(StopEntry** out, int max) noexcept {
  Lock(/*fail_if_stopped=*/false);
  const int n = ClaimEntriesLocked(out, max);
  Unlock();
  return n;
}

StopState::~StopState() {
  // Every entry has unregistered (its owner ended before the group): only
  // claimed segments are left.
  while (retired_ != nullptr) FreeSegment(std::exchange(retired_, retired_->next));
}

bool StopEntry::Register(StopState* state) noexcept {
  if (state == nullptr) return true;
  // Before linking: a claim on another thread may read it right after.
  state_ = state;
  if (state->TryAddEntry(this)) return true;
  state_ = nullptr;
  return false;
}

void StopEntry::Unregister() noexcept {
  if (state_ == nullptr) return;
  // acquire: pairs with the release store in MarkDone(); the sweep that
  // claimed this entry is done with it.
  if (done_.load(std::memory_order_acquire)) return;
  state_->RemoveEntry(this);
}

void StopCallbackBase::Register(StopState* state) noexcept {
  state_ = state;
  if (state == nullptr) return;
  if (!state->TryAddCallback(this)) {
    state_ = nullptr;  // ran inline: nothing to unregister.
    Execute();
  }
}

void StopCallbackBase::Unregister() noexcept {
  if (state_ == nullptr) return;
  // Step 6. acquire: pairs with the release store after Execute() in
  // RequestStop(); once it reads true the requester is done with us.
  if (callback_completed_.load(std::memory_order_acquire)) return;
  state_->RemoveCallback(this);
}

}  // namespace internal

absl::Status SleepFor(absl::Duration d, StopToken token) {
  if (token.stop_requested()) {
    return absl::CancelledError("SleepFor: stop requested");
  }
  if (d <= absl::ZeroDuration()) return absl::OkStatus();
  internal::Mutex mu;
  bool stopped = false;
  internal::CondVar cv;
  const absl::Time deadline = absl::Now() + d;  // InfiniteFuture when d is inf.
  {
    StopCallback wake(token, [&]() noexcept {
      internal::MutexLock lock(&mu);
      stopped = true;
      cv.Signal();
    });
    internal::MutexLock lock(&mu);
    while (!stopped) {
      if (cv.WaitWithDeadline(&mu, deadline) && absl::Now() >= deadline) break;
    }
  }
  if (stopped) return absl::CancelledError("SleepFor: stop requested");
  return absl::OkStatus();
}

}  // namespace ripcord
