// Copyright 2026 The ripcord Authors.
//
// ParallelFor (include/ripcord/parallel_for.h): every index exactly once in
// chunks within the grain, the argument errors, the first error and a stop
// ending the loop early, shielding, nested loops, ranges at the ends of
// the index type, and the split itself (a chunk that blocks does not hold
// up the rest of the range). The stress case repeats a stop racing a loop.
// Guest seats (a caller off the executor runs chunks in a parked worker's
// place): the caller does run chunks, never more threads than workers run
// the body, what the body spawns elsewhere still runs, and many external
// callers at once.
#include "ripcord/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::BlockUntil;
using ::ripcord::testing::kHangTimeout;
using ::ripcord::testing::Scaled;
using ::ripcord::testing::Watchdog;

class ParallelForTest : public ::testing::Test {
 protected:
  Watchdog watchdog_{absl::Minutes(2)};
};

// Counts the calls of every index in [begin, begin + n) and checks each
// chunk against the grain. Thread-safe.
template <class Index>
class Coverage {
 public:
  Coverage(Index begin, int64_t n) : begin_(begin), hits_(n) {}

  void Add(Index lo, Index hi, int64_t grain) {
    if (!(lo < hi) || (grain > 0 && Offset(hi) - Offset(lo) > grain) ||
        Offset(hi) > static_cast<int64_t>(hits_.size())) {
      bad_chunks_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    for (int64_t i = Offset(lo); i < Offset(hi); ++i) {
      hits_[i].fetch_add(1, std::memory_order_relaxed);
    }
  }

  // The offsets whose count is not `expected` (at most 5, for the message).
  std::vector<int64_t> Wrong(int expected = 1) const {
    std::vector<int64_t> wrong;
    for (size_t i = 0; i < hits_.size() && wrong.size() < 5; ++i) {
      if (hits_[i].load(std::memory_order_relaxed) != expected) {
        wrong.push_back(static_cast<int64_t>(i));
      }
    }
    return wrong;
  }
  int MaxHits() const {
    int most = 0;
    for (const auto& h : hits_) {
      most = std::max(most, h.load(std::memory_order_relaxed));
    }
    return most;
  }
  int bad_chunks() const { return bad_chunks_.load(); }

 private:
  int64_t Offset(Index i) const {
    using U = std::make_unsigned_t<Index>;
    return static_cast<int64_t>(static_cast<U>(static_cast<U>(i) -
                                               static_cast<U>(begin_)));
  }

  const Index begin_;
  std::vector<std::atomic<int>> hits_;
  std::atomic<int> bad_chunks_{0};
};

TEST_F(ParallelForTest, CallsEveryIndexOnceInChunksWithinTheGrain) {
  for (int workers : {1, 2, 4}) {
    Executor executor({.num_workers = workers});
    for (int64_t n : {1, 2, 7, 1000, 100003}) {
      for (int64_t grain : {0, 1, 3, 64, 1 << 20}) {
        SCOPED_TRACE(::testing::Message() << "workers " << workers << " n " << n
                                        << " grain " << grain);
        Coverage<int64_t> cov(-5, n);
        const absl::Status s = ParallelFor(
            executor, int64_t{-5}, -5 + n,
            [&](int64_t lo, int64_t hi) { cov.Add(lo, hi, grain); },
            {.grain = grain});
        EXPECT_TRUE(s.ok()) << s;
        EXPECT_EQ(cov.bad_chunks(), 0);
        EXPECT_EQ(cov.Wrong(), std::vector<int64_t>{});
      }
    }
  }
}

TEST_F(ParallelForTest, AutomaticGrainGivesEachWorkerManyChunks) {
  Executor executor({.num_workers = 2});
  std::atomic<int64_t> calls{0};
  std::atomic<int64_t> largest{0};
  constexpr int64_t kN = 1 << 20;
  ASSERT_TRUE(ParallelFor(executor, int64_t{0}, kN,
                          [&](int64_t lo, int64_t hi) {
                            calls.fetch_add(1);
                            int64_t seen = largest.load();
                            while (hi - lo > seen &&
                                   !largest.compare_exchange_weak(seen,
                                                                  hi - lo)) {
                            }
                          })
                  .ok());
  // 256 chunks per worker: at most kN / 512 indices per call (rounded up).
  EXPECT_LE(largest.load(), kN / 512);
  EXPECT_GE(calls.load(), 512);
}

TEST_F(ParallelForTest, OtherIndexTypesAndTheEndsOfTheirRange) {
  Executor executor({.num_workers = 2});
  {
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    Coverage<int64_t> cov(kMin, 5000);
    ASSERT_TRUE(ParallelFor(executor, kMin, kMin + 5000,
                            [&](int64_t lo, int64_t hi) { cov.Add(lo, hi, 7); },
                            {.grain = 7})
                    .ok());
    EXPECT_EQ(cov.Wrong(), std::vector<int64_t>{});
  }
  {
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    Coverage<uint64_t> cov(kMax - 5000, 5000);
    ASSERT_TRUE(ParallelFor(executor, kMax - 5000, kMax,
                            [&](uint64_t lo, uint64_t hi) {
                              cov.Add(lo, hi, 0);
                            })
                    .ok());
    EXPECT_EQ(cov.Wrong(), std::vector<int64_t>{});
  }
  {
    // The whole span of a small signed type: its length does not fit it.
    Coverage<int16_t> cov(INT16_MIN, 65535);
    ASSERT_TRUE(ParallelFor(executor, int16_t{INT16_MIN}, int16_t{INT16_MAX},
                            [&](int16_t lo, int16_t hi) { cov.Add(lo, hi, 0); })
                    .ok());
    EXPECT_EQ(cov.Wrong(), std::vector<int64_t>{});
  }
  {
    Coverage<size_t> cov(0, 3000);
    TaskGroup group(executor);
    ASSERT_TRUE(ParallelFor(group, size_t{0}, size_t{3000},
                            [&](size_t lo, size_t hi) { cov.Add(lo, hi, 0); })
                    .ok());
    EXPECT_EQ(cov.Wrong(), std::vector<int64_t>{});
  }
}

TEST_F(ParallelForTest, BadArgumentsAreInvalidArgumentAndCallNothing) {
  Executor executor({.num_workers = 2});
  TaskGroup group(executor);
  std::atomic<int> calls{0};
  auto body = [&](int, int) { calls.fetch_add(1); };

  absl::Status s = ParallelFor(executor, 10, 5, body);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("begin (10) is greater than end (5)"),
            std::string::npos)
      << s;
  s = ParallelFor(group, 0, 10, body, {.grain = -1});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("grain (-1) is negative"), std::string::npos)
      << s;
  // An empty range is not an error.
  EXPECT_TRUE(ParallelFor(group, 3, 3, body).ok());
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(group.Wait().ok());
}

TEST_F(ParallelForTest, FirstErrorStopsTheRestAndIsReturned) {
  for (int workers : {1, 2}) {
    Executor executor({.num_workers = workers});
    constexpr int kN = 100000;
    std::atomic<int> calls{0};
    const absl::Status s = ParallelFor(
        executor, 0, kN,
        [&](int lo, int) -> absl::Status {
          calls.fetch_add(1);
          if (lo == 0) return absl::DataLossError("chunk 0 failed");
          return absl::OkStatus();
        },
        {.grain = 1});
    EXPECT_EQ(s, absl::DataLossError("chunk 0 failed"));
    // Chunk 0 is the first chunk of the first task: at most the chunks
    // running on the other workers when the group stopped start after it.
    EXPECT_LT(calls.load(), kN / 2) << "workers " << workers;
  }
}

TEST_F(ParallelForTest, AnExceptionFromTheBodyFailsTheLoopWithItsWhat) {
  Executor executor({.num_workers = 2});
  const absl::Status s =
      ParallelFor(executor, 0, 1000, [](int lo, int) {
        if (lo == 500) throw std::runtime_error("index 500 is bad");
      }, {.grain = 10});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_NE(s.message().find("index 500 is bad"), std::string::npos) << s;
}

// A stop of the parent reaches the loop: no chunk starts once the running
// ones see it, ParallelFor returns the parent's reason, and the token the
// body gets is the loop's.
TEST_F(ParallelForTest, ParentStopEndsTheLoopWithItsReason) {
  Executor executor({.num_workers = 2});
  TaskGroup parent(executor);
  constexpr int kN = 100000;
  std::atomic<int> calls{0};
  std::atomic<int> after_stop_seen{0};
  absl::Notification started;
  std::atomic<bool> stop_seen{false};
  std::thread stopper([&] {
    if (BlockUntil(started)) parent.RequestStop("operator said stop");
  });
  const absl::Status s = ParallelFor(
      parent, 0, kN,
      [&](int, int, StopToken token) {
        if (stop_seen.load()) after_stop_seen.fetch_add(1);
        if (calls.fetch_add(1) == 10) started.Notify();
        if (token.stop_requested()) stop_seen.store(true);
        // Slow enough that the stop lands long before the range is done.
        absl::SleepFor(absl::Microseconds(20));
      },
      {.grain = 1});
  stopper.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_NE(s.message().find("operator said stop"), std::string::npos) << s;
  EXPECT_LT(calls.load(), kN);
  // A worker checks the token before each chunk: once one chunk saw the
  // stop, a chunk on the other worker may already be past its check.
  EXPECT_LE(after_stop_seen.load(), 1);
  EXPECT_TRUE(parent.stop_requested());
}

TEST_F(ParallelForTest, ShieldedLoopFinishesThroughItsParentsStop) {
  Executor executor({.num_workers = 2});
  TaskGroup parent(executor);
  constexpr int kN = 2000;
  std::atomic<int> calls{0};
  Coverage<int> cov(0, kN);
  const absl::Status s = ParallelFor(
      parent, 0, kN,
      [&](int lo, int hi) {
        if (calls.fetch_add(1) == 3) parent.RequestStop("not this loop");
        cov.Add(lo, hi, 4);
      },
      {.grain = 4, .group = {.name = "checkpoint", .shielded = true}});
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(cov.Wrong(), std::vector<int64_t>{});
  EXPECT_EQ(parent.Wait().code(), absl::StatusCode::kCancelled);
}

TEST_F(ParallelForTest, ExecutorStopEndsALoopFromAnExternalThread) {
  Executor executor({.num_workers = 2});
  std::atomic<int> calls{0};
  const absl::Status s = ParallelFor(
      executor, 0, 1 << 20,
      [&](int, int) {
        if (calls.fetch_add(1) == 5) executor.RequestStop(
            StopTarget::kUnshielded, "shutting down");
      },
      {.grain = 1});
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_NE(s.message().find("shutting down"), std::string::npos) << s;
  EXPECT_LT(calls.load(), 1 << 20);
}

// A loop inside a task (its Wait() helps), and a loop inside a loop's body.
TEST_F(ParallelForTest, NestedLoopsFromTasksCoverTheWholeGrid) {
  Executor executor({.num_workers = 2});
  constexpr int kRows = 37;
  constexpr int kCols = 1001;
  Coverage<int> cov(0, kRows * kCols);
  TaskGroup group(executor);
  group.Spawn([&]() -> absl::Status {
    return ParallelFor(group, 0, kRows, [&](int r0, int r1) -> absl::Status {
      for (int r = r0; r < r1; ++r) {
        absl::Status s = ParallelFor(
            group, r * kCols, (r + 1) * kCols,
            [&](int lo, int hi) { cov.Add(lo, hi, 0); }, {.grain = 50});
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    }, {.grain = 2});
  });
  ASSERT_TRUE(ripcord::testing::JoinOrDie(group).ok());
  EXPECT_EQ(cov.Wrong(), std::vector<int64_t>{});
}

// The split: while the first chunk blocks, the rest of the range runs on
// the other worker (it fails only if the range never splits: the first
// chunk then waits for nothing and the notification never comes).
// The thread that runs chunk 0 runs no other chunk before it (the loop's
// first task starts with it), so a chunk that runs before chunk 0 has
// started runs elsewhere too. (Not the thread of whichever chunk started
// first: the other worker may steal the upper half and start it before
// chunk 0, and chunk 0 would then wait for a notification nobody sends.)
TEST_F(ParallelForTest, TheRangeSplitsWhileAChunkBlocks) {
  Executor executor({.num_workers = 2});
  absl::Notification other_thread_ran;
  std::atomic<bool> waited{false};
  const std::thread::id none;
  std::atomic<std::thread::id> zero_thread{none};
  const absl::Status s = ParallelFor(
      executor, 0, 64,
      [&](int lo, int) {
        const std::thread::id me = std::this_thread::get_id();
        if (lo == 0) {
          zero_thread.store(me);
          waited.store(other_thread_ran.WaitForNotificationWithTimeout(
              kHangTimeout));
        } else if (zero_thread.load() != me &&
                   !other_thread_ran.HasBeenNotified()) {
          other_thread_ran.Notify();
        }
      },
      {.grain = 1});
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(waited.load())
      << "no chunk ran on another worker while chunk 0 blocked";
}

// Stress: a stop racing a running loop. Every index runs at most once, and
// no chunk runs after ParallelFor returned.
TEST_F(ParallelForTest, StopRacingTheLoopNeverRepeatsOrOutlivesIt) {
  Executor executor({.num_workers = 2});
  const int reps = Scaled(200, 20);
  for (int rep = 0; rep < reps; ++rep) {
    TaskGroup parent(executor);
    constexpr int kN = 5000;
    Coverage<int> cov(0, kN);
    std::atomic<bool> returned{false};
    std::atomic<int> late{0};
    std::thread stopper([&, rep] {
      for (int i = 0; i < rep % 50; ++i) std::this_thread::yield();
      parent.RequestStop("race");
    });
    const absl::Status s = ParallelFor(
        parent, 0, kN,
        [&](int lo, int hi) {
          if (returned.load()) late.fetch_add(1);
          cov.Add(lo, hi, 3);
        },
        {.grain = 3});
    returned.store(true);
    stopper.join();
    ASSERT_TRUE(s.ok() || s.code() == absl::StatusCode::kCancelled) << s;
    EXPECT_EQ(cov.bad_chunks(), 0);
    EXPECT_EQ(late.load(), 0);
    // An OK loop covers everything; a cancelled one may not (or may: the
    // stop can land after the last chunk). At most once each, either way.
    if (s.ok()) {
      EXPECT_EQ(cov.Wrong(), std::vector<int64_t>{});
    }
    EXPECT_LE(cov.MaxHits(), 1);
  }
}

// The automatic grain ends a task's range in halves, down to grain / 16, so
// that an idle worker waits for a short chunk. One worker: one task, in
// order, no splits.
TEST_F(ParallelForTest, AutomaticGrainEndsARangeInSmallerChunks) {
  Executor executor({.num_workers = 1});
  constexpr int64_t kN = 1 << 20;
  std::vector<int64_t> sizes;  // one thread at a time: one worker
  absl::Mutex mu;
  ASSERT_TRUE(ParallelFor(executor, int64_t{0}, kN,
                          [&](int64_t lo, int64_t hi) {
                            absl::MutexLock lock(&mu);
                            sizes.push_back(hi - lo);
                          })
                  .ok());
  ASSERT_FALSE(sizes.empty());
  const int64_t grain = *std::max_element(sizes.begin(), sizes.end());
  EXPECT_EQ(grain, kN / 256);  // 256 chunks per worker
  // The tail: chunks below the grain, the smallest at grain / 16.
  EXPECT_LT(sizes.back(), grain / 8);
  EXPECT_GE(*std::min_element(sizes.begin(), sizes.end()), grain / 16);
}

// Guest seats: a thread outside the executor runs chunks itself while a
// worker is parked. Workers park some 50 us after they run dry; the sleep
// before each attempt gives them the time.
TEST_F(ParallelForTest, AnExternalCallerRunsChunksInAParkedWorkersSeat) {
  Executor executor({.num_workers = 2});
  const std::thread::id caller = std::this_thread::get_id();
  bool caller_ran = false;
  for (int attempt = 0; attempt < 20 && !caller_ran; ++attempt) {
    absl::SleepFor(absl::Milliseconds(20));
    std::atomic<int> on_caller{0};
    ASSERT_TRUE(ParallelFor(
                    executor, 0, 64,
                    [&](int, int) {
                      if (std::this_thread::get_id() == caller) {
                        on_caller.fetch_add(1);
                      }
                    },
                    {.grain = 1})
                    .ok());
    caller_ran = on_caller.load() > 0;
  }
  EXPECT_TRUE(caller_ran) << "the calling thread never ran a chunk";
}

// A lent seat's own thread stays parked: the body never runs on more
// threads at once than the executor has workers.
TEST_F(ParallelForTest, AGuestNeverAddsAThread) {
  for (int workers : {1, 2}) {
    SCOPED_TRACE(::testing::Message() << "workers " << workers);
    Executor executor({.num_workers = workers});
    for (int rep = 0; rep < 5; ++rep) {
      absl::SleepFor(absl::Milliseconds(5));  // let the workers park
      std::atomic<int> running{0};
      std::atomic<int> most{0};
      absl::Mutex mu;
      std::set<std::thread::id> threads;
      ASSERT_TRUE(ParallelFor(
                      executor, 0, 24,
                      [&](int, int) {
                        {
                          absl::MutexLock lock(&mu);
                          threads.insert(std::this_thread::get_id());
                        }
                        const int now = running.fetch_add(1) + 1;
                        int seen = most.load();
                        while (now > seen &&
                               !most.compare_exchange_weak(seen, now)) {
                        }
                        absl::SleepFor(absl::Microseconds(300));
                        running.fetch_sub(1);
                      },
                      {.grain = 1})
                      .ok());
      EXPECT_LE(most.load(), workers);
      // The caller, when it had a seat, plus the workers whose seats were
      // not lent: never more distinct threads than workers plus one.
      EXPECT_LE(static_cast<int>(threads.size()), workers + 1);
    }
  }
}

// What the body spawns into other groups lands on the guest's deque; it
// still runs once the loop is over (the seat hands it on). One worker: its
// own thread is the only other one, and stays parked while its seat is
// lent, so a task left behind on the seat would never run.
TEST_F(ParallelForTest, TasksTheBodySpawnsElsewhereStillRun) {
  Executor executor({.num_workers = 1});
  for (int rep = 0; rep < 10; ++rep) {
    absl::SleepFor(absl::Milliseconds(2));
    TaskGroup other(executor);
    std::atomic<int> ran{0};
    ASSERT_TRUE(ParallelFor(
                    executor, 0, 16,
                    [&](int lo, int) {
                      other.Spawn([&ran] { ran.fetch_add(1); });
                      if (lo == 15) other.Spawn([&ran] { ran.fetch_add(1); });
                    },
                    {.grain = 1})
                    .ok());
    ASSERT_TRUE(ripcord::testing::JoinOrDie(other).ok());
    EXPECT_EQ(ran.load(), 17);
  }
}

// A guest thread is a worker while it helps: the body's own loops and
// waits take the helping path, and nest.
TEST_F(ParallelForTest, LoopsInsideAGuestsChunksNest) {
  Executor executor({.num_workers = 2});
  absl::SleepFor(absl::Milliseconds(5));
  constexpr int kRows = 16;
  constexpr int kCols = 999;
  Coverage<int> cov(0, kRows * kCols);
  const absl::Status s = ParallelFor(
      executor, 0, kRows,
      [&](int r0, int r1) -> absl::Status {
        for (int r = r0; r < r1; ++r) {
          absl::Status inner = ParallelFor(
              executor, r * kCols, (r + 1) * kCols,
              [&](int lo, int hi) { cov.Add(lo, hi, 0); }, {.grain = 37});
          if (!inner.ok()) return inner;
        }
        return absl::OkStatus();
      },
      {.grain = 1});
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(cov.Wrong(), std::vector<int64_t>{});
}

// Stress: several external threads run loops at once on two workers while
// plain tasks stream through another group: seats are lent and given back
// concurrently with the workers parking and waking. Every loop covers its
// range once; every plain task runs.
TEST_F(ParallelForTest, ManyExternalCallersShareTheSeats) {
  Executor executor({.num_workers = 2});
  const int loops = Scaled(100, 10);
  TaskGroup background(executor);
  std::atomic<int> background_ran{0};
  std::atomic<int> background_spawned{0};
  std::atomic<bool> done{false};
  std::thread feeder([&] {
    while (!done.load()) {
      background.Spawn([&] { background_ran.fetch_add(1); });
      background_spawned.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&, c] {
      for (int i = 0; i < loops; ++i) {
        const int n = 100 + 37 * ((i + c) % 20);
        Coverage<int> cov(0, n);
        const absl::Status s = ParallelFor(
            executor, 0, n, [&](int lo, int hi) { cov.Add(lo, hi, 0); });
        if (!s.ok() || cov.bad_chunks() != 0 || !cov.Wrong().empty()) {
          failures.fetch_add(1);
        }
        // Now and then a pause, so that the workers park in between.
        if (i % 8 == c) {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  done.store(true);
  feeder.join();
  ASSERT_TRUE(ripcord::testing::JoinOrDie(background).ok());
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(background_ran.load(), background_spawned.load());
}

}  // namespace
}  // namespace ripcord
