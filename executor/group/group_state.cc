// Copyright 2026 The ripcord Authors.
//
// group_state.cc: a task group's record: creation, linking into
// its parent or the root registry, closing (or handing a frozen record to
// its last lazily dropped task), pins, labels, ancestry, statistics and
// the blocking-call glue. The join word and the census are in join.cc and
// census.cc, stop propagation in stop.cc; the protocols are written up in
// docs/design/join-and-census.md and docs/design/stop.md.
#include <algorithm>
#include <cstdio>
#include <deque>
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
#include "executor/base/test_hooks.h"
#include "executor/sync/futex.h"
#include "executor/group/group_limit.h"
#include "executor/group/group_report.h"
#include "executor/group/group_test_peer.h"
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
// Thread-locals with external linkage on purpose (RIPCORD_FAST_TLS, check.h).
RIPCORD_FAST_TLS constinit thread_local GroupState* tls_current_group = nullptr;
RIPCORD_FAST_TLS constinit thread_local int tls_gate_frame = -1;

// The lists of groups this thread has pinned and is stopping (StopPinned),
// innermost first. Only this thread reads or writes them.
struct PinFrame {
  std::vector<GroupState*>* pinned;
  PinFrame* outer;
};
RIPCORD_FAST_TLS thread_local PinFrame* tls_pin_frames = nullptr;

// Group ids for labels: a per-thread counter under a per-thread prefix.
// Constant-initialised (no TLS init guard).
RIPCORD_FAST_TLS thread_local uint64_t tls_group_id_prefix = 0;
RIPCORD_FAST_TLS thread_local uint64_t tls_group_id_count = 0;

namespace {


// Creating a group touches no shared cache line (fib(30) creates 1.3
// million); the prefix is taken on the thread's first group.
uint64_t NextGroupId() {
  static std::atomic<uint64_t> next_thread{1};
  if (tls_group_id_prefix == 0) {
    // relaxed: only uniqueness matters.
    tls_group_id_prefix =
        next_thread.fetch_add(1, std::memory_order_relaxed) << 40;
  }
  return tls_group_id_prefix | ++tls_group_id_count;
}

}  // namespace

absl::Status StatusFromException(std::exception_ptr e, const char* what_ran) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return absl::UnknownError(
        absl::StrCat(what_ran, " threw an exception: ", ex.what()));
  } catch (...) {
    return absl::UnknownError(
        absl::StrCat(what_ran, " threw a non-std::exception"));
  }
}

GroupState::GroupState(ExecutorImpl* exec, GroupState* parent,
                       GroupOptions&& options)
    : exec_(exec),
      parent_(parent),
      depth_(parent == nullptr ? 0 : parent->depth_ + 1),
      shielded_(options.shielded),
      collect_all_(options.on_failure == FailurePolicy::kCollectAll),
      name_(std::move(options.name)),
      id_(NextGroupId()),
      limit_(options.max_concurrency == 0
                 ? nullptr
                 : GroupLimit::Make(options.max_concurrency)) {
  if (parent_ != nullptr) {
    parent_->LinkChild(this);
  } else {
    exec_->RegisterRoot(this);
  }
  if (options.timeout != absl::InfiniteDuration()) {
    timeout_ = std::make_unique<GroupTimeout>(this, options.timeout);
    if (options.timeout <= absl::ZeroDuration()) {
      Stop(timeout_->Reason(), StopOrigin::kSelf);
    } else {
      exec_->timers().Schedule(timeout_->entry(),
                               absl::Now() + options.timeout);
    }
  }
}

GroupState* GroupState::Create(ExecutorImpl* exec, GroupState* parent,
                               GroupOptions&& options) {
  if (InheritedByFork(exec)) CheckNotInherited(exec, "TaskGroup::TaskGroup");
  return new GroupState(exec, parent, std::move(options));
}

void GroupState::CheckNoChildren() const {
  const int children = children_mu_.count();
  RIPCORD_CHECK(children == 0,
                "TaskGroup %s destroyed while %d child group(s) are alive; "
                "children must end before their parent",
                Label().c_str(), children);
}

void GroupState::Close() {
  // ~TaskGroup ran CheckNoChildren() and joined.
  if (timeout_ != nullptr) exec_->timers().Cancel(timeout_->entry());
  if (parent_ != nullptr) {
    parent_->UnlinkChild(this);
  } else {
    exec_->UnregisterRoot(this);
  }
  WaitForUnpinned();
  // Census step 4: markers go right after their release; wait for the few
  // in flight. acquire: pairs with the release decrements in ReleasePending.
  while (strict_.load(std::memory_order_acquire) != 0 ||
         running_other_.load(std::memory_order_acquire) != 0) {
    sched_yield();
  }
  // acquire: pairs with the seq_cst store in Census(). A census that froze
  // the group always passes, under mu_; a release after its snapshot may
  // have made us idle (and let our owner's Wait() return) before it did.
  if (frozen_.load(std::memory_order_acquire)) {
    // Let it finish (it uses only locals once it leaves mu_).
    { MutexLock lock(&mu_); }
    // Census step 7: frozen with lazy tasks still queued; the last of us
    // (this owner or the last DropFrozen) frees the record.
    // acq_rel: release orders our last use before the freeing thread's
    // delete; acquire orders theirs before ours.
    if (frozen_refs_.fetch_sub(kOwnerRef, std::memory_order_acq_rel) ==
        kOwnerRef) {
      delete this;
    }
    return;
  }
  delete this;  // joined: nothing points at us any more
}

void GroupState::WaitForUnpinned() const {
  // Pins held by this thread belong to a StopPinned() frame below us on the
  // stack (a StopCallback destroying a group the same stop pinned): take the
  // group out of that frame and drop the pin, or we would wait for ourselves.
  for (PinFrame* f = tls_pin_frames; f != nullptr; f = f->outer) {
    for (GroupState*& g : *f->pinned) {
      if (g == this) {
        g = nullptr;
        const_cast<GroupState*>(this)->Unpin();
      }
    }
  }
  // acquire: pairs with the release in Unpin(); the stopping thread is done
  // with this group. Short: a pin lasts one Stop() call.
  while (pins_.load(std::memory_order_acquire) != 0) sched_yield();
}

int GroupState::StopPinned(std::vector<GroupState*>& pinned,
                           std::string_view reason, StopOrigin origin) {
  // Below the first level, each group is stopped as its parent's stop.
  const StopOrigin below = origin == StopOrigin::kExecutorAll
                               ? StopOrigin::kExecutorAll
                               : StopOrigin::kParent;
  const bool force_below = below == StopOrigin::kExecutorAll;
  // One frame per group whose children are being stopped: its pinned
  // children, the next one to stop, and where its parent frame holds it.
  // A deque: frames do not move while others are pushed, so the PinFrame
  // chain (tls_pin_frames) and the slot pointers stay valid.
  struct Frame {
    GroupState* group = nullptr;  // null: the bottom frame (`pinned`)
    GroupState** slot = nullptr;  // group's entry in the frame below
    std::vector<GroupState*> children;
    std::vector<GroupState*>* list = nullptr;
    size_t next = 0;
    PinFrame pins{nullptr, nullptr};
  };
  std::deque<Frame> stack;
  auto open = [&stack](Frame& f, std::vector<GroupState*>* list) {
    f.list = list;
    f.pins = PinFrame{list, tls_pin_frames};
    tls_pin_frames = &f.pins;
  };
  open(stack.emplace_back(), &pinned);
  int stopped = 0;
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next < f.list->size()) {
      GroupState** slot = &(*f.list)[f.next++];
      if (*slot == nullptr) continue;  // destroyed by an earlier callback
      const bool propagate = (*slot)->StopSelf(
          reason, f.group == nullptr ? origin : below, &stopped);
      // Re-read: a callback of that very stop may have destroyed it.
      GroupState* const g = *slot;
      if (g == nullptr) continue;
      if (!propagate) {
        g->Unpin();
        continue;
      }
      Frame& child = stack.emplace_back();
      child.group = g;
      child.slot = slot;
      g->PinChildren(&child.children);
      open(child, &child.children);
      continue;
    }
    // Every child of f's group is stopped: its step 4, then its pin.
    tls_pin_frames = f.pins.outer;
    if (f.group != nullptr && *f.slot != nullptr) {
      f.group->MarkStopDone(force_below);
      f.group->Unpin();
    }
    stack.pop_back();
  }
  return stopped;
}

std::string GroupState::Label() const {
  if (!name_.empty()) return absl::StrCat("group '", name_, "'");
  return absl::StrCat("unnamed group #", id_ >> 40, ".", id_ & ((uint64_t{1} << 40) - 1));
}

bool GroupState::IsWithin(const GroupState* ancestor) const {
  // A frozen group (census step 5) may have outlived its parent (its unit
  // there went back at the freeze, its queued tasks keep only it alive):
  // its parent_ must not be followed. Such a record has no live children
  // (its TaskGroup is gone), so only the group a queued task names can be
  // one, never one of its ancestors; a group frozen while its TaskGroup
  // lives has its whole ancestry alive.
  // acquire: pairs with the release store in Census().
  if (census_passed_.load(std::memory_order_acquire)) return this == ancestor;
  // tests/parking_test.cc holds a walk here: census step 8's window.
  RunTestHook(TestHook::kAncestryWalk, this);
  const GroupState* g = this;
  while (g != nullptr && g->depth_ > ancestor->depth_) g = g->parent_;
  return g == ancestor;
}

GroupState* GroupState::Current() { return tls_current_group; }


// ---- diagnostics ----------------------------------------------------------

#ifndef NDEBUG
void GroupStateTestPeer::SetCompleted(GroupState* g, int64_t n) {
  const auto field = static_cast<uint64_t>(n) & ((uint64_t{1} << 31) - 1);
  uint64_t v = g->pending_.load(std::memory_order_relaxed);
  // relaxed: test set-up on a quiet group.
  while (!g->pending_.compare_exchange_weak(
      v,
      (v & (GroupState::kWaiters | GroupState::kCountMask)) |
          (field << GroupState::kCompletedShift),
      std::memory_order_relaxed)) {
  }
  g->completed_wraps_.store(n >> 31, std::memory_order_relaxed);
}
#endif

GroupStats GroupState::Stats() const {
  GroupStats s;
  // Child groups with work each hold 1 of the count; the rest are tasks.
  int64_t busy_children = 0;
  {
    SpinLockHolder lock(&children_mu_);
    for (GroupState* c = first_child_; c != nullptr; c = c->next_sibling_) {
      if (!c->Done()) ++busy_children;
    }
  }
  // relaxed: a snapshot; exact once joined (see the field comment).
  int64_t running = 0;
  // Tasks that finished OK whose release a worker deferred (their units are
  // still in the count): completed, not unsettled.
  int64_t deferred = 0;
  exec_->CountPlain(this, &running, &deferred);
  running += running_other_.load(std::memory_order_relaxed);
  const uint64_t word = pending_.load(std::memory_order_relaxed);
  s.completed =
      deferred +
      static_cast<int64_t>((word & kCompletedMask) >> kCompletedShift) +
      (completed_wraps_.load(std::memory_order_relaxed) +
       ((word & kCompletedCarry) != 0 ? 1 : 0)) *
          (int64_t{1} << 31);
  s.failed = failed_.load(std::memory_order_relaxed);
  s.cancelled = cancelled_.load(std::memory_order_relaxed);
  const int64_t unsettled = std::max<int64_t>(
      0, static_cast<int64_t>(word & kCountMask) - busy_children - deferred);
  s.spawned = s.completed + s.failed + s.cancelled + unsettled;
  s.running = std::clamp<int64_t>(running, 0, unsettled);
  s.queued = unsettled - s.running;
  // After a census passed, nothing of the group runs again, and what the
  // frozen count still holds is dropped unrun: report it as the cancelled
  // tasks it is. (A frame seen now is a start gate dropping a task.)
  // acquire: pairs with the release store in Census().
  // Work added after the census (step 9) is strict, and is reported as
  // what it is.
  if (census_passed_.load(std::memory_order_acquire)) {
    const int64_t late = std::clamp<int64_t>(
        strict_.load(std::memory_order_relaxed), 0, unsettled);
    s.cancelled += unsettled - late;
    s.running = std::min(s.running, late);
    s.queued = late - s.running;
  }
  return s;
}

void GroupState::DescribeTree(std::string* out, int indent, absl::Time now,
                              int64_t* skipped) const {
  // Bounded output (group_report.h): past the size cap, only count. The
  // line is written by a separate frame, so that the recursion's frames
  // stay small (a 10,000-deep chain, under ASan too).
  if (out->size() >= kMaxDescribeBytes) {
    ++*skipped;
  } else {
    DescribeSelf(out, indent, now);
  }
  SpinLockHolder lock(&children_mu_);
  for (GroupState* c = first_child_; c != nullptr; c = c->next_sibling_) {
    c->DescribeTree(out, indent + 1, now, skipped);
  }
}

void GroupState::DescribeSelf(std::string* out, int indent,
                              absl::Time now) const {
  GroupStats s = Stats();
  std::string stop;
  {
    MutexLock lock(&mu_);
    if (stopped_) {
      stop = absl::StrCat(" stopped ", absl::FormatDuration(absl::Trunc(
                                           now - stop_time_, absl::Milliseconds(1))),
                          " ago: ", stop_reason_,
                          stopped_by_parent_ ? " (from the parent)" : "");
    }
  }
  const std::string depth =
      indent > kMaxDescribeIndent ? absl::StrCat("[depth ", indent, "] ") : "";
  absl::StrAppendFormat(
      out,
      "%*s%s%s%s%s: spawned=%lld completed=%lld failed=%lld cancelled=%lld "
      "running=%lld queued=%lld\n",
      2 * std::min(indent, kMaxDescribeIndent), "", depth, Label(),
      shielded_ ? " [shielded]" : "", stop,
      static_cast<long long>(s.spawned), static_cast<long long>(s.completed),
      static_cast<long long>(s.failed), static_cast<long long>(s.cancelled),
      static_cast<long long>(s.running), static_cast<long long>(s.queued));
}

void GroupState::CollectBusy(std::vector<BusyGroup>* out) const {
  GroupStats s = Stats();
  if (s.running + s.queued > 0) {
    BusyGroup b;
    b.label = Label();
    b.shielded = shielded_;
    b.stopped = stop_requested();
    b.running = s.running;
    b.queued = s.queued;
    // relaxed: a report; exactness is not needed.
    b.blocking = blocking_.load(std::memory_order_relaxed);
    out->push_back(std::move(b));
  }
  SpinLockHolder lock(&children_mu_);
  for (GroupState* c = first_child_; c != nullptr; c = c->next_sibling_) {
    c->CollectBusy(out);
  }
}


// ---- blocking calls -------------------------------------------------------

void SubmitBlockingJob(GroupState* group, TaskNode* job) {
  group->AddTask();
  if (group->stop_requested()) {
    // fn never runs: the job's first phase sees the stop and schedules done
    // with CancelledError.
    job->run(job, /*drop=*/false);
    return;
  }
  if (GroupLimit* limit = group->limit()) [[unlikely]] {
    if (!limit->AdmitBlockingCall(job)) return;  // waits for a slot
  }
  absl::Status submitted =
      group->executor()->blocking().Submit([job] { job->run(job, false); });
  // No blocking thread exists and none could start: the fn phase, told so
  // by drop = true, hands done ResourceExhausted without running fn.
  if (!submitted.ok()) job->run(job, /*drop=*/true);
}

void ScheduleContinuation(TaskNode* node) {
  node->group->executor()->Schedule(node);
}

}  // namespace internal
}  // namespace ripcord
