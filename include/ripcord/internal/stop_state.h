// Copyright 2026 The ripcord Authors.
//
// internal/stop_state.h: the state behind StopToken and StopCallback. Not part
// of the public API; the algorithms live in executor/group/stop_state.cc.
//
// The registration algorithm is libunifex's inplace_stop_source (also used by
// stdexec): one state word with a STOP_REQUESTED bit and a LOCKED bit that
// guards an intrusive list of callbacks. The requesting thread unlinks the
// callbacks a few dozen at a time and runs them with the lock released, so a
// callback may register or remove other callbacks, and may destroy its own
// StopCallback (executor/group/stop_state.cc has the protocol).
//
// Besides callbacks, a StopState keeps StopEntry registrations: the library's
// own waits (a coroutine's Sleep) that a stop must complete by the 100,000.
// They live in arrays of kStopEntryBatch pointers, not in the callback list,
// so RequestStop() claims a first array and hands it to a worker instead of
// running one callback per entry on the requesting thread, and workers claim
// the rest an array at a time (executor/group/stop_state.cc, "Stop entries").
#ifndef RIPCORD_INTERNAL_STOP_STATE_H_
#define RIPCORD_INTERNAL_STOP_STATE_H_

#include <atomic>
#include <cstdint>
#include <thread>

namespace ripcord {
class StopToken;
namespace internal {

class StopState;
struct StopSegment;

// Entries a stop claim hands over at once (and the size of a segment).
inline constexpr int kStopEntryBatch = 28;

// StopEntry: a registration that the stop does not run but hands, claimed,
// to SweepStopEntries() (defined by executor/coro/sleep.cc) in batches.
// Thread-safety: Register/Unregister by the owner; MarkDone by the thread
// that claimed the entry; the rest is guarded by the StopState's LOCKED bit.
class StopEntry {
 public:
  StopEntry() = default;
  StopEntry(const StopEntry&) = delete;
  StopEntry& operator=(const StopEntry&) = delete;

  // Registers with `state` (null: a token that never stops; then it returns
  // true and registers nothing). Returns false, registering nothing, if stop
  // was already requested: the caller acts on the stop itself.
  bool Register(StopState* state) noexcept;
  // After it returns no stop sweep touches this entry again. An entry that a
  // sweep has claimed is waited for until the sweep's MarkDone(); a claim is
  // processed at once by a running thread that never blocks in between, so
  // the wait is short and cannot deadlock.
  void Unregister() noexcept;
  // The StopState it registered with (null if none). Set before the entry
  // becomes visible to a claim, so a claiming thread may read it.
  StopState* state() const noexcept { return state_; }
  // The claiming sweep is done with the entry: its last touch.
  void MarkDone() noexcept {
    // release: pairs with the acquire loads of done_ in Unregister() and
    // StopState::RemoveEntry(); what the sweep did to the owner's object
    // happens-before the owner destroys it.
    done_.store(true, std::memory_order_release);
  }

 private:
  friend class StopState;
  StopState* state_ = nullptr;
  // Guarded by LOCKED. The segment holding this entry (at index_); once a
  // stop claimed that segment it stays, marked claimed, until ~StopState.
  StopSegment* segment_ = nullptr;
  uint32_t index_ = 0;
  std::atomic<bool> done_{false};
};

// Called by StopState::RequestStop() (after its lock is released, before the
// callbacks) with the first claimed batch of entries (n >= 1) when there are
// any: completes them at once (the claimer's duty, see StopEntry::Unregister)
// and has the executor's workers claim and complete the rest. Defined in
// executor/coro/sleep.cc, the one user of StopEntry.
void SweepStopEntries(StopEntry* const* entries, int n) noexcept;

// StopCallbackBase: the intrusive list node of one registered callback.
// Thread-safety: constructed and destroyed by its owner; the list fields are
// guarded by the owning StopState's LOCKED bit.
class StopCallbackBase {
 public:
  StopCallbackBase(const StopCallbackBase&) = delete;
  StopCallbackBase& operator=(const StopCallbackBase&) = delete;

 protected:
  using ExecuteFn = void (*)(StopCallbackBase* self) noexcept;
  explicit StopCallbackBase(ExecuteFn execute) : execute_(execute) {}
  ~StopCallbackBase() = default;

  // Registers with `state` (may be null: a token that can never stop). If stop
  // was already requested, runs the callback now, on this thread.
  void Register(StopState* state) noexcept;
  // Unregisters. After it returns the callback is not running and never will
  // run (if another thread is running it, waits for that run to end; if this
  // thread is running it, returns at once).
  void Unregister() noexcept;

 private:
  friend class StopState;
  void Execute() noexcept { execute_(this); }

  ExecuteFn execute_;
  StopState* state_ = nullptr;
  // Guarded by state_'s LOCKED bit. prev_ == nullptr means "not in the list".
  StopCallbackBase* next_ = nullptr;
  StopCallbackBase** prev_ = nullptr;
  // Written by the requesting thread (under LOCKED) when it unlinks the
  // callback to run it; points to a flag on its stack that Unregister() sets
  // when the callback is destroyed on that thread before or while it runs
  // (by itself, or by an earlier callback of the same round).
  bool* removed_during_callback_ = nullptr;
  // release-stored by the requesting thread after the callback returned;
  // acquire-loaded by Unregister() (which then skips the lock) and, on
  // another thread, spun on by RemoveCallback().
  std::atomic<bool> callback_completed_{false};
};

// Records that the task running on this thread saw its stop (a token or
// checkpoint reported it): executor/sched/running_tasks.h. Thread-safe.
[[gnu::cold]] void NoteStopSeen();
// Milliseconds on CLOCK_MONOTONIC since the process's first call, plus 1
// (never 0). Wraps after 49 days. Thread-safe.
uint32_t StopClockMs();

// StopState: a one-shot stop source. Thread-safe.
class StopState {
 public:
  StopState() = default;
  ~StopState();  // frees the claimed segments (retired_)
  StopState(const StopState&) = delete;
  StopState& operator=(const StopState&) = delete;

  // When the stop was requested, in StopClockMs() units; 0 if it was not
  // (or a moment before the request is complete). For reports.
  uint32_t stop_ms() const noexcept {
    return stop_ms_.load(std::memory_order_relaxed);
  }

  bool stop_requested() const noexcept {
    // acquire: pairs with the release in RequestStop() that sets the bit, so
    // whatever the requester wrote before stopping (a failing task's error;
    // the group's reason is recorded after the bit, under the group's mutex)
    // is visible to a task that sees the stop.
    return (state_.load(std::memory_order_acquire) & kStopRequested) != 0;
  }

  // Sets the stop bit and runs every registered callback on this thread.
  // Returns true for the one call that made the request, false for the rest
  // (which return at once, possibly before the callbacks have finished).
  // The call that made the request runs on_stop(arg) (if not null) right
  // after the bit is set, before the stop entries and the callbacks, on this
  // thread and without the state's lock held.
  bool RequestStop(void (*on_stop)(void*) = nullptr,
                   void* arg = nullptr) noexcept;

  // Adds `cb` unless stop was already requested; returns false then (cb is
  // not added and the caller runs it).
  bool TryAddCallback(StopCallbackBase* cb) noexcept;
  void RemoveCallback(StopCallbackBase* cb) noexcept;

  // Entry registry (StopEntry). TryAddEntry returns false when stop was
  // already requested. ClaimEntries, valid only after the stop, claims
  // whole segments of registered entries, at least one (if any is left) and
  // as many more as fit in `max` (>= kStopEntryBatch) entries, into `out`
  // and returns how many (0: none left); their owners then wait for
  // MarkDone() in Unregister().
  // The caller must know the StopState is alive: the stop path holds claimed
  // entries, whose owners cannot finish before MarkDone().
  bool TryAddEntry(StopEntry* e) noexcept;
  void RemoveEntry(StopEntry* e) noexcept;
  int ClaimEntries(StopEntry** out, int max = kStopEntryBatch) noexcept;

 private:
  static constexpr uint32_t kStopRequested = 1;
  static constexpr uint32_t kLocked = 2;

  // Spins until it holds LOCKED. Returns false without locking when
  // `fail_if_stopped` and the stop bit is set.
  bool Lock(bool fail_if_stopped) noexcept;
  void Unlock() noexcept;
  // ClaimEntries with LOCKED held.
  int ClaimEntriesLocked(StopEntry** out, int max) noexcept;

  std::atomic<uint32_t> state_{0};
  // StopClockMs() when the stop was requested (0: not yet); in what was
  // padding. relaxed: reports only (stop_ms()).
  std::atomic<uint32_t> stop_ms_{0};
  StopCallbackBase* head_ = nullptr;        // guarded by LOCKED
  std::thread::id notifying_thread_;        // guarded by LOCKED
  // Segments of registered StopEntries, none empty; guarded by LOCKED. New
  // entries go into the first (a new one when it is full); removals leave
  // holes filled by the segment's last entry. After the stop, claims pop
  // from the front and owners still remove unclaimed entries.
  StopSegment* segments_ = nullptr;
  // Claimed segments, linked by next; guarded by LOCKED until the
  // destructor frees them (owners of claimed entries read their mark).
  StopSegment* retired_ = nullptr;
};

}  // namespace internal
}  // namespace ripcord

#endif  // RIPCORD_INTERNAL_STOP_STATE_H_
