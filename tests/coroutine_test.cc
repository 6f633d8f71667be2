// Copyright 2026 The ripcord Authors.
//
// Coroutine tasks (API.md "Coroutine tasks"): Task<T>, Sleep, Yield,
// Blocking, TaskGroup::Join, and cancellation at every await.
#include <array>
#include <atomic>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"

namespace ripcord {
namespace {

#ifdef RIPCORD_SANITIZER
constexpr int kScale = 10;
#else
constexpr int kScale = 1;
#endif

// Waits for `pred` at most 20 s; a test fails instead of hanging.
template <class Pred>
bool Eventually(Pred pred) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// Invariant: Sleep returns OK no earlier than its duration.
TEST(Coroutine, SleepReturnsOkAfterItsTime) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::Duration slept;
  g.Spawn([&]() -> Task<absl::Status> {
    const absl::Time start = absl::Now();
    absl::Status s = co_await Sleep(absl::Milliseconds(50));
    slept = absl::Now() - start;
    co_return s;
  });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_GE(slept, absl::Milliseconds(50));
}

// Invariant: Sleep of zero or less is a checkpoint: OK when not stopped,
// CancelledError when stopped, and it does not suspend.
TEST(Coroutine, SleepZeroIsACheckpoint) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex);
  absl::Status before, after;
  g.Spawn([&](StopToken) -> Task<> {
    before = co_await Sleep(absl::ZeroDuration());
    co_return;
  });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_TRUE(before.ok()) << before;
  TaskGroup h(ex);
  absl::Notification started, stopped;
  h.Spawn([&]() -> Task<> {
    started.Notify();
    stopped.WaitForNotification();  // plain block: the stop arrives meanwhile
    after = co_await Sleep(-absl::Seconds(1));
  });
  started.WaitForNotification();
  h.RequestStop("checkpoint test");
  stopped.Notify();
  EXPECT_TRUE(absl::IsCancelled(h.Wait()));
  EXPECT_TRUE(absl::IsCancelled(after)) << after;
  EXPECT_EQ(h.stats().completed, 1);  // a void task that ran to its end
}

// Invariant: stopping a group while 10,000 coroutines sleep wakes every one
// with CancelledError, promptly, and frees every frame (ASan checks leaks).
TEST(Coroutine, StopWakesAllSleepersWithCancelled) {
  const int n = 10000 / kScale;
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "sleepers"});
  std::atomic<int> asleep{0}, cancelled{0}, other{0};
  for (int i = 0; i < n; ++i) {
    g.Spawn([&, big = std::make_unique<int>(i)]() -> Task<absl::Status> {
      asleep.fetch_add(1);
      absl::Status s = co_await Sleep(absl::Seconds(600));
      (absl::IsCancelled(s) ? cancelled : other).fetch_add(1);
      co_return s;
    });
  }
  ASSERT_TRUE(Eventually([&] { return asleep.load() == n; }));
  const absl::Time stop_at = absl::Now();
  g.RequestStop("wake up");
  absl::Status s = g.Wait();
  // Generous: a hang or a 600 s sleep is what this catches, not speed.
  EXPECT_LT(absl::Now() - stop_at, absl::Seconds(10));
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_NE(std::string(s.message()).find("wake up"), std::string::npos);
  EXPECT_EQ(cancelled.load(), n);
  EXPECT_EQ(other.load(), 0);
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, n);
  EXPECT_EQ(st.cancelled, n);
  EXPECT_EQ(st.running, 0);
}

// Invariant: a stop wakes every sleeper with Sleep's CancelledError, whether
// it resumes them one by one (a few), as one batch in slices (many, past one
// slice), as claims of several arrays by the workers' sweeps (around 28 +
// 224: one array for the requester, up to 8 per sweep), or as several
// batches handed over while the stop still runs (past 1024), and whether they sleep with a timer or without one (infinite
// duration); a Sleep that starts after the stop returns the same error at
// once. Not scaled down under the sanitizers: every path must run there.
TEST(Coroutine, StopWakesFewAndManySleepersWithTimerOrNot) {
  Executor ex({.num_workers = 2});
  for (int n : {1, 3, 4, 5, 31, 32, 33, 100, 224, 225, 252, 253, 281, 1023,
                1024, 1025, 3000}) {
    TaskGroup g(ex, {.name = "sleepers"});
    std::atomic<int> asleep{0}, cancelled{0}, other{0};
    for (int i = 0; i < n; ++i) {
      const absl::Duration d =
          i % 2 == 0 ? absl::InfiniteDuration() : absl::Seconds(600);
      g.Spawn([&, d]() -> Task<absl::Status> {
        asleep.fetch_add(1);
        absl::Status s = co_await Sleep(d);
        // After the stop: no suspension, the same error.
        absl::Status again = co_await Sleep(absl::Seconds(600));
        const char* const kMessage = "Sleep: the task's group was stopped";
        const bool expected = absl::IsCancelled(s) && s.message() == kMessage &&
                              absl::IsCancelled(again) &&
                              again.message() == kMessage;
        (expected ? cancelled : other).fetch_add(1);
        co_return s;
      });
    }
    ASSERT_TRUE(Eventually([&] { return asleep.load() == n; })) << n;
    g.RequestStop("wake up");
    EXPECT_TRUE(absl::IsCancelled(g.Wait())) << n;
    EXPECT_EQ(cancelled.load(), n);
    EXPECT_EQ(other.load(), 0) << n;
    EXPECT_EQ(g.stats().cancelled, n);
  }
}

// Invariant: a stop racing one coroutine's sleep deadline, repeated many
// times with the two moments shifted against each other, resumes it exactly
// once, with OK (the timer won) or CancelledError (the stop won), and never
// hangs or touches a frame after it is gone (ASan).
TEST(Coroutine, StopRacingOneTimerExpiryRepeated) {
  Executor ex({.num_workers = 2});
  const int rounds = 3000 / kScale;
  int ok = 0, cancelled = 0;
  for (int round = 0; round < rounds; ++round) {
    TaskGroup g(ex);
    std::atomic<int> resumed{0};
    std::atomic<bool> asleep{false};
    const absl::Duration d = absl::Microseconds(round % 50);
    g.Spawn([&, d]() -> Task<absl::Status> {
      asleep.store(true);
      absl::Status s = co_await Sleep(d);
      resumed.fetch_add(1);
      co_return s;
    });
    while (!asleep.load()) std::this_thread::yield();
    const absl::Time until = absl::Now() + absl::Microseconds(round % 47);
    while (absl::Now() < until) {
    }
    g.RequestStop("race");
    (void)g.Wait();
    ASSERT_EQ(resumed.load(), 1) << round;
    const GroupStats st = g.stats();
    ASSERT_EQ(st.completed + st.cancelled, 1) << round;
    ASSERT_EQ(st.failed, 0) << round;
    ok += static_cast<int>(st.completed);
    cancelled += static_cast<int>(st.cancelled);
  }
  // Not invariants: shows both outcomes occurred.
  std::printf("timer won %d, stop won %d of %d\n", ok, cancelled, rounds);
}

// Invariant: a StopCallback that stops a second group while the first
// group's stop is running it (so one stop nests in another on one thread)
// cancels the sleepers of both groups, each exactly once.
TEST(Coroutine, StopNestedInAStopCallbackWakesBothGroups) {
  Executor ex({.num_workers = 2});
  const int n = 300;
  TaskGroup a(ex, {.name = "a"});
  TaskGroup b(ex, {.name = "b"});
  std::atomic<int> asleep{0}, cancelled{0};
  for (TaskGroup* g : {&a, &b}) {
    for (int i = 0; i < n; ++i) {
      g->Spawn([&]() -> Task<absl::Status> {
        asleep.fetch_add(1);
        absl::Status s = co_await Sleep(absl::Seconds(600));
        if (absl::IsCancelled(s)) cancelled.fetch_add(1);
        co_return s;
      });
    }
  }
  ASSERT_TRUE(Eventually([&] { return asleep.load() == 2 * n; }));
  // Registered after the sleepers: the stop runs it after some of a's
  // sleep callbacks and before the others.
  StopCallback stop_b(a.stop_token(), [&] { b.RequestStop("nested"); });
  a.RequestStop("outer");
  EXPECT_TRUE(absl::IsCancelled(a.Wait()));
  EXPECT_TRUE(absl::IsCancelled(b.Wait()));
  EXPECT_EQ(cancelled.load(), 2 * n);
  EXPECT_EQ(a.stats().cancelled, n);
  EXPECT_EQ(b.stats().cancelled, n);
}

// Invariant: a coroutine may stop its own group while the others sleep (the
// stop runs on a worker); every other sleeper wakes with CancelledError.
TEST(Coroutine, StopFromInsideACoroutineWakesTheOthers) {
  Executor ex({.num_workers = 2});
  const int n = 2000 / kScale;
  TaskGroup g(ex);
  std::atomic<int> asleep{0}, cancelled{0};
  for (int i = 0; i < n; ++i) {
    g.Spawn([&]() -> Task<absl::Status> {
      asleep.fetch_add(1);
      absl::Status s = co_await Sleep(absl::Seconds(600));
      if (absl::IsCancelled(s)) cancelled.fetch_add(1);
      co_return s;
    });
  }
  ASSERT_TRUE(Eventually([&] { return asleep.load() == n; }));
  g.Spawn([&]() -> Task<> {
    g.RequestStop("from a coroutine");
    co_return;
  });
  EXPECT_TRUE(absl::IsCancelled(g.Wait()));
  EXPECT_EQ(cancelled.load(), n);
}

// Invariant: coroutines of a shielded child keep sleeping through a parent
// stop and finish OK, while the parent's own sleepers are cancelled.
TEST(Coroutine, ShieldedCoroutinesSleepThroughParentStop) {
  Executor ex({.num_workers = 2});
  TaskGroup parent(ex, {.name = "parent"});
  TaskGroup shielded(parent, {.name = "commit", .shielded = true});
  std::atomic<int> started{0}, done{0};
  for (int i = 0; i < 20; ++i) {
    shielded.Spawn([&]() -> Task<absl::Status> {
      started.fetch_add(1);
      absl::Status s = co_await Sleep(absl::Milliseconds(100));
      if (s.ok()) done.fetch_add(1);
      co_return s;
    });
  }
  parent.Spawn([]() -> Task<absl::Status> {
    co_return co_await Sleep(absl::Seconds(600));
  });
  ASSERT_TRUE(Eventually([&] { return started.load() == 20; }));
  parent.RequestStop("shutdown");
  EXPECT_TRUE(shielded.Wait().ok());
  EXPECT_EQ(done.load(), 20);
  EXPECT_TRUE(absl::IsCancelled(parent.Wait()));
}

// Invariant: co_await child.Join() waits for the child's tasks without
// holding a worker: with ONE worker, the joined child's tasks still run.
TEST(Coroutine, JoinChildGroupOnOneWorker) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex);
  std::atomic<int> ran{0};
  absl::Status joined = absl::UnknownError("unset");
  g.Spawn([&]() -> Task<absl::Status> {
    TaskGroup child(g, {.name = "child"});
    for (int i = 0; i < 100; ++i) {
      child.Spawn([&]() -> Task<> {
        (void)co_await Sleep(absl::Milliseconds(1));
        ran.fetch_add(1);
      });
    }
    joined = co_await child.Join();
    co_return joined;
  });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_TRUE(joined.ok()) << joined;
  EXPECT_EQ(ran.load(), 100);
}

// Invariant: Join reports the child's outcome (its first error), and Join on
// the task's own group is FailedPrecondition, not a deadlock.
TEST(Coroutine, JoinReportsOutcomeAndRejectsSelfJoin) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::Status child_status, self_status;
  g.Spawn([&]() -> Task<> {
    TaskGroup child(g);
    child.Spawn([]() -> absl::Status { return absl::DataLossError("disk"); });
    child_status = co_await child.Join();
    self_status = co_await g.Join();
  });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(child_status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(self_status.code(), absl::StatusCode::kFailedPrecondition);
}

// Invariant: Blocking runs fn off the workers and delivers its value, its
// status, and an exception as a non-OK status.
TEST(Coroutine, BlockingDeliversValueStatusAndException) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex);
  absl::StatusOr<int> value = 0;
  absl::Status status, thrown;
  std::thread::id fn_thread, worker_thread;
  g.Spawn([&]() -> Task<> {
    worker_thread = std::this_thread::get_id();
    value = co_await Blocking([&] {
      fn_thread = std::this_thread::get_id();
      return 42;
    });
    status = co_await Blocking(
        [](StopToken) { return absl::NotFoundError("nothing"); });
    thrown = co_await Blocking([]() -> absl::Status {
      throw std::runtime_error("kaput");
    });
  });
  ASSERT_TRUE(g.Wait().ok());
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 42);
  EXPECT_NE(fn_thread, worker_thread);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(thrown.ok());
  EXPECT_NE(std::string(thrown.message()).find("kaput"), std::string::npos);
}

// Invariant: a stop during Blocking lets fn finish and hands back fn's
// result (fn is never interrupted; it sees its token).
TEST(Coroutine, BlockingWaitsForFnAfterStop) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::Notification in_fn;
  absl::StatusOr<std::string> got = std::string();
  g.Spawn([&]() -> Task<> {
    got = co_await Blocking([&](StopToken token) -> absl::StatusOr<std::string> {
      in_fn.Notify();
      while (!token.stop_requested()) absl::SleepFor(absl::Milliseconds(1));
      return std::string("finished anyway");
    });
  });
  in_fn.WaitForNotification();
  g.RequestStop("stop");
  EXPECT_TRUE(absl::IsCancelled(g.Wait()));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "finished anyway");
}

Task<int64_t> Depth(int n) {
  if (n == 0) co_return 0;
  int64_t below = co_await Depth(n - 1);
  co_return below + 1;
}

// Invariant: a chain of 100,000 nested co_awaits neither overflows the stack
// nor loses a value (resumption goes through the driver loop).
TEST(Coroutine, DeepAwaitChainDoesNotOverflow) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex);
  int64_t depth = -1;
  g.Spawn([&]() -> Task<> { depth = co_await Depth(100000); });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(depth, 100000);
}

Task<absl::StatusOr<int>> Half(int x) {
  if (x % 2 != 0) co_return absl::InvalidArgumentError("odd");
  co_return x / 2;
}

Task<> Throws() {
  throw std::logic_error("escaped");
  co_return;
}

// Invariant: Task<StatusOr<U>> awaited directly yields its value or error;
// an exception escaping a coroutine fails the group with its what().
TEST(Coroutine, StatusOrTasksAndExceptions) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  absl::StatusOr<int> a, b;
  g.Spawn([&]() -> Task<> {
    a = co_await Half(10);
    b = co_await Half(3);
  });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(*a, 5);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  TaskGroup h(ex);
  h.Spawn([]() -> Task<> { co_await Throws(); });
  absl::Status s = h.Wait();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("escaped"), std::string::npos) << s;
}

// Invariant: on one worker two yielding coroutines alternate (Yield goes
// behind the tasks already queued, not into a LIFO slot).
TEST(Coroutine, YieldAlternatesOnOneWorker) {
  Executor ex({.num_workers = 1});
  TaskGroup g(ex);
  std::string trace;
  absl::Notification go;
  // Occupy the worker so both coroutines are queued before either starts.
  g.Spawn([&] { go.WaitForNotification(); });
  for (char c : {'a', 'b'}) {
    g.Spawn([&trace, c]() -> Task<absl::Status> {
      for (int i = 0; i < 3; ++i) {
        trace.push_back(c);
        absl::Status s = co_await Yield();
        if (!s.ok()) co_return s;
      }
      co_return absl::OkStatus();
    });
  }
  go.Notify();
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(trace, "ababab");
}

// Invariant: a capturing lambda's captures live until its coroutine has
// finished, across suspensions.
TEST(Coroutine, CapturesOutliveSuspensions) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  std::atomic<int> sum{0};
  for (int i = 0; i < 100; ++i) {
    g.Spawn([&sum, p = std::make_shared<int>(i), s = std::string(100, 'x')]()
                -> Task<> {
      (void)co_await Sleep(absl::Milliseconds(1));
      (void)co_await Yield();
      sum.fetch_add(*p + static_cast<int>(s.size()));
    });
  }
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(sum.load(), 4950 + 100 * 100);
}

// Counts its destructions (frames and captures destroyed exactly once).
struct DestroyCounter {
  explicit DestroyCounter(std::atomic<int>* n) : count(n) {}
  DestroyCounter(DestroyCounter&& o) noexcept
      : count(std::exchange(o.count, nullptr)) {}
  DestroyCounter(const DestroyCounter&) = delete;
  ~DestroyCounter() {
    if (count != nullptr) count->fetch_add(1);
  }
  std::atomic<int>* count;
};

// Invariant: coroutines that a stop resumes in one claimed batch and that
// end differently after the await (CancelledError: settled with the batch;
// OK; another error; suspending again on a child group's Join) are each
// settled exactly once: after the join, stats are exact per kind, the group
// reports the first non-cancelled error, and every frame and every captured
// object is destroyed exactly once. Repeated, with batch sizes around the
// array size (28), a sweep's claim of several arrays (253 = 28 + 224 +
// 1) and the requester's first batch.
TEST(Coroutine, StopSettlesMixedOutcomesOfOneBatchExactly) {
  Executor ex({.num_workers = 2});
  for (int round = 0; round < 40 / kScale + 8; ++round) {
    const int n =
        std::vector<int>{1, 27, 28, 29, 56, 57, 300, 253}[round % 8];
    std::atomic<int> asleep{0}, frames{0}, captures{0};
    {
      TaskGroup g(ex, {.name = "mixed"});
      TaskGroup child(g, {.name = "child", .shielded = true});
      absl::Notification release_child;
      child.Spawn([&] { release_child.WaitForNotification(); });
      for (int i = 0; i < n; ++i) {
        g.Spawn([&, i, c = DestroyCounter(&captures)]() -> Task<absl::Status> {
          DestroyCounter in_frame(&frames);
          asleep.fetch_add(1);
          absl::Status s = co_await Sleep(absl::Seconds(600));
          if (!absl::IsCancelled(s)) co_return absl::InternalError("woke");
          switch (i % 4) {
            case 0:
              co_return s;
            case 1:
              co_return absl::OkStatus();
            case 2:
              co_return absl::DataLossError("after the stop");
            default:
              // Suspends again: the shielded child is still busy.
              co_return co_await child.Join();
          }
        });
      }
      ASSERT_TRUE(Eventually([&] { return asleep.load() == n; })) << n;
      g.RequestStop("mixed");
      // Let the Join()s suspend before the child may finish.
      absl::SleepFor(absl::Milliseconds(2));
      release_child.Notify();
      const absl::Status status = g.Wait();
      const int kinds[4] = {(n + 3) / 4, (n + 2) / 4, (n + 1) / 4, n / 4};
      if (kinds[2] > 0) {
        EXPECT_TRUE(absl::IsDataLoss(status)) << status;
      } else {
        EXPECT_TRUE(absl::IsCancelled(status)) << status;
      }
      const GroupStats st = g.stats();
      EXPECT_EQ(st.spawned, n);
      EXPECT_EQ(st.cancelled, kinds[0]) << n;
      // Join() of the OK child: completed too.
      EXPECT_EQ(st.completed, kinds[1] + kinds[3]) << n;
      EXPECT_EQ(st.failed, kinds[2]) << n;
      EXPECT_EQ(st.running, 0);
      EXPECT_EQ(st.queued, 0);
      EXPECT_TRUE(child.Wait().ok());
    }
    EXPECT_EQ(frames.load(), n);
    EXPECT_EQ(captures.load(), n);
  }
}

// Invariant: every sleeper a stop resumes gets a CancelledError equal to
// Sleep's own (code, message, no payload), however the coroutines before it
// in the same batch used theirs: handed it back unchanged (the sweep passes
// that reference on to the next sleeper), kept a copy beyond the group's
// life, modified their copy (a payload), or returned another
// CancelledError. Each kept copy is still intact after the group is gone
// (ASan: no rep freed while referenced), and each outcome is settled once.
TEST(Coroutine, StopResultsStayEqualWhateverTheBatchDoesWithTheirs) {
  Executor ex({.num_workers = 2});
  const absl::Status expected =
      absl::CancelledError("Sleep: the task's group was stopped");
  for (int n : {1, 5, 28, 29, 253, 600}) {
    std::vector<absl::Status> kept(static_cast<size_t>(n));
    std::atomic<int> asleep{0}, equal{0}, unequal{0};
    {
      TaskGroup g(ex, {.name = "results"});
      for (int i = 0; i < n; ++i) {
        g.Spawn([&, i]() -> Task<absl::Status> {
          asleep.fetch_add(1);
          absl::Status s = co_await Sleep(absl::Seconds(600));
          (s == expected ? equal : unequal).fetch_add(1);
          switch (i % 4) {
            case 0:
              co_return s;
            case 1:
              kept[static_cast<size_t>(i)] = s;  // one writer per index
              co_return s;
            case 2:
              s.SetPayload("ripcord.test/mine", absl::Cord("x"));
              co_return s;
            default:
              co_return absl::CancelledError("mine");
          }
        });
      }
      ASSERT_TRUE(Eventually([&] { return asleep.load() == n; })) << n;
      g.RequestStop("results");
      EXPECT_TRUE(absl::IsCancelled(g.Wait())) << n;
      const GroupStats st = g.stats();
      EXPECT_EQ(st.cancelled, n);
      EXPECT_EQ(st.running, 0);
    }
    EXPECT_EQ(equal.load(), n);
    EXPECT_EQ(unequal.load(), 0) << n;
    for (int i = 1; i < n; i += 4) {
      EXPECT_EQ(kept[static_cast<size_t>(i)], expected) << i;
    }
  }
}

// Invariant: user code after a cancelled await may block its worker on
// another group (Wait() on a worker helps while it waits) while the rest of
// its batch is not settled yet: nothing waits for that deferred settle, so
// both groups finish and the stopped group's stats are exact.
TEST(Coroutine, CodeAfterCancelledSleepMayWaitOnAnotherGroup) {
  Executor ex({.num_workers = 2});
  for (int round = 0; round < 10 / kScale + 2; ++round) {
    const int n = 100;
    std::atomic<int> asleep{0}, waited{0};
    TaskGroup other(ex, {.name = "other"});
    TaskGroup g(ex, {.name = "sleepers"});
    for (int i = 0; i < n; ++i) {
      g.Spawn([&, i]() -> Task<absl::Status> {
        asleep.fetch_add(1);
        absl::Status s = co_await Sleep(absl::Seconds(600));
        if (i % 10 == 0) {
          TaskGroup inner(other, {.name = "inner"});
          inner.Spawn([] { absl::SleepFor(absl::Microseconds(200)); });
          if (inner.Wait().ok()) waited.fetch_add(1);
        }
        co_return s;
      });
    }
    ASSERT_TRUE(Eventually([&] { return asleep.load() == n; }));
    g.RequestStop("wake");
    EXPECT_TRUE(absl::IsCancelled(g.Wait()));
    EXPECT_EQ(waited.load(), n / 10);
    const GroupStats st = g.stats();
    EXPECT_EQ(st.spawned, n);
    EXPECT_EQ(st.cancelled, n);
    EXPECT_EQ(st.running, 0);
    EXPECT_TRUE(other.Wait().ok());
  }
}

// Invariant: many sleeps of varied short durations, registered and removed
// in every order while others stay registered (each stop entry leaves its
// array, whose last entry takes its place), all wake with OK exactly once,
// and a stop afterwards finds nothing left to cancel.
TEST(Coroutine, ManySleepsOfVariedLengthsAllWakeOk) {
  Executor ex({.num_workers = 2});
  const int n = 3000 / kScale;
  TaskGroup g(ex, {.name = "varied"});
  std::atomic<int> ok{0};
  for (int i = 0; i < n; ++i) {
    g.Spawn([&, i]() -> Task<absl::Status> {
      for (int k = 0; k < 3; ++k) {
        absl::Status s =
            co_await Sleep(absl::Microseconds(100 * ((i * 7 + k * 13) % 97)));
        if (!s.ok()) co_return s;
      }
      ok.fetch_add(1);
      co_return absl::OkStatus();
    });
  }
  EXPECT_TRUE(g.Wait().ok());
  EXPECT_EQ(ok.load(), n);
  g.RequestStop("after");
  const GroupStats st = g.stats();
  EXPECT_EQ(st.completed, n);
  EXPECT_EQ(st.cancelled, 0);
}

// Invariant: a stop racing many sleep deadlines never loses or doubles a
// resumption: every coroutine finishes exactly once with OK or Cancelled.
TEST(Coroutine, StopRacesTimersStress) {
  Executor ex({.num_workers = 2});
  for (int round = 0; round < 50 / kScale + 2; ++round) {
    TaskGroup g(ex);
    std::atomic<int> finished{0};
    const int n = 200;
    for (int i = 0; i < n; ++i) {
      g.Spawn([&, i]() -> Task<absl::Status> {
        absl::Status s = co_await Sleep(absl::Microseconds(50 * (i % 20)));
        finished.fetch_add(1);
        co_return s;
      });
    }
    absl::SleepFor(absl::Microseconds(300));
    g.RequestStop("race");
    (void)g.Wait();
    GroupStats st = g.stats();
    EXPECT_EQ(st.spawned, n);
    EXPECT_EQ(st.completed + st.cancelled, n);
    EXPECT_EQ(st.failed, 0);
    // Every OK completion ran its body once; none ran twice.
    EXPECT_GE(finished.load(), st.completed);
    EXPECT_LE(finished.load(), n);
  }
}

// Invariant: when a stop's worker sweeps (beyond the requester's first 28
// entries) race many timers that fire around the stop, each coroutine is
// resumed exactly once, with OK exactly when its timer won (the sweep's
// plain-store shortcut is taken only for timers it removed before they
// fired), and the group counts every coroutine once.
// Odd rounds give every coroutine the same deadline and stop at it, so the
// timer thread fires them (in Schedule() order) while the sweeps complete
// them (newest first) and the two cross somewhere in the middle.
TEST(Coroutine, StopSweepRacingManyTimerExpiriesResumesEachOnce) {
  Executor ex({.num_workers = 2});
  for (int round = 0; round < 60 / kScale + 2; ++round) {
    TaskGroup g(ex);
    constexpr int kN = 1500;
    std::vector<std::atomic<int>> resumed(kN);
    std::atomic<int> asleep{0}, ok{0};
    const bool common = round % 2 == 1;
    const absl::Time deadline = absl::Now() + absl::Milliseconds(20);
    for (int i = 0; i < kN; ++i) {
      g.Spawn([&, i]() -> Task<absl::Status> {
        asleep.fetch_add(1);
        // Spread: deadlines over 0-2 ms from each Sleep, the stop comes
        // once all are asleep.
        absl::Status s = co_await Sleep(
            common ? deadline - absl::Now()
                   : absl::Microseconds(i * 2000 / kN));
        resumed[i].fetch_add(1);
        if (s.ok()) ok.fetch_add(1);
        co_return s;
      });
    }
    // Every coroutine has reached its Sleep (none is dropped unstarted).
    ASSERT_TRUE(Eventually([&] { return asleep.load() == kN; }));
    if (common) {
      while (absl::Now() < deadline) {
      }
    }
    g.RequestStop("race");
    (void)g.Wait();
    for (int i = 0; i < kN; ++i) ASSERT_EQ(resumed[i].load(), 1) << i;
    const GroupStats st = g.stats();
    EXPECT_EQ(st.completed + st.cancelled, kN);
    EXPECT_EQ(st.completed, ok.load());
    EXPECT_EQ(st.failed, 0);
  }
}

// ---- The root frame in the node's block (FrameRoom, internal/coroutine.h) --

// Where a frame lives: recorded by `co_await FrameProbe{&where}`, which does
// not suspend.
struct FrameWhere {
  const void* frame = nullptr;  // the awaiting coroutine's frame
  const void* node = nullptr;   // its spawned task's node
  uint32_t room = 0;            // the bytes the node reserved for a frame
};
struct FrameProbe {
  FrameWhere* out;
  bool await_ready() noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    internal::CoroContext* const ctx = internal::ContextOf(h);
    out->frame = h.address();
    out->node = ctx;
    out->room = ctx->room_bytes;
    return false;  // resume at once
  }
  void await_resume() noexcept {}
};
// True if w's frame sits in the room of a node spawned from an F. Without a
// room the address test alone could pass: the allocator may put a separate
// frame right after a node that has none.
template <class F>
bool InRoom(const FrameWhere& w) {
  return w.room != 0 &&
         w.frame == static_cast<const char*>(w.node) +
                        internal::SpawnedCoroutine<F>::NodeBytes();
}

// A lambda whose type no other test spawns.
auto MakeProbingSleeper(FrameWhere* out, std::atomic<int>* done) {
  return [out, done]() -> Task<absl::Status> {
    co_await FrameProbe{out};
    absl::Status s = co_await Sleep(absl::Milliseconds(1));
    done->fetch_add(1);
    co_return s;
  };
}

// Invariant: the first spawn of a callable type allocates its root frame
// apart (its size is not known yet); from the second on, the frame lives in
// the room its node reserved. Fails if the room is never used, or is used
// before its size is known.
TEST(CoroutineFrameRoom, RootFrameSharesTheNodesBlockFromTheSecondSpawn) {
  using F = decltype(MakeProbingSleeper(nullptr, nullptr));
  Executor ex({.num_workers = 2});
  std::atomic<int> done{0};
  for (int i = 0; i < 3; ++i) {
    FrameWhere w;
    TaskGroup g(ex);
    g.Spawn(MakeProbingSleeper(&w, &done));
    ASSERT_TRUE(g.Wait().ok());
    if (i == 0) {
      EXPECT_EQ(w.room, 0u);
      EXPECT_FALSE(InRoom<F>(w));
    } else {
      EXPECT_GT(w.room, 0u) << i;
      EXPECT_TRUE(InRoom<F>(w)) << i;
    }
  }
  EXPECT_EQ(done.load(), 3);
}

// A callable that is not itself a coroutine: its operator() returns one of
// three member coroutines of different frame sizes (each gets *this, so the
// callable in the node, as its first argument: any may take the room). A
// huge frame is one too large for a cached block with its node: no room is
// reserved for it.
struct ThreeFrameSizes {
  enum Size { kSmall, kBig, kHuge };
  Size size;
  FrameWhere* out;
  int* result;

  Task<> operator()() {
    switch (size) {
      case kSmall:
        return Small();
      case kBig:
        return Padded<24>();
      case kHuge:
        return Padded<128>();
    }
    return Small();
  }
  Task<> Small() {
    co_await FrameProbe{out};
    (void)co_await Yield();
    *result = 1;
  }
  template <int kN>
  Task<> Padded() {
    std::array<int, kN> pad;  // lives across the awaits: in the frame
    for (int i = 0; i < kN; ++i) pad[i] = i;
    co_await FrameProbe{out};
    (void)co_await Yield();
    int sum = 0;
    for (int v : pad) sum += v;
    *result = sum;
  }
};

// Invariant: spawns of one callable type whose frames differ in size each
// run correctly: a frame larger than the room learnt from the previous
// spawn is allocated apart (and its size learnt for the next), a smaller
// one fits, and after a frame too large for any room none is reserved.
// Under ASan a frame placed in too small a room overflows the node's block
// and fails the test.
TEST(CoroutineFrameRoom, FramesLargerThanTheRoomOrOfDifferingSizes) {
  using S = ThreeFrameSizes;
  Executor ex({.num_workers = 2});
  const std::pair<S::Size, bool> steps[] = {
      // size, in the room?
      {S::kSmall, false}, {S::kSmall, true}, {S::kBig, false},
      {S::kBig, true},    {S::kSmall, true}, {S::kBig, false},
      {S::kHuge, false},  {S::kSmall, false}, {S::kSmall, true}};
  for (const auto& [size, in_room] : steps) {
    FrameWhere w;
    int result = 0;
    TaskGroup g(ex);
    g.Spawn(ThreeFrameSizes{size, &w, &result});
    ASSERT_TRUE(g.Wait().ok());
    EXPECT_EQ(result, size == S::kSmall ? 1 : size == S::kBig ? 276 : 8128);
    EXPECT_EQ(InRoom<ThreeFrameSizes>(w), in_room) << size;
  }
}

Task<absl::Status> SleepThenOk(StopToken) {
  (void)co_await Sleep(absl::Milliseconds(1));
  co_return absl::OkStatus();
}

struct Other {
  std::atomic<int>* ran;
  Task<> Run() {
    (void)co_await Yield();
    ran->fetch_add(1);
  }
};
// Calls a member coroutine of another object: the frame's first argument is
// not the callable.
struct Delegates {
  Other* other;
  FrameWhere* out;
  Task<> operator()() { return Probe(other->Run(), out); }
  static Task<> Probe(Task<> inner, FrameWhere* out) {
    co_await FrameProbe{out};
    co_await std::move(inner);
  }
};

// Invariant: callables that are not closures, a function pointer and a
// struct whose coroutine's first argument is something else, run as before
// and never place a frame in a room (none is learnt for them).
TEST(CoroutineFrameRoom, CallablesThatAreNotClosures) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  Task<absl::Status> (*fp)(StopToken) = &SleepThenOk;
  for (int i = 0; i < 100; ++i) g.Spawn(fp);
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(g.stats().completed, 100);
  EXPECT_EQ(internal::SpawnedCoroutine<decltype(fp)>::learnt.load(), 0u);
  std::atomic<int> ran{0};
  Other other{&ran};
  for (int i = 0; i < 3; ++i) {
    FrameWhere w;
    TaskGroup h(ex);
    h.Spawn(Delegates{&other, &w});
    ASSERT_TRUE(h.Wait().ok());
    EXPECT_EQ(w.room, 0u);
    EXPECT_FALSE(InRoom<Delegates>(w));
  }
  EXPECT_EQ(ran.load(), 3);
}

// Over-aligned: its node does not come from the task cache and gets no room.
struct alignas(64) OverAligned {
  FrameWhere* out;
  std::atomic<int>* ran;
  Task<> operator()() {
    co_await FrameProbe{out};
    (void)co_await Yield();
    ran->fetch_add(1);
  }
};

// Invariant: an over-aligned callable runs as before, its frame apart.
TEST(CoroutineFrameRoom, OverAlignedCallableGetsNoRoom) {
  Executor ex({.num_workers = 2});
  std::atomic<int> ran{0};
  for (int i = 0; i < 3; ++i) {
    FrameWhere w;
    TaskGroup g(ex);
    g.Spawn(OverAligned{&w, &ran});
    ASSERT_TRUE(g.Wait().ok());
    EXPECT_EQ(w.room, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(w.node) % 64, 0u);
  }
  EXPECT_EQ(ran.load(), 3);
}

Task<int> AddAfterSleep(int x) {
  (void)co_await Sleep(absl::Milliseconds(1));
  co_return x + 1;
}
Task<absl::StatusOr<int>> Twice(int x) {
  const int y = co_await AddAfterSleep(x);
  co_return 2 * y;
}

// A callable whose root coroutine awaits a member coroutine of itself from
// its body: that one's first argument is the callable too, but the room is
// the root's and stays so.
struct NestsItsOwn {
  FrameWhere* root;
  FrameWhere* nested;
  int* result;
  Task<absl::Status> operator()() {
    co_await FrameProbe{root};
    const int a = co_await AddAfterSleep(1);        // 2
    absl::StatusOr<int> b = co_await Twice(a);      // 6
    if (!b.ok()) co_return b.status();
    const int c = co_await Helper(*b);              // 7
    *result = c;
    co_return absl::OkStatus();
  }
  Task<int> Helper(int x) {
    co_await FrameProbe{nested};
    (void)co_await Yield();
    co_return x + 1;
  }
};

// Invariant: a root frame in its node's room awaits nested Task<U>s
// (separate frames, values passed through), including a member coroutine of
// the callable itself, which must not take the room the root holds.
TEST(CoroutineFrameRoom, NestedTaskAwaitsFromARootInTheRoom) {
  Executor ex({.num_workers = 2});
  for (int i = 0; i < 3; ++i) {
    FrameWhere root, nested;
    int result = 0;
    TaskGroup g(ex);
    g.Spawn(NestsItsOwn{&root, &nested, &result});
    ASSERT_TRUE(g.Wait().ok());
    EXPECT_EQ(result, 7);
    EXPECT_EQ(InRoom<NestsItsOwn>(root), i > 0) << i;
    EXPECT_NE(nested.frame, root.frame);
    EXPECT_FALSE(InRoom<NestsItsOwn>(nested)) << i;
  }
}

Task<absl::Status> SleepAnHour(std::atomic<int>* frames) {
  DestroyCounter local(frames);
  co_return co_await Sleep(absl::Hours(1));
}

// A lambda type of its own for the test below: a captured counter (the
// callable's) and one in the frame, each counting its destruction; even i
// sleep in the root frame, odd i in a nested Task.
auto MakeHourSleeper(int i, std::atomic<int>* captures,
                     std::atomic<int>* frames, FrameWhere* where,
                     std::atomic<int>* asleep) {
  return [i, c = DestroyCounter(captures), frames, where,
          asleep]() -> Task<absl::Status> {
    DestroyCounter local(frames);
    co_await FrameProbe{where};
    asleep->fetch_add(1);
    if (i % 2 == 0) co_return co_await Sleep(absl::Hours(1));
    co_return co_await SleepAnHour(frames);
  };
}

// Invariant: coroutines suspended with their root frames in their nodes'
// rooms, stopped by a group stop, by the executor's stop, or by ~TaskGroup
// (unwinding), each finish with CancelledError; every frame (root and
// nested) and every callable is destroyed exactly once (ASan's leak checker
// sees a frame that is not; a double free of a room fails under ASan too).
TEST(CoroutineFrameRoom, StopsAndShutdownWhileSuspendedDestroyEachFrameOnce) {
  using F = decltype(MakeHourSleeper(0, nullptr, nullptr, nullptr, nullptr));
  const int n = 2000 / kScale;
  enum How { kGroupStop, kExecutorStop, kDestroyUnwinding };
  for (How how : {kGroupStop, kExecutorStop, kDestroyUnwinding}) {
    Executor ex({.num_workers = 2});
    std::atomic<int> captures{0}, frames{0}, asleep{0};
    std::vector<FrameWhere> where(n + 1);
    {
      // One spawn first, so that F's frame size is known.
      TaskGroup warm(ex);
      warm.Spawn(MakeHourSleeper(0, &captures, &frames, &where[n], &asleep));
      ASSERT_TRUE(Eventually([&] { return asleep.load() == 1; }));
      warm.RequestStop("warm-up");
      EXPECT_TRUE(absl::IsCancelled(warm.Wait()));
    }
    captures = 0;
    frames = 0;
    asleep = 0;
    auto spawn_all = [&](TaskGroup& g) {
      for (int i = 0; i < n; ++i) {
        g.Spawn(MakeHourSleeper(i, &captures, &frames, &where[i], &asleep));
      }
      return Eventually([&] { return asleep.load() == n; });
    };
    if (how == kDestroyUnwinding) {
      try {
        TaskGroup g(ex);
        ASSERT_TRUE(spawn_all(g));
        throw std::runtime_error("unwind");  // ~TaskGroup stops, then joins
      } catch (const std::runtime_error&) {
      }
    } else {
      TaskGroup g(ex);
      ASSERT_TRUE(spawn_all(g));
      if (how == kGroupStop) {
        g.RequestStop("group stop");
      } else {
        ex.RequestStop(StopTarget::kAll, "executor stop");
      }
      EXPECT_TRUE(absl::IsCancelled(g.Wait()));
      EXPECT_EQ(g.stats().cancelled, n);
    }
    EXPECT_EQ(captures.load(), n) << how;
    EXPECT_EQ(frames.load(), n + n / 2) << how;  // odd i: a nested frame too
    int in_room = 0;
    for (int i = 0; i < n; ++i) in_room += InRoom<F>(where[i]) ? 1 : 0;
    EXPECT_EQ(in_room, n) << how;
  }
}

// A member coroutine of the callable with a parameter of its own: only the
// forms Spawn calls, f() and f(StopToken), can take the room (PromiseBase's
// operator new), so its frame is a block of its own; the parameter's move
// then throws while the frame is being set up.
struct ThrowsOnMove {
  bool do_throw;
  ThrowsOnMove(bool t) : do_throw(t) {}  // NOLINT: implicit for the call
  ThrowsOnMove(ThrowsOnMove&& o) : do_throw(o.do_throw) {
    if (do_throw) throw std::runtime_error("parameter move threw");
  }
};
struct ParameterThrows {
  bool do_throw;
  std::atomic<int>* ran;
  Task<> operator()() { return Run(do_throw); }
  Task<> Run(ThrowsOnMove) {
    (void)co_await Yield();
    ran->fetch_add(1);
  }
};

// Invariant: when creating the root frame throws (a parameter's move), the
// task fails with the exception's message, the frame is freed once (ASan),
// and the next spawns of the type work; such a frame (a coroutine with
// parameters other than the token) never takes the room.
TEST(CoroutineFrameRoom, ParameterMoveThrowsWhileTheFrameIsSetUp) {
  Executor ex({.num_workers = 2});
  std::atomic<int> ran{0};
  for (bool do_throw : {false, true, true, false}) {
    TaskGroup g(ex);
    g.Spawn(ParameterThrows{do_throw, &ran});
    const absl::Status s = g.Wait();
    if (do_throw) {
      EXPECT_NE(std::string(s.message()).find("parameter move threw"),
                std::string::npos)
          << s;
    } else {
      EXPECT_TRUE(s.ok()) << s;
    }
  }
  EXPECT_EQ(ran.load(), 2);
  // The frame never went through the room's operator new.
  EXPECT_EQ(internal::SpawnedCoroutine<ParameterThrows>::learnt.load(), 0u);
}

// Keeps a coroutine made with the callable as first argument beyond the
// callable's call, and returns another: the frame would outlive its node.
Task<> escaped_frame;
struct Escapes {
  Task<> operator()() {
    escaped_frame = Run();
    return Other();
  }
  Task<> Run() { co_return; }
  static Task<> Other() { co_return; }
};

class CoroutineFrameRoomDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Invariant: a frame that took the room and escaped the callable's call
// aborts with a message saying so, instead of a use after free.
TEST_F(CoroutineFrameRoomDeathTest, FrameEscapingTheCallAborts) {
  EXPECT_DEATH(
      {
        Executor ex({.num_workers = 1});
        for (int i = 0; i < 2; ++i) {  // the second spawn has a room
          TaskGroup g(ex);
          g.Spawn(Escapes{});
          (void)g.Wait();
        }
      },
      "neither returned its Task nor destroyed it");
}

}  // namespace
}  // namespace ripcord
