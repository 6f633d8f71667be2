// Copyright 2026 The ripcord Authors.
//
// test_util.h: testonly helpers shared by ripcord's tests (namespace
// ripcord::testing). Everything here exists so that a test FAILS instead of
// hanging: every wait takes a bound, and the bound is generous (kHangTimeout)
// because it catches hangs, not slowness.
//
//   ripcord::testing::Watchdog watchdog(absl::Seconds(60));  // aborts a hung test
//   absl::Notification started;
//   group.Spawn([&] { started.Notify(); ... });
//   ASSERT_TRUE(ripcord::testing::BlockUntil(started));
//   ASSERT_TRUE(ripcord::testing::WaitUntilOrFail([&] { return n.load() == 5; }));
//   absl::Status s = ripcord::testing::JoinOrDie(group);
//
// Note for test code inside namespace ripcord: `testing::` there names this
// namespace; GoogleTest's is `::testing::`.
#ifndef RIPCORD_TESTS_TEST_UTIL_H_
#define RIPCORD_TESTS_TEST_UTIL_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/base/test_hooks.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"

namespace ripcord::testing {

// Installs a test hook (executor/base/test_hooks.h) for one scope and
// removes it at the end. Tests that use one skip themselves in builds
// without hooks (NDEBUG): GTEST_SKIP() if !internal::TestHooksAvailable().
class ScopedTestHook {
 public:
  ScopedTestHook(internal::TestHook point, internal::TestHookFn fn)
      : point_(point) {
    internal::SetTestHook(point_, fn);
  }
  ~ScopedTestHook() { internal::SetTestHook(point_, nullptr); }
  ScopedTestHook(const ScopedTestHook&) = delete;
  ScopedTestHook& operator=(const ScopedTestHook&) = delete;

 private:
  internal::TestHook point_;
};

// True in sanitizer builds (.bazelrc's tsan and asan configs define
// RIPCORD_SANITIZER; gcc also defines __SANITIZE_*__).
#if defined(RIPCORD_SANITIZER) || defined(__SANITIZE_THREAD__) || \
    defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizer = true;
#else
inline constexpr bool kSanitizer = false;
#endif

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// kStressScale: multiply repetition counts and sizes of stress loops by this.
// ThreadSanitizer slows atomics and synchronization 5-20x and AddressSanitizer
// about 2-3x; scaled down, the stress tests stay well under a minute under
// TSan on 2 cores (about 15 s measured) and under 15 s plain.
inline constexpr double kStressScale =
    kThreadSanitizer ? 0.25 : (kSanitizer ? 0.5 : 1.0);

// Scaled(n): n * kStressScale, at least `at_least`.
inline int Scaled(int n, int at_least = 1) {
  return std::max(at_least, static_cast<int>(n * kStressScale));
}

// kHangTimeout: the bound on waits that should end at once. It turns a hang
// into a failure; it is not a speed check. 20 s is orders of magnitude above
// any legitimate latency, even under TSan on a loaded 2-core machine shared
// with other builds.
inline constexpr absl::Duration kHangTimeout = absl::Seconds(20);

// Eventually(pred, timeout): polls `pred` (every 500 us) until it holds or
// `timeout` passes; returns its last value. For EXPECT_TRUE(Eventually(...)).
inline bool Eventually(const std::function<bool()>& pred,
                       absl::Duration timeout = kHangTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() >= deadline) return pred();
    absl::SleepFor(absl::Microseconds(500));
  }
  return true;
}

// SpinUntilSet(flag): spins (no sleep: for a task that must keep its worker
// busy while it waits) until `flag` is set; false after kHangTimeout, which
// in the lost-wake-up tests means the task waited for has nobody to run it.
inline bool SpinUntilSet(const std::atomic<bool>& flag) {
  const absl::Time until = absl::Now() + kHangTimeout;
  while (!flag.load()) {
    if (absl::Now() > until) return false;
  }
  return true;
}

// WaitUntilOrFail(pred, timeout): polls pred (every 100 us to 1 ms) until it
// returns true, or fails after `timeout`. Use as
// ASSERT_TRUE(WaitUntilOrFail([&] { return ...; })).
inline ::testing::AssertionResult WaitUntilOrFail(
    const std::function<bool()>& pred, absl::Duration timeout = kHangTimeout,
    std::string_view what = "condition") {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration nap = absl::Microseconds(100);
  while (!pred()) {
    if (absl::Now() >= deadline) {
      return ::testing::AssertionFailure()
             << what << " still false after " << absl::FormatDuration(timeout)
             << " (a hang?)";
    }
    absl::SleepFor(nap);
    nap = std::min(nap * 2, absl::Milliseconds(1));
  }
  return ::testing::AssertionSuccess();
}

// BlockUntil(n, timeout): waits for the notification, or fails after
// `timeout`. Use as ASSERT_TRUE(BlockUntil(n)); inside a task, use the bool
// (a task cannot ASSERT) or EXPECT_TRUE.
inline ::testing::AssertionResult BlockUntil(
    const absl::Notification& n, absl::Duration timeout = kHangTimeout) {
  if (n.WaitForNotificationWithTimeout(timeout)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "notification not notified after " << absl::FormatDuration(timeout)
         << " (a hang?)";
}

// Latch: a countdown latch with a bounded wait (std::latch has none).
// Thread-safe.
class Latch {
 public:
  explicit Latch(int count) : count_(count) {}
  Latch(const Latch&) = delete;
  Latch& operator=(const Latch&) = delete;

  void CountDown() {
    absl::MutexLock lock(&mu_);
    if (count_ > 0) --count_;
  }
  int count() const {
    absl::MutexLock lock(&mu_);
    return count_;
  }
  // True once the count reached zero; false after `timeout`.
  bool WaitFor(absl::Duration timeout = kHangTimeout) const {
    absl::MutexLock lock(&mu_);
    auto zero = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return count_ == 0;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&zero), timeout);
  }

 private:
  mutable absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_);
};

// Watchdog: aborts the process with a message naming the running test if the
// scope is not left within `limit`. A last resort against hangs inside the
// library (where no bounded wait of ours can help, since ~TaskGroup joins):
// an abort with a message is a failure one can debug; a Bazel timeout kill is
// not. Put one in every test fixture.
class Watchdog {
 public:
  explicit Watchdog(absl::Duration limit)
      : thread_([this, limit] { Run(limit); }) {}
  ~Watchdog() {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void Run(absl::Duration limit) {
    std::string name = "(unknown test)";
    if (const ::testing::TestInfo* info =
            ::testing::UnitTest::GetInstance()->current_test_info()) {
      name = absl::StrCat(info->test_suite_name(), ".", info->name());
    }
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), limit)) {
      std::fprintf(stderr,
                   "\nripcord test watchdog: %s still running after %s: "
                   "aborting (a hang)\n",
                   name.c_str(), absl::FormatDuration(limit).c_str());
      std::fflush(stderr);
      std::abort();
    }
  }

  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// JoinOrDie(group, timeout, executor): group.Wait() with a bound. If tasks are
// still running or queued after `timeout`, prints the executor's DebugString
// (when given) and aborts: returning would run ~TaskGroup, which joins and so
// would hang the test instead of failing it.
inline absl::Status JoinOrDie(TaskGroup& group,
                              absl::Duration timeout = kHangTimeout,
                              const Executor* executor = nullptr) {
  absl::Status s = group.WaitFor(timeout);
  if (absl::IsDeadlineExceeded(s)) {
    std::fprintf(stderr,
                 "\nJoinOrDie: group '%s' not joined after %s (a hang?): %s\n"
                 "%s\n",
                 group.name().c_str(), absl::FormatDuration(timeout).c_str(),
                 std::string(s.message()).c_str(),
                 executor != nullptr ? executor->DebugString().c_str() : "");
    std::fflush(stderr);
    std::abort();
  }
  return s;
}

// JoinOrDie(group, executor): the same, with the executor's tree on abort.
inline absl::Status JoinOrDie(TaskGroup& group, const Executor& executor) {
  return JoinOrDie(group, kHangTimeout, &executor);
}

// Contains(haystack, needle): absl::StrContains, for EXPECT_TRUE on reports.
inline bool Contains(absl::string_view haystack, absl::string_view needle) {
  return absl::StrContains(haystack, needle);
}

// Gate: a one-shot gate with a bounded wait. Thread-safe.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // True once opened; false after `timeout` (a hang becomes a failure).
  bool WaitFor(absl::Duration timeout = kHangTimeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;  // guarded by mu_
};

// HasSubstr-style check on a status message (absl::string_view is not
// std::string_view in this Abseil build).
inline bool MessageContains(const absl::Status& s, std::string_view needle) {
  return absl::StrContains(s.message(),
                           absl::string_view(needle.data(), needle.size()));
}

}  // namespace ripcord::testing

#endif  // RIPCORD_TESTS_TEST_UTIL_H_
