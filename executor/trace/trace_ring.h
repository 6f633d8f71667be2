// Copyright 2026 The ripcord Authors.
//
// trace_ring.h: one thread's ring of trace events, shared by the recording
// side (trace.cc) and the file writer (trace_file.cc). Private to
// executor/trace. The seqlock that lets any thread snapshot a ring while
// its owner appends is described atop trace.h.
#ifndef RIPCORD_EXECUTOR_TRACE_TRACE_RING_H_
#define RIPCORD_EXECUTOR_TRACE_TRACE_RING_H_

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "executor/trace/trace.h"

namespace ripcord::internal {

// CLOCK_MONOTONIC in nanoseconds: the events' clock.
inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

inline size_t RoundUpPow2(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// TraceRing: one thread's events for one Tracer. Append() is called by the
// owning thread only; Snapshot() by any thread (the seqlock atop trace.h).
// Slots live in chunks allocated by the owner as the ring first fills, so a
// thread that records three events costs one small chunk, not a full ring.
class TraceRing {
 public:
  // `kind` as stored: a TraceKind, with kSiteLabel set when `label` is a
  // TaskNode's site_file and `aux`'s low half its site_line (CompleteSite).
  // `aux`: a stop's reason (a const char*); for a run, its site line and,
  // in the high half, its flow id; for a spawn, its flow id.
  static constexpr uint8_t kSiteLabel = 0x80;
  struct Event {
    uint64_t start;
    uint64_t end;
    const char* label;
    const char* group_name;
    uint64_t aux;
    uint64_t group_id;
    uint8_t kind;
    TraceKind Kind() const { return static_cast<TraceKind>(kind & 0x7f); }
  };

  TraceRing(std::string name, int tid, size_t events)
      : name_(std::move(name)),
        tid_(tid),
        capacity_(RoundUpPow2(std::max<size_t>(events, 1))),
        chunk_shift_(
            std::countr_zero(std::min<size_t>(capacity_, kChunkEvents))),
        chunks_(new std::atomic<Slot*>[capacity_ >> chunk_shift_]) {
    for (size_t i = 0; i < capacity_ >> chunk_shift_; ++i) {
      chunks_[i].store(nullptr, std::memory_order_relaxed);
    }
  }
  ~TraceRing() {
    for (size_t i = 0; i < capacity_ >> chunk_shift_; ++i) {
      delete[] chunks_[i].load(std::memory_order_relaxed);
    }
  }
  TraceRing(const TraceRing&) = delete;
  TraceRing& operator=(const TraceRing&) = delete;

  const std::string& name() const { return name_; }
  int tid() const { return tid_; }

  // Owner only. Recording's append (trace.h).
  [[gnu::always_inline]] void Append(const Event& e) {
    const uint64_t n = next_;
    // relaxed: ordered before the slot's stores by their release.
    writing_.store(n, std::memory_order_relaxed);
    Slot* s = SlotFor(n);
    // release, each: orders writing_ = n before it; pairs with Snapshot's
    // acquire loads of the same fields.
    s->start.store(e.start, std::memory_order_release);
    s->end.store(e.end, std::memory_order_release);
    s->label.store(e.label, std::memory_order_release);
    s->group_name.store(e.group_name, std::memory_order_release);
    s->aux.store(e.aux, std::memory_order_release);
    s->group_id_kind.store(e.group_id << 8 | e.kind,
                           std::memory_order_release);
    next_ = n + 1;
    // release: publishes the slot; pairs with the acquire load in Snapshot.
    head_.store(n + 1, std::memory_order_release);
  }

  // Any thread: the events still held, oldest first; adds to *dropped
  // those recorded and no longer held (overwritten, or torn by a concurrent
  // overwrite while copying).
  std::vector<Event> Snapshot(uint64_t* dropped) const {
    // acquire: pairs with the release store in Append (reading's head load,
    // trace.h).
    const uint64_t head = head_.load(std::memory_order_acquire);
    const uint64_t first = head > capacity_ ? head - capacity_ : 0;
    std::vector<Event> out;
    out.reserve(head - first);
    for (uint64_t i = first; i < head; ++i) {  // the copy
      const Slot* s = SlotAt(i);
      Event e;
      // acquire, each: pairs with Append's release stores, so that a field
      // of a later event orders that event's writing_ store before our
      // load of writing_ below.
      e.start = s->start.load(std::memory_order_acquire);
      e.end = s->end.load(std::memory_order_acquire);
      e.label = s->label.load(std::memory_order_acquire);
      e.group_name = s->group_name.load(std::memory_order_acquire);
      e.aux = s->aux.load(std::memory_order_acquire);
      const uint64_t gk = s->group_id_kind.load(std::memory_order_acquire);
      e.group_id = gk >> 8;
      e.kind = static_cast<uint8_t>(gk & 0xff);
      out.push_back(e);
    }
    // The torn check. relaxed: after the acquire loads above (see trace.h).
    const uint64_t w = writing_.load(std::memory_order_relaxed);
    uint64_t valid_from = first;
    if (w + 1 > capacity_ && w + 1 - capacity_ > first) {
      valid_from = w + 1 - capacity_;  // i <= w - capacity may be torn
    }
    const uint64_t torn = std::min(valid_from, head) - first;
    out.erase(out.begin(), out.begin() + static_cast<ptrdiff_t>(torn));
    *dropped += first + torn;
    return out;
  }

 private:
  static constexpr size_t kChunkEvents = 1024;
  struct Slot {
    std::atomic<uint64_t> start{0};
    std::atomic<uint64_t> end{0};
    std::atomic<const char*> label{nullptr};
    std::atomic<const char*> group_name{nullptr};
    std::atomic<uint64_t> aux{0};
    std::atomic<uint64_t> group_id_kind{0};
  };

  Slot* SlotFor(uint64_t n) {  // owner only
    const size_t i = n & (capacity_ - 1);
    std::atomic<Slot*>& chunk = chunks_[i >> chunk_shift_];
    // relaxed: only the owner writes chunk pointers.
    Slot* c = chunk.load(std::memory_order_relaxed);
    if (c == nullptr) [[unlikely]] {
      c = new Slot[size_t{1} << chunk_shift_];
      // release: publishes the chunk (readers reach it only through a
      // head_ that covers it, which is a release store too).
      chunk.store(c, std::memory_order_release);
    }
    return &c[i & ((size_t{1} << chunk_shift_) - 1)];
  }
  const Slot* SlotAt(uint64_t n) const {
    const size_t i = n & (capacity_ - 1);
    // acquire: pairs with the release store in SlotFor. Non-null: every
    // event below head_ was appended into an allocated chunk.
    return &chunks_[i >> chunk_shift_].load(
        std::memory_order_acquire)[i & ((size_t{1} << chunk_shift_) - 1)];
  }

  const std::string name_;  // the thread's name in the file
  const int tid_;           // the thread's "tid" in the file
  const size_t capacity_;   // a power of two
  const int chunk_shift_;   // log2 of the events per chunk (<= capacity_)
  const std::unique_ptr<std::atomic<Slot*>[]> chunks_;
  uint64_t next_ = 0;  // owner only: the next event's number
  // The event being written (relaxed) and one past the last complete one
  // (release/acquire): the seqlock atop trace.h.
  std::atomic<uint64_t> writing_{0};
  std::atomic<uint64_t> head_{0};
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_TRACE_TRACE_RING_H_
