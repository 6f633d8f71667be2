// Copyright 2026 The ripcord Authors.
//
// Conformance tests of TaskGroup::SpawnBlocking and the executor's blocking
// pool (API.md "Blocking work", ExecutorOptions, "Diagnostics"; issue 3,
// "Tests"): concurrency beyond the workers, the cap, retirement of idle
// threads, where and how often done runs, stops before and during fn,
// exceptions in fn and in done, the accepted callable shapes, Wait()
// covering fn and done, stats(), and a stress of spawns racing stops.
//
// Synchronization in these tests uses std::mutex / std::condition_variable /
// std::atomic only: Debian's Abseil is not built with TSan, so absl::Mutex
// and absl::Notification would produce false reports under --config=tsan.
// Every wait is bounded: a test fails (or, inside the library, the watchdog
// aborts with a message) instead of hanging.
#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::Eventually;
using ::ripcord::testing::JoinOrDie;
using ::ripcord::testing::Scaled;
using ::ripcord::testing::Watchdog;
// As Eventually, until an absolute deadline.
bool EventuallyBy(const std::function<bool()>& pred, absl::Time deadline) {
  return Eventually(pred, deadline - absl::Now());
}

using ::ripcord::testing::Contains;
using ::ripcord::testing::Gate;

// A set of thread ids filled from many threads.
class ThreadIdSet {
 public:
  void Insert(std::thread::id id = std::this_thread::get_id()) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.insert(id);
  }
  std::set<std::thread::id> Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }

 private:
  mutable std::mutex mu_;
  std::set<std::thread::id> ids_;
};

void UpdateMax(std::atomic<int>& max, int value) {
  int seen = max.load();
  while (seen < value && !max.compare_exchange_weak(seen, value)) {
  }
}

// The number of threads of this process whose name is `name`.
int CountThreadsNamed(const std::string& name) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(absl::StrCat("/proc/self/task/", e->d_name, "/comm"));
    std::string line;
    std::getline(comm, line);  // empty if the thread exited meanwhile
    if (line == name) ++n;
  }
  closedir(dir);
  return n;
}

class BlockingTest : public ::testing::Test {
 protected:
  Watchdog watchdog_{absl::Seconds(120)};
};

// A compute task that re-spawns itself into its group until told to stop:
// it keeps the workers busy, counts its runs, and counts separately the runs
// made while all `all` blocking calls were inside their fn.
struct Compute {
  TaskGroup* group;
  std::atomic<int64_t>* runs;
  std::atomic<int64_t>* runs_while_all_inside;
  const std::atomic<int>* inside;
  int all;
  std::atomic<bool>* stop;
  ThreadIdSet* threads;
  void operator()() const {
    threads->Insert();
    volatile uint64_t x = 0;
    for (int i = 0; i < 1000; ++i) x = x + i;
    runs->fetch_add(1);
    if (inside->load() == all) runs_while_all_inside->fetch_add(1);
    if (!stop->load()) group->Spawn(*this);
  }
};

// Invariant: with 2 workers and the default cap (64), 50 blocking calls that
// each sleep 100 ms all run at the same time, on 50 threads that are not
// workers, and compute tasks keep running on the workers while all 50 calls
// are inside their fn.
TEST_F(BlockingTest, FiftyCallsRunConcurrentlyWhileComputeProgresses) {
  Executor ex({.num_workers = 2});
  constexpr int kCalls = 50;
  std::atomic<int> inside{0}, max_inside{0}, fn_exited{0}, dones{0};
  std::atomic<int64_t> compute_runs{0}, runs_while_all_inside{0};
  std::atomic<bool> stop_compute{false};
  ThreadIdSet fn_threads, compute_threads;
  TaskGroup g(ex, {.name = "blocking-50"});
  for (int i = 0; i < 2; ++i) {
    g.Spawn(Compute{&g, &compute_runs, &runs_while_all_inside, &inside, kCalls,
                    &stop_compute, &compute_threads});
  }
  // Every call waits (bounded) until all 50 are inside before its 100 ms
  // sleep, so the maximum measures the pool's concurrency, not how fast
  // threads start. After the sleep it also waits (bounded) until a compute
  // task has run while all 50 were inside: on a loaded 2-core machine (tests
  // run in parallel) the workers may get no CPU at all during a given 100 ms,
  // and that is the scheduler's doing, not the executor's. If fns occupied
  // workers, all 50 could never be inside at once and the wait would time out.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (int i = 0; i < kCalls; ++i) {
    g.SpawnBlocking(
        [&] {
          fn_threads.Insert();
          UpdateMax(max_inside, inside.fetch_add(1) + 1);
          EventuallyBy([&] { return max_inside.load() >= kCalls; }, deadline);
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          EventuallyBy([&] { return runs_while_all_inside.load() > 0; },
                       deadline);
          inside.fetch_sub(1);
          fn_exited.fetch_add(1);
        },
        [&](absl::Status s) {
          EXPECT_TRUE(s.ok()) << s;
          dones.fetch_add(1);
        });
  }
  // The compute tasks run until every fn has returned (done callbacks are
  // not needed for that, so no fairness assumption between them is made).
  EXPECT_TRUE(Eventually([&] { return fn_exited.load() == kCalls; }));
  stop_compute.store(true);
  EXPECT_TRUE(JoinOrDie(g, ex).ok());

  EXPECT_EQ(max_inside.load(), kCalls);
  EXPECT_EQ(dones.load(), kCalls);
  EXPECT_EQ(fn_threads.Get().size(), static_cast<size_t>(kCalls));
  EXPECT_GT(runs_while_all_inside.load(), 0)
      << "compute tasks made no progress while the blocking calls slept";
  for (std::thread::id id : compute_threads.Get()) {
    EXPECT_EQ(fn_threads.Get().count(id), 0u)
        << "a blocking fn ran on a worker thread";
  }
}

// Invariant: with max_blocking_threads = 4, at most 4 fns run at once, on at
// most 4 distinct threads; calls beyond the cap wait in the queue (visible in
// DebugString() and stats()) and all run in the end.
TEST_F(BlockingTest, CapIsRespected) {
  Executor ex({.num_workers = 2, .max_blocking_threads = 4});
  constexpr int kCalls = 20;
  std::atomic<int> inside{0}, max_inside{0}, dones{0};
  ThreadIdSet fn_threads;
  Gate release;
  TaskGroup g(ex, {.name = "capped"});
  for (int i = 0; i < kCalls; ++i) {
    g.SpawnBlocking(
        [&] {
          fn_threads.Insert();
          UpdateMax(max_inside, inside.fetch_add(1) + 1);
          EXPECT_TRUE(release.WaitFor());
          inside.fetch_sub(1);
        },
        [&](absl::Status s) {
          EXPECT_TRUE(s.ok()) << s;
          dones.fetch_add(1);
        });
  }
  ASSERT_TRUE(Eventually([&] { return inside.load() == 4; }));
  absl::SleepFor(absl::Milliseconds(50));  // room for a (wrong) fifth thread
  EXPECT_EQ(inside.load(), 4);
  EXPECT_EQ(CountThreadsNamed("ripcord-block"), 4);
  const std::string debug = ex.DebugString();
  EXPECT_TRUE(Contains(debug, "blocking pool: 4 threads (4 busy), 16 queued"))
      << debug;
  GroupStats s = g.stats();
  EXPECT_EQ(s.spawned, kCalls);
  EXPECT_EQ(s.running, 4);
  EXPECT_EQ(s.queued, kCalls - 4);
  release.Open();
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  EXPECT_EQ(max_inside.load(), 4);
  EXPECT_LE(fn_threads.Get().size(), 4u);
  EXPECT_EQ(dones.load(), kCalls);
  s = g.stats();  // outcome counts: see StatsCountByFnOutcome
  EXPECT_EQ(s.spawned, s.completed + s.failed + s.cancelled);
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.queued, 0);
}

// Invariant: blocking threads idle longer than blocking_keep_alive retire
// (the pool shrinks to 0 threads), and the pool grows again on demand.
TEST_F(BlockingTest, IdleThreadsRetire) {
  Executor ex({.num_workers = 2,
               .max_blocking_threads = 64,
               .blocking_keep_alive = absl::Milliseconds(50)});
  constexpr int kCalls = 8;
  std::atomic<int> inside{0};
  Gate release;
  TaskGroup g(ex, {.name = "retire"});
  for (int i = 0; i < kCalls; ++i) {
    g.SpawnBlocking(
        [&] {
          inside.fetch_add(1);
          EXPECT_TRUE(release.WaitFor());
        },
        [](absl::Status s) { EXPECT_TRUE(s.ok()) << s; });
  }
  ASSERT_TRUE(Eventually([&] { return inside.load() == kCalls; }));
  EXPECT_EQ(CountThreadsNamed("ripcord-block"), kCalls);
  EXPECT_TRUE(Contains(ex.DebugString(), "blocking pool: 8 threads (8 busy)"))
      << ex.DebugString();
  release.Open();
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  // Generous: 50 ms keep-alive, 20 s bound.
  EXPECT_TRUE(Eventually([&] {
    return Contains(ex.DebugString(), "blocking pool: 0 threads");
  })) << ex.DebugString();
  EXPECT_TRUE(Eventually([&] {
    return CountThreadsNamed("ripcord-block") == 0;
  })) << CountThreadsNamed("ripcord-block") << " blocking threads left";

  // It grows again after retiring.
  std::atomic<bool> ran{false};
  g.SpawnBlocking([&] { ran.store(true); },
                  [](absl::Status s) { EXPECT_TRUE(s.ok()) << s; });
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  EXPECT_TRUE(ran.load());
}

// Invariant: done runs exactly once per call, on a work-stealing worker
// (a thread plain tasks run on), never on fn's blocking thread, both when fn
// ran and when the group was stopped before fn could start.
TEST_F(BlockingTest, DoneRunsOnceOnAWorker) {
  Executor ex({.num_workers = 2});
  // Collect both worker ids: two plain tasks that meet (bounded) run on two
  // different workers at once.
  ThreadIdSet workers;
  {
    TaskGroup probe(ex, {.name = "probe"});
    std::atomic<int> arrived{0};
    for (int i = 0; i < 2; ++i) {
      probe.Spawn([&] {
        workers.Insert();
        arrived.fetch_add(1);
        Eventually([&] { return arrived.load() == 2; }, absl::Seconds(10));
      });
    }
    ASSERT_TRUE(JoinOrDie(probe, ex).ok());
  }
  const std::set<std::thread::id> worker_ids = workers.Get();
  ASSERT_EQ(worker_ids.size(), 2u);
  ASSERT_EQ(worker_ids.count(std::this_thread::get_id()), 0u);

  constexpr int kCalls = 32;
  struct Record {
    std::thread::id fn_thread;
    std::thread::id done_thread;
    std::atomic<int> done_calls{0};
    bool fn_ran = false;
  };
  std::vector<Record> records(2 * kCalls);
  TaskGroup running(ex, {.name = "running"});
  TaskGroup stopped(ex, {.name = "stopped"});
  stopped.RequestStop("stopped before start");
  for (int i = 0; i < 2 * kCalls; ++i) {
    TaskGroup& g = i < kCalls ? running : stopped;
    Record* r = &records[i];
    g.SpawnBlocking(
        [r]() -> int {
          r->fn_thread = std::this_thread::get_id();
          r->fn_ran = true;
          return 7;
        },
        [r](absl::StatusOr<int> v) {
          r->done_thread = std::this_thread::get_id();
          r->done_calls.fetch_add(1);
          EXPECT_TRUE(v.ok() || absl::IsCancelled(v.status())) << v.status();
        });
  }
  EXPECT_TRUE(JoinOrDie(running, ex).ok());
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(stopped, ex)));
  for (int i = 0; i < 2 * kCalls; ++i) {
    const Record& r = records[i];
    SCOPED_TRACE(absl::StrCat("call ", i));
    EXPECT_EQ(r.done_calls.load(), 1);
    EXPECT_EQ(worker_ids.count(r.done_thread), 1u)
        << "done ran on a thread that is not a worker";
    if (i < kCalls) {
      ASSERT_TRUE(r.fn_ran);
      EXPECT_NE(r.fn_thread, r.done_thread);
      EXPECT_EQ(worker_ids.count(r.fn_thread), 0u) << "fn ran on a worker";
    } else {
      EXPECT_FALSE(r.fn_ran) << "fn ran in a stopped group";
    }
  }
}

// Invariant: a stop while fn runs does not interrupt it: fn sees its group's
// token stopped, finishes, and done receives fn's own value; the call counts
// by fn's outcome (completed) and the group's status is the stop's reason.
TEST_F(BlockingTest, StopDuringFnLetsItFinishAndDoneGetsItsValue) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "stop-during"});
  std::atomic<bool> started{false}, saw_stop{false}, token_matches{false};
  std::atomic<int> dones{0};
  absl::StatusOr<int> got = absl::UnknownError("done not called");
  const StopToken group_token = g.stop_token();
  g.SpawnBlocking(
      [&](StopToken token) -> int {
        token_matches.store(token == group_token);
        started.store(true);
        Eventually([&] { return token.stop_requested(); });
        saw_stop.store(token.stop_requested());
        return 42;
      },
      [&](absl::StatusOr<int> v) {
        got = std::move(v);
        dones.fetch_add(1);
      });
  ASSERT_TRUE(Eventually([&] { return started.load(); }));
  g.RequestStop("operator pulled the cord");
  absl::Status s = JoinOrDie(g, ex);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(Contains(s.message(), "operator pulled the cord")) << s;
  EXPECT_TRUE(token_matches.load());
  EXPECT_TRUE(saw_stop.load());
  EXPECT_EQ(dones.load(), 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, 42);
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 1);
  EXPECT_EQ(st.completed, 1);
  EXPECT_EQ(st.failed, 0);
  EXPECT_EQ(st.cancelled, 0);
}

// Invariant: a fn that passes on the CancelledError SleepFor gave it after
// the stop hands that error to done, and the group's status stays the stop's
// reason (not a failure). (How it counts: StatsCountByFnOutcome.)
TEST_F(BlockingTest, FnReturningCancelledAfterStopIsNotAFailure) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "sleepy"});
  std::atomic<bool> started{false};
  absl::Status got = absl::UnknownError("done not called");
  g.SpawnBlocking(
      [&](StopToken token) {
        started.store(true);
        return SleepFor(absl::Seconds(60), token);
      },
      [&](absl::Status s) { got = s; });
  ASSERT_TRUE(Eventually([&] { return started.load(); }));
  g.RequestStop("enough");
  absl::Status s = JoinOrDie(g, ex);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(Contains(s.message(), "enough")) << s;
  EXPECT_TRUE(absl::IsCancelled(got)) << got;
  EXPECT_EQ(g.stats().spawned, 1);
}

// Invariant: SpawnBlocking on a stopped group never runs fn; done runs once
// with CancelledError (for both done shapes) and the call counts cancelled.
TEST_F(BlockingTest, StopBeforeStartGivesCancelledWithoutRunningFn) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "already-stopped"});
  g.RequestStop("closed for the day");
  std::atomic<int> fn_runs{0}, dones{0};
  absl::Status got_status;
  absl::StatusOr<int> got_value = 0;
  g.SpawnBlocking([&] { fn_runs.fetch_add(1); },
                  [&](absl::Status s) {
                    got_status = s;
                    dones.fetch_add(1);
                  });
  g.SpawnBlocking(
      [&](StopToken) {
        fn_runs.fetch_add(1);
        return 5;
      },
      [&](absl::StatusOr<int> v) {
        got_value = std::move(v);
        dones.fetch_add(1);
      });
  absl::Status s = JoinOrDie(g, ex);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_EQ(fn_runs.load(), 0);
  EXPECT_EQ(dones.load(), 2);
  EXPECT_TRUE(absl::IsCancelled(got_status)) << got_status;
  EXPECT_TRUE(absl::IsCancelled(got_value.status())) << got_value.status();
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 2);
  EXPECT_EQ(st.cancelled, 2);
  EXPECT_EQ(st.completed + st.failed, 0);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.queued, 0);
}

// Invariant: a call still queued behind the cap when its group is stopped
// never runs fn; done receives CancelledError; the running call finishes.
TEST_F(BlockingTest, StopWhileQueuedBehindCapGivesCancelled) {
  Executor ex({.num_workers = 2, .max_blocking_threads = 1});
  TaskGroup g(ex, {.name = "queued"});
  Gate release;
  std::atomic<bool> first_started{false}, second_ran{false};
  absl::Status first_got = absl::UnknownError("unset");
  absl::Status second_got = absl::UnknownError("unset");
  g.SpawnBlocking(
      [&] {
        first_started.store(true);
        EXPECT_TRUE(release.WaitFor());
      },
      [&](absl::Status s) { first_got = s; });
  g.SpawnBlocking([&] { second_ran.store(true); },
                  [&](absl::Status s) { second_got = s; });
  ASSERT_TRUE(Eventually([&] { return first_started.load(); }));
  EXPECT_EQ(g.stats().queued, 1);
  g.RequestStop("drain");
  release.Open();
  EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g, ex)));
  EXPECT_TRUE(first_got.ok()) << first_got;  // fn's own value: it returned
  EXPECT_FALSE(second_ran.load());
  EXPECT_TRUE(absl::IsCancelled(second_got)) << second_got;
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 2);
  // The dropped call; the first one counts by fn's outcome (completed), see
  // StatsCountByFnOutcome.
  EXPECT_EQ(st.cancelled, 1);
  EXPECT_EQ(st.spawned, st.completed + st.failed + st.cancelled);
}

// Invariant: an exception thrown by fn reaches done as a non-OK status that
// carries what(); it does not fail the group by itself (done decides) and
// counts the call as failed.
TEST_F(BlockingTest, ExceptionInFnArrivesAsStatus) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "fn-throws"});
  absl::Status got_void = absl::OkStatus();
  absl::StatusOr<int> got_int = 0;
  absl::Status got_other = absl::OkStatus();
  g.SpawnBlocking([]() { throw std::runtime_error("disk on fire"); },
                  [&](absl::Status s) { got_void = s; });
  g.SpawnBlocking(
      [](StopToken) -> int { throw std::out_of_range("index 9 of 3"); },
      [&](absl::StatusOr<int> v) { got_int = std::move(v); });
  g.SpawnBlocking([]() -> absl::Status { throw 17; },
                  [&](absl::Status s) { got_other = s; });
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  EXPECT_FALSE(got_void.ok());
  EXPECT_TRUE(Contains(got_void.message(), "disk on fire")) << got_void;
  EXPECT_FALSE(got_int.ok());
  EXPECT_TRUE(Contains(got_int.status().message(), "index 9 of 3"))
      << got_int.status();
  EXPECT_FALSE(got_other.ok());
  EXPECT_FALSE(g.stop_requested());
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 3);
  EXPECT_EQ(st.failed, 3);
}

// Invariant: an exception thrown by done fails the group like a task's:
// Wait() returns a non-OK status (not a cancellation) carrying what(), and
// the group's other tasks are stopped.
TEST_F(BlockingTest, ExceptionInDoneFailsTheGroup) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "done-throws"});
  absl::Status sibling = absl::UnknownError("unset");
  std::atomic<bool> sibling_started{false};
  g.Spawn([&](StopToken token) {
    sibling_started.store(true);
    sibling = SleepFor(absl::Seconds(60), token);
    return sibling;
  });
  ASSERT_TRUE(Eventually([&] { return sibling_started.load(); }));
  g.SpawnBlocking([] { return 1; },
                  [](absl::StatusOr<int>) {
                    throw std::runtime_error("done blew up");
                  });
  absl::Status s = JoinOrDie(g, ex);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(absl::IsCancelled(s)) << s;
  EXPECT_TRUE(Contains(s.message(), "done blew up")) << s;
  EXPECT_TRUE(absl::IsCancelled(sibling)) << sibling;
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 2);
  EXPECT_EQ(st.failed, 1);     // the blocking call (done threw)
  EXPECT_EQ(st.cancelled, 1);  // the sibling passed on SleepFor's error
  EXPECT_EQ(st.completed, 0);
}

// Invariant: every callable shape the contract allows compiles and delivers
// fn's result to done: void / Status / T / StatusOr<T>, with and without a
// StopToken, move-only fn and done (and move-only values), lvalue callables.
TEST_F(BlockingTest, DoneShapes) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "shapes"});
  std::mutex mu;
  std::vector<std::string> seen;
  auto record = [&](std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(std::move(what));
  };

  // void() -> void(absl::Status)
  g.SpawnBlocking([] {}, [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    record("void");
  });
  // void(StopToken) -> void(absl::Status), done taking a const reference
  g.SpawnBlocking([](StopToken t) { EXPECT_TRUE(t.stop_possible()); },
                  [&](const absl::Status& s) {
                    EXPECT_TRUE(s.ok()) << s;
                    record("void-token");
                  });
  // absl::Status() -> void(absl::Status): the error passes through
  g.SpawnBlocking([] { return absl::NotFoundError("no such key"); },
                  [&](absl::Status s) {
                    EXPECT_TRUE(absl::IsNotFound(s)) << s;
                    EXPECT_TRUE(Contains(s.message(), "no such key")) << s;
                    record("status");
                  });
  // absl::Status(StopToken) -> void(absl::Status)
  g.SpawnBlocking([](StopToken) { return absl::OkStatus(); },
                  [&](absl::Status s) {
                    EXPECT_TRUE(s.ok()) << s;
                    record("status-token");
                  });
  // int() -> void(absl::StatusOr<int>)
  g.SpawnBlocking([] { return 7; }, [&](absl::StatusOr<int> v) {
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, 7);
    record("int");
  });
  // std::string(StopToken) -> void(absl::StatusOr<std::string>)
  g.SpawnBlocking([](StopToken) { return std::string("payload"); },
                  [&](absl::StatusOr<std::string> v) {
                    ASSERT_TRUE(v.ok()) << v.status();
                    EXPECT_EQ(*v, "payload");
                    record("string-token");
                  });
  // absl::StatusOr<int>() -> void(absl::StatusOr<int>), error and value
  g.SpawnBlocking(
      []() -> absl::StatusOr<int> {
        return absl::PermissionDeniedError("nope");
      },
      [&](absl::StatusOr<int> v) {
        EXPECT_TRUE(absl::IsPermissionDenied(v.status())) << v.status();
        record("statusor-error");
      });
  g.SpawnBlocking([](StopToken) -> absl::StatusOr<int> { return 9; },
                  [&](absl::StatusOr<int> v) {
                    ASSERT_TRUE(v.ok()) << v.status();
                    EXPECT_EQ(*v, 9);
                    record("statusor-value");
                  });
  // Move-only fn, move-only done, move-only value.
  auto box = std::make_unique<int>(11);
  auto done_box = std::make_unique<int>(100);
  g.SpawnBlocking(
      [box = std::move(box)]() mutable { return std::move(box); },
      [&, done_box = std::move(done_box)](
          absl::StatusOr<std::unique_ptr<int>> v) {
        ASSERT_TRUE(v.ok()) << v.status();
        ASSERT_NE(*v, nullptr);
        EXPECT_EQ(**v + *done_box, 111);
        record("move-only");
      });
  // Lvalue callables: copied, so they are usable again afterwards.
  int calls = 0;
  auto fn = [&calls] { return ++calls, absl::OkStatus(); };
  auto done = [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    record("lvalue");
  };
  g.SpawnBlocking(fn, done);
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  g.SpawnBlocking(fn, done);
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  EXPECT_EQ(calls, 2);

  std::vector<std::string> expected = {
      "void",           "void-token",     "status",         "status-token",
      "int",            "string-token",   "statusor-error", "statusor-value",
      "move-only",      "lvalue",         "lvalue"};
  std::sort(expected.begin(), expected.end());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, expected);
  // A failing fn does not fail the group: done decides.
  EXPECT_FALSE(g.stop_requested());
}

// Sets a flag from its destructor, after a pause: shows whether a callable's
// captures are destroyed before Wait() returns.
struct SlowDestructorFlag {
  std::atomic<bool>* destroyed;
  explicit SlowDestructorFlag(std::atomic<bool>* d) : destroyed(d) {}
  SlowDestructorFlag(SlowDestructorFlag&& other) noexcept
      : destroyed(std::exchange(other.destroyed, nullptr)) {}
  SlowDestructorFlag(const SlowDestructorFlag&) = delete;
  ~SlowDestructorFlag() {
    if (destroyed == nullptr) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    destroyed->store(true);
  }
};

// Invariant: Wait() waits for fn and for done (and their captures' end):
// while done is still running, WaitFor() reports DeadlineExceeded; once
// Wait() returns, fn and done have both finished.
TEST_F(BlockingTest, WaitWaitsForFnAndDone) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "both"});
  std::atomic<bool> fn_finished{false}, done_entered{false},
      done_finished{false}, fn_captures_gone{false}, done_captures_gone{false};
  Gate release_done;
  g.SpawnBlocking(
      [&, flag = SlowDestructorFlag(&fn_captures_gone)] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        fn_finished.store(true);
      },
      [&, flag = SlowDestructorFlag(&done_captures_gone)](absl::Status s) {
        EXPECT_TRUE(s.ok()) << s;
        EXPECT_TRUE(fn_finished.load());
        done_entered.store(true);
        EXPECT_TRUE(release_done.WaitFor());
        done_finished.store(true);
      });
  ASSERT_TRUE(Eventually([&] { return done_entered.load(); }));
  absl::Status early = g.WaitFor(absl::Milliseconds(20));
  EXPECT_TRUE(absl::IsDeadlineExceeded(early)) << early;
  release_done.Open();
  EXPECT_TRUE(JoinOrDie(g, ex).ok());
  EXPECT_TRUE(fn_finished.load());
  EXPECT_TRUE(done_finished.load());
  EXPECT_TRUE(fn_captures_gone.load());
  EXPECT_TRUE(done_captures_gone.load());
}

// The bug (now fixed) that StatsCountByFnOutcome and
// StressStatsAgreeWithDones caught:
//
// BlockingCall::RunDonePhase (include/ripcord/internal/spawn.h) calls
// `self->done(std::move(self->result))` and only then reads fn's status with
// `StatusOf(self->result)` for CountOutcome(). When done takes its argument
// by value, the result has been moved from by then: a moved-from absl::Status
// (fn returning void or absl::Status) or a moved-from non-OK absl::StatusOr
// reads as InternalError("Status accessed after move."), so the call is
// counted failed whatever fn returned: a void fn that succeeded counts as
// failed, and a fn that passed on CancelledError after a stop counts as failed
// instead of cancelled. (An OK StatusOr<T> keeps its OK status when moved, so
// T-returning calls that succeed count right.) Minimal repro, plain build:
//
//   Executor ex({.num_workers = 1});
//   TaskGroup g(ex);
//   g.SpawnBlocking([] {}, [](absl::Status) {});
//   g.Wait();   // OK
//   g.stats();  // completed == 0, failed == 1; expected completed == 1
//
// Fixed by taking `absl::Status fn_status = StatusOf(self->result);` before
// calling done.

// Invariant: a blocking call counts in stats() by fn's outcome: OK (void,
// OkStatus, a value) -> completed; an error, an exception, or CancelledError
// without a stop -> failed; CancelledError passed on after the group's stop
// -> cancelled; whatever done does with the result it receives.
// Regression test for the moved-from result bug described above.
TEST_F(BlockingTest, StatsCountByFnOutcome) {
  Executor ex({.num_workers = 2});
  auto ignore = [](absl::Status) {};
  auto ignore_int = [](absl::StatusOr<int>) {};
  {
    TaskGroup g(ex, {.name = "outcomes"});
    g.SpawnBlocking([] {}, ignore);                                // completed
    g.SpawnBlocking([] { return absl::OkStatus(); }, ignore);      // completed
    g.SpawnBlocking([] { return 3; }, ignore_int);                 // completed
    g.SpawnBlocking([] { return absl::InternalError("x"); }, ignore);  // failed
    g.SpawnBlocking([]() -> int { throw std::runtime_error("y"); },
                    ignore_int);                                   // failed
    g.SpawnBlocking([] { return absl::CancelledError("not a stop"); },
                    ignore);                                       // failed
    EXPECT_TRUE(JoinOrDie(g, ex).ok());
    GroupStats st = g.stats();
    EXPECT_EQ(st.spawned, 6);
    EXPECT_EQ(st.completed, 3);
    EXPECT_EQ(st.failed, 3);
    EXPECT_EQ(st.cancelled, 0);
    EXPECT_EQ(st.running, 0);
    EXPECT_EQ(st.queued, 0);
  }
  {
    TaskGroup g(ex, {.name = "passed-on-cancel"});
    std::atomic<int> started{0};
    g.SpawnBlocking(
        [&](StopToken token) {
          started.fetch_add(1);
          return SleepFor(absl::Seconds(60), token);
        },
        ignore);
    g.SpawnBlocking(
        [&](StopToken token) -> absl::StatusOr<int> {
          started.fetch_add(1);
          absl::Status s = SleepFor(absl::Seconds(60), token);
          if (!s.ok()) return s;
          return 1;
        },
        ignore_int);
    ASSERT_TRUE(Eventually([&] { return started.load() == 2; }));
    g.RequestStop("stop");
    EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g, ex)));
    GroupStats st = g.stats();
    EXPECT_EQ(st.spawned, 2);
    EXPECT_EQ(st.cancelled, 2);
    EXPECT_EQ(st.failed, 0);
  }
}

// Invariant: blocking calls that never started because their group was
// stopped count as cancelled, a call whose done threw counts as failed, and
// after the join spawned == completed + failed + cancelled with nothing
// running or queued.
TEST_F(BlockingTest, StatsOfStoppedCallsAndThrowingDone) {
  Executor ex({.num_workers = 2});
  auto ignore = [](absl::Status) {};
  auto ignore_int = [](absl::StatusOr<int>) {};
  {
    TaskGroup g(ex, {.name = "stopped"});
    g.RequestStop();
    g.SpawnBlocking([] {}, ignore);
    g.SpawnBlocking([] { return 1; }, ignore_int);
    EXPECT_TRUE(absl::IsCancelled(JoinOrDie(g, ex)));
    GroupStats st = g.stats();
    EXPECT_EQ(st.spawned, 2);
    EXPECT_EQ(st.cancelled, 2);
    EXPECT_EQ(st.completed + st.failed, 0);
    EXPECT_EQ(st.running, 0);
    EXPECT_EQ(st.queued, 0);
  }
  {
    TaskGroup g(ex, {.name = "done-throws"});
    g.SpawnBlocking([] { return 2; },
                    [](absl::StatusOr<int>) { throw std::logic_error("z"); });
    EXPECT_FALSE(JoinOrDie(g, ex).ok());
    GroupStats st = g.stats();
    EXPECT_EQ(st.spawned, 1);
    EXPECT_EQ(st.failed, 1);
    EXPECT_EQ(st.completed + st.cancelled, 0);
    EXPECT_EQ(st.running, 0);
    EXPECT_EQ(st.queued, 0);
  }
}

// Invariant: when done throws for a call whose fn never started (the group
// was stopped), the call counts as failed and, once joined, nothing is
// reported queued or running: spawned == completed + failed + cancelled.
//
// Regression test: BlockingCall::RunDonePhase (internal/spawn.h) used to end
// such a call through FinishTask() (failed += 1) without counting it started
// or dropped, and GroupState::Stats() derives queued = spawned - started -
// dropped, so stats().queued stayed 1 forever after the join.
TEST_F(BlockingTest, StatsAfterDoneThrowsOnStoppedGroup) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "stopped-done-throws"});
  g.RequestStop();
  g.SpawnBlocking([] {}, [](absl::Status) { throw std::logic_error("w"); });
  EXPECT_FALSE(JoinOrDie(g, ex).ok());
  GroupStats st = g.stats();
  EXPECT_EQ(st.spawned, 1);
  EXPECT_EQ(st.failed, 1);
  EXPECT_EQ(st.spawned, st.completed + st.failed + st.cancelled);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.queued, 0);
}

// The stress below: SpawnBlocking (from outside and from a worker task)
// racing RequestStop. With `check_outcomes`, stats() must also agree with
// what the dones saw.
void StressSpawnBlockingRacingStop(bool check_outcomes) {
  Executor ex({.num_workers = 2, .max_blocking_threads = 4});
  const int rounds = Scaled(100);
  constexpr int kOutside = 24;
  constexpr int kInside = 24;
  constexpr int kCalls = kOutside + kInside;
  std::mt19937 rng(20260101);
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::vector<std::atomic<int>> done_calls(kCalls);
    std::vector<std::atomic<bool>> fn_ran(kCalls);
    std::atomic<int> values{0}, cancels{0}, others{0};
    std::atomic<bool> spawner_ran{false};
    const int stop_after_us = std::uniform_int_distribution<int>(0, 400)(rng);
    const int sleep_mod = std::uniform_int_distribution<int>(1, 5)(rng);
    {
      TaskGroup g(ex, {.name = "stress"});
      auto spawn_one = [&](int i) {
        g.SpawnBlocking(
            [&, i](StopToken token) -> absl::StatusOr<int> {
              fn_ran[i].store(true);
              absl::Status s =
                  SleepFor(absl::Microseconds(50 * (i % sleep_mod)), token);
              if (!s.ok()) return s;
              return i;
            },
            [&, i](absl::StatusOr<int> v) {
              done_calls[i].fetch_add(1);
              if (v.ok()) {
                EXPECT_EQ(*v, i);
                EXPECT_TRUE(fn_ran[i].load());
                values.fetch_add(1);
              } else if (absl::IsCancelled(v.status())) {
                cancels.fetch_add(1);
              } else {
                others.fetch_add(1);
                ADD_FAILURE() << "call " << i << ": " << v.status();
              }
            });
      };
      std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::microseconds(stop_after_us));
        g.RequestStop("stress stop");
      });
      g.Spawn([&] {
        spawner_ran.store(true);
        for (int i = kOutside; i < kCalls; ++i) spawn_one(i);
      });
      for (int i = 0; i < kOutside; ++i) spawn_one(i);
      stopper.join();
      absl::Status s = JoinOrDie(g, ex);
      EXPECT_TRUE(absl::IsCancelled(s)) << s;
      // The plain spawner task may itself have been dropped by the stop;
      // then its half of the calls was never spawned.
      const bool inside = spawner_ran.load();
      const int calls = kOutside + (inside ? kInside : 0);
      for (int i = 0; i < kCalls; ++i) {
        ASSERT_EQ(done_calls[i].load(), i < calls ? 1 : 0) << "call " << i;
      }
      EXPECT_EQ(others.load(), 0);
      EXPECT_EQ(values.load() + cancels.load(), calls);
      GroupStats st = g.stats();
      EXPECT_EQ(st.spawned, calls + 1);  // + the plain spawner task
      EXPECT_EQ(st.spawned, st.completed + st.failed + st.cancelled);
      EXPECT_EQ(st.running, 0);
      EXPECT_EQ(st.queued, 0);
      if (check_outcomes) {
        EXPECT_EQ(st.failed, 0);
        EXPECT_EQ(st.completed, values.load() + (inside ? 1 : 0));
        EXPECT_EQ(st.cancelled, cancels.load() + (inside ? 0 : 1));
      }
    }
    if (::testing::Test::HasFailure()) return;
  }
}

// Invariant (stress): with SpawnBlocking (from outside and from worker tasks)
// racing RequestStop, every done is called exactly once; it receives fn's
// value iff fn ran to its end unstopped, and CancelledError otherwise (fn
// never ran, or it passed on SleepFor's error); after the join spawned ==
// completed + failed + cancelled with nothing running or queued.
TEST_F(BlockingTest, StressSpawnBlockingRacingStop) {
  StressSpawnBlockingRacingStop(/*check_outcomes=*/false);
}

// Invariant (stress): as above, and stats() agree exactly with what the dones
// saw: completed == values delivered, cancelled == CancelledErrors delivered,
// failed == 0 (plus the plain spawner task).
// Regression test for the moved-from result bug (see StatsCountByFnOutcome).
TEST_F(BlockingTest, StressStatsAgreeWithDones) {
  StressSpawnBlockingRacingStop(/*check_outcomes=*/true);
}

}  // namespace
}  // namespace ripcord
