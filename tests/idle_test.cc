// Copyright 2026 The ripcord Authors.
//
// idle_test: Idle's bookkeeping (executor/sched/idle.h) on one thread, step by
// step: who must re-check the queues when it parks (the re-check rule: only
// when no other worker searches at its RMW), who a producer wakes, and lent
// seats (LendParked: counted unparked, never picked by WorkerToNotify, a
// wake-up of a lent seat reports kLent).
#include "executor/sched/idle.h"

#include "gtest/gtest.h"

namespace ripcord::internal {
namespace {

// Parks worker `w`, which was running and not searching.
bool Park(Idle& idle, int w) { return idle.TransitionToParked(w, false); }

TEST(IdleTest, ARefusedWorkerRechecksOnlyWhenNobodySearches) {
  Idle idle(2);
  // Worker 0 searches; worker 1 is refused (at most half search).
  ASSERT_TRUE(idle.TransitionToSearching());
  ASSERT_FALSE(idle.TransitionToSearching());
  // Worker 1 parks while worker 0 still searches: no re-check of its own.
  EXPECT_FALSE(Park(idle, 1));
  // Worker 0, the last searcher, parks: it re-checks.
  EXPECT_TRUE(idle.TransitionToParked(0, /*is_searching=*/true));
  EXPECT_EQ(idle.num_parked(), 2);
  EXPECT_EQ(idle.NumUnparked(), 0);
}

TEST(IdleTest, WithNoSearcherAParkingWorkerRechecks) {
  Idle idle(2);
  EXPECT_TRUE(Park(idle, 1));  // worker 0 runs a task, nobody searches
  EXPECT_EQ(idle.NumUnparked(), 1);
}

TEST(IdleTest, ASearcherThatIsNotTheLastDoesNotRecheck) {
  Idle idle(4);
  ASSERT_TRUE(idle.TransitionToSearching());
  ASSERT_TRUE(idle.TransitionToSearching());
  EXPECT_FALSE(idle.TransitionToParked(0, /*is_searching=*/true));
  EXPECT_TRUE(idle.TransitionToParked(1, /*is_searching=*/true));
}

TEST(IdleTest, TheLastSearcherToFindWorkWakesAParkedWorker) {
  Idle idle(2);
  ASSERT_TRUE(idle.TransitionToSearching());
  EXPECT_FALSE(Park(idle, 1));  // skipped its re-check: 0 searches
  // Worker 0 finds work: it was the last searcher, and a producer's
  // wake-up now finds worker 1 parked.
  EXPECT_TRUE(idle.TransitionFromSearching());
  EXPECT_TRUE(idle.ShouldNotify());
  EXPECT_EQ(idle.WorkerToNotify(), 1);
  EXPECT_EQ(idle.TransitionFromParked(1), Idle::Wake::kNotified);
  EXPECT_EQ(idle.num_searching(), 1);  // the woken worker searches
}

TEST(IdleTest, ALentSeatIsNeverWokenAndParksAgain) {
  Idle idle(2);
  EXPECT_EQ(idle.LendParked(), -1);  // nobody parked: nothing to lend
  ASSERT_TRUE(Park(idle, 0));
  const int seat = idle.LendParked();
  ASSERT_EQ(seat, 0);
  EXPECT_EQ(idle.num_parked(), 0);
  EXPECT_EQ(idle.NumUnparked(), 2);  // the borrower counts as unparked
  EXPECT_FALSE(idle.ShouldNotify());
  EXPECT_EQ(idle.WorkerToNotify(), -1);
  // The seat's own thread, woken spuriously, must park again untouched.
  EXPECT_EQ(idle.TransitionFromParked(seat), Idle::Wake::kLent);
  EXPECT_EQ(idle.NumUnparked(), 2);
  // Given back with no searcher about: the borrower re-checks.
  EXPECT_TRUE(Park(idle, seat));
  EXPECT_EQ(idle.num_parked(), 1);
  EXPECT_EQ(idle.TransitionFromParked(seat), Idle::Wake::kSpurious);
}

TEST(IdleTest, AWokenWorkerWhoseThreadHasNotRunCanBeLent) {
  Idle idle(2);
  ASSERT_TRUE(Park(idle, 1));
  ASSERT_EQ(idle.WorkerToNotify(), 1);  // counted unparked and searching
  EXPECT_EQ(idle.num_searching(), 1);
  ASSERT_EQ(idle.LendParked(), 1);
  EXPECT_EQ(idle.num_searching(), 0);  // the borrower does not search
  EXPECT_EQ(idle.NumUnparked(), 2);
  // Its thread, woken at last, finds its seat lent and parks again.
  EXPECT_EQ(idle.TransitionFromParked(1), Idle::Wake::kLent);
  EXPECT_EQ(idle.LendParked(), -1);  // still lent: nothing to lend
  EXPECT_TRUE(Park(idle, 1));
  EXPECT_EQ(idle.TransitionFromParked(1), Idle::Wake::kSpurious);
}

TEST(IdleTest, ASeatGivenBackWhileAWorkerSearchesSkipsItsRecheck) {
  Idle idle(2);
  ASSERT_TRUE(Park(idle, 1));
  ASSERT_EQ(idle.LendParked(), 1);
  ASSERT_TRUE(idle.TransitionToSearching());  // worker 0 runs dry
  EXPECT_FALSE(Park(idle, 1));
  // Worker 0 gives up searching as the last searcher: it re-checks.
  EXPECT_TRUE(idle.TransitionToParked(0, /*is_searching=*/true));
}

}  // namespace
}  // namespace ripcord::internal
