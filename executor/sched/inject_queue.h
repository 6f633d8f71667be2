// Copyright 2026 The ripcord Authors.
//
// inject_queue.h: the executor's injection queue: FIFO of TaskNodes submitted
// from threads that are not workers (and of tasks that must go behind
// everything already queued, like a coroutine's Yield).
//
// Layout: a list of blocks of kSlots node pointers (crossbeam's Injector and
// Go's global run queue use blocks too). Not intrusive on purpose: popping a
// batch reads a few contiguous cache lines of pointers instead of one node
// per task, and the nodes (long out of cache after 10^6 submissions) are then
// prefetched together by the worker (ExecutorImpl::PopInjected). A pointer
// costs 8 bytes per queued task, plus one 512-byte block per 62 tasks.
// Removal from the middle (PopIf) leaves a null tombstone that pops skip.
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
  InjectQueue();
  ~InjectQueue();  // frees the blocks (not the nodes still queued)
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
  static constexpr int kSlots = 62;
  struct Block {
    TaskNode* slots[kSlots];
    Block* next;
    Block* prev;
  };
  // The live range is head_->slots[head_index_] up to, not including,
  // tail_->slots[tail_index_], across the blocks from head_ to tail_.
  Block* NewBlock() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeBlock(Block* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the tombstones at the front of the range. PopIf calls it: a queue
  // whose only consumer is PopIf (a Wait() off the executor taking the task
  // it spawned) would otherwise keep every tombstone, and each PopIf would
  // scan them all.
  void DropLeadingTombstones() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pops the front slot (maybe a tombstone) of a non-empty range.
  TaskNode* PopSlot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RangeEmpty() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return head_ == tail_ && head_index_ == tail_index_;
  }

  mutable Mutex mu_;
  Block* head_ ABSL_GUARDED_BY(mu_);
  Block* tail_ ABSL_GUARDED_BY(mu_);
  int head_index_ ABSL_GUARDED_BY(mu_) = 0;
  int tail_index_ ABSL_GUARDED_BY(mu_) = 0;
  Block* spare_ ABSL_GUARDED_BY(mu_) = nullptr;  // one cached empty block
  // Live tasks (tombstones excluded).
  std::atomic<int64_t> size_{0};
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_INJECT_QUEUE_H_
