// Copyright 2026 The ripcord Authors.
//
// Conformance tests for task_handle.h against API.md, "Task handles and
// collected outcomes": TaskGroup::Start and its result-type mapping,
// TaskHandle (per-task stop before and while running, for plain tasks,
// coroutines in Sleep and blocking SleepFor; the group's stop reaching
// started tasks; OnDone; taking; empty handles; handles outliving groups and
// executors; move-only results; Join), WaitAll, FailurePolicy::kCollectAll,
// and a stress test racing handle stops against the tasks' start and end.
#include "ripcord/task_handle.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::BlockUntil;
using ::ripcord::testing::kHangTimeout;
using ::ripcord::testing::WaitUntilOrFail;
using ::ripcord::testing::Watchdog;

class TaskHandleTest : public ::testing::Test {
 protected:
  Watchdog watchdog_{absl::Seconds(120)};
};

bool Contains(const absl::Status& s, const char* text) {
  return absl::StrContains(std::string(s.message()), text);
}

// Blocks a worker until `release` (bounded, so a bug fails instead of hangs).
void HoldUntil(const absl::Notification& release) {
  release.WaitForNotificationWithTimeout(kHangTimeout);
}

// ---------------------------------------------------------------------------
// Result types.

// Invariant: T is what f yields (API.md's mapping), for every callable shape.
TEST_F(TaskHandleTest, ResultTypeMapping) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  auto h1 = g.Start([] {});
  auto h2 = g.Start([](StopToken) { return absl::OkStatus(); });
  auto h3 = g.Start([] { return 7; });
  auto h4 = g.Start([](StopToken) { return absl::StatusOr<std::string>("x"); });
  auto h5 = g.Start([]() -> Task<> { co_return; });
  auto h6 = g.Start(
      [](StopToken) -> Task<absl::Status> { co_return absl::OkStatus(); });
  auto h7 = g.Start([]() -> Task<int> { co_return 8; });
  auto h8 = g.Start([]() -> Task<absl::StatusOr<std::string>> {
    co_return std::string("y");
  });
  static_assert(std::is_same_v<decltype(h1), TaskHandle<void>>);
  static_assert(std::is_same_v<decltype(h2), TaskHandle<void>>);
  static_assert(std::is_same_v<decltype(h3), TaskHandle<int>>);
  static_assert(std::is_same_v<decltype(h4), TaskHandle<std::string>>);
  static_assert(std::is_same_v<decltype(h5), TaskHandle<void>>);
  static_assert(std::is_same_v<decltype(h6), TaskHandle<void>>);
  static_assert(std::is_same_v<decltype(h7), TaskHandle<int>>);
  static_assert(std::is_same_v<decltype(h8), TaskHandle<std::string>>);
  static_assert(std::is_same_v<decltype(h1.Wait()), absl::Status>);
  static_assert(std::is_same_v<decltype(h3.Wait()), absl::StatusOr<int>>);
  EXPECT_TRUE(h1.Wait().ok());
  EXPECT_TRUE(h2.Wait().ok());
  EXPECT_EQ(*h3.Wait(), 7);
  EXPECT_EQ(*h4.Wait(), "x");
  EXPECT_TRUE(h5.Wait().ok());
  EXPECT_TRUE(h6.Wait().ok());
  EXPECT_EQ(*h7.Wait(), 8);
  EXPECT_EQ(*h8.Wait(), "y");
  EXPECT_TRUE(g.Wait().ok());
  EXPECT_EQ(g.stats().spawned, 8);
  EXPECT_EQ(g.stats().completed, 8);
}

// Invariant: an error status and an exception are outcomes (UnknownError
// with what()); under kFailFast they fail the group as a spawned task's.
TEST_F(TaskHandleTest, ErrorsAndExceptionsAreOutcomes) {
  Executor ex({.num_workers = 2});
  {
    TaskGroup g(ex);
    auto h = g.Start([]() -> absl::StatusOr<int> {
      return absl::NotFoundError("no such mirror");
    });
    EXPECT_EQ(h.Wait().status().code(), absl::StatusCode::kNotFound);
    absl::Status s = g.Wait();
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(g.stats().failed, 1);
  }
  {
    TaskGroup g(ex);
    auto h = g.Start([]() -> int { throw std::runtime_error("disk on fire"); });
    absl::StatusOr<int> r = h.Wait();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnknown);
    EXPECT_TRUE(Contains(r.status(), "disk on fire"));
    EXPECT_EQ(g.Wait().code(), absl::StatusCode::kUnknown);
  }
  {
    TaskGroup g(ex);
    auto h = g.Start([]() -> Task<int> {
      throw std::runtime_error("coroutine on fire");
      co_return 1;
    });
    absl::StatusOr<int> r = h.Wait();
    EXPECT_TRUE(Contains(r.status(), "coroutine on fire"));
    EXPECT_EQ(g.Wait().code(), absl::StatusCode::kUnknown);
  }
}

// ---------------------------------------------------------------------------
// Per-task stop.

// Invariant: stopped before it starts, f never runs; the outcome is
// CancelledError naming the reason (and the task's name); the task counts
// cancelled; the group is neither stopped nor failed.
TEST_F(TaskHandleTest, StopBeforeStartNeverRuns) {
  for (bool coroutine : {false, true}) {
    Executor ex({.num_workers = 1});
    TaskGroup g(ex, {.name = "g"});
    absl::Notification release;
    g.Spawn([&] { HoldUntil(release); });  // the only worker is busy
    std::atomic<bool> ran{false};
    TaskHandle<int> h;
    if (coroutine) {
      h = g.Start(
          [&]() -> Task<int> {
            ran = true;
            co_return 1;
          },
          {.name = "late"});
    } else {
      h = g.Start(
          [&] {
            ran = true;
            return 1;
          },
          {.name = "late"});
    }
    h.RequestStop("not needed any more");
    EXPECT_TRUE(h.stop_requested());
    EXPECT_FALSE(g.stop_requested());
    release.Notify();
    absl::StatusOr<int> r = h.Wait();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
    EXPECT_TRUE(Contains(r.status(), "not needed any more")) << r.status();
    EXPECT_TRUE(Contains(r.status(), "task 'late'")) << r.status();
    EXPECT_FALSE(ran.load());
    EXPECT_TRUE(g.Wait().ok());
    GroupStats s = g.stats();
    EXPECT_EQ(s.spawned, 2);
    EXPECT_EQ(s.completed, 1);
    EXPECT_EQ(s.cancelled, 1);
    EXPECT_EQ(s.failed, 0);
  }
}

// Invariant: stopped while it runs, a plain task's token and StopCallbacks
// see the stop (the group's token does not); returning CancelledError
// counts it cancelled; the siblings and the group go on.
TEST_F(TaskHandleTest, StopWhileRunningPlain) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::Notification started;
  std::atomic<bool> callback_ran{false};
  std::atomic<bool> group_token_stopped{false};
  StopToken group_token = g.stop_token();
  auto h = g.Start([&](StopToken token) -> absl::Status {
    StopCallback cb(token, [&] { callback_ran = true; });
    started.Notify();
    const absl::Time deadline = absl::Now() + kHangTimeout;
    while (!token.stop_requested() && absl::Now() < deadline) {
      absl::SleepFor(absl::Microseconds(100));
    }
    group_token_stopped = group_token.stop_requested();
    return absl::CancelledError("saw my stop");
  });
  std::atomic<int> sibling_done{0};
  for (int i = 0; i < 10; ++i) g.Spawn([&] { ++sibling_done; });
  ASSERT_TRUE(BlockUntil(started));
  EXPECT_GE(g.stats().running, 1);  // siblings may run too
  h.RequestStop("enough");
  absl::Status r = h.Wait();
  EXPECT_EQ(r.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Contains(r, "saw my stop"));
  EXPECT_TRUE(callback_ran.load());
  EXPECT_FALSE(group_token_stopped.load());
  EXPECT_TRUE(g.Wait().ok());
  EXPECT_EQ(sibling_done.load(), 10);
  GroupStats s = g.stats();
  EXPECT_EQ(s.cancelled, 1);
  EXPECT_EQ(s.completed, 10);
  EXPECT_EQ(s.failed, 0);
}

// Invariant: a blocking SleepFor on the task's token returns CancelledError
// on the handle's stop.
TEST_F(TaskHandleTest, StopWhileInSleepFor) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::Notification started;
  auto h = g.Start([&](StopToken token) -> absl::Status {
    started.Notify();
    return SleepFor(absl::InfiniteDuration(), token);
  });
  ASSERT_TRUE(BlockUntil(started));
  h.RequestStop();
  EXPECT_EQ(h.Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(g.Wait().ok());
  EXPECT_EQ(g.stats().cancelled, 1);
  EXPECT_FALSE(g.stop_requested());
}

// Invariant: a coroutine suspended in Sleep resumes with CancelledError on
// its handle's stop; a sibling coroutine sleeping in the same group is not
// woken; Yield and Blocking see the task's own stop too.
TEST_F(TaskHandleTest, StopWhileCoroutineSleeps) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  std::atomic<bool> sleeping{false};
  auto h = g.Start([&]() -> Task<absl::Status> {
    sleeping = true;
    co_return co_await Sleep(absl::InfiniteDuration());
  });
  std::atomic<bool> sibling_ok{false};
  auto sibling = g.Start([&]() -> Task<absl::Status> {
    absl::Status s = co_await Sleep(absl::Milliseconds(50));
    sibling_ok = s.ok();
    co_return s;
  });
  ASSERT_TRUE(WaitUntilOrFail([&] { return sleeping.load(); }));
  absl::SleepFor(absl::Milliseconds(5));  // usually suspended by now
  h.RequestStop("cancel one download");
  absl::Status r = h.Wait();
  EXPECT_EQ(r.code(), absl::StatusCode::kCancelled);
  // Sleep's status names the task's stop (the group was not stopped).
  EXPECT_TRUE(Contains(r, "cancel one download")) << r;
  EXPECT_TRUE(sibling.Wait().ok());
  EXPECT_TRUE(sibling_ok.load());
  EXPECT_TRUE(g.Wait().ok());
  EXPECT_EQ(g.stats().cancelled, 1);
  EXPECT_EQ(g.stats().completed, 1);

  // Yield and Blocking after the stop.
  absl::Notification go;
  auto y = g.Start([&](StopToken token) -> Task<absl::Status> {
    HoldUntil(go);
    absl::Status ys = co_await Yield();
    EXPECT_EQ(ys.code(), absl::StatusCode::kCancelled);
    absl::Status bs = co_await Blocking([] { return absl::OkStatus(); });
    EXPECT_EQ(bs.code(), absl::StatusCode::kCancelled);
    EXPECT_TRUE(token.stop_requested());
    co_return ys;
  });
  ASSERT_TRUE(WaitUntilOrFail([&] { return g.stats().running == 1; }));
  y.RequestStop("yield no more");
  go.Notify();
  absl::Status yr = y.Wait();
  EXPECT_EQ(yr.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Contains(yr, "yield no more")) << yr;
  EXPECT_TRUE(g.Wait().ok());
  EXPECT_EQ(g.stats().cancelled, 2);
}

// Invariant: a task stopped through its handle that then fails with another
// error has failed: it counts failed and, under kFailFast, fails the group.
TEST_F(TaskHandleTest, StoppedTaskThatFailsFailsTheGroup) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::Notification started;
  auto h = g.Start([&](StopToken token) -> absl::Status {
    started.Notify();
    SleepFor(absl::InfiniteDuration(), token).IgnoreError();
    return absl::DataLossError("half-written file");
  });
  ASSERT_TRUE(BlockUntil(started));
  h.RequestStop();
  EXPECT_EQ(h.Wait().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(g.Wait().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(g.stats().failed, 1);
}

// Invariant: the group's stop reaches started tasks (queued: dropped with
// the group's cause; running: their token), and their outcomes name it.
TEST_F(TaskHandleTest, GroupStopReachesStartedTasks) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex, {.name = "downloads"});
  absl::Notification started;
  auto running = g.Start([&](StopToken token) -> absl::Status {
    started.Notify();
    return SleepFor(absl::InfiniteDuration(), token);
  });
  ASSERT_TRUE(BlockUntil(started));
  std::atomic<int> ran{0};
  std::vector<TaskHandle<void>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(g.Start([&] { ++ran; }));
  g.RequestStop("shutting down");
  absl::Status r = running.Wait();
  EXPECT_EQ(r.code(), absl::StatusCode::kCancelled);
  for (TaskHandle<void>& q : queued) {
    EXPECT_TRUE(q.stop_requested());
    absl::Status s = q.Wait();
    EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
    EXPECT_TRUE(Contains(s, "shutting down")) << s;
    EXPECT_TRUE(Contains(s, "group 'downloads'")) << s;
  }
  EXPECT_EQ(ran.load(), 0);
  absl::Status gs = g.Wait();
  EXPECT_EQ(gs.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Contains(gs, "shutting down"));
  EXPECT_EQ(g.stats().cancelled, 6);
  // Started after the stop: dropped at once, with the group's cause.
  auto late = g.Start([&] { ++ran; });
  EXPECT_TRUE(late.done());
  EXPECT_TRUE(Contains(late.Wait(), "shutting down"));
  EXPECT_EQ(ran.load(), 0);
}

// ---------------------------------------------------------------------------
// OnDone, taking, empty handles.

// Invariant: OnDone registered while the task runs runs once on the ending
// thread before the group counts the task finished (so the group's Wait()
// returns after it); registered after the end, it runs at once on the
// calling thread.
TEST_F(TaskHandleTest, OnDoneOrderingAndInlineCall) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::Notification release;
  auto h = g.Start([&] {
    HoldUntil(release);
    return 5;
  });
  std::atomic<int> calls{0};
  std::atomic<int> seen{0};
  std::thread::id callback_thread;
  h.OnDone([&](absl::StatusOr<int> r) {
    absl::SleepFor(absl::Milliseconds(20));  // a slow callback
    seen = *r;
    callback_thread = std::this_thread::get_id();
    ++calls;
  });
  EXPECT_FALSE(h.valid());
  release.Notify();
  EXPECT_TRUE(g.Wait().ok());
  EXPECT_EQ(calls.load(), 1);  // before Wait() returned
  EXPECT_EQ(seen.load(), 5);
  EXPECT_NE(callback_thread, std::this_thread::get_id());
  EXPECT_TRUE(h.done());

  auto h2 = g.Start([] { return 6; });
  ASSERT_TRUE(g.Wait().ok());
  ASSERT_TRUE(h2.done());
  std::thread::id inline_thread;
  int inline_value = 0;
  h2.OnDone([&](absl::StatusOr<int> r) {
    inline_thread = std::this_thread::get_id();
    inline_value = *r;
  });
  EXPECT_EQ(inline_thread, std::this_thread::get_id());
  EXPECT_EQ(inline_value, 6);
}

// Invariant: an exception thrown by OnDone on the task's thread counts the
// task failed (UnknownError with what()) and fails a kFailFast group.
TEST_F(TaskHandleTest, OnDoneExceptionFailsTheTask) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::Notification release;
  auto h = g.Start([&] { HoldUntil(release); });
  h.OnDone([](absl::Status) { throw std::runtime_error("callback broke"); });
  release.Notify();
  absl::Status s = g.Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_TRUE(Contains(s, "callback broke")) << s;
  EXPECT_EQ(g.stats().failed, 1);
  EXPECT_EQ(g.stats().completed, 0);
}

// Invariant: the outcome is taken once; a second Wait, Join or OnDone gets
// FailedPrecondition at once.
TEST_F(TaskHandleTest, TakingTwice) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  auto h = g.Start([] { return 1; });
  EXPECT_TRUE(h.valid());
  EXPECT_EQ(*h.Wait(), 1);
  EXPECT_FALSE(h.valid());
  EXPECT_TRUE(h.done());
  EXPECT_EQ(h.Wait().status().code(), absl::StatusCode::kFailedPrecondition);
  absl::Status from_on_done;
  h.OnDone([&](absl::StatusOr<int> r) { from_on_done = r.status(); });
  EXPECT_EQ(from_on_done.code(), absl::StatusCode::kFailedPrecondition);
  absl::Status from_join;
  auto joined = g.Start([&]() -> Task<> {
    absl::StatusOr<int> r = co_await h.Join();
    from_join = r.status();
  });
  EXPECT_TRUE(joined.Wait().ok());
  EXPECT_EQ(from_join.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(g.Wait().ok());
}

// Invariant: an empty or moved-from handle is invalid, never done, and
// every take gives FailedPrecondition at once; RequestStop does nothing.
TEST_F(TaskHandleTest, EmptyHandle) {
  TaskHandle<int> empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_FALSE(empty.done());
  EXPECT_FALSE(empty.stop_requested());
  empty.RequestStop();
  EXPECT_EQ(empty.Wait().status().code(),
            absl::StatusCode::kFailedPrecondition);
  int calls = 0;
  empty.OnDone([&](absl::StatusOr<int> r) {
    ++calls;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  });
  EXPECT_EQ(calls, 1);

  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  auto h = g.Start([] { return 3; });
  TaskHandle<int> moved = std::move(h);
  EXPECT_FALSE(h.valid());  // NOLINT(bugprone-use-after-move): on purpose
  EXPECT_EQ(h.Wait().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*moved.Wait(), 3);
  EXPECT_TRUE(g.Wait().ok());
}

// Invariant: Wait() (and Join()) from inside the task itself returns
// FailedPrecondition instead of deadlocking; the task goes on.
TEST_F(TaskHandleTest, WaitFromInsideTheTask) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  std::atomic<TaskHandle<int>*> self{nullptr};
  absl::Status inside;
  TaskHandle<int> h = g.Start([&] {
    TaskHandle<int>* me = nullptr;
    const absl::Time deadline = absl::Now() + kHangTimeout;
    while ((me = self.load()) == nullptr && absl::Now() < deadline) {
    }
    if (me != nullptr) inside = me->Wait().status();
    return 9;
  });
  self = &h;
  ASSERT_TRUE(WaitUntilOrFail([&] { return h.done(); }));
  EXPECT_EQ(inside.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*h.Wait(), 9);  // not taken by the refused wait

  std::atomic<TaskHandle<int>*> coro_self{nullptr};
  absl::Status coro_wait, coro_join;
  TaskHandle<int> c = g.Start([&]() -> Task<int> {
    while (coro_self.load() == nullptr) (void)co_await Yield();
    coro_wait = coro_self.load()->Wait().status();
    coro_join = (co_await coro_self.load()->Join()).status();
    co_return 10;
  });
  coro_self = &c;
  ASSERT_TRUE(WaitUntilOrFail([&] { return c.done(); }));
  EXPECT_EQ(coro_wait.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(coro_join.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*c.Wait(), 10);
  EXPECT_TRUE(g.Wait().ok());
}

// ---------------------------------------------------------------------------
// Lifetime and values.

// Invariant: a handle outlives its group and executor: done() and taking
// still work; handles dropped at any point leak nothing (ASan).
TEST_F(TaskHandleTest, HandleOutlivesGroupAndExecutor) {
  TaskHandle<std::string> kept;
  TaskHandle<void> stopped;
  absl::Status from_callback = absl::UnknownError("not called");
  {
    Executor ex({.num_workers = 2});
    TaskGroup g(ex);
    kept = g.Start([] { return std::string("survivor"); });
    stopped = g.Start([]() -> Task<absl::Status> {
      co_return co_await Sleep(absl::InfiniteDuration());
    });
    auto with_callback = g.Start([] {});
    with_callback.OnDone([&](absl::Status s) { from_callback = s; });
    for (int i = 0; i < 100; ++i) {
      // Dropped at once: queued, running or done when the handle goes.
      (void)g.Start([i] { return i; });
      (void)g.Start([]() -> Task<int> { co_return 1; });
    }
    g.RequestStop("scope ends");
  }
  EXPECT_TRUE(kept.done());
  EXPECT_TRUE(stopped.done());
  absl::StatusOr<std::string> r = kept.Wait();
  // Either it ran before the stop or the stop dropped it.
  if (r.ok()) {
    EXPECT_EQ(*r, "survivor");
  } else {
    EXPECT_TRUE(Contains(r.status(), "scope ends"));
  }
  EXPECT_EQ(stopped.Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(from_callback.ok() || absl::IsCancelled(from_callback));
  stopped.RequestStop();  // after the executor: no effect, no crash
}

// Invariant: move-only results travel through Wait, OnDone and Join.
TEST_F(TaskHandleTest, MoveOnlyResults) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  auto a = g.Start([] { return std::make_unique<int>(1); });
  auto b = g.Start([]() -> Task<std::unique_ptr<int>> {
    co_return std::make_unique<int>(2);
  });
  auto c = g.Start([]() -> absl::StatusOr<std::unique_ptr<int>> {
    return std::make_unique<int>(3);
  });
  absl::StatusOr<std::unique_ptr<int>> ra = a.Wait();
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(**ra, 1);
  std::unique_ptr<int> from_callback;
  absl::Notification got;
  b.OnDone([&](absl::StatusOr<std::unique_ptr<int>> r) {
    if (r.ok()) from_callback = *std::move(r);
    got.Notify();
  });
  ASSERT_TRUE(BlockUntil(got));
  ASSERT_NE(from_callback, nullptr);
  EXPECT_EQ(*from_callback, 2);
  auto joiner = g.Start([&]() -> Task<int> {
    absl::StatusOr<std::unique_ptr<int>> r = co_await c.Join();
    co_return r.ok() ? **r : -1;
  });
  EXPECT_EQ(*joiner.Wait(), 3);
  EXPECT_TRUE(g.Wait().ok());
}

// Invariant: Join() frees the worker while it waits: on one worker, a
// coroutine joining a task that needs that worker does not deadlock.
TEST_F(TaskHandleTest, JoinOnOneWorker) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex);
  auto outer = g.Start([&]() -> Task<int> {
    TaskHandle<int> inner = g.Start([] { return 41; });
    absl::StatusOr<int> r = co_await inner.Join();
    co_return r.ok() ? *r + 1 : -1;
  });
  EXPECT_EQ(*outer.Wait(), 42);
  EXPECT_TRUE(g.Wait().ok());
}

// ---------------------------------------------------------------------------
// WaitAll and kCollectAll.

// Invariant: WaitAll returns every outcome in the handles' order, whatever
// the completion order; an invalid handle gives FailedPrecondition.
TEST_F(TaskHandleTest, WaitAllOrderWithMixedOutcomes) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.on_failure = FailurePolicy::kCollectAll});
  std::vector<TaskHandle<int>> hs;
  hs.push_back(g.Start([]() -> Task<int> {
    (void)co_await Sleep(absl::Milliseconds(30));  // ends last
    co_return 0;
  }));
  hs.push_back(g.Start(
      []() -> absl::StatusOr<int> { return absl::NotFoundError("one"); }));
  hs.push_back(g.Start([]() -> int { throw std::runtime_error("two"); }));
  hs.push_back(g.Start([](StopToken t) -> absl::StatusOr<int> {
    absl::Status s = SleepFor(absl::InfiniteDuration(), t);
    if (!s.ok()) return s;
    return 3;
  }));
  hs.push_back(TaskHandle<int>());
  hs.push_back(g.Start([] { return 5; }));
  hs[3].RequestStop("not this one");
  std::vector<absl::StatusOr<int>> all = WaitAll(hs);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(*all[0], 0);
  EXPECT_EQ(all[1].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(all[2].status().code(), absl::StatusCode::kUnknown);
  EXPECT_TRUE(Contains(all[2].status(), "two"));
  EXPECT_EQ(all[3].status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(all[4].status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*all[5], 5);
  for (const TaskHandle<int>& h : hs) EXPECT_FALSE(h.valid());
  EXPECT_TRUE(g.Wait().ok());
  GroupStats s = g.stats();
  EXPECT_EQ(s.spawned, 5);
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(s.cancelled, 1);
}

// Invariant: under kCollectAll failing and throwing tasks neither stop the
// group nor cancel their siblings; stats().failed counts them; Wait() is OK;
// a stop of the group still reaches every task, and Wait() reports it.
TEST_F(TaskHandleTest, CollectAll) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "gather", .on_failure = FailurePolicy::kCollectAll});
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    g.Spawn([i, &ok]() -> absl::Status {
      if (i % 5 == 0) return absl::InternalError("bad item");
      if (i % 5 == 1) throw std::runtime_error("worse item");
      ++ok;
      return absl::OkStatus();
    });
  }
  auto failing = g.Start([]() -> Task<absl::Status> {
    co_return absl::AbortedError("started and failed");
  });
  EXPECT_EQ(failing.Wait().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(g.Wait().ok());
  EXPECT_FALSE(g.stop_requested());
  EXPECT_EQ(ok.load(), 12);
  GroupStats s = g.stats();
  EXPECT_EQ(s.failed, 9);
  EXPECT_EQ(s.completed, 12);

  // A stop still reaches every task: sleeping coroutines, a blocking sleep
  // (one: it holds a worker) and tasks still queued behind it.
  std::atomic<int> sleepers{0};
  std::vector<TaskHandle<void>> hs;
  for (int i = 0; i < 6; ++i) {
    hs.push_back(g.Start([&]() -> Task<absl::Status> {
      ++sleepers;
      co_return co_await Sleep(absl::InfiniteDuration());
    }));
  }
  g.Spawn([&](StopToken t) {
    ++sleepers;
    return SleepFor(absl::InfiniteDuration(), t);
  });
  ASSERT_TRUE(WaitUntilOrFail([&] { return sleepers.load() == 7; }));
  absl::Notification hold, holding;
  g.Spawn([&] {  // the other worker
    holding.Notify();
    HoldUntil(hold);
  });
  ASSERT_TRUE(BlockUntil(holding));
  hs.push_back(g.Start([] {}));  // queued: both workers are busy
  g.RequestStop("enough gathering");
  hold.Notify();
  absl::Status gs = g.Wait();
  EXPECT_EQ(gs.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Contains(gs, "enough gathering"));
  for (TaskHandle<void>& h : hs) {
    EXPECT_EQ(h.Wait().code(), absl::StatusCode::kCancelled);
  }
  s = g.stats();
  EXPECT_EQ(s.cancelled, 8);
  EXPECT_EQ(s.completed, 13);  // the holder
  EXPECT_EQ(s.failed, 9);
  EXPECT_EQ(s.spawned, s.completed + s.failed + s.cancelled);
}

// Invariant: a kFailFast child group under a kCollectAll parent fails fast
// (its error stops its siblings); the parent only counts the failure of the
// task that returned the child's status, and goes on.
TEST_F(TaskHandleTest, FailFastChildUnderCollectAllParent) {
  Executor ex({.num_workers = 2});
  TaskGroup parent(ex, {.on_failure = FailurePolicy::kCollectAll});
  GroupStats child_stats;
  auto child_result = parent.Start([&]() -> absl::Status {
    TaskGroup child(parent, {.name = "child"});
    // Stopped by its sibling's failure (dropped, or woken in SleepFor).
    child.Spawn(
        [](StopToken t) { return SleepFor(absl::InfiniteDuration(), t); });
    child.Spawn([] { return absl::InternalError("child task failed"); });
    absl::Status s = child.Wait();
    child_stats = child.stats();
    return s;
  });
  std::atomic<int> others{0};
  for (int i = 0; i < 10; ++i) parent.Spawn([&] { ++others; });
  EXPECT_EQ(child_result.Wait().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(child_stats.failed, 1);
  EXPECT_EQ(child_stats.cancelled, 1);
  EXPECT_TRUE(parent.Wait().ok());
  EXPECT_EQ(others.load(), 10);
  GroupStats s = parent.stats();
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.completed, 10);
}

// ---------------------------------------------------------------------------
// Stress.

// Invariant, over many tasks: handle stops racing the tasks' start and end
// (from another thread) never lose or double an outcome: every task either
// ran once and its outcome is what it returned, or never ran and its
// outcome is the handle's CancelledError; every OnDone ran exactly once;
// stats() count exactly the outcomes; the group is never stopped or failed.
// The stress test: the submitting thread keeps at most kStressDepth tasks
// unfinished (it waits for task i - kStressDepth before it starts task i),
// so the workers run tasks about kStressDepth behind it; after starting task
// i it stops task i - lag (even tasks only). By the lag, a stop lands on a
// queued task, one starting or running (each task checks its token for a
// microsecond, a coroutine also at a Yield), or one that has ended.
constexpr int kStressDepth = 256;
bool Stopped(int i) { return i % 2 == 0; }
// -1: chased instead, i.e. stopped when the submitter sees it running
// (running_now below), else at the end.
int StopLag(int i) {
  static constexpr int kLags[] = {0, 64, 250, 256, 300, 1000, -1, -1};
  return kLags[(i / 2) % 8];
}
// The task that started last (a hint for the chase).
std::atomic<int> running_now{-1};

// A task of the stress test: the stop it saw decides its outcome.
absl::StatusOr<int> StressBody(int i, StopToken t) {
  running_now.store(i, std::memory_order_relaxed);
  const absl::Time until = absl::Now() + absl::Microseconds(1);
  while (!t.stop_requested() && absl::Now() < until) {
  }
  if (t.stop_requested()) return absl::CancelledError("task saw its stop");
  return i;
}

TEST_F(TaskHandleTest, StressStopRacesStartAndEnd) {
  const int n = 100000;  // about 4 s under TSan on 2 loaded cores
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "stress"});
  std::vector<TaskHandle<int>> hs(n);
  std::vector<std::atomic<int>> ran(n);
  std::vector<char> done_before_stop(n, 0);
  std::vector<absl::StatusOr<int>> from_callback(n, absl::UnknownError("x"));
  std::atomic<int> callbacks{0};
  // The stops still due: task j (even) is stopped right after task
  // j + StopLag(j) was started, or at the end.
  std::vector<std::vector<int>> stop_after(n);
  for (int j = 0; j < n; j += 2) {
    const int lag = StopLag(j);
    stop_after[lag < 0 ? n - 1 : std::min(n - 1, j + lag)].push_back(j);
  }
  std::vector<char> stopped(n, 0);
  auto stop = [&](int j) {
    if (stopped[j]) return;
    stopped[j] = 1;
    done_before_stop[j] = hs[j].done() ? 1 : 0;
    hs[j].RequestStop("stress stop");
  };
  running_now.store(-1);
  for (int i = 0; i < n; ++i) {
    if (i >= kStressDepth) {
      const absl::Time deadline = absl::Now() + kHangTimeout;
      while (!hs[i - kStressDepth].done() && absl::Now() < deadline) {
        std::this_thread::yield();
      }
    }
    if (i % 3 == 1) {
      hs[i] = g.Start([i, &ran](StopToken t) -> Task<absl::StatusOr<int>> {
        ran[i].fetch_add(1);
        if (!(co_await Yield()).ok()) {
          co_return absl::CancelledError("task saw its stop");
        }
        co_return StressBody(i, t);
      });
    } else {
      hs[i] = g.Start([i, &ran](StopToken t) -> absl::StatusOr<int> {
        ran[i].fetch_add(1);
        return StressBody(i, t);
      });
    }
    if (i % 5 == 0) {
      hs[i].OnDone([i, &from_callback, &callbacks](absl::StatusOr<int> r) {
        from_callback[i] = std::move(r);
        callbacks.fetch_add(1);
      });
    }
    for (int j : stop_after[i]) stop(j);
    const int chased = running_now.load(std::memory_order_relaxed);
    if (chased >= 0 && Stopped(chased) && StopLag(chased) < 0) stop(chased);
  }
  ASSERT_TRUE(g.Wait().ok());
  int64_t ok = 0, cancelled = 0, never_ran = 0, expected_callbacks = 0;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<int> r = absl::UnknownError("unset");
    if (i % 5 == 0) {
      ++expected_callbacks;
      EXPECT_FALSE(hs[i].valid());
      r = std::move(from_callback[i]);
    } else {
      r = hs[i].Wait();
    }
    const int runs = ran[i].load();
    ASSERT_LE(runs, 1) << i;
    if (r.ok()) {
      ++ok;
      EXPECT_EQ(*r, i);
      EXPECT_EQ(runs, 1) << i;
    } else {
      ASSERT_FALSE(done_before_stop[i])
          << "a stop after the end changed the outcome: " << i;
      ASSERT_EQ(r.status().code(), absl::StatusCode::kCancelled)
          << i << " " << r.status();
      ASSERT_TRUE(Stopped(i)) << "cancelled without a stop: " << i;
      ++cancelled;
      if (Contains(r.status(), "task saw its stop")) {
        EXPECT_EQ(runs, 1) << i;
      } else {
        EXPECT_TRUE(Contains(r.status(), "stress stop")) << r.status();
        EXPECT_EQ(runs, 0) << i;
        ++never_ran;
      }
    }
  }
  EXPECT_EQ(callbacks.load(), expected_callbacks);
  EXPECT_EQ(ok + cancelled, n);
  GroupStats s = g.stats();
  EXPECT_EQ(s.spawned, n);
  EXPECT_EQ(s.completed, ok);
  EXPECT_EQ(s.cancelled, cancelled);
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.queued, 0);
  EXPECT_FALSE(g.stop_requested());
  // Every window was hit (stopped unrun, stopped while running); these
  // counts vary from run to run, the invariants above do not.
  ::testing::Test::RecordProperty("never_ran", static_cast<int>(never_ran));
  ::testing::Test::RecordProperty("saw_stop",
                                  static_cast<int>(cancelled - never_ran));
  int after_end = 0;
  for (char d : done_before_stop) after_end += d;
  ::testing::Test::RecordProperty("stopped_after_end", after_end);
}

}  // namespace
}  // namespace ripcord
