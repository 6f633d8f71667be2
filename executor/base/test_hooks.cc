// Copyright 2026 The ripcord Authors.
#include "executor/base/test_hooks.h"

#include <cstdio>
#include <cstdlib>

namespace ripcord::internal {

#ifndef NDEBUG
std::atomic<TestHookFn> test_hooks[static_cast<int>(TestHook::kCount)];
#endif

void SetTestHook(TestHook point, TestHookFn fn) {
#ifdef NDEBUG
  (void)point;
  (void)fn;
  std::fprintf(stderr,
               "ripcord: fatal: SetTestHook() in a build with NDEBUG, which "
               "has no test hooks; skip the test there "
               "(TestHooksAvailable())\n");
  std::abort();
#else
  // relaxed: see RunTestHook().
  test_hooks[static_cast<int>(point)].store(fn, std::memory_order_relaxed);
#endif
}

}  // namespace ripcord::internal
