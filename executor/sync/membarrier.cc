// Copyright 2026 The ripcord Authors.
#include "executor/sync/membarrier.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ripcord::internal {
namespace {

int Membarrier(int cmd) {
  return static_cast<int>(syscall(__NR_membarrier, cmd, 0, 0));
}

bool Register() {
  const int supported = Membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0 ||
      (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 ||
      (supported & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0) {
    return false;
  }
  return Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

}  // namespace

bool RegisterHeavyFence() {
  // A function-local static: registered once, thread-safe initialisation.
  static const bool registered = Register();
  return registered;
}

bool HeavyFence() {
  if (!RegisterHeavyFence()) return false;
  return Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
}

}  // namespace ripcord::internal
