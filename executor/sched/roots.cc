// Copyright 2026 The ripcord Authors.
//
// roots.cc: the registry of an executor's root groups (sharded by thread),
// and what walks it: Executor::RequestStop, DebugString and the groups a
// signal's report names.
#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "executor/sched/scheduler.h"
#include "ripcord/internal/mutex.h"

namespace ripcord::internal {
namespace {

int ThreadShardIndex() {
  static std::atomic<int> next{0};
  // relaxed: any spread of threads over shards is correct.
  thread_local int index = next.fetch_add(1, std::memory_order_relaxed);
  return index;
}

}  // namespace

int64_t ExecutorImpl::LiveRootGroups() const {
  int64_t live = 0;
  for (auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    live += shard->count;
  }
  return live;
}

// ---- root registry ------------------------------------------------------

void ExecutorImpl::RegisterRoot(GroupState* group) {
  RootShard* shard = shards_[ThreadShardIndex() % shards_.size()].get();
  MutexLock lock(&shard->mu);
  group->shard_ = shard;
  group->prev_root_ = nullptr;
  group->next_root_ = shard->head;
  if (shard->head != nullptr) shard->head->prev_root_ = group;
  shard->head = group;
  ++shard->count;
}

void ExecutorImpl::UnregisterRoot(GroupState* group) {
  RootShard* shard = group->shard_;
  MutexLock lock(&shard->mu);
  if (group->prev_root_ != nullptr) {
    group->prev_root_->next_root_ = group->next_root_;
  } else {
    shard->head = group->next_root_;
  }
  if (group->next_root_ != nullptr) {
    group->next_root_->prev_root_ = group->prev_root_;
  }
  --shard->count;
}

int ExecutorImpl::RequestStop(StopTarget target, std::string_view reason) {
  int stopped = 0;
  const StopOrigin origin = target == StopTarget::kAll
                                ? StopOrigin::kExecutorAll
                                : StopOrigin::kExecutor;
  for (auto& shard : shards_) {
    // Pin the roots under the shard lock, stop them outside it: a stop runs
    // user StopCallbacks, which may create or destroy root groups.
    std::vector<GroupState*> roots;
    {
      MutexLock lock(&shard->mu);
      for (GroupState* g = shard->head; g != nullptr; g = g->next_root_) {
        g->Pin();
        roots.push_back(g);
      }
    }
    stopped += GroupState::StopPinned(roots, reason, origin);
  }
  return stopped;
}

std::string ExecutorImpl::DebugString() const {
  const absl::Time now = absl::Now();
  // relaxed: a snapshot for people.
  std::string out = absl::StrFormat(
      "Executor: %d workers (%d parked, %d searching, %d parked in Wait(); "
      "queued per worker:",
      num_workers(), idle_.num_parked(), idle_.num_searching(),
      parked_waiters_.load(std::memory_order_relaxed));
  for (const auto& w : workers_) {
    absl::StrAppendFormat(&out, " %lld",
                          static_cast<long long>(w->deque.SizeHint()));
  }
  out += ")\n";
  int64_t skipped = 0;  // groups past DescribeTree's size cap
  // The tasks running now, listed under their groups.
  std::vector<RunningTask> running = SnapshotRunning(*this);
  for (const auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    for (GroupState* g = shard->head; g != nullptr; g = g->next_root_) {
      g->ResolveRunning(&running, now);
    }
  }
  for (const auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    for (GroupState* g = shard->head; g != nullptr; g = g->next_root_) {
      g->DescribeTree(&out, 1, now, &skipped, &running);
    }
  }
  if (skipped > 0) absl::StrAppend(&out, "  ... ", skipped, " more groups\n");
  BlockingPoolStats b = blocking_->stats();
  absl::StrAppendFormat(&out,
                        "blocking pool: %d threads (%d busy), %lld queued\n",
                        b.threads, b.busy, static_cast<long long>(b.queued));
  absl::StrAppendFormat(&out, "timers pending: %d\n",
                        static_cast<int>(timers_->pending()));
  return out;
}

std::vector<BusyGroup> ExecutorImpl::BusyGroups() const {
  std::vector<BusyGroup> out;
  for (const auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    for (GroupState* g = shard->head; g != nullptr; g = g->next_root_) {
      g->CollectBusy(&out);
    }
  }
  return out;
}

}  // namespace ripcord::internal
