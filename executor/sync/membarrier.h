// Copyright 2026 The ripcord Authors.
//
// membarrier.h: an asymmetric fence. The frequent side (a worker's start
// gate, every task) orders its store before its load with a compiler barrier
// only; the rare side (a stopped group's census) calls HeavyFence(), which
// makes every running thread of the process execute a full memory barrier
// (Linux membarrier(2), MEMBARRIER_CMD_PRIVATE_EXPEDITED). The pattern is
// liburcu's and folly's asymmetricHeavyBarrier: if the light side's load did
// not see the rare side's store, the light side's earlier store is visible to
// the rare side after HeavyFence() returns.
//
// Thread-safe: both functions may be called from any thread.
#ifndef RIPCORD_EXECUTOR_MEMBARRIER_H_
#define RIPCORD_EXECUTOR_MEMBARRIER_H_

#include <atomic>

namespace ripcord::internal {

// The light side: orders the caller's preceding stores before its following
// loads against a concurrent HeavyFence(). Costs nothing at run time.
inline void LightFence() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Registers the process for expedited membarriers (once; later calls are
// free). Call before any LightFence() whose ordering matters, i.e. before the
// workers start. Returns false if the kernel lacks the command.
bool RegisterHeavyFence();

// The heavy side. Returns false (having done nothing) if the kernel lacks
// expedited membarriers: the caller must then not rely on the light side.
// Takes tens of microseconds (an IPI to every CPU running our threads).
bool HeavyFence();

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_MEMBARRIER_H_
