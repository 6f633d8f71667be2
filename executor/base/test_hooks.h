// Copyright 2026 The ripcord Authors.
//
// test_hooks.h: the one way tests reach into the library's race windows.
// A hook point is a place where the library calls a test's function, to
// hold a thread inside a window that is nanoseconds wide in production
// (a park's re-check, a stop half done) or to make a system call fail (a
// thread that cannot start). Hooks exist only in builds without NDEBUG:
// in an optimized build RunTestHook() is a constant false and the points
// compile to nothing. Tests that need a hook check TestHooksAvailable().
#ifndef RIPCORD_EXECUTOR_BASE_TEST_HOOKS_H_
#define RIPCORD_EXECUTOR_BASE_TEST_HOOKS_H_

#include <atomic>

namespace ripcord::internal {

// The hook points, and what `arg` is at each.
enum class TestHook : int {
  // GroupState::Submit, between its stop check and its count's increment
  // (a Spawn racing a stop and a census). arg: the GroupState*.
  kSubmitRace,
  // GroupState::Stop, in the call that made the first stop, before the
  // stop is complete (before the propagation to the children). arg: the
  // GroupState*.
  kStopRace,
  // A parking thread between its last search and the parking RMW, where a
  // push is found only by the re-check that follows (idle.h). arg: a
  // const ParkSite* (scheduler.h). Runs with no lock held.
  kParkWindow,
  // GroupState::IsWithin, after it read census_passed_ clear and before it
  // follows parent_ (the census's tag-walks step). arg: the const
  // GroupState* walked. May run under the injection queue's lock.
  kAncestryWalk,
  // StartThread / TryStartThread, before creating the thread: a true
  // result makes the start fail as if the system refused (EAGAIN). arg:
  // the thread's name (const char*).
  kThreadStart,
  // The flight recorder's Tracer constructor, choosing how many events
  // each thread's ring holds. arg: a size_t* holding the default
  // (kDefaultTraceRingEvents, executor/trace/trace.h); the hook may store
  // another count there (at least 1; rounded up to a power of two).
  kTraceRingEvents,
  kCount,
};

// A hook: returns true to make the point fail where the point allows it
// (kThreadStart), else its result is ignored. It must return.
using TestHookFn = bool (*)(const void* arg);

// Installs `fn` at `point` for the whole process (nullptr removes it).
// Thread-safety: any thread; a point already past its load of the hook may
// still call the previous one. Aborts with a message in NDEBUG builds,
// which have no hook points.
void SetTestHook(TestHook point, TestHookFn fn);

#ifdef NDEBUG
constexpr bool TestHooksAvailable() { return false; }
inline bool RunTestHook(TestHook, const void* = nullptr) { return false; }
#else
constexpr bool TestHooksAvailable() { return true; }
// relaxed loads and stores: a test knob; the hook is code, and nothing
// else is published with it.
extern std::atomic<TestHookFn> test_hooks[static_cast<int>(TestHook::kCount)];
// Calls the hook at `point`, if any: one relaxed load when none is set.
inline bool RunTestHook(TestHook point, const void* arg = nullptr) {
  TestHookFn fn =
      test_hooks[static_cast<int>(point)].load(std::memory_order_relaxed);
  return fn != nullptr && fn(arg);
}
#endif

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_BASE_TEST_HOOKS_H_
