// Copyright 2026 The ripcord Authors.
//
// Regression test: Wait() returned OkStatus() for a group whose
// stop_requested() was already true. The first Stop() sets the stop bit
// before it records the stop (StopState's on_stop runs once the bit is
// visible), and GroupState::Outcome() read "bit set, nothing recorded" as
// OK. Here a parent's stop reaches its child on another thread while the
// child's owner, which saw the child's bit, joins it. Found by the chaos
// harness (plain seed 2001 at 194 s, TSan seed 3001 at 56 s: "OK from a
// group stopped before Wait()"); docs/chaos.md.
//
// Invariant: a Wait() that begins after stop_requested() returned true
// returns CancelledError naming the stop's reason.
#include <atomic>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ripcord/ripcord.h"
#include "tests/test_util.h"

namespace ripcord {
namespace {

TEST(OkAfterStopBitTest, WaitAfterTheBitIsSeenIsNeverOk) {
  Executor ex(ExecutorOptions{.num_workers = 1});
  // A tenth under the sanitizers (a round costs ~10 ms under TSan here).
  const int kRounds = ripcord::testing::kSanitizer ? 1000 : 10000;
  // One stopper thread for all rounds: it stops the parent it is handed.
  std::atomic<TaskGroup*> to_stop{nullptr};
  std::thread stopper([&] {
    for (int round = 0; round < kRounds; ++round) {
      TaskGroup* g;
      while ((g = to_stop.load()) == nullptr) {
      }
      g->RequestStop(absl::StrCat("reason-", round));
      to_stop = nullptr;
    }
  });
  int bad = 0;
  std::string first_bad;
  for (int round = 0; round < kRounds; ++round) {
    const std::string reason = absl::StrCat("reason-", round);
    TaskGroup parent(ex);
    TaskGroup child(parent);
    to_stop = &parent;
    while (!child.stop_requested()) {
    }
    const absl::Status s = child.Wait();
    while (to_stop.load() != nullptr) {
    }
    if (!absl::IsCancelled(s) || !absl::StrContains(s.message(), reason)) {
      if (bad++ == 0) {
        first_bad = absl::StrCat("round ", round, ": ", s.ToString());
      }
    }
    (void)parent.Wait();
  }
  stopper.join();
  EXPECT_EQ(bad, 0) << "first: " << first_bad;
}

}  // namespace
}  // namespace ripcord
