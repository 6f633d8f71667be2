// Copyright 2026 The ripcord Authors.
//
// internal/task_node.h: the unit the scheduler moves around. One TaskNode is
// one heap allocation (the node and the user's callable together); no
// std::function per task.
#ifndef RIPCORD_INTERNAL_TASK_NODE_H_
#define RIPCORD_INTERNAL_TASK_NODE_H_

#include <cstdint>

namespace ripcord::internal {

class GroupState;

// TaskNode: Thread-compatible. Owned by whichever queue holds it, then by the
// worker that popped it; `run` consumes (frees) it.
struct TaskNode {
  // Runs the task, or, with drop == true, frees it without running user code
  // (its group was stopped before it started). Either way it settles the
  // task's accounting with its group and frees the node.
  using RunFn = void (*)(TaskNode* self, bool drop);

  // Flags.
  // kDroppable: a spawned task; dropped unrun when its group is stopped.
  // Continuations (a coroutine's resumption, a done callback) are not
  // droppable: they must run to settle what they owe.
  static constexpr uint32_t kDroppable = 1;
  // kPlain: a PlainTask. The scheduler opens its running frame (the start
  // gate, scheduler.cc) before it checks the stop; the task settles through
  // GroupState::FinishPlain*.
  static constexpr uint32_t kPlain = 2;
  // kLazy: a plain task whose callable is trivially destructible, so dropping
  // it runs no user code at all. Once its group is stopped, Wait() need not
  // wait for such a queued task to be dropped (GroupState's census): it will
  // never run, and freeing it later is unobservable.
  static constexpr uint32_t kLazy = 4;
  // kSlot: holds a slot of its group's GroupOptions::max_concurrency
  // (executor/group/group_limit.h); gives it back when it ends (a
  // coroutine: when it suspends). kBlockingSlot: a coroutine whose co_await
  // Blocking fn holds such a slot; its resumption takes it over.
  static constexpr uint32_t kSlot = 8;
  static constexpr uint32_t kBlockingSlot = 16;
  // kOwnStop: a coroutine started with TaskGroup::Start, whose checkpoints
  // read its own stop state (CoroContext::stop_state(), coroutine.h).
  static constexpr uint32_t kOwnStop = 32;

  TaskNode(RunFn r, GroupState* g, uint32_t f) : run(r), group(g), flags(f) {}

  RunFn run;
  GroupState* group;
  TaskNode* next = nullptr;  // link in a chain of Join() waiters
  uint32_t flags;
};

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_TASK_NODE_H_
