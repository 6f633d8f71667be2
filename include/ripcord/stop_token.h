// Copyright 2026 The ripcord Authors.
//
// stop_token.h: StopToken, StopCallback and SleepFor.
//
// Every TaskGroup owns one stop source; tasks receive its StopToken and check
// it, or register a StopCallback that runs when the group is stopped:
//
//   group.Spawn([](ripcord::StopToken token) -> absl::Status {
//     ripcord::StopCallback wake(token, [&] { conn.Interrupt(); });
//     while (!token.stop_requested()) {
//       absl::Status s = ripcord::SleepFor(absl::Milliseconds(100), token);
//       if (!s.ok()) return s;           // CancelledError: the group stopped
//       Poll();
//     }
//     return absl::OkStatus();
//   });
#ifndef RIPCORD_STOP_TOKEN_H_
#define RIPCORD_STOP_TOKEN_H_

#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ripcord/internal/stop_state.h"

namespace ripcord {

class StopToken;
namespace internal {
// The token of a stop source (a group's, or a started task's own).
inline StopToken TokenFor(StopState* state) noexcept;
}  // namespace internal

// StopToken: observes whether a group was asked to stop.
//
// Cheap to copy: a pointer; copying performs no allocation and no atomic
// read-modify-write. Non-owning, like std::inplace_stop_token: a token is
// valid while the group it came from lives, and every task of a group may use
// the group's token for as long as it runs.
//
// Thread-safety: any thread. Memory ordering: a thread that sees
// stop_requested() == true also sees everything the requester wrote before
// RequestStop() (for example the stop reason).
class StopToken {
 public:
  // A token that is never stopped: stop_possible() == false.
  StopToken() noexcept = default;

  // StopToken::stop_requested(): true once stop was requested on the source.
  // Once true, the running task counts as having looked at its stop
  // (Executor::DebugString(): not `ignoring stop`); while false, one load.
  bool stop_requested() const noexcept {
    if (state_ == nullptr || !state_->stop_requested()) [[likely]] {
      return false;
    }
    internal::NoteStopSeen();
    return true;
  }
  // StopToken::stop_possible(): false only for a default-constructed token.
  bool stop_possible() const noexcept { return state_ != nullptr; }

  friend bool operator==(const StopToken& a, const StopToken& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  friend StopToken internal::TokenFor(internal::StopState* state) noexcept;
  template <class Callback>
  friend class StopCallback;
  explicit StopToken(internal::StopState* state) noexcept : state_(state) {}

  internal::StopState* state_ = nullptr;
};

// StopCallback<Callback>: runs `cb` once when stop is requested on `token`,
// like std::stop_callback.
//
// Lifetime: the constructor runs cb at once, on the constructing thread, if
// stop was already requested. Otherwise cb runs on the thread that requests
// the stop, exactly once. After ~StopCallback returns, cb is not running and
// will never run: if another thread is running it, the destructor waits for
// that run to end; if cb itself destroys its StopCallback, the destructor
// returns at once (no deadlock).
// Thread-safety: construct and destroy on any thread; one object must not be
// destroyed twice. cb must not throw (it is noexcept: std::terminate).
template <class Callback>
class StopCallback : private internal::StopCallbackBase {
 public:
  template <class C>
  StopCallback(StopToken token, C&& cb) noexcept(
      std::is_nothrow_constructible_v<Callback, C>)
      : internal::StopCallbackBase(&StopCallback::ExecuteImpl),
        callback_(std::forward<C>(cb)) {
    Register(token.state_);
  }
  ~StopCallback() { Unregister(); }

  StopCallback(const StopCallback&) = delete;
  StopCallback& operator=(const StopCallback&) = delete;

 private:
  static void ExecuteImpl(internal::StopCallbackBase* self) noexcept {
    static_cast<StopCallback*>(self)->callback_();
  }
  Callback callback_;
};

template <class Callback>
StopCallback(StopToken, Callback) -> StopCallback<Callback>;

inline StopToken internal::TokenFor(internal::StopState* state) noexcept {
  return StopToken(state);
}

// SleepFor(): a cancellable sleep.
//
// Returns OkStatus() after `d`, or CancelledError as soon as (within 1 ms)
// stop is requested on `token`; it does not spin. A duration of zero or less
// is a checkpoint: CancelledError if the token is stopped, else OkStatus() at
// once. An infinite duration sleeps until stop (forever for a token that
// cannot stop). Blocks the calling thread: inside a coroutine task use
// `co_await Sleep(d)` instead, which frees the worker.
// Thread-safety: any thread.
[[nodiscard]] absl::Status SleepFor(absl::Duration d, StopToken token);

}  // namespace ripcord

#endif  // RIPCORD_STOP_TOKEN_H_
