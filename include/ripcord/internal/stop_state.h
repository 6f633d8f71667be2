// Copyright 2026 The ripcord Authors.
//
// internal/stop_state.h: the state behind StopToken and StopCallback. Not part
// of the public API; the algorithms live in executor/stop_state.cc.
//
// The registration algorithm is libunifex's inplace_stop_source (also used by
// stdexec): one state word with a STOP_REQUESTED bit and a LOCKED bit that
// guards an intrusive list of callbacks. The requesting thread unlinks the
// callbacks a few dozen at a time and runs them with the lock released, so a
// callback may register or remove other callbacks, and may destroy its own
// StopCallback (executor/stop_state.cc has the protocol).
#ifndef RIPCORD_INTERNAL_STOP_STATE_H_
#define RIPCORD_INTERNAL_STOP_STATE_H_

#include <atomic>
#include <cstdint>
#include <thread>

namespace ripcord {
class StopToken;
namespace internal {

class StopState;

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

// StopState: a one-shot stop source. Thread-safe.
class StopState {
 public:
  StopState() = default;
  StopState(const StopState&) = delete;
  StopState& operator=(const StopState&) = delete;

  bool stop_requested() const noexcept {
    // acquire: pairs with the release in RequestStop() that sets the bit, so
    // whatever the requester wrote before stopping (the group's stop reason)
    // is visible to a task that sees the stop.
    return (state_.load(std::memory_order_acquire) & kStopRequested) != 0;
  }

  // Sets the stop bit and runs every registered callback on this thread.
  // Returns true for the one call that made the request, false for the rest
  // (which return at once, possibly before the callbacks have finished).
  bool RequestStop() noexcept;

  // Adds `cb` unless stop was already requested; returns false then (cb is
  // not added and the caller runs it).
  bool TryAddCallback(StopCallbackBase* cb) noexcept;
  void RemoveCallback(StopCallbackBase* cb) noexcept;

 private:
  static constexpr uint32_t kStopRequested = 1;
  static constexpr uint32_t kLocked = 2;

  // Spins until it holds LOCKED. Returns false without locking when
  // `fail_if_stopped` and the stop bit is set.
  bool Lock(bool fail_if_stopped) noexcept;
  void Unlock() noexcept;

  std::atomic<uint32_t> state_{0};
  StopCallbackBase* head_ = nullptr;        // guarded by LOCKED
  std::thread::id notifying_thread_;        // guarded by LOCKED
};

}  // namespace internal
}  // namespace ripcord

#endif  // RIPCORD_INTERNAL_STOP_STATE_H_
