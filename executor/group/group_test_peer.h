// Copyright 2026 The ripcord Authors.
//
// group_test_peer.h: what tests may do to a GroupState that no API does.
// Defined only in builds without NDEBUG, like the test hooks
// (executor/base/test_hooks.h).
#ifndef RIPCORD_EXECUTOR_GROUP_GROUP_TEST_PEER_H_
#define RIPCORD_EXECUTOR_GROUP_GROUP_TEST_PEER_H_

#include <cstdint>

#include "ripcord/internal/group_state.h"

namespace ripcord::internal {

struct GroupStateTestPeer {
  // Sets g's completed count to `n`, to reach the 2^31 carry of the join
  // word's completed field without running 2^31 tasks. Call it from the
  // group's only running task.
  static void SetCompleted(GroupState* g, int64_t n);
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_GROUP_GROUP_TEST_PEER_H_
