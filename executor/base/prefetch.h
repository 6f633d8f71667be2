// Copyright 2026 The ripcord Authors.
//
// prefetch.h: asking for cold cache lines ahead of use, for writing.
//
// __builtin_prefetch(p, /*rw=*/1) is a plain read prefetch (PREFETCHT0) on
// x86-64 unless the whole build targets PRFCHW: the line may then arrive
// shared, and the RMW or store that follows still has to take it over
// (another round trip). The stop of 100,000 sleeping coroutines (written by
// one worker when they suspended, resumed by either) spent half of its sweep
// samples in the first RMW of each prefetched entry. PREFETCHW asks for the
// line exclusive; every x86-64 CPU that lacks it executes it as a NOP (AMD
// has it since K8, Intel since Broadwell), so it needs no target flag.
//
//   for (int i = 0; i < n; ++i) {
//     if (i + kAhead < n) PrefetchForWrite(items[i + kAhead]);
//     items[i]->state.fetch_or(kDone);
//   }
#ifndef RIPCORD_EXECUTOR_PREFETCH_H_
#define RIPCORD_EXECUTOR_PREFETCH_H_

#include <cstddef>
#include <cstdint>

namespace ripcord::internal {

// Prefetches the cache line of `p` for writing. A hint: never faults.
inline void PrefetchForWrite(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1);
#endif
}

// Prefetches every cache line of [p, p + bytes) for writing.
inline void PrefetchRangeForWrite(const void* p, size_t bytes) {
  constexpr uintptr_t kLine = 64;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) & ~(kLine - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + bytes;
  for (uintptr_t a = begin; a < end; a += kLine) {
    PrefetchForWrite(reinterpret_cast<const void*>(a));
  }
}

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_PREFETCH_H_
