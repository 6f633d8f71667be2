// Copyright 2026 The ripcord Authors.
//
// census.cc: how a stopped group's Wait() returns without
// touching its queued lazy tasks: the start gate, the heavy fence, the
// markers, the freeze and its snapshot, the frozen record's lifetime, the
// tag-walks step, and what comes after an early return. The steps and why
// they are correct: docs/design/join-and-census.md, "The census".
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sched.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ripcord/internal/mutex.h"
#include "absl/time/clock.h"
#include "executor/base/check.h"
#include "executor/sync/futex.h"
#include "executor/group/group_limit.h"
#include "executor/group/group_report.h"
#include "executor/group/group_timeout.h"
#include "executor/sync/membarrier.h"
#include "executor/base/process_life.h"
#include "executor/sched/scheduler.h"
#include "executor/time/timer.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/internal/spawn.h"
#include "ripcord/task_group.h"

namespace ripcord {
namespace internal {

bool GroupState::Census(bool* fenced) {
  // acquire: pairs with the release store below. Once passed, what is left
  // to wait for is the work added after it (step 9): its markers.
  if (census_passed_.load(std::memory_order_acquire)) return MarkersClear();
  auto markers_clear = [this] { return MarkersClear(); };
  // A child group's unit here is released just after its own count reaches
  // zero, with no marker in between (one would cost every child group an
  // RMW): a group that ever had children is left to the full drain. relaxed:
  // a child linked concurrently is linked by a running task of ours (whose
  // frame we see) or races with the Wait() itself.
  if (had_children_.load(std::memory_order_relaxed)) return false;
  if (!markers_clear()) return false;
  if (!*fenced) {
    // Step 2, once per waiter.
    if (!HeavyFence()) return false;
    *fenced = true;
    if (!markers_clear()) return false;
  }
  // Step 3. Frames of drops before the freeze do not count here: they run
  // no user code, and step 5 waits for them.
  if (exec_->AnyRunningOf(this)) return false;
  // Step 5: freeze. One census at a time (mu_): the snapshot is taken once.
  GroupState* const parent = parent_;
  ExecutorImpl* const exec = exec_;
  const int parent_marks = late_child_ ? kMarkStrict : 0;
  uint64_t count = 0;
  {
    MutexLock lock(&mu_);
    if (census_passed_.load(std::memory_order_relaxed)) return MarkersClear();
    // seq_cst + HeavyFence: as the stop bit in step 2. A gate that reads
    // frozen_ clear has its frame visible to us after the fence.
    frozen_.store(true, std::memory_order_seq_cst);
    HeavyFence();
    // Drops whose gate read frozen_ clear keep their frame tagged until
    // their release (a gate tagged "starting" now may be one of them): wait
    // for them, so that stats() is exact when Wait() returns. They run no
    // user code, so this is short.
    exec_->WaitForGatesOf(this);
    // The snapshot: one RMW reads the count and sets kFrozenCount, so every
    // unit is on exactly one side of it (step 7 keeps the record's
    // references exact whatever the count held). seq_cst: acquire pairs
    // with the release of a strict unit's AddPending, so a strict unit we
    // count has its strict_ increment visible below.
    count = pending_.fetch_or(kFrozenCount, std::memory_order_seq_cst) &
            kCountMask;
    // What else the snapshot may hold besides lazy tasks: units that
    // appeared since step 3, all transient (a racing Spawn that read the
    // stop clear and whose task the gate now drops, a Spawn dropping its
    // task in Submit). Wait for their markers, which go after their release.
    for (int spins = 0; !markers_clear(); ++spins) {
      // As in WaitForGatesOf: let a preempted dropper have a core.
      if (spins > 64) absl::SleepFor(absl::Microseconds(20));
    }
    // relaxed: the RMW order on frozen_refs_ is all that matters. Units of
    // the snapshot released meanwhile have already given theirs back (the
    // owner's kOwnerRef keeps the sum positive).
    frozen_refs_.fetch_add(static_cast<int64_t>(count),
                           std::memory_order_relaxed);
    // release: pairs with the acquire loads in Done(), Close() and above.
    census_passed_.store(true, std::memory_order_release);
    // Step 8: a worker deciding whether a queued task of ours is within the
    // group its helping wait serves (ExecutorImpl::QueuedWithin) may have
    // read census_passed_ clear just before, and be following parent_:
    // wait for it, before the parent gets our unit back and may be freed.
    // After the fence, a walk that is not tagged yet reads the store above.
    if (parent != nullptr) {
      HeavyFence();  // it worked in step 2: the kernel has the command
      exec->WaitForWalksOf(this);
    }
  }
  // The frozen count never reaches zero: hand the parent its unit now (if
  // the snapshot held any: at zero the parent holds none of ours, and units
  // added since take none). Only locals from here: once mu_ is released,
  // our owner may close and free the record (Close() takes mu_ to wait for
  // us).
  if (count != 0 && parent != nullptr) {
    parent->ReleasePending(kRelease, parent_marks);
  }
  WakeWaiters(exec);  // concurrent waiters and Join()ers: we are done
  return true;
}


}  // namespace internal
}  // namespace ripcord
