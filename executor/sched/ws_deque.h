// Copyright 2026 The ripcord Authors.
//
// ws_deque.h: WsDeque<T>, the per-worker work-stealing deque of T*. The owning
// worker pushes and pops at the bottom (LIFO, for cache locality); any other
// thread steals from the top (FIFO, oldest and usually largest work first).
//
//   WsDeque<Task> deque;            // owned by one worker
//   deque.Push(task);               // owner: make `task` stealable
//   Task* mine = deque.Pop();       // owner: newest task, or nullptr
//   Task* theirs = deque.Steal();   // any thread: oldest task, or nullptr
//
// Algorithm: Chase and Lev, "Dynamic Circular Work-Stealing Deque" (SPAA
// 2005), with the C11 memory orderings proved correct by Lê, Pop, Cohen and
// Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory Models"
// (PPoPP 2013), Fig. 1. Two monotonically increasing indices, top_ and
// bottom_, address a power-of-two circular array; live items occupy indices
// [top_, bottom_). Push writes slot bottom_ and then publishes it by bumping
// bottom_. Steal reads slot top_ and claims it with a CAS on top_. Pop first
// reserves slot bottom_-1 by decrementing bottom_, then reads top_: if the
// reserved item is not the last one, no thief can reach it and Pop takes it
// without a CAS; if it is the last one, Pop races the thieves with the same
// CAS on top_ that they use, so exactly one party gets it.
//
// Differences from the paper's code:
//  - No std::atomic_thread_fence. TSan does not model fences and gcc 12's
//    -Wtsan turns them into errors under -Werror (STYLE.md section 0). The
//    paper's seq_cst fences are replaced by seq_cst on the operations around
//    them: in Pop the store of bottom_ and the load of top_, in Steal the
//    loads of top_ and bottom_. Both pairs then sit in the single total order
//    S, which gives the same "Pop's reservation or the thief's read of
//    bottom_, one sees the other" argument the fences gave.
//  - In the paper, take() restores bottom with relaxed stores that follow its
//    seq_cst fence, which gives them release semantics. Without the fence,
//    those stores in Pop() carry release themselves, so every store of
//    bottom_ a thief may read is release or seq_cst.
//  - The executor's park/unpark protocol needs a StoreLoad after Push's
//    store of bottom_ (see Push()). By default that store is seq_cst; with
//    UseLightPublish() it is a release store and a compiler barrier, and the
//    parking side supplies the heavy half (executor/sync/membarrier.h).
//  - The store of the grown buffer's pointer is release and thieves load it
//    with acquire, where the paper has relaxed/consume. Taskflow's
//    taskflow/core/tsq.hpp made the same change after TSan flagged it.
//  - Indices are signed 64-bit, so "bottom_ - 1 < top_" needs no unsigned
//    wrap-around reasoning; at one push per nanosecond they last 292 years.
//
// Growth: a full deque allocates a buffer twice as large, copies the live
// items and publishes it. Thieves may still be reading the old buffer, so it
// is retired, not freed, until ~WsDeque (as Taskflow's UnboundedTaskQueue
// keeps its "garbage" arrays). oneTBB instead locks a slot's task pool on
// steal, and Tokio uses a fixed 256-slot ring that overflows into the shared
// inject queue; ripcord grows so that Push never has to take a lock.
#ifndef RIPCORD_EXECUTOR_WS_DEQUE_H_
#define RIPCORD_EXECUTOR_WS_DEQUE_H_

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "executor/sync/membarrier.h"

namespace ripcord::internal {

// WsDeque<T>
//
// A growable Chase–Lev work-stealing deque of T* (see the file comment).
//
// Thread-safety: Push/Pop owner only; Steal any thread. Push() and Pop() are
// called only by the owning worker (one thread at a time; ownership may move
// between threads only through some other happens-before edge, such as
// thread start). Steal(), EmptyHint(), SizeHint() and capacity() may be
// called from any thread, concurrently with everything, including each other.
// Debug builds abort if two threads are seen inside Push/Pop at once.
//
// Memory ordering: everything a thread did before Push(item) happens before
// everything the thread that obtains `item` (from Pop() or Steal()) does
// after obtaining it. Each pushed item is returned by exactly one Pop() or
// Steal().
//
// Memory cost: the buffer never shrinks. After growth to capacity C, the live
// buffer holds C pointers and the retired buffers C/2 + C/4 + ... + the
// initial capacity < C more, so at most 2 * C * sizeof(T*) bytes plus one
// small header per buffer, all freed by ~WsDeque. C is the smallest power of
// two >= the initial capacity that held the deque's peak size.
//
// Lifetime: the deque does not own the items. ~WsDeque frees only its
// buffers; the caller drains the deque first (or knows the items are owned
// elsewhere). No thread may be inside Steal() when ~WsDeque runs.
template <class T>
class WsDeque {
 public:
  // Default initial capacity. A test-only build flag shrinks it to 2 so that
  // the growth path runs in every test, not only in the deque's own tests
  // (STYLE.md section 7; Tokio shrinks its queues under loom the same way).
#ifdef RIPCORD_SMALL_QUEUES
  static constexpr int64_t kDefaultCapacity = 2;
#else
  static constexpr int64_t kDefaultCapacity = 256;
#endif

  // WsDeque::WsDeque()
  //
  // Creates an empty deque whose first buffer holds `initial_capacity` items.
  // `initial_capacity` must be a power of two >= 1; anything else aborts with
  // a message naming the value (a programming error, not an input error).
  explicit WsDeque(int64_t initial_capacity = kDefaultCapacity) {
    if (initial_capacity < 1 ||
        !std::has_single_bit(static_cast<uint64_t>(initial_capacity))) {
      std::fprintf(stderr,
                   "ripcord: fatal: WsDeque(initial_capacity = %lld): the "
                   "capacity must be a power of two >= 1\n",
                   static_cast<long long>(initial_capacity));
      std::fflush(stderr);
      std::abort();
    }
    buffers_.push_back(std::make_unique<Buffer>(initial_capacity));
    // relaxed: no other thread can see the deque until the constructor has
    // returned and the deque has been shared through some happens-before edge.
    buffer_.store(buffers_.back().get(), std::memory_order_relaxed);
  }

  WsDeque(const WsDeque&) = delete;
  WsDeque& operator=(const WsDeque&) = delete;

  // WsDeque::~WsDeque()
  //
  // Frees the current and all retired buffers. Items still in the deque are
  // not touched (the deque does not own them).
  ~WsDeque() = default;

  // WsDeque::Push()
  //
  // Adds `item` at the bottom (owner end). Grows the buffer when full, so
  // Push never fails; if that allocation throws std::bad_alloc, the deque is
  // unchanged. `item` must not be nullptr (nullptr means "nothing" to Pop and
  // Steal).
  //
  // Thread-safety: called only by the owning worker.
  void Push(T* item) { PushImpl(item, /*may_grow=*/true); }

  // WsDeque::TryPush()
  //
  // Push() without growing: returns false, changing nothing, if the buffer
  // is full (then call Push()). For callers that keep the growth path out
  // of their fast path.
  //
  // Thread-safety: called only by the owning worker.
  bool TryPush(T* item) { return PushImpl(item, /*may_grow=*/false); }

  // WsDeque::UseLightPublish()
  //
  // From now on Push() and PushMany() end with a release store and a
  // compiler barrier (LightFence) instead of a seq_cst store: the caller
  // promises that every re-check that must see a push (see Publish())
  // follows a HeavyFence(). Call before the deque is shared.
  void UseLightPublish() { light_publish_ = true; }

  // WsDeque::PushMany(items, n): Push(items[0]), ..., Push(items[n-1]) with
  // one store of bottom_ (one seq_cst store for the batch instead of n).
  // Owner only; n >= 0; every item non-null.
  void PushMany(T* const* items, int n) {
    OwnerScope owner(this, "PushMany");
    if (n <= 0) return;
    // relaxed / acquire / relaxed: as in Push().
    const int64_t b = bottom_.load(std::memory_order_relaxed);
    const int64_t t = top_.load(std::memory_order_acquire);
    Buffer* buf = buffer_.load(std::memory_order_relaxed);
    while (b + n - t > buf->capacity) buf = Grow(buf, t, b);
    for (int i = 0; i < n; ++i) {
      if (items[i] == nullptr) {
        Die("WsDeque::PushMany: items must be non-null");
      }
      buf->Put(b + i, items[i]);
    }
    Publish(b + n);  // slots b..b+n-1, as in Push()
  }

  // WsDeque::Pop()
  //
  // Removes and returns the most recently pushed item (LIFO), or nullptr if
  // the deque is empty, including when a thief won the race for the last
  // item.
  //
  // Thread-safety: called only by the owning worker.
  T* Pop() {
    OwnerScope owner(this, "Pop");
    // relaxed: only this thread writes bottom_ and buffer_.
    const int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Buffer* buf = buffer_.load(std::memory_order_relaxed);
    // seq_cst: reserves slot b before reading top_ (StoreLoad). In S, either
    // this store precedes a thief's seq_cst load of bottom_ (the thief sees
    // bottom_ <= b and cannot take slot b) or the thief's loads of top_ and
    // bottom_ precede the load of top_ below (so we see its top_, and if
    // t == b we CAS against it). Replaces the paper's seq_cst fence.
    bottom_.store(b, std::memory_order_seq_cst);
    int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {
      // Empty: undo the reservation.
      // release: publishes "empty again, top_ >= b + 1 as loaded above";
      // pairs with the seq_cst load of bottom_ in Steal(). A thief that
      // reads this value with an older top_ then has our load of top_
      // happen before its CAS, so the CAS fails instead of claiming an
      // index below top_. (In the paper the seq_cst fence before this
      // relaxed store made it a release.)
      bottom_.store(b + 1, std::memory_order_release);
      return nullptr;
    }
    // relaxed: this thread wrote slot b itself in an earlier Push().
    T* item = buf->Get(b);
    if (t < b) return item;  // Not the last item: no thief can reach slot b.
    // Last item: race the thieves for it with their own CAS on top_. On
    // failure a thief took it. Either way the deque is now empty with
    // top_ == bottom_ == b + 1.
    const bool won = top_.compare_exchange_strong(
        t, t + 1, std::memory_order_seq_cst,
        // relaxed on failure: nothing is read through the failed value.
        std::memory_order_relaxed);
    // release: as in the empty case above, publishes "empty again, top_ ==
    // b + 1" (our CAS, or the thief CAS that beat it, set it); pairs with the
    // seq_cst load of bottom_ in Steal().
    bottom_.store(b + 1, std::memory_order_release);
    return won ? item : nullptr;
  }

  // WsDeque::Steal()
  //
  // Removes and returns the oldest item (FIFO), or nullptr. nullptr means
  // either that the deque looked empty or that this call lost a race (with
  // Pop() for the last item, or with another Steal() for the same item); use
  // Steal(bool*) to tell them apart. A nullptr from Steal() is therefore not
  // proof of emptiness; a caller deciding to sleep must re-check with the
  // protocol in ExecutorImpl::AnyWorkVisible(). Lock-free, never blocks.
  //
  // Thread-safety: any thread, including the owner.
  T* Steal() {
    bool lost_race;
    return Steal(&lost_race);
  }

  // WsDeque::Steal(bool* lost_race)
  //
  // Like Steal(), and sets `*lost_race` to true if this call returned nullptr
  // because another thread took the item it was after (the deque may still
  // hold items: the caller may retry this victim), false otherwise (an item
  // was returned, or the deque looked empty). Recent Taskflow versions make
  // the same split (empty_value() vs contended_value()).
  //
  // Thread-safety: any thread, including the owner.
  T* Steal(bool* lost_race) {
    *lost_race = false;
    // seq_cst (both loads): top_ is read before bottom_ and both are in S,
    // so this pairs with Pop()'s seq_cst store of bottom_ and load of top_
    // (see Pop()). Reading bottom_ also acquires the slots published by the
    // store that wrote it (Publish()'s seq_cst or release store, release
    // stores in Pop()),
    // and the buffer pointer current at that store.
    int64_t t = top_.load(std::memory_order_seq_cst);
    const int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    // acquire: observes the copied slots written before the release store in
    // Grow(). Loaded after bottom_, so it is at least the buffer that held
    // slot t when bottom_ was b. A buffer newer still also holds every item
    // with index >= the owner's view of top_ when it grew; if our t is older
    // than that, the slot we read is stale, but then top_ has moved past t
    // and the CAS below fails.
    Buffer* buf = buffer_.load(std::memory_order_acquire);
    // relaxed: ordered by the acquire loads above. The slot may be
    // overwritten concurrently after wrap-around (it is atomic, so that is
    // not a data race); the CAS below then fails, because the owner only
    // reuses slot t after top_ has moved past t.
    T* item = buf->Get(t);
    // seq_cst: claims slot t against other thieves and against Pop()'s CAS
    // for the last item. Its release half is what Push() acquires before
    // reusing slot t.
    if (!top_.compare_exchange_strong(
            t, t + 1, std::memory_order_seq_cst,
            // relaxed on failure: the item read above is discarded.
            std::memory_order_relaxed)) {
      *lost_race = true;
      return nullptr;
    }
    return item;
  }

  // WsDeque::EmptyHint()
  //
  // True if the deque looked empty. Racy: the answer may be stale by the time
  // the caller acts on it, and is transiently true while the owner's Pop()
  // holds its reservation.
  //
  // Memory ordering: both loads are seq_cst, so this is a valid re-check in
  // the park protocol: after a seq_cst RMW on the idle state, EmptyHint()
  // sees every Push() whose seq_cst store of bottom_ precedes that RMW in S
  // (unless the item was since taken); with UseLightPublish(), every Push()
  // that precedes a HeavyFence() the caller ran after its RMW. See Publish().
  //
  // Thread-safety: any thread.
  bool EmptyHint() const { return SizeHint() == 0; }

  // WsDeque::SizeHint()
  //
  // Number of items the deque looked to hold (>= 0). Racy, like EmptyHint().
  //
  // Thread-safety: any thread.
  int64_t SizeHint() const {
    // seq_cst: see EmptyHint(). top_ first, as in Steal(), so a non-zero
    // answer means a Steal() issued at that moment could have found an item.
    const int64_t t = top_.load(std::memory_order_seq_cst);
    const int64_t b = bottom_.load(std::memory_order_seq_cst);
    return b > t ? b - t : 0;
  }

  // WsDeque::Bottom()
  //
  // The owner's bottom index: exact for the owner, who alone changes it.
  // The executor records it when a task starts, so that a task waiting in
  // TaskGroup::Wait() pops only what it pushed itself (indices >= the mark).
  //
  // Thread-safety: called only by the owning worker.
  int64_t Bottom() const {
    // relaxed: only the calling owner thread ever writes bottom_.
    return bottom_.load(std::memory_order_relaxed);
  }

  // WsDeque::capacity()
  //
  // Number of items the current buffer holds before the next Push() grows it.
  // Racy from threads other than the owner. For tests and diagnostics.
  //
  // Thread-safety: any thread.
  int64_t capacity() const {
    // acquire: pairs with the release store in Grow(); the Buffer's capacity
    // field is written before that store.
    return buffer_.load(std::memory_order_acquire)->capacity;
  }

 private:
  // Push() and TryPush(): false only if the buffer is full and !may_grow.
  bool PushImpl(T* item, bool may_grow) {
    OwnerScope owner(this, "Push");
    if (item == nullptr) Die("WsDeque::Push(nullptr): items must be non-null");
    // relaxed: only this thread writes bottom_, so it reads its own last
    // store.
    const int64_t b = bottom_.load(std::memory_order_relaxed);
    // acquire: observes the top_ CAS of every thief that claimed a slot
    // below t (release half of the seq_cst CAS in Steal(), carried on by the
    // release sequence of later CASes). Those thieves' relaxed reads of their
    // slots therefore happen before this Push overwrites slot b, which after
    // wrap-around may be one of them; a thief never returns an item written
    // after its read.
    const int64_t t = top_.load(std::memory_order_acquire);
    // relaxed: only this thread writes buffer_.
    Buffer* buf = buffer_.load(std::memory_order_relaxed);
    if (b - t >= buf->capacity) [[unlikely]] {
      if (!may_grow) return false;
      buf = Grow(buf, t, b);
    }
    buf->Put(b, item);
    Publish(b + 1);
    return true;
  }

  // Publishes the slots below `bottom` to thieves: the release half pairs
  // with the seq_cst load of bottom_ in Steal(), which then reads them. The
  // executor also needs a StoreLoad between this store and the producer's
  // seq_cst load of Idle::state_ in ExecutorImpl::NotifyAfterPush() (via
  // Idle::ShouldNotify()); it pairs with the RMW in
  // Idle::TransitionToParked() followed by the re-check in
  // ExecutorImpl::AnyWorkVisible() (EmptyHint(), seq_cst loads). Either the
  // producer sees the parked worker and wakes it, or the parking worker sees
  // the item and does not sleep. By default the store is seq_cst, which
  // gives the StoreLoad. With UseLightPublish() it is release + LightFence,
  // and the re-checking side runs HeavyFence() between its RMW and its
  // re-check (the asymmetric fence of executor/sync/membarrier.h): saves a full
  // barrier on every push (about 10% of skynet's time on 2 workers).
  void Publish(int64_t bottom) {
    if (light_publish_) {
      bottom_.store(bottom, std::memory_order_release);
      LightFence();
    } else {
      bottom_.store(bottom, std::memory_order_seq_cst);
    }
  }

  static constexpr std::size_t kCacheLine = 64;

  // A circular array of slots. Immutable except for the slot contents.
  struct Buffer {
    explicit Buffer(int64_t cap)
        : capacity(cap), mask(cap - 1), slots(new std::atomic<T*>[cap]) {}

    // Slots are atomics accessed with relaxed order; the orderings live on
    // top_ and bottom_. Atomic slots make a thief's read of a slot the owner
    // is overwriting (after wrap-around; the thief's CAS then fails) a benign
    // race in the C++ model, so TSan reports nothing.
    T* Get(int64_t i) const {
      return slots[i & mask].load(std::memory_order_relaxed);
    }
    void Put(int64_t i, T* item) {
      slots[i & mask].store(item, std::memory_order_relaxed);
    }

    const int64_t capacity;
    const int64_t mask;
    const std::unique_ptr<std::atomic<T*>[]> slots;
  };

  // Debug builds: aborts if two threads are inside Push/Pop at once. Plain
  // relaxed load and store, no RMW, so it adds no synchronization (TSan and
  // the hardware see the same orderings as in release builds); it therefore
  // catches overlapping calls only when it happens to observe them.
  class OwnerScope {
   public:
#ifdef NDEBUG
    OwnerScope(WsDeque*, const char*) {}
#else
    OwnerScope(WsDeque* deque, const char* op) : deque_(deque) {
      // relaxed: a best-effort misuse detector, not part of the algorithm.
      if (deque_->owner_busy_.load(std::memory_order_relaxed)) {
        std::fprintf(stderr,
                     "ripcord: fatal: WsDeque::%s() called while another "
                     "thread is in Push()/Pop(); they are owner-only\n",
                     op);
        std::fflush(stderr);
        std::abort();
      }
      // relaxed: see above.
      deque_->owner_busy_.store(true, std::memory_order_relaxed);
    }
    // relaxed: see above.
    ~OwnerScope() {
      deque_->owner_busy_.store(false, std::memory_order_relaxed);
    }

   private:
    WsDeque* const deque_;
#endif
    OwnerScope(const OwnerScope&) = delete;
    OwnerScope& operator=(const OwnerScope&) = delete;
  };

  [[noreturn]] static void Die(const char* message) {
    std::fprintf(stderr, "ripcord: fatal: %s\n", message);
    std::fflush(stderr);
    std::abort();
  }

  // Replaces the full buffer `old` (live items [t, b)) with one twice its
  // size and returns it. Called only by the owning worker, from Push().
  Buffer* Grow(Buffer* old, int64_t t, int64_t b) {
    auto bigger = std::make_unique<Buffer>(old->capacity * 2);
    // `t` may be stale (thieves advance top_ meanwhile); copying a few
    // already-stolen slots is harmless, and every item a thief can still
    // claim has index >= t.
    for (int64_t i = t; i < b; ++i) bigger->Put(i, old->Get(i));
    Buffer* raw = bigger.get();
    // May throw; `bigger` is then freed and the deque is unchanged.
    buffers_.push_back(std::move(bigger));
    // release: publishes the copied slots (and the Buffer's fields); pairs
    // with the acquire loads of buffer_ in Steal() and capacity(). (The
    // paper's relaxed store leaves a thief reading the new buffer without a
    // happens-before edge to the copies.) The old buffer stays in buffers_:
    // a thief that loaded it may still read it.
    buffer_.store(raw, std::memory_order_release);
    return raw;
  }

  // Thief-written line. Kept apart from the owner's fields so that a thief's
  // CAS on top_ does not invalidate the line the owner writes on every Push
  // and Pop (and vice versa): false sharing between them would make each
  // owner operation a cache miss while thieves spin.
  //
  // top_: index of the oldest item. Written by thieves (CAS in Steal()) and
  // by the owner (CAS in Pop() for the last item); read by everyone.
  alignas(kCacheLine) std::atomic<int64_t> top_{0};

  // Owner-written line.
  //
  // bottom_: index one past the newest item. Written only by the owning
  // worker (Push/Pop); read by thieves (seq_cst) and hints.
  alignas(kCacheLine) std::atomic<int64_t> bottom_{0};
  // buffer_: the current buffer. Written only by the owning worker (Grow(),
  // release); read by thieves (acquire). Always buffers_.back().
  std::atomic<Buffer*> buffer_{nullptr};
  // buffers_: every buffer ever allocated, oldest first; owns them. Read and
  // written only by the owning worker (and the constructor/destructor).
  std::vector<std::unique_ptr<Buffer>> buffers_;
  // Set once before the deque is shared (UseLightPublish); owner reads.
  bool light_publish_ = false;
#ifndef NDEBUG
  // owner_busy_: debug-only misuse detector; see OwnerScope.
  std::atomic<bool> owner_busy_{false};
#endif
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_WS_DEQUE_H_
