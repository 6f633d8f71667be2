// Copyright 2026 The ripcord Authors.
//
// inject_queue_test: the injection queue against a std::deque model, across
// block boundaries (62 slots per block), with PushFront, PopIf tombstones
// and PopBatch; and concurrent producers and consumers that lose nothing.
#include "executor/sched/inject_queue.h"

#include <atomic>
#include <cstdint>
#include <deque>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ripcord::internal {
namespace {

std::vector<TaskNode> MakeNodes(int n) {
  std::vector<TaskNode> nodes;
  nodes.reserve(n);
  for (int i = 0; i < n; ++i) nodes.emplace_back(nullptr, nullptr, i);
  return nodes;  // flags holds the id
}

// Invariant: every operation agrees with a deque model, whatever the mix;
// Size() counts live tasks only (tombstones excluded).
TEST(InjectQueueTest, MatchesADequeModel) {
  std::vector<TaskNode> nodes = MakeNodes(5000);
  InjectQueue q;
  std::deque<TaskNode*> model;
  std::mt19937 rng(42);
  int next = 0;
  for (int step = 0; step < 40000; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op <= 3 && next < static_cast<int>(nodes.size())) {
      q.PushBack(&nodes[next]);
      model.push_back(&nodes[next++]);
    } else if (op == 4 && next < static_cast<int>(nodes.size())) {
      q.PushFront(&nodes[next]);
      model.push_front(&nodes[next++]);
    } else if (op == 5) {
      TaskNode* t = q.Pop();
      if (model.empty()) {
        ASSERT_EQ(t, nullptr);
      } else {
        ASSERT_EQ(t, model.front());
        model.pop_front();
      }
    } else if (op == 6) {
      TaskNode* out[40];
      const int want = static_cast<int>(rng() % 40) + 1;
      const int n = q.PopBatch(out, want);
      ASSERT_EQ(n, std::min<int>(want, static_cast<int>(model.size())));
      for (int i = 0; i < n; ++i) {
        ASSERT_EQ(out[i], model.front());
        model.pop_front();
      }
    } else if (op == 7) {
      // Remove the first task with an id divisible by 7 among the first 100.
      auto pred = [](const TaskNode* t) { return t->flags % 7 == 0; };
      TaskNode* t = q.PopIf(pred, 100);
      TaskNode* want = nullptr;
      for (size_t i = 0; i < model.size() && i < 100; ++i) {
        if (pred(model[i])) {
          want = model[i];
          model.erase(model.begin() + static_cast<int64_t>(i));
          break;
        }
      }
      ASSERT_EQ(t, want);
    }
    ASSERT_EQ(q.Size(), static_cast<int64_t>(model.size()));
    ASSERT_EQ(q.Empty(), model.empty());
  }
  while (!model.empty()) {
    ASSERT_EQ(q.Pop(), model.front());
    model.pop_front();
  }
  EXPECT_EQ(q.Pop(), nullptr);
}

// Invariant: PushFront into an empty queue, then PushBack across several
// blocks, keeps FIFO order (the front block is filled from its end).
TEST(InjectQueueTest, FrontThenBackAcrossBlocks) {
  std::vector<TaskNode> nodes = MakeNodes(300);
  InjectQueue q;
  q.PushFront(&nodes[0]);
  for (int i = 1; i < 300; ++i) q.PushBack(&nodes[i]);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(q.Pop(), &nodes[i]);
  EXPECT_TRUE(q.Empty());
}

// Invariant: with 3 producers and 2 batch consumers racing, every task is
// popped exactly once.
TEST(InjectQueueTest, ConcurrentProducersAndConsumersLoseNothing) {
  constexpr int kPerProducer = 20000;
  constexpr int kProducers = 3;
  std::vector<TaskNode> nodes = MakeNodes(kPerProducer * kProducers);
  std::vector<std::atomic<int>> seen(nodes.size());
  InjectQueue q;
  std::atomic<int> popped{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        TaskNode* t = &nodes[p * kPerProducer + i];
        if (i % 5 == 0) {
          q.PushFront(t);
        } else {
          q.PushBack(t);
        }
      }
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      TaskNode* out[32];
      while (popped.load() < static_cast<int>(nodes.size())) {
        const int n = q.PopBatch(out, 32);
        for (int i = 0; i < n; ++i) seen[out[i]->flags].fetch_add(1);
        popped.fetch_add(n);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << i;
  EXPECT_TRUE(q.Empty());
}

}  // namespace
}  // namespace ripcord::internal
