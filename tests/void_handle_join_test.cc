// Copyright 2026 The ripcord Authors.
//
// Regression test: `co_await handle.Join()` on a TaskHandle<void> did not
// compile. Join() built its "already taken" error with
// Taken(...).status(), and Taken() returns the Outcome, which for
// TaskHandle<void> is absl::Status (no status() member): any coroutine that
// joined a handle of a void or absl::Status task failed to build. Found by
// the chaos harness (docs/chaos.md), the first user of that combination.
//
// Invariant: Join() on a TaskHandle<void> builds and yields the task's
// status; a second Join() yields FailedPrecondition at once.
#include <atomic>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"

namespace ripcord {
namespace {

TEST(VoidHandleJoinTest, JoinOnAVoidHandleYieldsTheStatusThenTaken) {
  Executor ex(ExecutorOptions{.num_workers = 2});
  TaskGroup g(ex, {.on_failure = FailurePolicy::kCollectAll});
  TaskHandle<void> ok = g.Start([] {});
  TaskHandle<void> failing =
      g.Start([] { return absl::InternalError("broken"); });
  std::atomic<int> checks{0};
  g.Spawn([&]() -> Task<absl::Status> {
    absl::Status a = co_await ok.Join();
    absl::Status again = co_await ok.Join();
    absl::Status b = co_await failing.Join();
    if (a.ok()) ++checks;
    if (absl::IsFailedPrecondition(again)) ++checks;
    if (absl::IsInternal(b) && b.message() == "broken") ++checks;
    co_return absl::OkStatus();
  });
  EXPECT_TRUE(g.Wait().ok());  // kCollectAll: the failure is in the handle
  EXPECT_EQ(checks.load(), 3);
}

}  // namespace
}  // namespace ripcord
