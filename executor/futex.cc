// Copyright 2026 The ripcord Authors.
#include "executor/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdint>

namespace ripcord::internal {
namespace {

long Futex(const void* addr, int op, uint32_t val, const struct timespec* ts) {
  return syscall(SYS_futex, addr, op | FUTEX_PRIVATE_FLAG, val, ts, nullptr, 0);
}

}  // namespace

void FutexWait(const std::atomic<uint32_t>* word, uint32_t expected) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  Futex(word, FUTEX_WAIT, expected, nullptr);
}

bool FutexWaitUntil(const std::atomic<uint32_t>* word, uint32_t expected,
                    absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return false;
  struct timespec ts = absl::ToTimespec(left);
  Futex(word, FUTEX_WAIT, expected, &ts);
  return absl::Now() < deadline;
}

void FutexWake(const void* word, int count) {
  Futex(word, FUTEX_WAKE, static_cast<uint32_t>(count), nullptr);
}

void FutexWakeAll(const void* word) { FutexWake(word, INT_MAX); }

}  // namespace ripcord::internal
