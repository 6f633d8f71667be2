// Copyright 2026 The ripcord Authors.
//
// Output that must not grow without bound (API.md "Limits and helpers"):
// Executor::DebugString() of a very deep tree, stop reasons (cut at 4,096
// bytes, control characters escaped, a child's reason naming its direct
// parent and the original reason only), and TaskGroup::tree_stats().
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

using ::ripcord::testing::Contains;
using ::ripcord::testing::Gate;
using ::ripcord::testing::JoinOrDie;
using ::ripcord::testing::Watchdog;

// A chain root -> g1 -> ... -> g(depth-1), destroyed leaf first.
class Chain {
 public:
  Chain(Executor& executor, int depth) {
    groups_.push_back(
        std::make_unique<TaskGroup>(executor, GroupOptions{.name = "g0"}));
    for (int i = 1; i < depth; ++i) {
      groups_.push_back(std::make_unique<TaskGroup>(
          *groups_.back(), GroupOptions{.name = absl::StrCat("g", i)}));
    }
  }
  ~Chain() {
    while (!groups_.empty()) groups_.pop_back();
  }
  TaskGroup& root() { return *groups_.front(); }
  TaskGroup& leaf() { return *groups_.back(); }
  TaskGroup& at(int i) { return *groups_[i]; }

 private:
  std::vector<std::unique_ptr<TaskGroup>> groups_;
};

// A 10,000-deep chain used to make a 101 MB DebugString (indentation). Now
// indentation stops at 32 levels (deeper lines show their depth) and the
// text stops near 1 MiB with "... N more groups".
TEST(Limits, DebugStringOfDeepChainIsBounded) {
  Watchdog watchdog(absl::Seconds(120));
  Executor executor({.num_workers = 2});
  Chain chain(executor, 10000);
  const std::string dump = executor.DebugString();
  EXPECT_LT(dump.size(), size_t{2} << 20) << "DebugString is "
                                           << dump.size() << " bytes";
  EXPECT_TRUE(Contains(dump, "group 'g0'"));
  EXPECT_TRUE(Contains(dump, "[depth 40]")) << dump.substr(0, 8000);
  EXPECT_TRUE(Contains(dump, " more groups")) << dump.substr(dump.size() - 500);
  // No line is indented more than 2 * 32 spaces (+ the root level's 2).
  for (absl::string_view line : absl::StrSplit(dump, '\n')) {
    const size_t indent = line.find_first_not_of(' ');
    if (indent == absl::string_view::npos) continue;
    ASSERT_LE(indent, size_t{66}) << line.substr(0, 200);
  }
}

// The same bound holds when every group of the chain carries a (capped)
// stop reason: the total, not only the indentation, is bounded. (2,000
// levels of 4 KiB reasons are 8 MB uncapped. Not 10,000: Stop() recurses
// once per level, which overflows the main thread's stack under ASan.)
TEST(Limits, DebugStringOfStoppedDeepChainIsBounded) {
  Watchdog watchdog(absl::Seconds(120));
  Executor executor({.num_workers = 2});
  Chain chain(executor, 2000);
  chain.root().RequestStop(std::string(100000, 'r'));
  const std::string dump = executor.DebugString();
  EXPECT_LT(dump.size(), size_t{2} << 20);
  EXPECT_TRUE(Contains(dump, " more groups"));
}

// A 50 MB reason is cut at 4,096 bytes (plus a marker saying so) in the
// status Wait() returns and in DebugString.
TEST(Limits, HugeStopReasonIsCut) {
  Watchdog watchdog(absl::Seconds(120));
  Executor executor({.num_workers = 2});
  TaskGroup group(executor, {.name = "huge"});
  TaskGroup child(group, {.name = "kid"});
  group.RequestStop(std::string(50 << 20, 'x'));
  const absl::Status s = group.Wait();
  ASSERT_TRUE(absl::IsCancelled(s)) << s.ToString().substr(0, 200);
  EXPECT_LE(s.message().size(), size_t{4096 + 200});
  EXPECT_GE(s.message().size(), size_t{4096});
  EXPECT_TRUE(Contains(s.message(), "[cut: 52428800 bytes in all]"))
      << s.message().substr(s.message().size() - 100);
  const absl::Status c = child.Wait();
  ASSERT_TRUE(absl::IsCancelled(c));
  EXPECT_LE(c.message().size(), size_t{4096 + 300});
  EXPECT_TRUE(Contains(c.message(), "parent group 'huge' stopped"));
  const std::string dump = executor.DebugString();
  EXPECT_LT(dump.size(), size_t{3 * 4096 + 2000});
  EXPECT_TRUE(Contains(dump, "bytes in all] (from the parent)"));
}

// A reason of exactly 4,096 plain bytes is kept whole; one more byte cuts.
TEST(Limits, ReasonAtTheLimitIsKept) {
  Executor executor({.num_workers = 1});
  TaskGroup a(executor, {.name = "a"});
  a.RequestStop(std::string(4096, 'y'));
  const absl::Status sa = a.Wait();
  EXPECT_TRUE(Contains(sa.message(), std::string(4096, 'y')));
  EXPECT_FALSE(Contains(sa.message(), "[cut"));
  TaskGroup b(executor, {.name = "b"});
  b.RequestStop(std::string(4097, 'y'));
  const absl::Status sb = b.Wait();
  EXPECT_FALSE(Contains(sb.message(), std::string(4097, 'y')));
  EXPECT_TRUE(Contains(sb.message(), "[cut: 4097 bytes in all]"));
}

// A cut never splits a UTF-8 sequence: the kept part is valid UTF-8.
TEST(Limits, CutKeepsUtf8Whole) {
  Executor executor({.num_workers = 1});
  TaskGroup g(executor, {.name = "u"});
  std::string reason = "a";  // so the 3-byte characters straddle 4,096
  for (int i = 0; i < 2000; ++i) reason += "\xe2\x82\xac";  // the euro sign
  g.RequestStop(reason);
  const absl::Status s = g.Wait();
  const absl::string_view m = s.message();
  const size_t cut = m.find(" ...[cut:");
  ASSERT_NE(cut, absl::string_view::npos);
  const absl::string_view kept = m.substr(0, cut);
  // "group 'u' stopped: a" then whole euro signs only.
  const size_t start = kept.find(": a") + 3;
  EXPECT_EQ((kept.size() - start) % 3, 0u);
  EXPECT_TRUE(absl::EndsWith(kept, "\xe2\x82\xac"));
}

// Control characters and NUL are escaped in the recorded reason.
TEST(Limits, ControlCharactersAreEscaped) {
  Executor executor({.num_workers = 1});
  TaskGroup g(executor, {.name = "esc"});
  g.RequestStop(std::string("a\0b\nc\x01\x7f" "d\te\r", 11));
  const absl::Status s = g.Wait();
  EXPECT_TRUE(Contains(s.message(), "a\\x00b\\nc\\x01\\x7fd\\te\\r"))
      << s.message();
  for (char c : s.message()) {
    EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f);
  }
  const std::string dump = executor.DebugString();
  EXPECT_TRUE(Contains(dump, "a\\x00b\\nc\\x01\\x7fd\\te\\r"));
}

// A child's reason names its direct parent and the original reason, not the
// whole chain: at depth 1,000 the leaf's message is short.
TEST(Limits, DeepStopReasonDoesNotGrowPerLevel) {
  Watchdog watchdog(absl::Seconds(120));
  Executor executor({.num_workers = 2});
  Chain chain(executor, 1000);
  chain.root().RequestStop("the original reason");
  const absl::Status leaf = chain.leaf().Wait();
  ASSERT_TRUE(absl::IsCancelled(leaf));
  EXPECT_LT(leaf.message().size(), size_t{200}) << leaf.message();
  EXPECT_TRUE(Contains(leaf.message(), "group 'g999' stopped"));
  EXPECT_TRUE(Contains(leaf.message(), "parent group 'g998'"));
  EXPECT_TRUE(Contains(leaf.message(), "the original reason"));
  EXPECT_FALSE(Contains(leaf.message(), "g997"));
  const absl::Status root = chain.root().Wait();
  EXPECT_EQ(root.message(), "group 'g0' stopped: the original reason");
}

// A child created under a stopped parent (LinkChild's stop) gets the same
// short reason, however deep the already stopped chain is.
TEST(Limits, ChildOfStoppedChainHasShortReason) {
  Executor executor({.num_workers = 1});
  Chain chain(executor, 50);
  chain.root().RequestStop("orig");
  TaskGroup late(chain.leaf(), {.name = "late"});
  const absl::Status s = late.Wait();
  EXPECT_EQ(s.message(),
            "group 'late' stopped: parent group 'g49' stopped: orig");
}

// tree_stats() sums the group and all its descendants.
TEST(Limits, TreeStatsSumsTheSubtree) {
  Watchdog watchdog(absl::Seconds(60));
  Executor executor({.num_workers = 2});
  TaskGroup root(executor, {.name = "root"});
  TaskGroup a(root, {.name = "a"});
  TaskGroup b(root, {.name = "b"});
  TaskGroup aa(a, {.name = "aa"});
  for (int i = 0; i < 3; ++i) root.Spawn([] {});
  for (int i = 0; i < 5; ++i) a.Spawn([] {});
  for (int i = 0; i < 7; ++i) b.Spawn([]() -> absl::Status {
    return absl::InternalError("boom");
  });
  for (int i = 0; i < 11; ++i) aa.Spawn([] {});
  JoinOrDie(root).IgnoreError();  // b failed; its error stays in b
  const GroupStats t = root.tree_stats();
  EXPECT_EQ(t.spawned, 26);
  EXPECT_EQ(t.completed + t.failed + t.cancelled, 26);
  EXPECT_GE(t.failed, 1);
  EXPECT_EQ(t.running, 0);
  EXPECT_EQ(t.queued, 0);
  const GroupStats s = root.stats();
  EXPECT_EQ(s.spawned, 3);
  const GroupStats ta = a.tree_stats();
  EXPECT_EQ(ta.spawned, 16);
  EXPECT_EQ(aa.tree_stats().spawned, aa.stats().spawned);
}

// tree_stats() while tasks run: counts the running tasks of every level.
TEST(Limits, TreeStatsWhileRunning) {
  Watchdog watchdog(absl::Seconds(60));
  Executor executor({.num_workers = 2});
  TaskGroup root(executor, {.name = "root"});
  TaskGroup child(root, {.name = "child"});
  Gate release;
  std::atomic<int> started{0};
  root.SpawnBlocking([&] { started++; release.WaitFor(); },
                     [](absl::Status) {});
  child.SpawnBlocking([&] { started++; release.WaitFor(); },
                      [](absl::Status) {});
  ASSERT_TRUE(::ripcord::testing::Eventually([&] { return started == 2; }));
  const GroupStats t = root.tree_stats();
  EXPECT_EQ(t.spawned, 2);
  EXPECT_EQ(t.running, 2);
  release.Open();
  ASSERT_TRUE(JoinOrDie(root).ok());
  EXPECT_EQ(root.tree_stats().completed, 2);
}

// A deep subtree: tree_stats() of a 2,000-deep chain with one task each.
TEST(Limits, TreeStatsOfDeepChain) {
  Watchdog watchdog(absl::Seconds(60));
  Executor executor({.num_workers = 2});
  Chain chain(executor, 2000);
  for (int i = 0; i < 2000; ++i) chain.at(i).Spawn([] {});
  ASSERT_TRUE(JoinOrDie(chain.root()).ok());
  const GroupStats t = chain.root().tree_stats();
  EXPECT_EQ(t.spawned, 2000);
  EXPECT_EQ(t.completed, 2000);
}

}  // namespace
}  // namespace ripcord
