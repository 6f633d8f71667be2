// Copyright 2026 The ripcord Authors.
//
// internal/group_ref.h: the entry points of a task group's record that the
// inline templates call (Spawn's run functions, SpawnBlocking's phases,
// coroutine and started-task nodes). The record itself, GroupState (the join
// word, the census, the stop tree, accounting), is executor/group/'s;
// the protocols are in docs/design/join-and-census.md and docs/design/stop.md.
#ifndef RIPCORD_INTERNAL_GROUP_REF_H_
#define RIPCORD_INTERNAL_GROUP_REF_H_

#include "absl/status/status.h"
#include "ripcord/internal/stop_state.h"
#include "ripcord/stop_token.h"

namespace ripcord::internal {

class GroupState;
struct TaskNode;

// The group of the task running on this thread (null outside tasks), and
// the frame the scheduler's start gate opened for the plain task it is
// starting (-1: nested too deep to publish, counted in the group's
// running_other_). Defined in executor/group/group_state.cc; initial-exec with
// external linkage (see RIPCORD_FAST_TLS in executor/base/check.h), constinit
// so that the inline readers below need no TLS-wrapper call.
extern __attribute__((tls_model("initial-exec"))) constinit thread_local
    GroupState* tls_current_group;
extern __attribute__((tls_model("initial-exec"))) constinit thread_local int
    tls_gate_frame;

// The payload a started task's CancelledError carries to its group when the
// task was stopped through its TaskHandle (internal/task_handle_state.h):
// the group counts it cancelled, not failed, and is not stopped by it.
inline constexpr char kTaskStoppedPayload[] = "ripcord.internal/task-stopped";
inline bool StoppedByItsHandle(const absl::Status& status) {
  return status.GetPayload(kTaskStoppedPayload).has_value();
}

// GroupRef: what a task's node may do to its group `g`, as GroupState's
// members of the same names do (executor/group/group_state.h documents
// each). Thread-safe: any thread, for a group kept alive by the caller's
// unit (a queued or running task holds one). Inline only where a task run
// pays for a call: the thread-local brackets.
struct GroupRef {
  // Accounts a new task and hands it to the scheduler (or frees it unrun,
  // counted cancelled, if g is stopped).
  static void Submit(GroupState* g, TaskNode* task);

  // A TaskNode's run function brackets user code with these: Enter makes
  // g current on this thread and returns the previous current group, to
  // restore with Leave.
  static GroupState* Enter(GroupState* g) {
    GroupState* const previous = tls_current_group;
    tls_current_group = g;
    return previous;
  }
  static void Leave(GroupState* previous) { tls_current_group = previous; }
  // The frame the start gate opened for the plain task starting on this
  // thread (-1: untracked). Call only from that task's run function.
  static int StartPlain() { return tls_gate_frame; }

  // Settling a task: the caller's last touch of g.
  static void FinishPlain(GroupState* g, absl::Status status, int frame,
                          bool lazy);
  static void FinishPlainOk(GroupState* g, int frame, bool lazy);
  static void FinishLazyOk(GroupState* g, int frame);
  static void FinishDropped(GroupState* g, bool lazy = false);
  static void CountStarted(GroupState* g);
  static void FinishTask(GroupState* g, absl::Status status);
  static void FinishCounted(GroupState* g, const absl::Status& status);
  // Gives back the max_concurrency slot a node held (TaskNode::kSlot).
  static void ReleaseSlot(GroupState* g);
  // A blocking call's fn starts / returns (for shutdown reports).
  static void BlockingFnStarted(GroupState* g);
  static void BlockingFnDone(GroupState* g);

  // g's stop source, and a token of it.
  static StopState* stop_state(GroupState* g);
  static bool stop_requested(GroupState* g) {
    return stop_state(g)->stop_requested();
  }
  static StopToken token(GroupState* g) { return TokenFor(stop_state(g)); }
};

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_GROUP_REF_H_
