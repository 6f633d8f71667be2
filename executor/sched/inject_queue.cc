// Copyright 2026 The ripcord Authors.
#include "executor/sched/inject_queue.h"

#include <atomic>
#include <cstdint>

namespace ripcord::internal {

InjectQueue::InjectQueue() {
  MutexLock lock(&mu_);
  head_ = tail_ = NewBlock();
}

InjectQueue::~InjectQueue() {
  MutexLock lock(&mu_);
  for (Block* b = head_; b != nullptr;) {
    Block* next = b->next;
    delete b;
    b = next;
  }
  delete spare_;
}

InjectQueue::Block* InjectQueue::NewBlock() {
  Block* b = spare_;
  if (b != nullptr) {
    spare_ = nullptr;
  } else {
    b = new Block;
  }
  b->next = b->prev = nullptr;
  return b;
}

void InjectQueue::FreeBlock(Block* b) {
  if (spare_ == nullptr) {
    spare_ = b;
  } else {
    delete b;
  }
}

void InjectQueue::PushBack(TaskNode* t) {
  MutexLock lock(&mu_);
  if (tail_index_ == kSlots) {
    Block* b = NewBlock();
    b->prev = tail_;
    tail_->next = b;
    tail_ = b;
    tail_index_ = 0;
  }
  tail_->slots[tail_index_++] = t;
  // seq_cst: see the class comment (pairs with Empty() in a parking worker).
  size_.fetch_add(1, std::memory_order_seq_cst);
}

void InjectQueue::PushFront(TaskNode* t) {
  MutexLock lock(&mu_);
  if (head_index_ == 0) {
    if (RangeEmpty()) {
      // Fill the empty block from its end; the next PushBack opens a block.
      head_index_ = tail_index_ = kSlots;
    } else {
      Block* b = NewBlock();
      b->next = head_;
      head_->prev = b;
      head_ = b;
      head_index_ = kSlots;
    }
  }
  head_->slots[--head_index_] = t;
  size_.fetch_add(1, std::memory_order_seq_cst);
}

TaskNode* InjectQueue::PopSlot() {
  if (head_index_ == kSlots) {
    // The head block is used up and the range is not empty: move on.
    Block* used = head_;
    head_ = used->next;
    head_->prev = nullptr;
    head_index_ = 0;
    FreeBlock(used);
  }
  TaskNode* t = head_->slots[head_index_++];
  if (RangeEmpty()) head_index_ = tail_index_ = 0;  // reuse the block
  return t;
}

void InjectQueue::DropLeadingTombstones() {
  while (!RangeEmpty()) {
    if (head_index_ == kSlots) {
      Block* used = head_;  // used up, and the range goes on: move on
      head_ = used->next;
      head_->prev = nullptr;
      head_index_ = 0;
      FreeBlock(used);
      continue;
    }
    if (head_->slots[head_index_] != nullptr) return;
    ++head_index_;
    if (RangeEmpty()) head_index_ = tail_index_ = 0;  // reuse the block
  }
}

TaskNode* InjectQueue::Pop() {
  // relaxed: a hint that skips the lock when empty; a task pushed right after
  // is found by the worker's next round or by the parking re-check.
  if (size_.load(std::memory_order_relaxed) == 0) return nullptr;
  MutexLock lock(&mu_);
  while (!RangeEmpty()) {
    TaskNode* t = PopSlot();
    if (t == nullptr) continue;  // tombstone
    // relaxed: the count is only a hint for readers; the list is under mu_.
    size_.fetch_sub(1, std::memory_order_relaxed);
    return t;
  }
  return nullptr;
}

int InjectQueue::PopBatch(TaskNode** out, int max) {
  // relaxed: as in Pop().
  if (size_.load(std::memory_order_relaxed) == 0) return 0;
  MutexLock lock(&mu_);
  int n = 0;
  while (n < max && !RangeEmpty()) {
    TaskNode* t = PopSlot();
    if (t != nullptr) out[n++] = t;
  }
  // relaxed: as in Pop().
  size_.fetch_sub(n, std::memory_order_relaxed);
  return n;
}

TaskNode* InjectQueue::PopIf(absl::FunctionRef<bool(const TaskNode*)> pred,
                             int limit) {
  if (size_.load(std::memory_order_relaxed) == 0) return nullptr;
  MutexLock lock(&mu_);
  int seen = 0;
  for (Block* b = head_; b != nullptr && seen < limit; b = b->next) {
    const int begin = b == head_ ? head_index_ : 0;
    const int end = b == tail_ ? tail_index_ : kSlots;
    for (int i = begin; i < end && seen < limit; ++i) {
      TaskNode* t = b->slots[i];
      if (t == nullptr) continue;
      ++seen;
      if (!pred(t)) continue;
      b->slots[i] = nullptr;  // tombstone; Pop skips it
      size_.fetch_sub(1, std::memory_order_relaxed);
      DropLeadingTombstones();
      return t;
    }
  }
  return nullptr;
}

}  // namespace ripcord::internal
