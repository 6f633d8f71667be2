// Copyright 2026 The ripcord Authors.
#include "executor/sync/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>

namespace ripcord::internal {
namespace {

long Futex(const void* addr, int op, uint32_t val, const struct timespec* ts) {
  return syscall(SYS_futex, addr, op | FUTEX_PRIVATE_FLAG, val, ts, nullptr, 0);
}

// A signal handler (the SignalWatcher's) may interrupt any wait here: the
// wait returns (EINTR) or is restarted (SA_RESTART), and either way the
// callers re-check their condition in a loop.
#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer runs a signal handler that arrives outside its blocking
// interceptors only when the thread next passes through an interceptor; a
// raw futex syscall is none, so a thread waiting here forever would hold
// the handler back forever (the watcher would never see the signal). In
// TSan builds waits are therefore bounded and followed by an intercepted
// nanosleep(0), which runs such a handler.
constexpr int64_t kTsanMaxWaitNs = 20'000'000;

void RunDeferredSignalHandlers() {
  struct timespec zero = {0, 0};
  nanosleep(&zero, nullptr);
}
#endif

}  // namespace

void FutexWait(const std::atomic<uint32_t>* word, uint32_t expected) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
#if defined(__SANITIZE_THREAD__)
  struct timespec ts = {0, kTsanMaxWaitNs};
  Futex(word, FUTEX_WAIT, expected, &ts);
  RunDeferredSignalHandlers();
#else
  Futex(word, FUTEX_WAIT, expected, nullptr);
#endif
}

bool FutexWaitUntil(const std::atomic<uint32_t>* word, uint32_t expected,
                    absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return false;
#if defined(__SANITIZE_THREAD__)
  left = std::min(left, absl::Nanoseconds(kTsanMaxWaitNs));
#endif
  struct timespec ts = absl::ToTimespec(left);
  Futex(word, FUTEX_WAIT, expected, &ts);
#if defined(__SANITIZE_THREAD__)
  RunDeferredSignalHandlers();
#endif
  return absl::Now() < deadline;
}

void FutexWake(const void* word, int count) {
  Futex(word, FUTEX_WAKE, static_cast<uint32_t>(count), nullptr);
}

void FutexWakeAll(const void* word) { FutexWake(word, INT_MAX); }

}  // namespace ripcord::internal
