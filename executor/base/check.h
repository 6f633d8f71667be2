// Copyright 2026 The ripcord Authors.
//
// check.h: RIPCORD_CHECK(cond, "message") for programming errors (print the
// message and abort), and RIPCORD_RETURN_IF_ERROR(expr) for absl::Status.
// Internal only: public headers use neither.
#ifndef RIPCORD_EXECUTOR_CHECK_H_
#define RIPCORD_EXECUTOR_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define RIPCORD_CHECK(cond, ...)                                         \
  do {                                                                   \
    if (__builtin_expect(!(cond), 0)) {                                  \
      std::fprintf(stderr, "ripcord: fatal: ");                          \
      std::fprintf(stderr, __VA_ARGS__);                                 \
      std::fprintf(stderr, " [%s:%d: %s]\n", __FILE__, __LINE__, #cond); \
      std::fflush(stderr);                                               \
      std::abort();                                                      \
    }                                                                    \
  } while (false)

#define RIPCORD_RETURN_IF_ERROR(expr)             \
  do {                                            \
    ::absl::Status ripcord_status_ = (expr);      \
    if (!ripcord_status_.ok()) return ripcord_status_; \
  } while (false)

// For the library's hot thread_local pointers: the initial-exec TLS model
// reads them at a fixed offset from the thread pointer instead of calling
// __tls_get_addr (the default for -fPIC code). Only pointer-sized variables
// use it: a shared object that dlopen()s ripcord takes them from glibc's
// static TLS surplus, which is small.
// Only on variables with EXTERNAL linkage (not in an anonymous namespace,
// not function-local statics): in the fastbuild/sanitizer test builds,
// where //executor:core is a shared library linked by gold, an initial-exec
// internal-linkage thread_local was relocated against the null symbol and
// aliased another variable (see include/ripcord/internal/coroutine.h).
#define RIPCORD_FAST_TLS __attribute__((tls_model("initial-exec")))

#endif  // RIPCORD_EXECUTOR_CHECK_H_
