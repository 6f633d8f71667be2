// Copyright 2026 The ripcord Authors.
//
// group_ref.cc: GroupRef, the entry points the inline templates of
// include/ripcord/ call on a group's record, each forwarding to the
// GroupState member of the same name (a tail call). The protocols:
// docs/design/join-and-census.md and docs/design/stop.md.
#include "ripcord/internal/group_ref.h"

#include <atomic>
#include <utility>

#include "absl/status/status.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/internal/stop_state.h"
#include "ripcord/internal/task_node.h"

namespace ripcord::internal {

void GroupRef::Submit(GroupState* g, TaskNode* task) { g->Submit(task); }

void GroupRef::FinishPlain(GroupState* g, absl::Status status, int frame,
                           bool lazy) {
  g->FinishPlain(std::move(status), frame, lazy);
}

void GroupRef::FinishPlainOk(GroupState* g, int frame, bool lazy) {
  g->FinishPlainOk(frame, lazy);
}

void GroupRef::FinishLazyOk(GroupState* g, int frame) {
  g->FinishLazyOk(frame);
}

void GroupRef::FinishDropped(GroupState* g, bool lazy) {
  g->FinishDropped(lazy);
}

void GroupRef::CountStarted(GroupState* g) { g->CountStarted(); }

void GroupRef::FinishTask(GroupState* g, absl::Status status) {
  g->FinishTask(std::move(status));
}

void GroupRef::FinishCounted(GroupState* g, const absl::Status& status) {
  g->FinishCounted(status);
}

void GroupRef::ReleaseSlot(GroupState* g) { g->ReleaseSlot(); }

void GroupRef::BlockingFnStarted(GroupState* g) { g->BlockingFnStarted(); }

void GroupRef::BlockingFnDone(GroupState* g) { g->BlockingFnDone(); }

StopState* GroupRef::stop_state(GroupState* g) { return g->stop_state(); }

}  // namespace ripcord::internal
