// Copyright 2026 The ripcord Authors.
#include "executor/inject_queue.h"

namespace ripcord::internal {

void InjectQueue::PushBack(TaskNode* t) {
  t->next = nullptr;
  MutexLock lock(&mu_);
  if (tail_ == nullptr) {
    head_ = tail_ = t;
  } else {
    tail_->next = t;
    tail_ = t;
  }
  // seq_cst: see the class comment (pairs with Empty() in a parking worker).
  size_.fetch_add(1, std::memory_order_seq_cst);
}

void InjectQueue::PushFront(TaskNode* t) {
  MutexLock lock(&mu_);
  t->next = head_;
  head_ = t;
  if (tail_ == nullptr) tail_ = t;
  size_.fetch_add(1, std::memory_order_seq_cst);
}

TaskNode* InjectQueue::Pop() {
  // relaxed: a hint that skips the lock when empty; a task pushed right after
  // is found by the worker's next round or by the parking re-check.
  if (size_.load(std::memory_order_relaxed) == 0) return nullptr;
  MutexLock lock(&mu_);
  TaskNode* t = head_;
  if (t == nullptr) return nullptr;
  head_ = t->next;
  if (head_ == nullptr) tail_ = nullptr;
  // relaxed: the count is only a hint for readers; the list is under mu_.
  size_.fetch_sub(1, std::memory_order_relaxed);
  t->next = nullptr;
  return t;
}

int InjectQueue::PopBatch(TaskNode** out, int max) {
  // relaxed: as in Pop().
  if (size_.load(std::memory_order_relaxed) == 0) return 0;
  MutexLock lock(&mu_);
  int n = 0;
  while (n < max && head_ != nullptr) {
    TaskNode* t = head_;
    head_ = t->next;
    t->next = nullptr;
    out[n++] = t;
  }
  if (head_ == nullptr) tail_ = nullptr;
  // relaxed: as in Pop().
  size_.fetch_sub(n, std::memory_order_relaxed);
  return n;
}

TaskNode* InjectQueue::PopIf(absl::FunctionRef<bool(const TaskNode*)> pred,
                             int limit) {
  if (size_.load(std::memory_order_relaxed) == 0) return nullptr;
  MutexLock lock(&mu_);
  TaskNode* prev = nullptr;
  TaskNode* t = head_;
  for (int i = 0; t != nullptr && i < limit; ++i, prev = t, t = t->next) {
    if (!pred(t)) continue;
    if (prev == nullptr) {
      head_ = t->next;
    } else {
      prev->next = t->next;
    }
    if (tail_ == t) tail_ = prev;
    size_.fetch_sub(1, std::memory_order_relaxed);
    t->next = nullptr;
    return t;
  }
  return nullptr;
}

}  // namespace ripcord::internal
