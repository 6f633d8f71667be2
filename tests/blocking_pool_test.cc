// Copyright 2026 The ripcord Authors.
//
// Tests of executor/blocking_pool: growth, the cap, FIFO queueing, keep-alive
// retirement, shutdown with queued work, signal masks, and races between
// Submit and a retiring thread. Timing is never asserted tightly: waits use
// generous deadlines (sanitizer builds on a loaded 2-core machine can be 10x
// slower), and "at once" is measured with counters, not clocks.
//
// The test's own synchronization uses std::mutex and atomics, not
// absl::Mutex/Notification/BlockingCounter: Debian's Abseil is not built with
// TSan, so TSan cannot see absl's locks and would report false races in the
// test code itself.
#include "executor/blocking/blocking_pool.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord::internal {
namespace {

using ::ripcord::testing::Gate;  // WaitFor() gives up after 20 s

// Submits `job`, which must be accepted (the pool can start threads here).
void Go(BlockingPool& pool, absl::AnyInvocable<void() &&> job) {
  absl::Status s = pool.Submit(std::move(job));
  ASSERT_TRUE(s.ok()) << s;
}

#ifdef RIPCORD_SANITIZER
constexpr int kScale = 4;  // Sanitizer builds: fewer iterations.
#else
constexpr int kScale = 1;
#endif

// Generous upper bound for anything that "should happen soon". It only
// matters when the pool is broken; then the test fails instead of hanging.
constexpr absl::Duration kPatience = absl::Seconds(20);

// Tracks how many jobs run at once, and the most that ever did.
class ConcurrencyMeter {
 public:
  void Enter() {
    const int now = running_.fetch_add(1, std::memory_order_relaxed) + 1;
    int max = max_.load(std::memory_order_relaxed);
    while (now > max &&
           !max_.compare_exchange_weak(max, now, std::memory_order_relaxed)) {
    }
  }
  void Exit() { running_.fetch_sub(1, std::memory_order_relaxed); }
  int running() const { return running_.load(std::memory_order_relaxed); }
  int max() const { return max_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int> running_{0};
  std::atomic<int> max_{0};
};

constexpr std::chrono::seconds kPatienceStd{20};

// n threads meet: ArriveAndWait() returns true once all n have arrived, or
// false after kPatience.
class Rendezvous {
 public:
  explicit Rendezvous(int n) : n_(n) {}
  bool ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (++arrived_ == n_) cv_.notify_all();
    return cv_.wait_for(lock, kPatienceStd, [&] { return arrived_ >= n_; });
  }

 private:
  const int n_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;  // Guarded by mu_.
};

// Waits (with kPatience) until `pred(pool.stats())` holds.
template <class Pred>
bool WaitForStats(const BlockingPool& pool, Pred pred) {
  const absl::Time deadline = absl::Now() + kPatience;
  while (!pred(pool.stats())) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// Waits (with kPatience) until `counter` reaches `n`.
bool WaitForCount(const std::atomic<int>& counter, int n) {
  const absl::Time deadline = absl::Now() + kPatience;
  while (counter.load() < n) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(BlockingPool, StartsWithNoThreads) {
  // A new pool owns no threads and reports all-zero stats.
  BlockingPool pool(8, absl::Seconds(10));
  const BlockingPoolStats s = pool.stats();
  EXPECT_EQ(s.threads, 0);
  EXPECT_EQ(s.busy, 0);
  EXPECT_EQ(s.idle, 0);
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.completed, 0);
  EXPECT_EQ(s.peak_threads, 0);
}

TEST(BlockingPool, GrowsOnDemandAndRunsBlockedJobsConcurrently) {
  // Below the cap, every job that blocks gets its own thread: 50 sleeping
  // jobs with cap 64 are all running at the same moment.
  constexpr int kJobs = 50;
  BlockingPool pool(64, absl::Seconds(10));
  ConcurrencyMeter meter;
  Rendezvous all_in(kJobs);
  std::atomic<int> done{0};
  for (int i = 0; i < kJobs; ++i) {
    Go(pool, [&] {
      meter.Enter();
      // Stay until all 50 are in (or kPatience passes, if the pool is
      // broken), so that overlap does not depend on thread start-up speed.
      EXPECT_TRUE(all_in.ArriveAndWait());
      absl::SleepFor(absl::Milliseconds(100));
      meter.Exit();
      done.fetch_add(1);
    });
  }
  ASSERT_TRUE(WaitForCount(done, kJobs));
  EXPECT_EQ(meter.max(), kJobs);
  // No job finished before all were submitted, so none could reuse a thread.
  EXPECT_EQ(pool.stats().peak_threads, kJobs);
}

TEST(BlockingPool, CapIsRespected) {
  // Never more than max_threads jobs run at once, nor threads exist; the
  // excess waits in the queue.
  constexpr int kCap = 4;
  constexpr int kJobs = 40;
  BlockingPool pool(kCap, absl::Seconds(10));
  ConcurrencyMeter meter;
  Gate gate;
  std::atomic<int> ran{0};
  for (int i = 0; i < kJobs; ++i) {
    Go(pool, [&, i] {
      meter.Enter();
      if (i < kCap) {
        EXPECT_TRUE(gate.WaitFor());
      } else {
        absl::SleepFor(absl::Milliseconds(1));
      }
      meter.Exit();
      ran.fetch_add(1);
    });
  }
  // The first kCap jobs each started a thread and hold it at the gate, so
  // the counts are exact here.
  BlockingPoolStats s = pool.stats();
  EXPECT_EQ(s.threads, kCap);
  EXPECT_EQ(s.busy, kCap);
  EXPECT_EQ(s.idle, 0);
  EXPECT_EQ(s.queued, kJobs - kCap);
  const absl::Time deadline = absl::Now() + kPatience;
  while (meter.running() < kCap && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  gate.Open();
  ASSERT_TRUE(WaitForCount(ran, kJobs));
  EXPECT_EQ(meter.max(), kCap);
  s = pool.stats();
  EXPECT_EQ(s.peak_threads, kCap);
  EXPECT_LE(s.threads, kCap);
  EXPECT_EQ(s.queued, 0);
}

TEST(BlockingPool, IdleThreadIsReusedWithinKeepAlive) {
  // A thread that finished its job stays (idle) and takes the next job
  // instead of a new thread being started.
  BlockingPool pool(8, absl::InfiniteDuration());
  for (int i = 1; i <= 5; ++i) {
    Go(pool, [] {});
    // A job is counted completed in the same critical section in which its
    // thread turns idle, so this wait leaves exactly one idle thread.
    ASSERT_TRUE(WaitForStats(
        pool, [&](const BlockingPoolStats& s) { return s.completed == i; }));
    const BlockingPoolStats s = pool.stats();
    EXPECT_EQ(s.threads, 1);
    EXPECT_EQ(s.idle, 1);
    EXPECT_EQ(s.busy, 0);
  }
  EXPECT_EQ(pool.stats().peak_threads, 1);
}

TEST(BlockingPool, IdleThreadsRetireAfterKeepAlive) {
  // Threads idle for longer than keep_alive retire, all of them: threads
  // drops back to 0 without any further Submit.
  constexpr int kJobs = 8;
  BlockingPool pool(kJobs, absl::Milliseconds(50));
  Gate gate;
  std::atomic<int> ran{0};
  for (int i = 0; i < kJobs; ++i) {
    Go(pool, [&] {
      EXPECT_TRUE(gate.WaitFor());
      ran.fetch_add(1);
    });
  }
  EXPECT_EQ(pool.stats().threads, kJobs);
  gate.Open();
  ASSERT_TRUE(WaitForCount(ran, kJobs));
  // keep_alive is 50 ms; 500 ms is the nominal bound. Allow far more (poll up
  // to kPatience) because a sanitizer build on a loaded machine can delay a
  // timed wakeup a lot; the test is about "they retire", not about when.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_TRUE(WaitForStats(
      pool, [](const BlockingPoolStats& s) { return s.threads == 0; }));
  const BlockingPoolStats s = pool.stats();
  EXPECT_EQ(s.idle, 0);
  EXPECT_EQ(s.peak_threads, kJobs);
  EXPECT_EQ(s.completed, kJobs);
  // The pool still works after every thread retired.
  Gate again;
  Go(pool, [&] { again.Open(); });
  EXPECT_TRUE(again.WaitFor());
}

TEST(BlockingPool, KeepAliveZeroRetiresAsSoonAsQueueIsEmpty) {
  // With keep_alive 0 a thread never idles: when it finds the queue empty it
  // retires, in the same critical section that counts its job completed.
  BlockingPool pool(2, absl::ZeroDuration());
  for (int i = 1; i <= 3; ++i) {
    Go(pool, [] {});
    ASSERT_TRUE(WaitForStats(
        pool, [&](const BlockingPoolStats& s) { return s.completed == i; }));
    const BlockingPoolStats s = pool.stats();
    EXPECT_EQ(s.threads, 0);
    EXPECT_EQ(s.idle, 0);
  }
  // Queued jobs are still drained before the thread retires.
  Gate gate;
  std::atomic<int> ran{0};
  for (int i = 0; i < 20; ++i) {
    Go(pool, [&, i] {
      if (i < 2) {
        EXPECT_TRUE(gate.WaitFor());
      }
      ran.fetch_add(1);
    });
  }
  EXPECT_EQ(pool.stats().queued, 18);
  gate.Open();
  ASSERT_TRUE(WaitForCount(ran, 20));
  EXPECT_TRUE(WaitForStats(pool, [](const BlockingPoolStats& s) {
    return s.completed == 23 && s.threads == 0;
  }));
}

TEST(BlockingPool, QueuedJobsRunOnceInFifoOrder) {
  // With cap 1, jobs queued behind a busy thread all run, exactly once, in
  // the order they were submitted.
  constexpr int kJobs = 200;
  BlockingPool pool(1, absl::Seconds(10));
  Gate gate;
  std::mutex mu;
  std::vector<int> order;  // Guarded by mu.
  for (int i = 0; i < kJobs; ++i) {
    Go(pool, [&, i] {
      if (i == 0) {
        EXPECT_TRUE(gate.WaitFor());
      }
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
    });
  }
  EXPECT_EQ(pool.stats().queued, kJobs - 1);
  gate.Open();
  ASSERT_TRUE(WaitForStats(
      pool, [](const BlockingPoolStats& s) { return s.completed == kJobs; }));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(order.size(), static_cast<size_t>(kJobs));
  for (int i = 0; i < kJobs; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(pool.stats().peak_threads, 1);
}

TEST(BlockingPool, DestructorRunsQueuedJobsAndReturns) {
  // ~BlockingPool runs every submitted job, queued ones included, then
  // returns with every thread joined.
  constexpr int kJobs = 100;
  std::atomic<int> ran{0};
  Gate gate;
  std::thread opener;
  {
    BlockingPool pool(2, absl::Seconds(10));
    for (int i = 0; i < kJobs; ++i) {
      Go(pool, [&, i] {
        if (i < 2) {
          EXPECT_TRUE(gate.WaitFor());
        }
        ran.fetch_add(1);
      });
    }
    EXPECT_EQ(pool.stats().queued, kJobs - 2);
    // Open the gate a little later, likely while the destructor waits.
    // Either order is correct; the assertion below holds for both.
    opener = std::thread([&] {
      absl::SleepFor(absl::Milliseconds(20));
      gate.Open();
    });
  }
  EXPECT_EQ(ran.load(), kJobs);
  opener.join();
}

TEST(BlockingPool, DestructorWakesIdleThreads) {
  // Idle threads with an infinite keep_alive are woken and joined by the
  // destructor; it does not wait for a keep-alive that never ends.
  BlockingPool* pool = new BlockingPool(4, absl::InfiniteDuration());
  std::atomic<int> done{0};
  Gate gate;
  for (int i = 0; i < 4; ++i) {
    Go(*pool, [&] {
      EXPECT_TRUE(gate.WaitFor());
      done.fetch_add(1);
    });
  }
  gate.Open();
  ASSERT_TRUE(WaitForCount(done, 4));
  ASSERT_TRUE(WaitForStats(
      *pool, [](const BlockingPoolStats& s) { return s.idle == 4; }));
  delete pool;  // Must return; a hang here fails by Bazel's test timeout.
}

TEST(BlockingPool, DestructorRightAfterRetirementsJoinsEveryThread) {
  // Threads retiring while the pool is destroyed are all joined: nothing is
  // leaked (TSan reports a leaked thread) and nothing hangs.
  for (int round = 0; round < 50 / kScale; ++round) {
    BlockingPool pool(4, absl::Microseconds(round % 5 * 100));
    for (int i = 0; i < 8; ++i) Go(pool, [] {});
    absl::SleepFor(absl::Microseconds(round % 7 * 100));
  }
}

TEST(BlockingPool, SubmitFromInsideAJob) {
  // A job may Submit more jobs (the pool holds no lock while a job runs):
  // a tree of jobs, each spawning two children down to a depth, all run once.
  constexpr int kDepth = 8;
  constexpr int kTotal = (1 << (kDepth + 1)) - 1;
  BlockingPool pool(3, absl::Seconds(10));
  std::atomic<int> ran{0};
  struct Spawner {
    BlockingPool* pool;
    std::atomic<int>* ran;
    void Spawn(int depth) const {
      Go(*pool, [s = *this, depth] {
        if (depth < kDepth) {
          s.Spawn(depth + 1);
          s.Spawn(depth + 1);
        }
        s.ran->fetch_add(1);
      });
    }
  };
  Spawner{&pool, &ran}.Spawn(0);
  ASSERT_TRUE(WaitForCount(ran, kTotal));
  // Every job submitted its children before counting itself, so nothing is
  // submitted after this point and completed settles at kTotal.
  EXPECT_TRUE(WaitForStats(
      pool, [](const BlockingPoolStats& s) { return s.completed == kTotal; }));
  EXPECT_LE(pool.stats().peak_threads, 3);
}

TEST(BlockingPool, JobCallableIsDestroyedOnPoolThreadAndMaySubmit) {
  // A job's captures are destroyed on the pool thread right after it
  // returns, without the pool's lock held: a capture whose destructor calls
  // Submit works.
  BlockingPool pool(1, absl::Seconds(10));
  Gate from_destructor;
  std::string destroyed_on;
  struct SubmitOnDestroy {
    BlockingPool* pool;
    Gate* note;
    std::string* destroyed_on;
    ~SubmitOnDestroy() {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof(name));
      *destroyed_on = name;
      Go(*pool, [n = note] { n->Open(); });
    }
  };
  std::unique_ptr<SubmitOnDestroy> guard(
      new SubmitOnDestroy{&pool, &from_destructor, &destroyed_on});
  Go(pool, [g = std::move(guard)] {});
  ASSERT_TRUE(from_destructor.WaitFor());
  EXPECT_EQ(destroyed_on, "ripcord-block");
}

TEST(BlockingPool, ConcurrentSubmitRunsEveryJobExactlyOnce) {
  // 4 threads submit 10k tiny jobs in total; each runs exactly once, and
  // the pool's completed count agrees.
  constexpr int kSubmitters = 4;
  const int kPerSubmitter = 10000 / kSubmitters / kScale;
  const int kTotal = kPerSubmitter * kSubmitters;
  std::vector<std::atomic<int>> runs(kTotal);
  {
    BlockingPool pool(8, absl::Milliseconds(5));
    std::vector<std::thread> submitters;
    for (int t = 0; t < kSubmitters; ++t) {
      submitters.emplace_back([&, t] {
        for (int i = 0; i < kPerSubmitter; ++i) {
          const int id = t * kPerSubmitter + i;
          Go(pool, [&runs, id] { runs[id].fetch_add(1); });
        }
      });
    }
    for (std::thread& t : submitters) t.join();
    EXPECT_TRUE(WaitForStats(pool, [&](const BlockingPoolStats& s) {
      return s.completed == kTotal;
    }));
    EXPECT_LE(pool.stats().peak_threads, 8);
  }
  for (int id = 0; id < kTotal; ++id) {
    ASSERT_EQ(runs[id].load(), 1) << "job " << id;
  }
}

TEST(BlockingPool, ThreadsBlockNoSignalAndHaveAName) {
  // Pool threads block none of SIGINT, SIGTERM and the other async signals
  // (a child process started from a blocking fn inherits the thread's mask,
  // and must be interruptible); they are named "ripcord-block". Checked on a
  // new thread and on a reused one.
  BlockingPool pool(2, absl::Seconds(10));
  for (int round = 0; round < 2; ++round) {
    sigset_t mask;
    sigemptyset(&mask);
    char name[16] = {};
    Gate done;
    Go(pool, [&] {
      pthread_sigmask(SIG_BLOCK, nullptr, &mask);
      pthread_getname_np(pthread_self(), name, sizeof(name));
      done.Open();
    });
    ASSERT_TRUE(done.WaitFor());
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) {
      EXPECT_EQ(sigismember(&mask, sig), 0) << "signal " << sig;
    }
    EXPECT_EQ(std::string(name), "ripcord-block");
  }
  // The submitting thread's own mask is left alone.
  sigset_t mine;
  pthread_sigmask(SIG_BLOCK, nullptr, &mine);
  EXPECT_EQ(sigismember(&mine, SIGINT), 0);
}

// Races Submit against threads whose keep_alive is running out (the "job
// queued as the last idle thread times out" case of the protocol), across
// caps and submitter counts. Every job must run exactly once; a lost job
// shows up as a count that never arrives (kPatience), not as a hang.
void SubmitRacesRetirement(int cap, int submitters, absl::Duration keep_alive) {
  const int kRounds = 60 / kScale;
  const int kPerRound = 16;
  std::atomic<int> ran{0};
  int submitted = 0;
  std::mt19937 rng(cap * 131 + submitters);
  BlockingPool pool(cap, keep_alive);
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::thread> threads;
    for (int t = 0; t < submitters; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kPerRound; ++i) {
          Go(pool, [&] { ran.fetch_add(1); });
        }
      });
    }
    for (std::thread& t : threads) t.join();
    submitted += submitters * kPerRound;
    // Pause around keep_alive, so the next burst meets threads that are
    // just about to retire, have just retired, or are still idle.
    absl::SleepFor(absl::Microseconds(rng() % 3000));
  }
  ASSERT_TRUE(WaitForCount(ran, submitted))
      << "cap " << cap << ", submitters " << submitters << ": ran "
      << ran.load() << " of " << submitted;
  EXPECT_TRUE(WaitForStats(pool, [&](const BlockingPoolStats& s) {
    return s.completed == submitted;
  }));
  const BlockingPoolStats s = pool.stats();
  EXPECT_LE(s.peak_threads, cap);
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(s.threads, s.busy + s.idle);
}

TEST(BlockingPoolStress, SubmitRacesRetirement) {
  // See SubmitRacesRetirement: no job is lost or run twice when Submit
  // meets a thread whose keep_alive just ran out.
  for (int cap : {1, 2, 4, 13}) {
    for (int submitters : {1, 4}) {
      SubmitRacesRetirement(cap, submitters, absl::Milliseconds(1));
    }
  }
}

TEST(BlockingPoolStress, SubmitRacesZeroKeepAlive) {
  // Same as above with keep_alive 0, where every thread retires as soon as
  // the queue is empty, so threads start and retire constantly.
  for (int cap : {1, 4}) {
    for (int submitters : {1, 4}) {
      SubmitRacesRetirement(cap, submitters, absl::ZeroDuration());
    }
  }
}

// Death tests re-run the binary ("threadsafe" style) because the process
// has threads; that is slower but safe with TSan.
class BlockingPoolDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(BlockingPoolDeathTest, BadOptionsAbortNamingTheOption) {
  // Invalid construction arguments abort with a message naming the
  // ExecutorOptions field they come from.
  EXPECT_DEATH(BlockingPool(0, absl::Seconds(1)),
               "ExecutorOptions::max_blocking_threads");
  EXPECT_DEATH(BlockingPool(-3, absl::Seconds(1)),
               "ExecutorOptions::max_blocking_threads");
  EXPECT_DEATH(BlockingPool(4, absl::Milliseconds(-1)),
               "ExecutorOptions::blocking_keep_alive");
}

TEST_F(BlockingPoolDeathTest, ExceptionEscapingAJobAborts) {
  // An exception thrown by a job is reported with its what() and aborts the
  // process; it never silently ends a pool thread.
  EXPECT_DEATH(
      {
        BlockingPool pool(1, absl::Seconds(1));
        Go(pool, [] { throw std::runtime_error("disk on fire"); });
        absl::SleepFor(kPatience);
      },
      "ripcord: fatal: exception escaped a blocking job: disk on fire");
}

TEST_F(BlockingPoolDeathTest, EmptyJobAborts) {
  // Submitting an empty callable is a programming error.
  EXPECT_DEATH(
      {
        BlockingPool pool(1, absl::Seconds(1));
        Go(pool, nullptr);
      },
      "empty job");
}

TEST_F(BlockingPoolDeathTest, SubmitDuringDestructionAborts) {
  // A Submit made after ~BlockingPool began aborts with a message instead of
  // racing the joins. The job waits until the destructor has begun: the
  // pool's thread turns idle only after it returns, so the destructor is
  // blocked joining it while it submits.
  EXPECT_DEATH(
      {
        auto* pool = new BlockingPool(1, absl::Seconds(1));
        Gate destroying;
        Go(*pool, [&] {
          destroying.WaitFor();
          // Ample time for the main thread to enter ~BlockingPool; it has
          // nothing else to do.
          absl::SleepFor(absl::Milliseconds(500));
          Go(*pool, [] {});
        });
        destroying.Open();
        delete pool;
      },
      "Submit\\(\\) called after ~BlockingPool began");
}

TEST_F(BlockingPoolDeathTest, DestructorOnOwnThreadAborts) {
  // Destroying the pool from one of its own jobs would join its own thread;
  // it aborts with a message instead of deadlocking.
  EXPECT_DEATH(
      {
        auto* pool = new BlockingPool(1, absl::Seconds(1));
        Go(*pool, [pool] { delete pool; });
        absl::SleepFor(kPatience);
      },
      "called from one of its own blocking jobs");
}

// ---- threads that cannot start ---------------------------------------------

bool FailBlockingThreads(const void* name) {
  return std::strcmp(static_cast<const char*>(name), "ripcord-block") == 0;
}
bool FailTimerThread(const void* name) {
  return std::strcmp(static_cast<const char*>(name), "ripcord-timer") == 0;
}
bool FailWorkerThreads(const void* name) {
  return std::strcmp(static_cast<const char*>(name), "ripcord-worker") == 0;
}

// Installs a thread start hook (TestHook::kThreadStart) for one scope.
class ScopedStartHook : public ripcord::testing::ScopedTestHook {
 public:
  explicit ScopedStartHook(TestHookFn hook)
      : ScopedTestHook(TestHook::kThreadStart, hook) {}
};

// Invariant: when a new thread cannot start but one exists, the job waits
// for it (queued) instead of aborting the process; every job runs once.
TEST(BlockingPoolStartFailure, JobsWaitForARunningThread) {
  BlockingPool pool(/*max_threads=*/4, absl::Seconds(10));
  Gate release;
  std::atomic<int> ran{0};
  Go(pool, [&] {
    release.WaitFor();
    ++ran;
  });
  {
    ScopedStartHook fail(&FailBlockingThreads);
    for (int i = 0; i < 3; ++i) Go(pool, [&] { ++ran; });
    BlockingPoolStats s = pool.stats();
    EXPECT_EQ(s.threads, 1);
    EXPECT_EQ(s.queued, 3);
    EXPECT_EQ(s.start_failures, 3);
    release.Open();
    ASSERT_TRUE(testing::Eventually([&] { return ran.load() == 4; }));
  }
  EXPECT_EQ(pool.stats().peak_threads, 1);
  // Starts work again once threads can be created.
  Gate second;
  Go(pool, [&] { second.WaitFor(); });
  Go(pool, [&] { ++ran; });  // needs a second thread
  ASSERT_TRUE(testing::Eventually([&] { return ran.load() == 5; }));
  second.Open();
}

// Invariant: with no thread at all and none startable, Submit refuses the
// job with ResourceExhausted, destroys it unrun, and the pool works once
// threads can start again.
TEST(BlockingPoolStartFailure, NoThreadAtAllIsResourceExhausted) {
  BlockingPool pool(/*max_threads=*/4, absl::Seconds(10));
  auto token = std::make_shared<int>(1);
  std::atomic<bool> ran{false};
  {
    ScopedStartHook fail(&FailBlockingThreads);
    absl::Status s = pool.Submit([&ran, token] { ran = true; });
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_NE(std::string(s.message()).find("cannot start thread "
                                            "'ripcord-block'"),
              std::string::npos)
        << s;
  }
  EXPECT_EQ(token.use_count(), 1);  // the job was destroyed
  EXPECT_FALSE(ran.load());
  EXPECT_EQ(pool.stats().threads, 0);
  Gate done;
  Go(pool, [&] { done.Open(); });
  EXPECT_TRUE(done.WaitFor());
}

// Invariant: through the public API, a blocking call that finds no blocking
// thread and cannot start one does not abort: done receives
// ResourceExhausted (counted failed), and co_await Blocking yields it; fn
// never runs. The executor keeps working.
TEST(BlockingPoolStartFailure, SpawnBlockingAndAwaitGetResourceExhausted) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  std::atomic<bool> fn_ran{false};
  absl::Status done_status, awaited;
  {
    ScopedStartHook fail(&FailBlockingThreads);
    g.SpawnBlocking([&] { fn_ran = true; },
                    [&](absl::Status s) { done_status = s; });
    g.Spawn([&]() -> Task<> {
      absl::StatusOr<int> r = co_await Blocking([&] {
        fn_ran = true;
        return 1;
      });
      awaited = r.status();
    });
    EXPECT_TRUE(g.Wait().ok());
  }
  EXPECT_FALSE(fn_ran.load());
  EXPECT_EQ(done_status.code(), absl::StatusCode::kResourceExhausted)
      << done_status;
  EXPECT_EQ(awaited.code(), absl::StatusCode::kResourceExhausted) << awaited;
  EXPECT_EQ(g.stats().failed, 1);
  TaskGroup h(ex);
  h.SpawnBlocking([] { return 7; }, [&](absl::StatusOr<int> v) {
    done_status = v.status();
  });
  EXPECT_TRUE(h.Wait().ok());
  EXPECT_TRUE(done_status.ok()) << done_status;
}

using ThreadStartDeathTest = BlockingPoolDeathTest;

// Invariant: a timer or worker thread that cannot start fails the
// Executor's construction with a message naming it, never a crash later.
TEST_F(ThreadStartDeathTest, TimerThreadFailsAtConstruction) {
  EXPECT_DEATH(
      {
        ScopedStartHook fail(&FailTimerThread);
        Executor ex({.num_workers = 1});
      },
      "cannot start thread 'ripcord-timer'.*thread or memory limit");
}

TEST_F(ThreadStartDeathTest, WorkerThreadFailsAtConstruction) {
  EXPECT_DEATH(
      {
        ScopedStartHook fail(&FailWorkerThreads);
        Executor ex({.num_workers = 1});
      },
      "Executor: cannot start worker 0 of 1: .*cannot start thread "
      "'ripcord-worker'");
}

// Invariant: blocking threads get the stack size asked for
// (ExecutorOptions::blocking_stack_size, 2 MiB by default).
TEST(BlockingPoolStack, ThreadsGetTheConfiguredStackSize) {
  for (size_t want : {size_t{256} << 10, size_t{2} << 20}) {
    BlockingPool pool(1, absl::Seconds(1), want);
    size_t got = 0;
    Gate done;
    Go(pool, [&] {
      pthread_attr_t attr;
      pthread_getattr_np(pthread_self(), &attr);
      pthread_attr_getstacksize(&attr, &got);
      pthread_attr_destroy(&attr);
      done.Open();
    });
    ASSERT_TRUE(done.WaitFor());
    // glibc may hand out a cached stack up to 4 times larger.
    EXPECT_GE(got, want);
    EXPECT_LE(got, 4 * want);
  }
  EXPECT_EQ(ExecutorOptions().blocking_stack_size, size_t{2} << 20);
}

}  // namespace
}  // namespace ripcord::internal
