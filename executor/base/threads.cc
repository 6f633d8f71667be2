// Copyright 2026 The ripcord Authors.
#include "executor/base/threads.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "executor/base/test_hooks.h"

namespace ripcord::internal {

// External linkage: see tls_sleep_cancelled in ripcord/internal/coroutine.h.
thread_local const char* tls_thread_role = nullptr;

const char* ThreadRole() { return tls_thread_role; }

namespace {

bool StartFailsForTesting(const char* name) {
  return RunTestHook(TestHook::kThreadStart, name);
}

}  // namespace

sigset_t AsyncSignalSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) {
    sigaddset(&set, sig);
  }
  return set;
}

std::thread StartThread(const char* name, absl::AnyInvocable<void() &&> fn) {
  std::thread t;
  try {
    if (StartFailsForTesting(name)) {
      throw std::system_error(EAGAIN, std::generic_category(), "test hook");
    }
    t = std::thread([name, fn = std::move(fn)]() mutable {
      pthread_setname_np(pthread_self(), name);
      tls_thread_role = name;
      std::move(fn)();
    });
  } catch (const std::system_error& e) {
    std::fprintf(stderr,
                 "ripcord: fatal: cannot start thread '%s': %s (a thread or "
                 "memory limit: ulimit -u, ulimit -v, the container's pids "
                 "limit)\n",
                 name, e.what());
    std::abort();
  }
  return t;
}

// ---- threads with a chosen stack ----------------------------------------

namespace {

struct ThreadStart {
  const char* name;
  absl::AnyInvocable<void() &&> fn;
};

void* ThreadEntry(void* arg) {
  ThreadStart* start = static_cast<ThreadStart*>(arg);
  pthread_setname_np(pthread_self(), start->name);
  tls_thread_role = start->name;
  std::move(start->fn)();
  delete start;  // destroys fn's callable on this thread, after it ran
  return nullptr;
}

[[noreturn]] void ThreadAbort(const char* what) {
  std::fprintf(stderr, "ripcord: fatal: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

// The calling thread's [low, low + size) stack, or size 0 if unknown.
struct StackBounds {
  uintptr_t low = 0;
  size_t size = 0;
};
StackBounds CurrentStack() {
  StackBounds b;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return b;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
    b.low = reinterpret_cast<uintptr_t>(addr);
    b.size = size;
  }
  pthread_attr_destroy(&attr);
  return b;
}

}  // namespace

Thread::Thread(Thread&& other) noexcept
    : id_(other.id_), joinable_(std::exchange(other.joinable_, false)) {}

Thread& Thread::operator=(Thread&& other) noexcept {
  if (joinable_) ThreadAbort("Thread assigned to while joinable");
  id_ = other.id_;
  joinable_ = std::exchange(other.joinable_, false);
  return *this;
}

Thread::~Thread() {
  if (joinable_) ThreadAbort("Thread destroyed while joinable");
}

void Thread::join() {
  if (!joinable_) ThreadAbort("Thread::join() of a non-joinable");
  const int rc = pthread_join(id_, nullptr);
  if (rc != 0) ThreadAbort(std::strerror(rc));
  joinable_ = false;
}

absl::StatusOr<Thread> TryStartThread(const char* name, size_t stack_size,
                                      absl::AnyInvocable<void() &&> fn) {
  if (StartFailsForTesting(name)) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot start thread '%s': %s (test hook)", name,
                        std::strerror(EAGAIN)));
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (stack_size != 0) {
    const int rc = pthread_attr_setstacksize(&attr, stack_size);
    if (rc != 0) {
      pthread_attr_destroy(&attr);
      return absl::InvalidArgumentError(
          absl::StrFormat("cannot start thread '%s': stack size %zu: %s", name,
                          stack_size, std::strerror(rc)));
    }
  }
  auto* start = new ThreadStart{name, std::move(fn)};
  // The new thread inherits the caller's signal mask: ripcord blocks no
  // signal (signal_watcher.h), so a child process it starts does neither.
  Thread t;
  const int rc = pthread_create(&t.id_, &attr, &ThreadEntry, start);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete start;
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot start thread '%s': %s (a thread or memory limit: ulimit -u, "
        "ulimit -v, the container's pids limit)",
        name, std::strerror(rc)));
  }
  t.joinable_ = true;
  return t;
}

uintptr_t StackGuardLimit() {
  // 1: not computed yet (0 means "unknown": no guard).
  static thread_local uintptr_t limit = 1;
  if (limit == 1) [[unlikely]] {
    const StackBounds b = CurrentStack();
    if (b.size == 0) {
      limit = 0;
    } else {
      size_t reserve = b.size / 4;
      if (reserve < (size_t{64} << 10)) reserve = size_t{64} << 10;
      limit = reserve < b.size ? b.low + reserve : 0;
    }
  }
  return limit;
}

}  // namespace ripcord::internal
