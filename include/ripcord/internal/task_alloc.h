// Copyright 2026 The ripcord Authors.
//
// internal/task_alloc.h: memory for spawned tasks. A task is usually freed
// by a different worker than the one that allocated it (the thief runs it),
// which makes glibc's per-thread cache (7 chunks per size) overflow on one
// side and run dry on the other: in skynet, malloc and free were 18% of the
// workers' time, most of it in _int_free/_int_malloc under the arena lock.
// This cache keeps freed blocks per thread and 16-byte size class, whoever
// allocated them, and moves them between threads in batches of 64 through a
// per-class depot (executor/alloc/task_alloc.cc), so a thread that only submits
// and workers that only free trade memory 64 blocks per lock acquisition.
// oneTBB's small_object_pool (src/tbb/small_object_pool.cpp) solves the same
// problem with owner-returned blocks; blocks here have no header, so a queued
// task still costs one block of its own size (bar: <= 64 bytes per queued
// task).
// Under the sanitizers (RIPCORD_SANITIZER) every call goes to ::operator
// new/delete, so ASan still sees each task's lifetime.
#ifndef RIPCORD_INTERNAL_TASK_ALLOC_H_
#define RIPCORD_INTERNAL_TASK_ALLOC_H_

#include <cstddef>
#include <cstdint>
#include <new>

namespace ripcord::internal {

// Blocks up to this size are cached; larger ones go straight to malloc.
// 448 covers a group's record (GroupState, one per TaskGroup: fib(30)
// creates 1.3 million, and glibc's tcache holds only 7 of a size).
inline constexpr size_t kMaxCachedTaskSize = 448;

// The out-of-line halves (executor/alloc/task_alloc.cc): every case AllocateTask
// and FreeTask below do not handle inline.
void* AllocateTaskSlow(size_t size);
void FreeTaskSlow(void* p, size_t size) noexcept;

#ifndef RIPCORD_SANITIZER
// The per-thread cache, here so that the common case (a block of a cached
// size, a list that is neither empty nor full) is inlined: two calls per
// task were 15% of skynet's instructions per task. Layout and protocol:
// executor/alloc/task_alloc.cc.
namespace task_alloc {
inline constexpr size_t kGranule = 16;
inline constexpr size_t kSmallest = 24;
inline constexpr size_t kClasses =
    (kMaxCachedTaskSize - kSmallest) / kGranule + 2;
inline constexpr uint32_t kBatch = 64;

struct FreeBlock {
  FreeBlock* next;        // within a thread list or a batch
  FreeBlock* next_batch;  // depot only: the next batch (first block's field)
};

struct TaskCache {
  FreeBlock* head[kClasses] = {};   // the loaded magazine
  uint32_t count[kClasses] = {};    // blocks in it, <= kBatch
  FreeBlock* full[kClasses] = {};   // a full magazine (kBatch blocks) or null
};

// The thread's cache: null before its first use, kDeadCache once the
// thread's cleanup ran. Initial-exec TLS with external linkage (see
// RIPCORD_FAST_TLS in executor/base/check.h). constinit: no TLS wrapper call to
// check for a dynamic initializer on each use from another file.
extern __attribute__((tls_model("initial-exec"))) constinit thread_local
    TaskCache* tls_cache;
inline constexpr uintptr_t kDeadCache = alignof(TaskCache);

constexpr size_t ClassOf(size_t size) {
  return size <= kSmallest ? 0 : (size - kSmallest + kGranule - 1) / kGranule;
}
}  // namespace task_alloc

// Thread-safe (per-thread state). Returns memory for `size` bytes aligned to
// __STDCPP_DEFAULT_NEW_ALIGNMENT__; throws std::bad_alloc like operator new.
inline void* AllocateTask(size_t size) {
  using namespace task_alloc;  // NOLINT: the cache's own names
  TaskCache* cache = tls_cache;
  if (size != 0 && size <= kMaxCachedTaskSize &&
      reinterpret_cast<uintptr_t>(cache) > kDeadCache) [[likely]] {
    const size_t c = ClassOf(size);
    if (FreeBlock* b = cache->head[c]; b != nullptr) [[likely]] {
      cache->head[c] = b->next;
      --cache->count[c];
      return b;
    }
  }
  return AllocateTaskSlow(size);
}

// Thread-safe. `p` must come from AllocateTask(size) with the same size, on
// any thread.
inline void FreeTask(void* p, size_t size) noexcept {
  using namespace task_alloc;  // NOLINT: the cache's own names
  TaskCache* cache = tls_cache;
  if (size != 0 && size <= kMaxCachedTaskSize &&
      reinterpret_cast<uintptr_t>(cache) > kDeadCache) [[likely]] {
    const size_t c = ClassOf(size);
    if (cache->count[c] < kBatch) [[likely]] {
      auto* b = static_cast<task_alloc::FreeBlock*>(p);
      b->next = cache->head[c];
      cache->head[c] = b;
      ++cache->count[c];
      return;
    }
  }
  FreeTaskSlow(p, size);
}
#else
inline void* AllocateTask(size_t size) { return AllocateTaskSlow(size); }
inline void FreeTask(void* p, size_t size) noexcept { FreeTaskSlow(p, size); }
#endif  // RIPCORD_SANITIZER

// True if T can live in AllocateTask memory (not over-aligned).
template <class T>
inline constexpr bool kTaskAllocatable =
    alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__;

// CacheAllocated<Derived>: a base that gives Derived class-level operator
// new/delete from the task cache (or aligned operator new when Derived is
// over-aligned). `delete p` must name the most derived type (sized delete).
template <class Derived>
struct CacheAllocated {
  static void* operator new(size_t size) {
    if constexpr (kTaskAllocatable<Derived>) {
      return AllocateTask(size);
    } else {
      return ::operator new(size, std::align_val_t{alignof(Derived)});
    }
  }
  static void operator delete(void* p, size_t size) noexcept {
    if constexpr (kTaskAllocatable<Derived>) {
      FreeTask(p, size);
    } else {
      // Unsized: clang 14 declares sized deallocation functions only with
      // -fsized-deallocation, and this header is compiled in user code.
      (void)size;
      ::operator delete(p, std::align_val_t{alignof(Derived)});
    }
  }
};

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_TASK_ALLOC_H_
