// Copyright 2026 The ripcord Authors.
//
// Callables with by-value captures in every awaitable and every spawn path of
// a coroutine (API.md "Limits and helpers", coroutine awaitables). gcc 12
// destroys a lambda with captures (or any aggregate temporary with a
// destructor) that is built inside a co_await operand twice; task.h guards
// Blocking against it. Each test captures a std::string, a std::vector, a
// std::unique_ptr and a Counted, runs, and checks that every Counted built
// was destroyed exactly once (constructions == destructions) and that the
// captured values arrived intact. Run plain and under ASan, which reports a
// double free or a use after free at once.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"

namespace ripcord {
namespace {

// Counts constructions (of every kind) and destructions; a destroyed object
// is poisoned, so destroying it again is caught even without ASan.
std::atomic<int> constructed{0};
std::atomic<int> destroyed{0};
std::atomic<int> destroyed_twice{0};

class Counted {
 public:
  explicit Counted(int v) : value_(v) { ++constructed; }
  Counted(const Counted& o) : value_(o.value_) { ++constructed; }
  Counted(Counted&& o) noexcept : value_(o.value_) { ++constructed; }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) = default;
  ~Counted() {
    if (alive_ != kAlive) ++destroyed_twice;
    alive_ = 0;
    ++destroyed;
  }
  int value() const { return value_; }

 private:
  static constexpr uint32_t kAlive = 0xA11CE5u;
  uint32_t alive_ = kAlive;
  int value_;
};

// The captured values and their checksum.
struct Values {
  std::string s = std::string(40, 'x');  // heap-allocated (no SSO)
  std::vector<int> v = std::vector<int>(100, 7);
  std::unique_ptr<int> p = std::make_unique<int>(5);
  Counted c{11};
};
constexpr int64_t kExpected = 40 + 100 * 7 + 5 + 11;

int64_t Sum(const std::string& s, const std::vector<int>& v,
            const std::unique_ptr<int>& p, const Counted& c) {
  int64_t sum = static_cast<int64_t>(s.size()) + c.value();
  for (int x : v) sum += x;
  if (p != nullptr) sum += *p;
  return sum;
}

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    constructed = 0;
    destroyed = 0;
    destroyed_twice = 0;
  }
  void TearDown() override {
    ex_.reset();  // everything the executor ran is gone now
    EXPECT_EQ(destroyed_twice.load(), 0);
    EXPECT_EQ(constructed.load(), destroyed.load());
    EXPECT_GT(constructed.load(), 0);
  }
  Executor& ex() { return *ex_; }
  std::optional<Executor> ex_{std::in_place, ExecutorOptions{.num_workers = 2}};
};

// Invariant: the natural line, `co_await Blocking([s] { ... })`, with each
// kind of by-value capture (and init-captures that move a unique_ptr in)
// delivers fn's value and destroys each capture once.
TEST_F(CaptureTest, BlockingWithByValueCapturesDoubleFreeBug) {
  TaskGroup g(ex());
  std::atomic<int64_t> total{0};
  g.Spawn([&]() -> Task<absl::Status> {
    Values x;
    absl::StatusOr<size_t> n =
        co_await ripcord::Blocking([s = x.s] { return s.size(); });
    if (!n.ok()) co_return n.status();
    total += static_cast<int64_t>(*n);
    std::string s = x.s;
    n = co_await ripcord::Blocking([s] { return s.size(); });
    if (!n.ok()) co_return n.status();
    total += static_cast<int64_t>(*n) - 40;
    std::vector<int> v = x.v;
    absl::StatusOr<int64_t> m = co_await ripcord::Blocking(
        [v] { return Sum("", v, nullptr, Counted(0)); });
    if (!m.ok()) co_return m.status();
    total += *m - 700;
    std::unique_ptr<int> p = std::make_unique<int>(5);
    m = co_await ripcord::Blocking(
        [p = std::move(p)] { return static_cast<int64_t>(*p); });
    if (!m.ok()) co_return m.status();
    total += *m - 5;
    Counted c = x.c;
    m = co_await ripcord::Blocking([c] { return int64_t{c.value()}; });
    if (!m.ok()) co_return m.status();
    total += *m - 11;
    // All four at once, with a StopToken parameter and a Status result.
    absl::Status st = co_await ripcord::Blocking(
        [s = x.s, v = x.v, p = std::move(x.p), c = x.c](StopToken) {
          return Sum(s, v, p, c) == kExpected
                     ? absl::OkStatus()
                     : absl::InternalError("captures arrived damaged");
        });
    co_return st;
  });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(total.load(), 40);
}

// Invariant: the forms gcc 12 always handled (a named callable, passed as an
// lvalue or moved) still work and destroy each capture once.
TEST_F(CaptureTest, BlockingWithNamedAndMovedCallables) {
  TaskGroup g(ex());
  int64_t got1 = 0, got2 = 0;
  g.Spawn([&]() -> Task<> {
    Values x;
    auto fn = [s = x.s, v = x.v, c = x.c] {
      return Sum(s, v, nullptr, c);
    };
    absl::StatusOr<int64_t> a = co_await ripcord::Blocking(fn);
    absl::StatusOr<int64_t> b = co_await ripcord::Blocking(std::move(fn));
    got1 = a.value_or(-1);
    got2 = b.value_or(-1);
  });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(got1, kExpected - 5);
  EXPECT_EQ(got2, kExpected - 5);
}

// Invariant: a Blocking whose group is already stopped does not run fn and
// still destroys its captures once.
TEST_F(CaptureTest, BlockingStoppedBeforeStartDestroysCapturesOnce) {
  TaskGroup g(ex());
  absl::Notification started, stopped;
  absl::Status got;
  std::atomic<bool> ran{false};
  g.Spawn([&]() -> Task<> {
    Values x;
    started.Notify();
    stopped.WaitForNotification();  // plain block: the stop arrives meanwhile
    got = co_await ripcord::Blocking(
        [s = x.s, p = std::move(x.p), c = x.c, &ran] {
          ran = true;
          return absl::OkStatus();
        });
  });
  started.WaitForNotification();
  g.RequestStop("stopped first");
  stopped.Notify();
  EXPECT_TRUE(absl::IsCancelled(g.Wait()));
  EXPECT_TRUE(absl::IsCancelled(got)) << got;
  EXPECT_FALSE(ran.load());
}

Task<int64_t> SumTask(std::string s, std::vector<int> v,
                      std::unique_ptr<int> p, Counted c) {
  co_await Yield();
  co_return Sum(s, v, p, c);
}

template <class F>
Task<int64_t> CallTask(F f) {
  co_await Yield();
  co_return f();
}

// Invariant: Sleep, Yield, Join and co_await of another Task (taking its
// arguments by value) keep locals with by-value captures and destructors
// intact across the suspension and destroy each once.
TEST_F(CaptureTest, SleepYieldJoinAndTaskArguments) {
  TaskGroup g(ex());
  int64_t got = 0, got_named = 0;
  g.Spawn([&]() -> Task<absl::Status> {
    Values x;
    auto keep = [s = x.s, v = x.v, c = x.c] { return Sum(s, v, nullptr, c); };
    absl::Status st = co_await Sleep(absl::Milliseconds(1));
    if (!st.ok()) co_return st;
    st = co_await Yield();
    if (!st.ok()) co_return st;
    TaskGroup child(g);
    child.Spawn([keep] { (void)keep(); });
    st = co_await child.Join();
    if (!st.ok()) co_return st;
    // A Task taking arguments by value; the temporaries are built by
    // constructors (std::string, std::vector, Counted), which gcc handles.
    got = co_await SumTask(x.s, x.v, std::move(x.p), Counted(x.c.value()));
    // A Task taking a callable by value: name the callable first (see
    // task.h: an inline lambda with captures in any co_await operand that
    // is not Blocking's hits gcc's bug).
    auto fn = [keep] { return keep(); };
    got_named = co_await CallTask(std::move(fn));
    got_named += co_await CallTask(keep) - keep();
    co_return absl::OkStatus();
  });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(got, kExpected);
  EXPECT_EQ(got_named, kExpected - 5);
}

// Invariant: a coroutine lambda with by-value captures spawned on a group
// (with and without a StopToken parameter, from outside and from inside
// another coroutine, as an lvalue and as a prvalue) sees its captures
// across suspensions and destroys each once; so does a stopped group's
// queued coroutine, which never runs.
TEST_F(CaptureTest, SpawnCoroutineLambdasWithByValueCaptures) {
  TaskGroup g(ex());
  std::atomic<int64_t> total{0};
  constexpr int kTasks = 50;
  for (int i = 0; i < kTasks; ++i) {
    Values x;
    g.Spawn([s = x.s, v = x.v, p = std::move(x.p), c = x.c,
             &total]() -> Task<absl::Status> {
      absl::Status st = co_await Yield();
      if (!st.ok()) co_return st;
      absl::StatusOr<int64_t> n = co_await ripcord::Blocking(
          [s, v, c] { return Sum(s, v, nullptr, c); });
      if (!n.ok()) co_return n.status();
      total += *n + *p;
      co_return absl::OkStatus();
    });
    Values y;
    auto named = [s = y.s, v = y.v, p = std::move(y.p), c = y.c,
                  &total](StopToken token) -> Task<> {
      (void)co_await Sleep(absl::Microseconds(10));
      if (!token.stop_requested()) total += Sum(s, v, p, c);
    };
    g.Spawn(std::move(named));
  }
  g.Spawn([&]() -> Task<> {
    Values x;
    TaskGroup inner(g);
    inner.Spawn([s = x.s, v = x.v, p = std::move(x.p), c = x.c,
                 &total]() -> Task<> {
      co_await Yield();
      total += Sum(s, v, p, c);
    });
    (void)co_await inner.Join();
  });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(total.load(), (2 * kTasks + 1) * kExpected);

  TaskGroup stopped(ex());
  stopped.RequestStop("never run");
  for (int i = 0; i < 10; ++i) {
    Values x;
    stopped.Spawn([s = x.s, p = std::move(x.p), c = x.c]() -> Task<> {
      co_await Yield();
      ADD_FAILURE() << "a stopped group's coroutine ran";
    });
  }
  EXPECT_TRUE(absl::IsCancelled(stopped.Wait()));
}

// Invariant: a stop while coroutines with by-value captures are suspended
// in each awaitable unwinds them and destroys every capture once.
TEST_F(CaptureTest, StopWhileSuspendedDestroysCapturesOnce) {
  TaskGroup g(ex());
  std::atomic<int> suspended{0};
  for (int i = 0; i < 20; ++i) {
    Values x;
    g.Spawn([s = x.s, v = x.v, p = std::move(x.p), c = x.c, &suspended,
             i]() -> Task<> {
      ++suspended;
      if (i % 2 == 0) {
        (void)co_await Sleep(absl::Hours(1));
      } else {
        (void)co_await ripcord::Blocking([s, c](StopToken token) {
          while (!token.stop_requested()) absl::SleepFor(absl::Milliseconds(1));
          return s.size() + static_cast<size_t>(c.value());
        });
      }
      EXPECT_EQ(Sum(s, v, p, c), kExpected);
    });
  }
  while (suspended.load() < 20) absl::SleepFor(absl::Milliseconds(1));
  g.RequestStop("stop while suspended");
  EXPECT_TRUE(absl::IsCancelled(g.Wait()));
}

}  // namespace
}  // namespace ripcord
