// Copyright 2026 The ripcord Authors.
//
// task_alloc.cc: the block cache behind AllocateTask/FreeTask (see
// include/ripcord/internal/task_alloc.h for why).
//
// Two levels, after Bonwick's magazines and depot (USENIX 2001) and
// tcmalloc's transfer cache:
//  1. Per thread and size class, a loaded magazine (a free list of up to
//     kBatch blocks) and at most one full one. Allocation and free touch
//     only these: no atomic operation. A free into a loaded magazine that
//     is full moves it to the full slot (sending the previous full one to
//     the depot); an allocation from an empty one loads the full one, else
//     a batch from the depot. So a batch moves whole, without walking its
//     blocks (counting 64 blocks off a list, a chain of dependent loads,
//     was 7% of a stop of 10^5 coroutines).
//  2. Per size class, a depot of full batches (chains of kBatch blocks)
//     under a spinlock. A thread whose list overflows moves one batch to the
//     depot; a thread whose list is empty takes one batch back. So a thread
//     that only submits (the blocks are freed by the workers that ran the
//     tasks) refills kBatch blocks per lock acquisition instead of calling
//     malloc per task, and the workers return them in the same way.
// The depots together keep at most kMaxDepotBytes (a soft bound: each class
// checks a shared byte count without a common lock); beyond it, blocks go
// back to operator delete. The bound is sized for a stop of 100,000
// suspended coroutines (a 256-byte frame and an 88-byte node each, ~34 MB):
// with the former cap of 16,384 blocks per class, 85% of that stop's frees
// reached glibc (on 2 workers, 15-25% of the stop's CPU time in _int_free
// and the arena locks of the threads that had allocated them). Memory held
// by a depot is memory the process used at its peak a moment ago; glibc
// would keep most of it in its bins too, just not for us.
#include "ripcord/internal/task_alloc.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "executor/base/check.h"
#include "ripcord/internal/mutex.h"

namespace ripcord::internal {

#ifndef RIPCORD_SANITIZER

// A named namespace, not an anonymous one: tls_cache must have external
// linkage (RIPCORD_FAST_TLS, check.h), and so must the types it uses.
namespace task_alloc {

// Class sizes 24, 40, 56, ... (task_alloc.h): glibc's usable chunk sizes (a
// 16-byte multiple minus its 8-byte header), so a block that falls back to
// malloc costs exactly the chunk malloc would have used for the task anyway
// (a 40-byte node in a 48-byte class would take a 64-byte chunk).
constexpr int64_t kMaxDepotBytes = int64_t{64} << 20;  // all classes

// Bytes in all depots (soft bound above). relaxed: a budget, read and
// updated next to each depot's own lock; concurrent flushes may overshoot it
// by a batch each.
std::atomic<int64_t> depot_bytes{0};

static_assert(sizeof(FreeBlock) <= kSmallest);

struct alignas(64) Depot {
  SpinLock mu;
  FreeBlock* batches ABSL_GUARDED_BY(mu) = nullptr;
  uint32_t count ABSL_GUARDED_BY(mu) = 0;
};
Depot depots[kClasses];

// External linkage on purpose (RIPCORD_FAST_TLS, check.h); declared in
// task_alloc.h.
RIPCORD_FAST_TLS constinit thread_local TaskCache* tls_cache = nullptr;
TaskCache* const kDead = reinterpret_cast<TaskCache*>(kDeadCache);

size_t ClassSize(size_t c) { return kSmallest + c * kGranule; }
static_assert(kSmallest + (kClasses - 1) * kGranule >= kMaxCachedTaskSize);

// Blocks of the 56- and 72-byte classes (a plain task whose callable
// captures 3 to 5 words: fib's, skynet's, d&c's) start on a cache line and
// fill whole lines, so that no two of them share one. Such a block is
// written by the thread that builds the task, the one that runs it and the
// one that frees it; after steals and cross-thread frees, neighbours in one
// line belong to tasks on different cores. Measured on skynet (72-byte
// tasks, 2 workers, 10 repetitions each, alternated): 19.9-34.8 ms with
// 16-aligned glibc chunks, 18.1-21.1 ms with line-aligned blocks (oneTBB
// 23.8-24.6 ms); fib(30) 78 -> 71 ms. Left packed: the two smallest classes
// (up to 40 bytes), for the memory bar of 64 bytes per queued task, and
// the classes from 88 bytes up (coroutine nodes and frames), whose memory
// per sleeping coroutine would otherwise grow by half (glibc's aligned
// allocations leave padding: RSS 393 -> 670 B per coroutine when every
// class was aligned). Carving aligned blocks from slabs would avoid that
// padding, but slab blocks cannot go back to glibc one at a time (the
// depots' cap relies on it).
constexpr size_t kLine = 64;
constexpr bool LineAligned(size_t c) { return c == 2 || c == 3; }
static_assert(kSmallest + 2 * kGranule == 56 && kSmallest + 3 * kGranule == 72);

void* NewBlock(size_t c) {
  if (!LineAligned(c)) return ::operator new(ClassSize(c));
  const size_t bytes = (ClassSize(c) + kLine - 1) / kLine * kLine;
  return ::operator new(bytes, std::align_val_t{kLine});
}

void DeleteBlock(void* p, size_t c) {
  if (!LineAligned(c)) return ::operator delete(p, ClassSize(c));
  const size_t bytes = (ClassSize(c) + kLine - 1) / kLine * kLine;
  ::operator delete(p, bytes, std::align_val_t{kLine});
}

// Moves the batch `first` (kBatch blocks of class c) to the depot, or to
// operator delete when the depots are full.
void FlushBatch(size_t c, FreeBlock* first) {
  const int64_t bytes = static_cast<int64_t>(kBatch * ClassSize(c));
  // relaxed: see depot_bytes.
  if (depot_bytes.load(std::memory_order_relaxed) + bytes <= kMaxDepotBytes) {
    depot_bytes.fetch_add(bytes, std::memory_order_relaxed);
    Depot& d = depots[c];
    SpinLockHolder lock(&d.mu);
    first->next_batch = d.batches;
    d.batches = first;
    ++d.count;
    return;
  }
  while (first != nullptr) {
    FreeBlock* next = first->next;
    DeleteBlock(first, c);
    first = next;
  }
}

// Takes a batch from the depot into the (empty) thread list of class c.
bool Refill(TaskCache& cache, size_t c) {
  Depot& d = depots[c];
  FreeBlock* batch;
  {
    SpinLockHolder lock(&d.mu);
    batch = d.batches;
    if (batch == nullptr) return false;
    d.batches = batch->next_batch;
    --d.count;
  }
  // relaxed: see depot_bytes.
  depot_bytes.fetch_sub(static_cast<int64_t>(kBatch * ClassSize(c)),
                        std::memory_order_relaxed);
  cache.head[c] = batch;
  cache.count[c] = kBatch;
  return true;
}

struct CacheCleaner {
  ~CacheCleaner() {
    TaskCache* cache = tls_cache;
    // A free by a later thread_local destructor of this thread goes
    // straight to operator delete from now on.
    tls_cache = kDead;
    for (size_t c = 0; c < kClasses; ++c) {
      if (cache->full[c] != nullptr) FlushBatch(c, cache->full[c]);
      if (cache->count[c] == kBatch) {
        FlushBatch(c, cache->head[c]);
        continue;
      }
      while (cache->head[c] != nullptr) {
        FreeBlock* b = cache->head[c];
        cache->head[c] = b->next;
        DeleteBlock(b, c);
      }
    }
    delete cache;
  }
};

// The calling thread's cache, or nullptr while the thread exits.
TaskCache* Cache() {
  TaskCache* cache = tls_cache;
  if (__builtin_expect(cache != nullptr && cache != kDead, 1)) return cache;
  if (cache == kDead) return nullptr;
  tls_cache = cache = new TaskCache;
  thread_local CacheCleaner cleaner;  // registers the cleanup for this thread
  (void)cleaner;
  return cache;
}

void* Allocate(size_t size) {
  if (size == 0 || size > kMaxCachedTaskSize) return ::operator new(size);
  const size_t c = ClassOf(size);
  TaskCache* cache = Cache();
  if (cache == nullptr) return NewBlock(c);
  FreeBlock* b = cache->head[c];
  if (b == nullptr) {
    if (cache->full[c] != nullptr) {
      cache->head[c] = std::exchange(cache->full[c], nullptr);
      cache->count[c] = kBatch;
    } else if (!Refill(*cache, c)) {
      return NewBlock(c);
    }
    b = cache->head[c];
  }
  cache->head[c] = b->next;
  --cache->count[c];
  return b;
}

void Free(void* p, size_t size) {
  if (size == 0 || size > kMaxCachedTaskSize) {
    ::operator delete(p, size);
    return;
  }
  const size_t c = ClassOf(size);
  TaskCache* cache = Cache();
  if (cache == nullptr) {
    DeleteBlock(p, c);
    return;
  }
  if (cache->count[c] == kBatch) {
    if (cache->full[c] != nullptr) FlushBatch(c, cache->full[c]);
    cache->full[c] = std::exchange(cache->head[c], nullptr);
    cache->count[c] = 0;
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = cache->head[c];
  cache->head[c] = b;
  ++cache->count[c];
}

}  // namespace task_alloc

void* AllocateTaskSlow(size_t size) { return task_alloc::Allocate(size); }
void FreeTaskSlow(void* p, size_t size) noexcept {
  task_alloc::Free(p, size);
}

#else  // RIPCORD_SANITIZER: every task is its own allocation.

void* AllocateTaskSlow(size_t size) { return ::operator new(size); }
void FreeTaskSlow(void* p, size_t size) noexcept {
  ::operator delete(p, size);
}

#endif  // RIPCORD_SANITIZER

}  // namespace ripcord::internal
