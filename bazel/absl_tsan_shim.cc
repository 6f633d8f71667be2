// ThreadSanitizer annotations for Debian's prebuilt Abseil (20220623).
//
// Linked into every binary that depends on //bazel:absl, under --config=tsan
// only (see bazel/BUILD).
//
// Why: Debian ships Abseil as shared libraries built without
// -fsanitize=thread. absl::Mutex::Lock() and friends live in
// libabsl_synchronization.so, so TSan never sees the lock and unlock, finds no
// happens-before between two critical sections, and reports a data race on
// every field guarded by an absl::Mutex. absl::Notification,
// absl::BlockingCounter and the reference count of a non-OK absl::Status have
// the same problem.
//
// How: this file defines those member functions itself. Executables built
// with it export every symbol (-rdynamic), so the dynamic linker binds all
// calls, including calls from inside Abseil's own libraries, to these
// definitions. Each one tells TSan what the real function does (the
// __tsan_mutex_* and __tsan_acquire/__tsan_release annotations that Abseil's
// own sources make when built with TSan) and forwards to Abseil's definition,
// found with dlsym(RTLD_NEXT, ...). absl::Status's unref is reimplemented
// from status.cc instead, so TSan sees the atomic decrement itself.
//
// Limits: Mutex deadlock detection by TSan works, but races inside Condition
// functions are not reported (TSan ignores accesses while the real lock code
// runs, as with an instrumented Abseil). Notification::HasBeenNotified()
// returning true orders only after Notify() (through notified_yet_), which is
// what Abseil promises. absl::Barrier and absl::Cord are not annotated; don't
// share them between threads in code that runs under TSan without adding
// them here.
//
// Tied to Abseil 20220623 (the static_assert below): the lock word bit
// kMuWriter and Status::UnrefNonInlined are copied from its mutex.cc and
// status.cc.

#if defined(__SANITIZE_THREAD__)
#define RIPCORD_TSAN_SHIM 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RIPCORD_TSAN_SHIM 1
#endif
#endif

#ifdef RIPCORD_TSAN_SHIM

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

static_assert(ABSL_LTS_RELEASE_VERSION == 20220623,
              "bazel/absl_tsan_shim.cc mirrors Abseil 20220623 internals; "
              "re-check it against this Abseil version");

#define RIPCORD_SHIM_STR2(x) #x
#define RIPCORD_SHIM_STR(x) RIPCORD_SHIM_STR2(x)

namespace {

// Returns Abseil's own definition of the function whose Itanium-mangled name
// is "_ZN" (or "_ZNK" for a const member) + "4absl<len><inline ns>" + rest.
// Aborts if it is missing: a silently unannotated lock would bring back the
// false reports this file exists to remove.
void* RealAbseilSymbol(bool const_member, const char* rest) {
  const std::string ns = RIPCORD_SHIM_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name = std::string(const_member ? "_ZNK" : "_ZN") +
                           "4absl" + std::to_string(ns.size()) + ns + rest;
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr,
                 "bazel/absl_tsan_shim.cc: Abseil symbol %s not found (%s); "
                 "the Abseil package changed, update the shim\n",
                 name.c_str(), dlerror());
    std::abort();
  }
  return fn;
}

template <typename Fn>
Fn Real(bool const_member, const char* rest) {
  return reinterpret_cast<Fn>(RealAbseilSymbol(const_member, rest));
}

// Lock-word bit of a writer-held absl::Mutex (kMuWriter in mutex.cc).
constexpr intptr_t kMuWriter = 0x0008;

// TSan flags for a mutex the calling thread holds, judged from its lock word:
// 0 when held as writer, __tsan_mutex_read_lock when held as reader.
unsigned HeldFlags(const std::atomic<intptr_t>& lock_word) {
  // relaxed: the caller holds the mutex, so the writer bit cannot change.
  return (lock_word.load(std::memory_order_relaxed) & kMuWriter) != 0
             ? 0u
             : static_cast<unsigned>(__tsan_mutex_read_lock);
}

// How deep the calling thread is inside the Mutex/CondVar definitions below.
// Abseil's functions call one another (CondVar::WaitWithTimeout() calls
// WaitWithDeadline(), and these calls bind to this file too); only the
// outermost call annotates, so each real lock transition is told to TSan once.
thread_local int shim_depth = 0;

class ShimCall {
 public:
  ShimCall() : outermost_(shim_depth++ == 0) {}
  ~ShimCall() { --shim_depth; }
  ShimCall(const ShimCall&) = delete;
  ShimCall& operator=(const ShimCall&) = delete;
  bool outermost() const { return outermost_; }

 private:
  const bool outermost_;
};

// `acquire()` returns with `mu` held in mode `flags` (0 = writer,
// __tsan_mutex_read_lock = reader); its result is passed through.
template <typename F>
bool AnnotatedLock(void* mu, unsigned flags, F acquire) {
  ShimCall call;
  if (call.outermost()) __tsan_mutex_pre_lock(mu, flags);
  const bool result = acquire();
  if (call.outermost()) __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

// `try_acquire()` returns whether it took `mu`.
template <typename F>
bool AnnotatedTryLock(void* mu, unsigned flags, F try_acquire) {
  ShimCall call;
  flags |= __tsan_mutex_try_lock;
  if (call.outermost()) __tsan_mutex_pre_lock(mu, flags);
  const bool locked = try_acquire();
  if (call.outermost()) {
    __tsan_mutex_post_lock(mu, locked ? flags : flags | __tsan_mutex_try_lock_failed,
                           0);
  }
  return locked;
}

template <typename F>
void AnnotatedUnlock(void* mu, unsigned flags, F release) {
  ShimCall call;
  if (call.outermost()) __tsan_mutex_pre_unlock(mu, flags);
  release();
  if (call.outermost()) __tsan_mutex_post_unlock(mu, flags);
}

// `wait()` releases `mu`, held in mode `flags`, and holds it again when it
// returns (Await, CondVar::Wait); its result is passed through.
template <typename F>
bool AnnotatedWait(void* mu, unsigned flags, F wait) {
  ShimCall call;
  if (call.outermost()) __tsan_mutex_pre_unlock(mu, flags);
  const bool result = wait();
  if (call.outermost()) {
    __tsan_mutex_post_unlock(mu, flags);
    __tsan_mutex_pre_lock(mu, flags);
    __tsan_mutex_post_lock(mu, flags, 0);
  }
  return result;
}

constexpr unsigned kWriter = 0;
constexpr unsigned kReader = __tsan_mutex_read_lock;

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// ---- Mutex: exclusive ----------------------------------------------------

void Mutex::Lock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<void (*)(Mutex*)>(false, "5Mutex4LockEv");
  AnnotatedLock(this, kWriter, [&] { return real(this), true; });
}

void Mutex::Unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<void (*)(Mutex*)>(false, "5Mutex6UnlockEv");
  AnnotatedUnlock(this, kWriter, [&] { real(this); });
}

bool Mutex::TryLock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<bool (*)(Mutex*)>(false, "5Mutex7TryLockEv");
  return AnnotatedTryLock(this, kWriter, [&] { return real(this); });
}

void Mutex::LockWhen(const Condition& cond) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      false, "5Mutex8LockWhenERKNS0_9ConditionE");
  AnnotatedLock(this, kWriter, [&] { return real(this, cond), true; });
}

// Returns holding the lock whether or not the condition became true.
bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real =
      Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
          false, "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return AnnotatedLock(this, kWriter, [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      false, "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return AnnotatedLock(this, kWriter,
                       [&] { return real(this, cond, deadline); });
}

// ---- Mutex: shared -------------------------------------------------------

void Mutex::ReaderLock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real =
      Real<void (*)(Mutex*)>(false, "5Mutex10ReaderLockEv");
  AnnotatedLock(this, kReader, [&] { return real(this), true; });
}

void Mutex::ReaderUnlock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real =
      Real<void (*)(Mutex*)>(false, "5Mutex12ReaderUnlockEv");
  AnnotatedUnlock(this, kReader, [&] { real(this); });
}

bool Mutex::ReaderTryLock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real =
      Real<bool (*)(Mutex*)>(false, "5Mutex13ReaderTryLockEv");
  return AnnotatedTryLock(this, kReader, [&] { return real(this); });
}

void Mutex::ReaderLockWhen(const Condition& cond)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      false, "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  AnnotatedLock(this, kReader, [&] { return real(this, cond), true; });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond,
                                      absl::Duration timeout)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real =
      Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
          false,
          "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return AnnotatedLock(this, kReader, [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond,
                                       absl::Time deadline)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      false, "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return AnnotatedLock(this, kReader,
                       [&] { return real(this, cond, deadline); });
}

// ---- Mutex: waits that release and reacquire ------------------------------

void Mutex::Await(const Condition& cond) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      false, "5Mutex5AwaitERKNS0_9ConditionE");
  AnnotatedWait(this, HeldFlags(mu_), [&] { return real(this, cond), true; });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real =
      Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
          false, "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return AnnotatedWait(this, HeldFlags(mu_),
                       [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      false, "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return AnnotatedWait(this, HeldFlags(mu_),
                       [&] { return real(this, cond, deadline); });
}

Mutex::~Mutex() {
  static const auto real = Real<void (*)(Mutex*)>(false, "5MutexD1Ev");
  __tsan_mutex_destroy(this, 0);
  real(this);
}

// ---- CondVar: waits release and reacquire the caller's Mutex -------------

void CondVar::Wait(Mutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<void (*)(CondVar*, Mutex*)>(
      false, "7CondVar4WaitEPNS0_5MutexE");
  AnnotatedWait(mu, HeldFlags(mu->mu_), [&] { return real(this, mu), true; });
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, absl::Duration)>(
      false, "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return AnnotatedWait(mu, HeldFlags(mu->mu_),
                       [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>(
      false, "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return AnnotatedWait(mu, HeldFlags(mu->mu_),
                       [&] { return real(this, mu, deadline); });
}

// ---- Notification: Notify() happens before a wait that sees it -----------
// The release is on notified_yet_ so that the inline acquire load in
// HasBeenNotified() (compiled with TSan in the caller) pairs with it too.
// Nothing touches *this after the real Notify(): a waiter may destroy it.

void Notification::Notify() {
  static const auto real =
      Real<void (*)(Notification*)>(false, "12Notification6NotifyEv");
  __tsan_release(&notified_yet_);
  real(this);
}

void Notification::WaitForNotification() const {
  static const auto real = Real<void (*)(const Notification*)>(
      true, "12Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<std::atomic<bool>*>(&notified_yet_));
}

bool Notification::WaitForNotificationWithTimeout(
    absl::Duration timeout) const {
  static const auto real =
      Real<bool (*)(const Notification*, absl::Duration)>(
          true, "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<std::atomic<bool>*>(&notified_yet_));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  static const auto real = Real<bool (*)(const Notification*, absl::Time)>(
      true, "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<std::atomic<bool>*>(&notified_yet_));
  return notified;
}

// ---- BlockingCounter: every DecrementCount() happens before Wait() returns.
// Nothing touches *this after the real DecrementCount(): the waiter may
// destroy it.

bool BlockingCounter::DecrementCount() {
  static const auto real = Real<bool (*)(BlockingCounter*)>(
      false, "15BlockingCounter14DecrementCountEv");
  __tsan_release(this);
  return real(this);
}

void BlockingCounter::Wait() {
  static const auto real =
      Real<void (*)(BlockingCounter*)>(false, "15BlockingCounter4WaitEv");
  real(this);
  __tsan_acquire(this);
}

// ---- Status: the last unref of a shared non-OK rep deletes it ------------
// Same code as Abseil 20220623's status.cc, compiled here with TSan so the
// acq_rel decrement orders every holder's reads before the delete.

void Status::UnrefNonInlined(uintptr_t rep) {
  status_internal::StatusRep* r = RepToPointer(rep);
  // acquire: if ours is the only reference, pairs with the acq_rel decrements
  // of the copies already destroyed, so their reads happen before the delete.
  if (r->ref.load(std::memory_order_acquire) == 1 ||
      r->ref.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) {
    delete r;
  }
}

ABSL_NAMESPACE_END
}  // namespace absl

#endif  // RIPCORD_TSAN_SHIM
