// Copyright 2026 The ripcord Authors.
//
// process_life.cc: the exit flag, the fork child hook and the registry of
// live executors (see process_life.h).
//
// Everything here is written so that the fork child hook stays within what
// POSIX allows after fork() in a multithreaded process: no lock, no
// allocation, only atomics on fixed arrays. The registry of live executors
// is such an array: an executor takes a free slot at construction and frees
// it at destruction; the child hook moves every occupied slot to the
// inherited array. (More than kSlots executors alive at once are not
// tracked: in a fork child, those few would hang instead of aborting.)
#include "executor/base/process_life.h"

#include <link.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace ripcord::internal {

std::atomic<bool> g_fork_child{false};

namespace {

constexpr int kSlots = 256;
// Live executors (nullptr: free slot). Written by constructors and
// destructors (acq_rel CAS / release store); read by the fork child hook,
// which runs while the child has one thread.
std::atomic<const void*> g_live[kSlots];
// Executors inherited from the parent: written only by the child hook (one
// thread), read by threads created after it.
std::atomic<const void*> g_inherited[kSlots];
std::atomic<unsigned> g_fork_generation{0};

std::atomic<bool> g_exiting{false};
// How many times the exit handler was registered (capped).
std::atomic<int> g_exit_registrations{0};
constexpr int kMaxExitRegistrations = 256;

// Leaked on purpose; reachable from this array for LeakSanitizer.
constexpr int kLeakSlots = 256;
std::atomic<const void*> g_leaked[kLeakSlots];

void SetExiting() {
  // relaxed: read by destructors that run later in the same exit() call (on
  // this thread), or on threads for which a stale false only means the old
  // behaviour (abort) in a process that is ending anyway.
  g_exiting.store(true, std::memory_order_relaxed);
}

void ForkChild() {
  int n = 0;  // after those inherited by an earlier fork (a grandchild)
  while (n < kSlots &&
         g_inherited[n].load(std::memory_order_relaxed) != nullptr) {
    ++n;
  }
  for (auto& slot : g_live) {
    const void* e = slot.exchange(nullptr, std::memory_order_relaxed);
    if (e != nullptr && n < kSlots) {
      g_inherited[n++].store(e, std::memory_order_relaxed);
    }
  }
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  g_fork_child.store(true, std::memory_order_relaxed);
}

// The writable segments (data, bss) of the program and of the libraries
// loaded when first asked: where objects with static storage duration live.
// Written once under call_once; read-only after.
constexpr int kMaxSegments = 128;
struct Segment {
  uintptr_t lo, hi;
};
Segment g_segments[kMaxSegments];
int g_num_segments = 0;

int CollectWritableSegments(struct dl_phdr_info* info, size_t, void*) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
    if (g_num_segments == kMaxSegments) return 1;
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    g_segments[g_num_segments++] = {lo, lo + ph.p_memsz};
  }
  return 0;
}

// True if `p` lies in the data or bss segment of the program or of a
// library loaded at the first call: an object with static storage duration.
bool HasStaticStorage(const void* p) {
  static std::once_flag once;
  std::call_once(once,
                 [] { dl_iterate_phdr(CollectWritableSegments, nullptr); });
  const auto a = reinterpret_cast<uintptr_t>(p);
  for (int i = 0; i < g_num_segments; ++i) {
    if (a >= g_segments[i].lo && a < g_segments[i].hi) return true;
  }
  return false;
}

}  // namespace

void NoteProcessLifeObject() {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, ForkChild); });
  // relaxed: a counter; extra registrations are harmless.
  if (g_exit_registrations.fetch_add(1, std::memory_order_relaxed) <
      kMaxExitRegistrations) {
    std::atexit(SetExiting);
  }
}

bool ExitingFor(const void* obj) {
  return g_exiting.load(std::memory_order_relaxed) || HasStaticStorage(obj);
}

void LeakOnPurpose(const void* p) {
  for (auto& slot : g_leaked) {
    const void* expected = nullptr;
    if (slot.compare_exchange_strong(expected, p, std::memory_order_relaxed)) {
      return;
    }
  }
}

void RegisterExecutor(const void* executor) {
  for (auto& slot : g_live) {
    const void* expected = nullptr;
    // relaxed: the slot holds an address used only as a key.
    if (slot.compare_exchange_strong(expected, executor,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
}

void UnregisterExecutor(const void* executor) {
  for (auto& slot : g_live) {
    const void* expected = executor;
    if (slot.compare_exchange_strong(expected, nullptr,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
}

bool InheritedByForkSlow(const void* executor) {
  for (const auto& slot : g_inherited) {
    const void* e = slot.load(std::memory_order_relaxed);
    if (e == nullptr) return false;
    if (e == executor) return true;
  }
  return false;
}

void CheckNotInherited(const void* executor, const char* api) {
  if (!InheritedByFork(executor)) return;
  std::fprintf(stderr,
               "ripcord: fatal: %s: Executor used in a fork() child; its "
               "threads did not survive the fork: create a new Executor in "
               "the child\n",
               api);
  std::fflush(stderr);
  std::abort();
}

unsigned ForkGeneration() {
  return g_fork_generation.load(std::memory_order_relaxed);
}

}  // namespace ripcord::internal
