#include <atomic>
#include <cstdio>
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"

namespace ripcord {
namespace {

int64_t Fib(TaskGroup& parent, int n) {
  if (n < 2) return n;
  int64_t a = 0;
  TaskGroup tg(parent);
  tg.Spawn([&] { a = Fib(tg, n - 1); });
  int64_t b = Fib(tg, n - 2);
  EXPECT_TRUE(tg.Wait().ok());
  return a + b;
}

TEST(Smoke, Fib) {
  for (int workers : {1, 2, 4}) {
    Executor ex({.num_workers = workers});
    TaskGroup root(ex);
    int64_t r = 0;
    root.Spawn([&] { r = Fib(root, 20); });
    ASSERT_TRUE(root.Wait().ok());
    EXPECT_EQ(r, 6765);
  }
}

TEST(Smoke, ManyExternal) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex);
  std::atomic<int> n{0};
  for (int i = 0; i < 100000; ++i) g.Spawn([&] { n.fetch_add(1); });
  ASSERT_TRUE(g.Wait().ok());
  EXPECT_EQ(n.load(), 100000);
  auto s = g.stats();
  EXPECT_EQ(s.spawned, 100000);
  EXPECT_EQ(s.completed, 100000);
}

TEST(Smoke, StopAndError) {
  Executor ex({.num_workers = 2});
  TaskGroup g(ex, {.name = "g"});
  g.Spawn([](StopToken t) { return SleepFor(absl::Seconds(10), t); });
  g.Spawn([]() -> absl::Status { return absl::InternalError("boom"); });
  absl::Status s = g.Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  TaskGroup h(ex, {.name = "h"});
  TaskGroup c(h, {.name = "c"});
  c.Spawn([](StopToken t) { return SleepFor(absl::Seconds(10), t); });
  h.RequestStop("because");
  absl::Status cs = c.Wait();
  EXPECT_TRUE(absl::IsCancelled(cs)) << cs;
  EXPECT_NE(cs.message().find("because"), absl::string_view::npos) << cs;
}

}  // namespace
}  // namespace ripcord
