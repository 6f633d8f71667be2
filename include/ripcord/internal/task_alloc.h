// Copyright 2026 The ripcord Authors.
//
// internal/task_alloc.h: memory for spawned tasks. A task is usually freed
// by a different worker than the one that allocated it (the thief runs it),
// which makes glibc's per-thread cache (7 chunks per size) overflow on one
// side and run dry on the other: in skynet, malloc and free were 18% of the
// workers' time, most of it in _int_free/_int_malloc under the arena lock.
// This cache keeps freed blocks per thread and 16-byte size class, whoever
// allocated them, and moves them between threads in batches of 64 through a
// per-class depot (executor/task_alloc.cc), so a thread that only submits
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
#include <new>

namespace ripcord::internal {

// Blocks up to this size are cached; larger ones go straight to malloc.
inline constexpr size_t kMaxCachedTaskSize = 256;

// Thread-safe (per-thread state). Returns memory for `size` bytes aligned to
// __STDCPP_DEFAULT_NEW_ALIGNMENT__; throws std::bad_alloc like operator new.
void* AllocateTask(size_t size);
// Thread-safe. `p` must come from AllocateTask(size) with the same size, on
// any thread.
void FreeTask(void* p, size_t size) noexcept;

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
      ::operator delete(p, size, std::align_val_t{alignof(Derived)});
    }
  }
};

}  // namespace ripcord::internal

#endif  // RIPCORD_INTERNAL_TASK_ALLOC_H_
