// Copyright 2026 The ripcord Authors.
//
// parallel_for.h: ParallelFor, a loop over an index range split across the
// workers as tasks of one task group (tbb::parallel_for, rayon's par_iter,
// OpenMP's `parallel for schedule(dynamic)`), stoppable between chunks.
//
//   absl::Status s = ripcord::ParallelFor(
//       group, int64_t{0}, n, [&](int64_t lo, int64_t hi) {
//         for (int64_t i = lo; i < hi; ++i) out[i] = f(in[i]);
//       });
//
// How the range is split (lazy binary splitting, Tzannes, Caragea, Barua and
// Vishkin, PPoPP 2010): a task that owns a range runs it chunk by chunk, at
// most `grain` indices per body call, and before each chunk looks at its
// worker's deque. While that deque holds a task, an idle worker has
// something to steal and the range stays whole; when it is empty, the task
// spawns the upper half of what is left and goes on with the lower half. So
// a loop creates about one task per steal rather than one per chunk, and at
// the end the idle worker steals half of what the last busy one has left:
// the load is balanced to within one chunk, whatever the cost per index.
// oneTBB's auto_partitioner reaches a similar result by splitting stolen
// ranges further.
//
// The loop's tasks belong to a group of their own, a child of `parent` (or a
// root group of `executor`), so everything about groups holds for them: the
// first failing chunk stops the rest, a stop of the parent (or a signal, or
// the options' timeout) stops the loop, and ParallelFor returns only when no
// chunk runs any more.
#ifndef RIPCORD_PARALLEL_FOR_H_
#define RIPCORD_PARALLEL_FOR_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ripcord/executor.h"
#include "ripcord/stop_token.h"
#include "ripcord/task_group.h"

namespace ripcord {

// ParallelForOptions: how ParallelFor splits and which group it runs in.
struct ParallelForOptions {
  // The most indices one call of the body receives. 0 (the default): chosen
  // from the range's length and the number of workers, about 256 chunks
  // per worker (at least 1 index per chunk); the end of each task's range
  // then goes in halves, down to 1/16 of that, so that an idle worker
  // never waits long for the last busy one to split. A grain you set is
  // kept as it is: the loop calls the body on chunks of up to that many
  // indices and never splits a range of at most that length. A chunk costs
  // a body call and a look at the worker's deque (a few ns): set the grain
  // yourself when the range is short and its indices cheap, so that a
  // chunk does at least a microsecond of work.
  // Negative: ParallelFor returns InvalidArgumentError.
  int64_t grain = 0;
  // The options of the loop's own group: a name for diagnostics and stop
  // reasons, shielding, a timeout that stops the loop.
  GroupOptions group = {};
};

namespace internal {

// True when the calling thread is a worker of an executor with more than
// one worker and that worker's deque is empty: nothing for a thief to take,
// so a loop task should split. Thread-safety: any thread (false off a
// worker). Defined in executor/sched/guest_seat.cc.
bool LoopShouldSplit();

// The number of workers of the executor whose worker is the calling thread;
// 1 on any other thread. Thread-safety: any thread.
int LoopWorkerCount();

struct Worker;
class ExecutorImpl;

// GuestSeat: the calling thread takes the seat of a parked worker of the
// group's executor for one loop (oneTBB's arena slot for the thread that
// calls parallel_for). Then the caller runs the loop's tasks itself, with no
// hand-off to a worker at the start nor a wake-up at the end, and the
// executor still runs no more threads than it has workers: the seat's own
// thread stays parked.
// Thread-safety: one object per thread, used only by the thread that made
// it. Defined in executor/sched/guest_seat.cc.
class GuestSeat {
 public:
  // Takes a parked worker's seat when the calling thread is not a worker
  // of any executor and a worker of group's executor is parked; otherwise
  // holds none (and Help() returns at once).
  explicit GuestSeat(TaskGroup& group);
  GuestSeat(const GuestSeat&) = delete;
  GuestSeat& operator=(const GuestSeat&) = delete;
  // Gives the seat back if Help() has not.
  ~GuestSeat();

  // With a seat: runs tasks of the group's subtree (and only those), as a
  // helping Wait() on a worker does, until the group is idle or has had
  // nothing to run for a few tens of microseconds; then gives the seat
  // back, so that the worker it belongs to can run anything else queued.
  // The caller's Wait() then waits for the rest.
  void Help();

 private:
  GroupState* const group_;
  ExecutorImpl* const exec_;
  Worker* worker_ = nullptr;
};

// The shared state of one ParallelFor call; lives on the caller's stack
// for the whole call (ParallelFor waits for every task that uses it).
// Lengths are computed in the unsigned type, so a range as long as the
// index type's whole span does not overflow.
template <class Index, class Body>
class LoopState {
 public:
  using Length = std::make_unsigned_t<Index>;

  LoopState(TaskGroup& group, Body& body, uint64_t grain)
      : group_(group), body_(body), grain_(grain),
        token_(group.stop_token()) {}

  // Runs the whole range from the loop's first task: picks the automatic
  // grain there, on a worker, where the worker count is known. grain_ is
  // written before any other task of the loop exists, and the Spawn() that
  // creates them orders the write before their reads.
  absl::Status RunRoot(Index lo, Index hi) {
    if (grain_ == 0) {
      const uint64_t chunks = static_cast<uint64_t>(LoopWorkerCount()) * 256;
      const uint64_t n = Len(lo, hi);
      grain_ = n / chunks + (n % chunks != 0 ? 1 : 0);
      min_chunk_ = grain_ / kTailDivisor + (grain_ < kTailDivisor ? 1 : 0);
    } else {
      min_chunk_ = grain_;
    }
    return Run(lo, hi);
  }

 private:
  static uint64_t Len(Index lo, Index hi) {
    return static_cast<Length>(static_cast<Length>(hi) -
                               static_cast<Length>(lo));
  }
  static Index Advance(Index lo, uint64_t by) {
    return static_cast<Index>(static_cast<Length>(
        static_cast<Length>(lo) + static_cast<Length>(by)));
  }

  absl::Status Run(Index lo, Index hi) {
    while (!token_.stop_requested()) {
      const uint64_t n = Len(lo, hi);
      if (n <= min_chunk_) return Call(lo, hi);
      if (LoopShouldSplit()) {
        const Index mid = Advance(lo, n / 2);
        group_.Spawn([this, mid, hi] { return Run(mid, hi); });
        hi = mid;
        continue;
      }
      // The tail of a range in halves (automatic grain only): the deque is
      // looked at again after at most half of what is left, so a worker
      // that runs dry waits for a short chunk, not a whole grain, before
      // the last busy task splits for it.
      const uint64_t step = std::min(grain_, std::max(min_chunk_, n / 2));
      const Index end = Advance(lo, step);
      absl::Status s = Call(lo, end);
      if (!s.ok()) return s;
      lo = end;
    }
    // Stopped: the chunks left never start. The group's Wait() reports why.
    return absl::OkStatus();
  }

  absl::Status Call(Index lo, Index hi) {
    if constexpr (std::is_invocable_v<Body&, Index, Index, StopToken>) {
      using R = std::invoke_result_t<Body&, Index, Index, StopToken>;
      if constexpr (std::is_void_v<R>) {
        body_(lo, hi, token_);
        return absl::OkStatus();
      } else {
        return body_(lo, hi, token_);
      }
    } else {
      using R = std::invoke_result_t<Body&, Index, Index>;
      if constexpr (std::is_void_v<R>) {
        body_(lo, hi);
        return absl::OkStatus();
      } else {
        return body_(lo, hi);
      }
    }
  }

  TaskGroup& group_;
  Body& body_;
  // The automatic grain's smallest chunk: grain / kTailDivisor.
  static constexpr uint64_t kTailDivisor = 16;

  uint64_t grain_;  // written only by RunRoot, before the first split
  // Ranges this long or shorter run in one call and never split: grain_
  // when the user set it, grain_ / kTailDivisor (at least 1) when
  // automatic. Written by RunRoot with grain_.
  uint64_t min_chunk_ = 0;
  const StopToken token_;
};

template <class Index, class Body>
constexpr bool kLoopBody = [] {
  if constexpr (std::is_invocable_v<Body&, Index, Index, StopToken>) {
    using R = std::invoke_result_t<Body&, Index, Index, StopToken>;
    return std::is_void_v<R> || std::is_same_v<R, absl::Status>;
  } else if constexpr (std::is_invocable_v<Body&, Index, Index>) {
    using R = std::invoke_result_t<Body&, Index, Index>;
    return std::is_void_v<R> || std::is_same_v<R, absl::Status>;
  } else {
    return false;
  }
}();

// Both ParallelFor overloads: `owner` is the parent group or the executor
// the loop's group is created in.
template <class Owner, class Index, class Body>
absl::Status ParallelForIn(Owner& owner, Index begin, Index end, Body& body,
                           ParallelForOptions& options) {
  static_assert(kLoopBody<Index, Body>,
                "ParallelFor: body must be callable as void(Index, Index), "
                "absl::Status(Index, Index), void(Index, Index, StopToken) or "
                "absl::Status(Index, Index, StopToken)");
  if (begin > end) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ParallelFor: begin (", begin, ") is greater than end (", end, ")"));
  }
  if (options.grain < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ParallelFor: grain (", options.grain, ") is negative"));
  }
  if (begin == end) return absl::OkStatus();
  TaskGroup group(owner, std::move(options.group));
  LoopState<Index, Body> state(group, body,
                               static_cast<uint64_t>(options.grain));
  {
    // Off the executor, the caller runs chunks in a parked worker's place.
    GuestSeat seat(group);
    group.Spawn([&state, begin, end] { return state.RunRoot(begin, end); });
    seat.Help();
  }
  return group.Wait();
}

}  // namespace internal

// ParallelFor(parent, begin, end, body, options): calls body on chunks of
// [begin, end) concurrently, as tasks of a new child group of `parent`, and
// waits for them.
//
// body is callable as void(Index lo, Index hi), absl::Status(Index, Index),
// void(Index, Index, StopToken) or absl::Status(Index, Index, StopToken),
// with begin <= lo < hi <= end and hi - lo <= the grain; the chunks are
// disjoint and, unless the loop is stopped, cover the range exactly once.
// body is called through one reference, from several threads at once: it
// must be safe to call concurrently (a lambda without mutable state is).
// Index is any integral type but bool.
//
// Returns what the loop's group's Wait() returns (see TaskGroup::Wait):
//   OkStatus() when every chunk ran and succeeded;
//   the first non-OK status a body call returned (or UnknownError carrying
//     the what() of an exception it threw): the loop stops, no further chunk
//     starts, chunks already running finish;
//   CancelledError naming the cause when the loop was stopped (a stop of
//     `parent`, unless options.group.shielded; a signal; options.group's
//     timeout): no chunk starts after the stop is seen, chunks already
//     running see their token stopped and finish;
//   InvalidArgumentError when begin > end or options.grain < 0 (body is
//     never called); OkStatus() at once when begin == end.
// The status does not fail `parent` by itself (like a child group's
// Wait()): return it from the calling task to do that.
//
// Called from a task it waits helping: the calling worker runs the loop's
// chunks too. Called from any other thread while a worker of the executor
// is parked, the calling thread takes that worker's place for the loop
// (the worker's thread stays parked; oneTBB's arena slot for the calling
// thread): it runs chunks, and only tasks of the loop's group and the
// groups inside it, so body calls may happen on the calling thread, and the
// loop neither waits for a worker to wake at its start nor wakes the
// caller at its end. When no worker is parked, or once the caller has
// found nothing to run for a few tens of microseconds, it blocks until the
// workers have finished the loop.
// Thread-safety: any thread, concurrently with anything on `parent`
// (which must outlive the call, as for any child group).
template <class Index, class Body>
  requires(std::is_integral_v<Index> && !std::is_same_v<Index, bool>)
absl::Status ParallelFor(TaskGroup& parent, Index begin, Index end,
                         Body&& body, ParallelForOptions options = {}) {
  return internal::ParallelForIn(parent, begin, end, body, options);
}

// ParallelFor(executor, begin, end, body, options): the same, with the loop's
// tasks in a new root group of `executor` (stopped by
// Executor::RequestStop and by signals unless options.group.shielded).
// Thread-safety: any thread.
template <class Index, class Body>
  requires(std::is_integral_v<Index> && !std::is_same_v<Index, bool>)
absl::Status ParallelFor(Executor& executor, Index begin, Index end,
                         Body&& body, ParallelForOptions options = {}) {
  return internal::ParallelForIn(executor, begin, end, body, options);
}

}  // namespace ripcord

#endif  // RIPCORD_PARALLEL_FOR_H_
