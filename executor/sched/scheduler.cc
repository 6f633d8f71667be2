// Copyright 2026 The ripcord Authors.
//
// scheduler.cc: the executor's construction and shutdown, scheduling and
// wake-ups, and the workers' run loop. A task of a stopped group is dropped
// at the start gate, never run. Helping waits are in help.cc, guest seats
// in guest_seat.cc, the root registry in roots.cc. The steps and why
// nothing is lost or hangs: docs/design/parking.md; the start gate:
// docs/design/join-and-census.md.
#include "executor/sched/scheduler.h"

#include <sched.h>

#include <algorithm>
#include <climits>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ripcord/internal/mutex.h"
#include "ripcord/parallel_for.h"
#include "ripcord/task_group.h"
#include "absl/time/clock.h"
#include "executor/base/check.h"
#include "executor/base/test_hooks.h"
#include "executor/sched/cpu_count.h"
#include "executor/sync/membarrier.h"
#include "executor/base/threads.h"

namespace ripcord::internal {
// External linkage on purpose (RIPCORD_FAST_TLS, check.h).
RIPCORD_FAST_TLS constinit thread_local Worker* tls_worker = nullptr;

namespace {

constexpr uint32_t kInjectInterval = 61;
// At most this many tasks move from the injection queue to a worker's deque
// at once (Go's globrunqget takes len/GOMAXPROCS + 1, capped; Tokio takes
// up to half its local queue's capacity).
constexpr int kInjectBatch = 32;
constexpr int kRootShards = 16;
// How long a searching worker keeps polling before it parks: about 50 us
// of pause instructions, checking the queues every 16. A producer that
// submits a task every few hundred nanoseconds (one external thread feeding
// the pool) then finds a searcher and wakes nobody, where parking would cost
// a futex wait per worker and a futex wake per submission (perf: 23% of the
// time in the kernel in submit_bench). Only searching workers spin, and at
// most half the workers search (idle.h), so idle cost stays bounded.
constexpr int kSearchSpins = 1024;
int ResolveWorkers(const ExecutorOptions& o) {
  RIPCORD_CHECK(o.num_workers >= 0,
                "ExecutorOptions::num_workers must be >= 0 (0 = the CPUs "
                "available), got %d",
                o.num_workers);
  RIPCORD_CHECK(o.max_blocking_threads >= 1,
                "ExecutorOptions::max_blocking_threads must be >= 1, got %d",
                o.max_blocking_threads);
  RIPCORD_CHECK(o.blocking_keep_alive >= absl::ZeroDuration(),
                "ExecutorOptions::blocking_keep_alive must be >= 0, got %s",
                absl::FormatDuration(o.blocking_keep_alive).c_str());
  constexpr size_t kMinStack = size_t{64} << 10;
  constexpr size_t kMaxStack = size_t{1} << 30;
  RIPCORD_CHECK(o.worker_stack_size >= kMinStack &&
                    o.worker_stack_size <= kMaxStack,
                "ExecutorOptions::worker_stack_size must be between 64 KiB "
                "and 1 GiB, got %zu bytes",
                o.worker_stack_size);
  RIPCORD_CHECK(o.blocking_stack_size >= kMinStack &&
                    o.blocking_stack_size <= kMaxStack,
                "ExecutorOptions::blocking_stack_size must be between 64 KiB "
                "and 1 GiB, got %zu bytes",
                o.blocking_stack_size);
  int n = o.num_workers;
  if (n == 0) n = DefaultWorkerCount();
  RIPCORD_CHECK(n < 0xffff,
                "ExecutorOptions::num_workers too large: %d (at most 65,534)",
                n);
  return n;
}

uint64_t NextRandom(uint64_t* state) {
  // xorshift64*: victim selection only.
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}


}  // namespace

void RunParkWindowHook(ParkSite site) {
  RunTestHook(TestHook::kParkWindow, &site);
}

ExecutorImpl::ExecutorImpl(const ExecutorOptions& options)
    : idle_(ResolveWorkers(options)), created_(absl::Now()) {
  const int n = ResolveWorkers(options);
  // Before any worker starts: the start gate's LightFence relies on it, and
  // so do the deques' light pushes (FenceBeforeRecheck).
  light_pushes_ = RegisterHeavyFence();
  shards_.reserve(kRootShards);
  for (int i = 0; i < kRootShards; ++i) {
    shards_.push_back(std::make_unique<RootShard>());
  }
  timers_ = std::make_unique<TimerQueue>();
  blocking_ = std::make_unique<BlockingPool>(options.max_blocking_threads,
                                             options.blocking_keep_alive,
                                             options.blocking_stack_size);
  worker_stack_size_ = options.worker_stack_size;
  tracer_ = Tracer::FromOptions(options.trace_path);
  blocking_->set_tracer(tracer_.get());
  workers_.reserve(n);
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(this, i));
    workers_.back()->rng = 0x9e3779b97f4a7c15ULL * (i + 1);
    if (light_pushes_) workers_.back()->deque.UseLightPublish();
  }
  // Every Worker exists before any thread starts: a thread steals from all.
  for (auto& w : workers_) {
    Worker* worker = w.get();
    absl::StatusOr<Thread> t = TryStartThread(
        "ripcord-worker", worker_stack_size_,
        [this, worker] { WorkerMain(worker); });
    RIPCORD_CHECK(t.ok(), "Executor: cannot start worker %d of %d: %s",
                  worker->index, n, t.status().ToString().c_str());
    w->thread = *std::move(t);
  }
}


ExecutorImpl::~ExecutorImpl() {
  const int64_t live = LiveRootGroups();
  RIPCORD_CHECK(live == 0,
                "Executor destroyed while %lld root TaskGroup(s) are alive; "
                "destroy or Wait() them first",
                static_cast<long long>(live));
  RIPCORD_CHECK(!OnWorkerThread(),
                "Executor destroyed from one of its own worker threads");
  // seq_cst: a worker that checks shutdown_ after this store and then parks
  // is unparked below (Unpark before Park makes Park return).
  shutdown_.store(true, std::memory_order_seq_cst);
  for (auto& w : workers_) {
    w->parker.Unpark();
    w->wait_parker.Unpark();
  }
  for (auto& w : workers_) w->thread.join();
  // Each worker left with its own deque and the injection queue empty; the
  // only tasks that can still be queued are lazily dropped ones of closed
  // groups (the census's frozen lifetime) that a racing worker pushed
  // last. Drop them: the last one frees its group's record.
  while (TaskNode* t = inject_.Pop()) {
    RIPCORD_CHECK((t->flags & TaskNode::kLazy) != 0,
                  "Executor destroyed with a queued task of a live group");
    t->run(t, /*drop=*/true);
  }
  blocking_.reset();
  timers_.reset();
  if (tracer_ != nullptr) tracer_->WriteToPath();
}

bool ExecutorImpl::OnWorkerThread() const {
  return tls_worker != nullptr && tls_worker->exec == this;
}

bool ExecutorImpl::AnyRunningOf(const GroupState* group) const {
  const auto key = reinterpret_cast<uintptr_t>(group);
  for (const auto& w : workers_) {
    for (const auto& f : w->frames) {
      // acquire: pairs with the release stores that end a frame.
      uintptr_t v = f.load(std::memory_order_acquire);
      // A gate still "starting" decides soon (no user code): wait for it.
      for (int spins = 0; v == (key | Worker::kFrameStarting); ++spins) {
        CpuRelax();
        if (spins > 256) absl::SleepFor(absl::Microseconds(20));
        v = f.load(std::memory_order_acquire);
      }
      if (v == key) return true;
    }
  }
  return false;
}

void ExecutorImpl::WaitForGatesOf(const GroupState* group) const {
  const auto key = reinterpret_cast<uintptr_t>(group);
  auto in_gate = [key](uintptr_t v) {
    return (v & ~Worker::kFrameTags) == key && (v & Worker::kFrameTags) != 0;
  };
  for (const auto& w : workers_) {
    for (const auto& f : w->frames) {
      // acquire: pairs with the release store that ends a dropping frame.
      for (int spins = 0; in_gate(f.load(std::memory_order_acquire));
           ++spins) {
        CpuRelax();
        // The gate's worker was preempted, maybe by us (more threads than
        // cores): sleep rather than yield, so that it gets a core back
        // (sched_yield may just pick us again).
        if (spins > 256) absl::SleepFor(absl::Microseconds(20));
      }
    }
  }
}

void ExecutorImpl::CountPlain(const GroupState* group, int64_t* running,
                              int64_t* deferred) const {
  const auto key = reinterpret_cast<uintptr_t>(group);
  for (const auto& w : workers_) {
    for (const auto& f : w->frames) {
      // relaxed: see Worker::frames.
      if (f.load(std::memory_order_relaxed) == key) ++*running;
    }
    // relaxed: see Worker::deferred_n. Read the count first: a worker sets
    // the group before the first unit.
    const int64_t n = w->deferred_n.load(std::memory_order_relaxed);
    if (n != 0 && w->deferred_group.load(std::memory_order_relaxed) == group) {
      *deferred += n;
    }
  }
}

void ExecutorImpl::Schedule(TaskNode* task) {
  // Calls only in tail position on the common path (no prologue): a push
  // that must grow the deque, and pushes from other threads, go elsewhere.
  Worker* w = tls_worker;
  if (w == nullptr || w->exec != this) [[unlikely]] {
    return ScheduleSlow(task);
  }
  // See WsDeque::Publish and NotifyAfterPush.
  if (!w->deque.TryPush(task)) [[unlikely]] return ScheduleSlow(task);
  return NotifyAfterPush();
}

void ExecutorImpl::ScheduleSlow(TaskNode* task) {
  Worker* w = tls_worker;
  if (w != nullptr && w->exec == this) {
    w->deque.Push(task);  // grows
  } else {
    inject_.PushBack(task);  // seq_cst RMW of the length.
  }
  NotifyAfterPush();
}

void ExecutorImpl::ScheduleBack(TaskNode* task) {
  inject_.PushBack(task);
  NotifyAfterPush();
}

void ExecutorImpl::NotifyAfterPushSlow() {
  if (NotifyOne()) return;
  // seq_cst: as in NotifyAfterPush.
  if (parked_waiters_.load(std::memory_order_seq_cst) > 0) {
    WakeOneParkedWaiter();
  }
}

bool ExecutorImpl::NotifyOne() {
  const int w = idle_.WorkerToNotify();
  if (w < 0) return false;
  workers_[w]->parker.Unpark();
  return true;
}

void ExecutorImpl::FenceBeforeRecheck(bool others_unparked) const {
  // The heavy half of the deques' light pushes (WsDeque::Publish): after it,
  // every push whose producer read the idle state (or parked_waiters_)
  // before our RMW is visible to our re-check. Only workers push to deques,
  // so with every other worker parked (after our seq_cst RMW; a worker that
  // unparks later does its own seq_cst RMW after it, and its producer's
  // load then sees our RMW) there is nothing to wait for: an idle executor
  // pays no membarrier (e.g. a round trip from an external thread). The
  // kernel refused after registering: the light pushes would be unsafe, and
  // there is no way back from them, so stop with a message.
  if (!light_pushes_ || !others_unparked) return;
  RIPCORD_CHECK(HeavyFence(),
                "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after "
                "the process registered for it; the executor's park "
                "protocol cannot continue safely");
}

bool ExecutorImpl::AnyWorkVisible() const {
  if (!inject_.Empty()) return true;
  for (const auto& w : workers_) {
    if (!w->deque.EmptyHint()) return true;
  }
  return false;
}

void ExecutorImpl::FlushDeferredNow(Worker* w, bool keep_frame) {
  // relaxed: owner-written (see Worker::deferred_n).
  const int64_t n = w->deferred_n.load(std::memory_order_relaxed);
  w->deferred_n.store(0, std::memory_order_relaxed);
  // Below frame_depth the frame belongs to a task running now (it took the
  // frame over at its gate): that task's own release ends it. Above it
  // cannot be: a helping wait flushes before it returns to the frame below.
  const int slot = w->deferred_slot;
  assert(slot <= w->frame_depth);
  w->deferred_group.load(std::memory_order_relaxed)
      ->ReleaseDeferred(n, !keep_frame && slot >= w->frame_depth ? slot : -1);
}

void ExecutorImpl::RunTask(Worker* w, TaskNode* t) {
  const int64_t saved_base = w->base;
  w->base = w->deque.Bottom();
  const uint32_t flags = t->flags;
  if ((flags & TaskNode::kPlain) != 0) {
    RunPlainGated(w, t);
  } else {
    FlushDeferred(w);
    t->run(t, (flags & TaskNode::kDroppable) != 0 &&
                  t->group->stop_requested());
  }
  w->base = saved_base;
}

// The start gate's common path makes calls only in tail position, so it
// needs no callee-saved registers (no prologue): the rare cases are
// separate functions it jumps to.
void ExecutorImpl::RunPlainGated(Worker* w, TaskNode* t) {
  GroupState* const group = t->group;
  const auto key = reinterpret_cast<uintptr_t>(group);
  const int slot = w->frame_depth;
  // Deferred releases (Worker::deferred_n) of another group or slot go
  // first: this task might wait for their group. Those of this group at
  // this slot stay: the frame is theirs and becomes this task's.
  // relaxed: owner-written.
  const bool deferred = w->deferred_n.load(std::memory_order_relaxed) != 0;
  if (deferred && (w->deferred_slot != slot ||
                   w->deferred_group.load(std::memory_order_relaxed) !=
                       group)) [[unlikely]] {
    return FlushThenRunPlainGated(w, t);
  }
  if (slot >= Worker::kTrackedFrames) [[unlikely]] {
    return RunPlainUntracked(t);
  }
  std::atomic<uintptr_t>& frame = w->frames[slot];
  // relaxed, then LightFence: the StoreLoad's heavy half is the census's
  // HeavyFence (executor/sync/membarrier.h). Over a deferred frame of the same
  // group: still a marker to the census, which waits for "starting".
  frame.store(key | Worker::kFrameStarting, std::memory_order_relaxed);
  LightFence();
  if (group->stop_requested()) [[unlikely]] {
    return DropAtGate(w, t, slot, deferred);
  }
  // relaxed: the task runs; PopPlainFrame (via FinishPlain) ends it.
  frame.store(key, std::memory_order_relaxed);
  BeginPlainRun(w->runs[slot], t);
  w->frame_depth = slot + 1;
  tls_gate_frame = slot;
  if (TraceActive()) [[unlikely]] return RunPlainTraced(w->runs[slot], t);
  return t->run(t, /*drop=*/false);
}

void ExecutorImpl::RunPlainTraced(const RunRecord& r, TaskNode* t) {
  GroupState* const g = t->group;
  // relaxed: this thread's own store (BeginPlainRun), reused as the start.
  PlainTraceScope trace(tracer_.get(), t, g->id(), g->name(),
                        r.start.load(std::memory_order_relaxed));
  t->run(t, /*drop=*/false);
}

void ExecutorImpl::FlushThenRunPlainGated(Worker* w, TaskNode* t) {
  FlushDeferredNow(w, /*keep_frame=*/false);
  RunPlainGated(w, t);
}

void ExecutorImpl::RunPlainUntracked(TaskNode* t) {
  // Nested too deep for a frame: nothing can be deferred at this depth
  // (RunPlainGated flushed anything of another slot).
  if (!t->group->GateUntracked()) return t->run(t, /*drop=*/true);
  tls_gate_frame = -1;
  t->run(t, /*drop=*/false);
}

void ExecutorImpl::DropAtGate(Worker* w, TaskNode* t, int slot,
                              bool deferred) {
  GroupState* const group = t->group;
  const auto key = reinterpret_cast<uintptr_t>(group);
  std::atomic<uintptr_t>& frame = w->frames[slot];
  // The drop must not hold releases back (its group may be waited on):
  // release them while the frame still says "starting", which every census
  // step waits for, so that they come before anything it concludes; the
  // drop below ends the frame as usual.
  if (deferred) FlushDeferredNow(w, /*keep_frame=*/true);
  // The freeze: once the group is frozen the drop leaves the counts
  // alone, so the frame goes first; before, it says "dropping" until the
  // drop's release, so that a freezing census waits for it.
  const bool frozen = (t->flags & TaskNode::kLazy) != 0 && group->frozen();
  // relaxed: this frame never ran anything (and releases flushed above
  // reached the census through their RMW of the count).
  frame.store(frozen ? 0 : key | Worker::kFrameDropping,
              std::memory_order_relaxed);
  w->frame_depth = slot + 1;  // a dropped callable's destructor may nest
  t->run(t, /*drop=*/true);
  w->frame_depth = slot;
  // release: pairs with the census's acquire loads (AnyRunningOf,
  // WaitForGatesOf).
  if (!frozen) frame.store(0, std::memory_order_release);
}

void ExecutorImpl::WaitForWalksOf(const GroupState* group) const {
  for (const auto& w : workers_) {
    // acquire: pairs with the release store that ends a walk, so the walk's
    // reads of the ancestry happen-before the caller's release of the
    // group's unit in its parent (which may free the parent's record).
    for (int spins = 0; w->walking.load(std::memory_order_acquire) == group;
         ++spins) {
      CpuRelax();
      // A walk is a few loads; its worker may have been preempted.
      if (spins > 256) absl::SleepFor(absl::Microseconds(20));
    }
  }
}

bool ExecutorImpl::QueuedWithin(Worker* w, const TaskNode* t,
                                const GroupState* filter) {
  const GroupState* const g = t->group;
  // relaxed, then LightFence: the StoreLoad's heavy half is the census's
  // HeavyFence (the census's tag-walks step). Either the census sees
  // this tag and waits for the walk to end, or IsWithin's load of
  // census_passed_ sees the census passed and follows no parent_.
  w->walking.store(g, std::memory_order_relaxed);
  LightFence();
  const bool within = g->IsWithin(filter);
  // release: pairs with the acquire load in WaitForWalksOf.
  w->walking.store(nullptr, std::memory_order_release);
  return within;
}

TaskNode* ExecutorImpl::StealFromOthers(Worker* w,
                                        const GroupState* filter) {
  const int n = num_workers();
  if (n <= 1) return nullptr;
  const int start = static_cast<int>(NextRandom(&w->rng) % n);
  for (int i = 0; i < n; ++i) {
    const int v = (start + i) % n;
    if (v == w->index) continue;
    bool lost_race = false;
    TaskNode* t = workers_[v]->deque.Steal(&lost_race);
    if (t == nullptr && lost_race) t = workers_[v]->deque.Steal(&lost_race);
    if (t == nullptr) continue;
    if (filter == nullptr || MayHelpWith(w, t, filter)) return t;
    // Not ours to run while waiting: hand it to the injection queue's front
    // (it was the oldest task of its deque) for an ordinary worker.
    inject_.PushFront(t);
    NotifyAfterPush();
  }
  return nullptr;
}

TaskNode* ExecutorImpl::FindWork(Worker* w, const GroupState* filter,
                                 bool last_search) {
  // The common case first, with no call but in tail position (no
  // prologue): the next task the waiting task spawned itself, of the
  // waited group.
  if (!last_search && w->deque.Bottom() > w->base) [[likely]] {
    TaskNode* t = w->deque.Pop();
    if (t != nullptr && t->group == filter && GuestMayRun(w, t)) [[likely]] {
      return t;
    }
    return FindWorkAfter(w, filter, t);
  }
  return FindWorkAfter(w, filter, nullptr, last_search);
}

TaskNode* ExecutorImpl::FindWorkAfter(Worker* w, const GroupState* filter,
                                      TaskNode* popped, bool last_search) {
  auto within = [this, w, filter](const TaskNode* n) {
    return MayHelpWith(w, n, filter);
  };
  if (popped != nullptr) {
    if (within(popped)) return popped;
    inject_.PushFront(popped);
    NotifyAfterPush();
  }
  // The own-deque step.
  while (w->deque.Bottom() > w->base) {
    TaskNode* t = w->deque.Pop();
    if (t == nullptr) break;
    if (within(t)) return t;
    inject_.PushFront(t);
    NotifyAfterPush();
  }
  // The search step.
  TaskNode* t = inject_.PopIf(within, last_search ? INT_MAX : 64);
  if (t != nullptr) return t;
  t = StealFromOthers(w, filter);
  if (t != nullptr) return t;
  if (!last_search) return nullptr;
  // The drain-below step.
  while ((t = w->deque.Steal()) != nullptr) {
    if (within(t)) return t;
    inject_.PushBack(t);
    NotifyAfterPush();
  }
  return nullptr;
}

TaskNode* ExecutorImpl::PopInjected(Worker* w) {
  const int64_t queued = inject_.Size();
  if (queued == 0) return nullptr;
  // Our share: queued / workers + 1, capped (Go's globrunqget).
  const int want = static_cast<int>(
      std::min<int64_t>(kInjectBatch, queued / num_workers() + 1));
  TaskNode* batch[kInjectBatch];
  const int n = inject_.PopBatch(batch, want);
  if (n == 0) return nullptr;
  // The nodes were written by the submitter, often long ago: fetch them all
  // at once rather than one cache miss per task as each is run.
  for (int i = 0; i < n; ++i) __builtin_prefetch(batch[i]);
  // Reverse order, so that the deque's LIFO end hands them out in queue
  // order: batch[1] is popped next. One publishing store for all of them.
  std::reverse(batch + 1, batch + n);
  w->deque.PushMany(batch + 1, n - 1);
  if (n > 1) NotifyAfterPush();  // someone idle may steal the rest
  return batch[0];
}

void ExecutorImpl::WorkerMain(Worker* w) {
  tls_worker = w;
  bool searching = false;
  uint32_t tick = 0;
  for (;;) {
    TaskNode* t = nullptr;
    if (++tick % kInjectInterval == 0) t = inject_.Pop();
    if (t == nullptr) t = w->deque.Pop();
    if (t == nullptr) {
      // Nothing of our own left: hand over the deferred releases before
      // anything else (stealing, spinning, parking, exiting).
      FlushDeferred(w);
      t = PopInjected(w);
    }
    if (t == nullptr) {
      if (!searching) searching = idle_.TransitionToSearching();
      if (searching) {
        t = StealFromOthers(w, nullptr);
        if (t == nullptr) t = PopInjected(w);
        for (int i = 1; t == nullptr && i <= kSearchSpins; ++i) {
          CpuRelax();
          if (i % 16 != 0) continue;
          t = PopInjected(w);
          if (t == nullptr) t = StealFromOthers(w, nullptr);
          // seq_cst: pairs with the store in ~ExecutorImpl.
          if (shutdown_.load(std::memory_order_seq_cst)) break;
        }
      }
    }
    if (t != nullptr) {
      if (searching) {
        searching = false;
        if (idle_.TransitionFromSearching()) NotifyOne();
      }
      RunTask(w, t);
      continue;
    }
    // seq_cst: pairs with the store in ~ExecutorImpl.
    if (shutdown_.load(std::memory_order_seq_cst)) break;
    RunParkWindowHook(ParkSite::kWorker);
    // Every queue is re-checked unless another worker still searches
    // (the parking transition's re-check rule).
    const bool recheck = idle_.TransitionToParked(w->index, searching);
    searching = false;
    if (recheck) {
      FenceBeforeRecheck(/*others_unparked=*/idle_.NumUnparked() > 0);
      if (AnyWorkVisible()) NotifyOne();
    }
    Idle::Wake wake;
    do {
      if (!shutdown_.load(std::memory_order_seq_cst)) w->parker.Park();
      wake = idle_.TransitionFromParked(w->index);
      // Our seat is lent (guest seats, above): the borrower owns this
      // record until it lists us parked again. A spurious wake-up in
      // between parks again. (Shutdown cannot meet a lent seat: the
      // borrower's group is a live root or inside one, which
      // ~ExecutorImpl refuses.)
    } while (wake == Idle::Wake::kLent &&
             !shutdown_.load(std::memory_order_seq_cst));
    searching = wake == Idle::Wake::kNotified;
  }
  tls_worker = nullptr;
}

}  // namespace ripcord::internal
