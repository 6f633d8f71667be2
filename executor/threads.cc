// Copyright 2026 The ripcord Authors.
#include "executor/threads.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

namespace ripcord::internal {

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
    t = std::thread([name, fn = std::move(fn)]() mutable {
      pthread_setname_np(pthread_self(), name);
      std::move(fn)();
    });
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "ripcord: cannot start thread '%s': %s\n", name,
                 e.what());
    std::abort();
  }
  return t;
}

}  // namespace ripcord::internal
