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

// SpawnSite: where Spawn, Start or SpawnBlocking was called, for labels
// (executor/running_tasks.h). A defaulted parameter of type SpawnSite
// captures the caller's file and line: __builtin_FILE()/__builtin_LINE()
// rather than std::source_location, which libstdc++ 12 lacks under clang 14
// (its --config=clang); both compilers fold them to constants. `file` is
// static data (a string literal), never freed.
struct SpawnSite {
  static constexpr SpawnSite Here(const char* file = __builtin_FILE(),
                                  uint32_t line = __builtin_LINE()) {
    return SpawnSite{file, line};
  }
  const char* file;
  uint32_t line;
};

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
  TaskNode(RunFn r, GroupState* g, uint32_t f, SpawnSite site)
      : run(r), group(g), site_file(site.file), flags(f),
        site_line(site.line) {}

  RunFn run;
  GroupState* group;
  union {
    TaskNode* next = nullptr;  // link in a chain of Join() waiters
    // A plain task's or blocking call's spawn site (SpawnSite::file): they
    // never wait in Join(), so the label costs no byte (coroutines keep
    // theirs in CoroContext).
    const char* site_file;
  };
  uint32_t flags;
  uint32_t site_line = 0;  // SpawnSite::line, in what was tail padding
};

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_TASK_NODE_H_
