// Copyright 2026 The ripcord Authors.
//
// inject_queue.h: the executor's injection queue: FIFO of TaskNodes submitted
// from threads that are not workers (and of tasks that must go behind
// everything already queued, like a coroutine's Yield). Intrusive (TaskNode::
// next), so queuing allocates nothing.
// Thread-safety: Thread-safe.
#ifndef RIPCORD_EXECUTOR_INJECT_QUEUE_H_
#define RIPCORD_EXECUTOR_INJECT_QUEUE_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "ripcord/internal/mutex.h"
#include "ripcord/internal/task_node.h"

namespace ripcord::internal {

class InjectQueue {
 public:
  InjectQueue() = default;
  InjectQueue(const InjectQueue&) = delete;
  InjectQueue& operator=(const InjectQueue&) = delete;

  // Appends at the back (or the front). The length update is a seq_cst RMW:
  // the store half of the producer's StoreLoad before Idle::ShouldNotify().
  void PushBack(TaskNode* t) ABSL_LOCKS_EXCLUDED(mu_);
  void PushFront(TaskNode* t) ABSL_LOCKS_EXCLUDED(mu_);
  // Pops the front, or nullptr.
  TaskNode* Pop() ABSL_LOCKS_EXCLUDED(mu_);
  // Pops up to `max` tasks from the front into out[0..n), in queue order,
  // under one lock acquisition; returns n.
  int PopBatch(TaskNode** out, int max) ABSL_LOCKS_EXCLUDED(mu_);
  // Pops the first of the first `limit` tasks that satisfies `pred`, or
  // nullptr. `pred` runs under the queue's lock and must not block.
  TaskNode* PopIf(absl::FunctionRef<bool(const TaskNode*)> pred, int limit)
      ABSL_LOCKS_EXCLUDED(mu_);
  // seq_cst: the re-check half of a parking worker's StoreLoad.
  bool Empty() const { return size_.load(std::memory_order_seq_cst) == 0; }
  int64_t Size() const { return size_.load(std::memory_order_relaxed); }

 private:
  mutable Mutex mu_;
  TaskNode* head_ ABSL_GUARDED_BY(mu_) = nullptr;
  TaskNode* tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::atomic<int64_t> size_{0};
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_INJECT_QUEUE_H_
