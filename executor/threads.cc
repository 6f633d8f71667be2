// Copyright 2026 The ripcord Authors.
#include "executor/threads.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

namespace ripcord::internal {

// External linkage: see tls_sleep_cancelled in ripcord/internal/coroutine.h.
thread_local const char* tls_thread_role = nullptr;

const char* ThreadRole() { return tls_thread_role; }

sigset_t AsyncSignalSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) {
    sigaddset(&set, sig);
  }
  return set;
}

std::thread StartThread(const char* name, absl::AnyInvocable<void() &&> fn) {
  sigset_t block = AsyncSignalSet();
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &block, &old);
  std::thread t;
  try {
    t = std::thread([name, fn = std::move(fn)]() mutable {
      pthread_setname_np(pthread_self(), name);
      tls_thread_role = name;
      std::move(fn)();
    });
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "ripcord: cannot start thread '%s': %s\n", name,
                 e.what());
    std::abort();
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

}  // namespace ripcord::internal
