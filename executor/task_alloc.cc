// Copyright 2026 The ripcord Authors.
//
// task_alloc.cc: the per-thread block cache behind AllocateTask/FreeTask
// (see include/ripcord/internal/task_alloc.h for why).
#include "ripcord/internal/task_alloc.h"

#include <cstddef>
#include <cstdint>
#include <new>

namespace ripcord::internal {
namespace {

constexpr size_t kGranule = 16;
constexpr size_t kClasses = kMaxCachedTaskSize / kGranule;
// Per class and thread. 256 blocks of 48 bytes is 12 KiB: enough to absorb
// the imbalance of a steal-heavy phase, small next to a worker's stack.
constexpr uint32_t kMaxCachedPerClass = 256;

struct FreeBlock {
  FreeBlock* next;
};

// Trivially constructible and destructible, so that accessing it is a plain
// TLS access with no init guard; the cleanup lives in a separate object that
// is touched once per thread (CacheCleaner).
struct ThreadCache {
  FreeBlock* head[kClasses];
  uint32_t count[kClasses];
  bool cleanup_registered;
};
thread_local ThreadCache tls_cache{};

size_t ClassOf(size_t size) { return (size - 1) / kGranule; }
size_t ClassSize(size_t c) { return (c + 1) * kGranule; }

struct CacheCleaner {
  ~CacheCleaner() {
    ThreadCache& cache = tls_cache;
    for (size_t c = 0; c < kClasses; ++c) {
      while (cache.head[c] != nullptr) {
        FreeBlock* b = cache.head[c];
        cache.head[c] = b->next;
        ::operator delete(b, ClassSize(c));
      }
      // Full from now on: a free by a later thread_local destructor of this
      // thread goes straight to operator delete instead of leaking here.
      cache.count[c] = kMaxCachedPerClass;
    }
  }
};

void RegisterCleanup(ThreadCache& cache) {
  thread_local CacheCleaner cleaner;
  (void)cleaner;  // constructing it registers its destructor for this thread
  cache.cleanup_registered = true;
}

}  // namespace

void* AllocateTask(size_t size) {
#ifndef RIPCORD_SANITIZER
  if (size != 0 && size <= kMaxCachedTaskSize) {
    const size_t c = ClassOf(size);
    ThreadCache& cache = tls_cache;
    if (FreeBlock* b = cache.head[c]) {
      cache.head[c] = b->next;
      --cache.count[c];
      return b;
    }
    return ::operator new(ClassSize(c));
  }
#endif
  return ::operator new(size);
}

void FreeTask(void* p, size_t size) noexcept {
#ifndef RIPCORD_SANITIZER
  if (size != 0 && size <= kMaxCachedTaskSize) {
    const size_t c = ClassOf(size);
    ThreadCache& cache = tls_cache;
    if (cache.count[c] < kMaxCachedPerClass) {
      if (!cache.cleanup_registered) RegisterCleanup(cache);
      auto* b = static_cast<FreeBlock*>(p);
      b->next = cache.head[c];
      cache.head[c] = b;
      ++cache.count[c];
      return;
    }
    ::operator delete(p, ClassSize(c));
    return;
  }
#endif
  ::operator delete(p, size);
}

}  // namespace ripcord::internal
