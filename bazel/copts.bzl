"""Compiler flags shared by every ripcord target.

Use RIPCORD_COPTS for library and binary code and RIPCORD_TEST_COPTS for
tests and test helpers; don't paste flags into individual targets. The
language standard (-std=c++20) and the sanitizer/optimization groups live in
//:.bazelrc, not here.
"""

# Warnings that both gcc 12 and clang 14 understand. -Werror applies only to
# our own code: system headers (/usr/include: Abseil, GoogleTest, oneTBB,
# Google Benchmark) are exempt, as for any -isystem directory.
_WARNINGS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wnon-virtual-dtor",
    "-Woverloaded-virtual",
    "-Wvla",
]

# Under --config=clang, check Abseil's lock annotations (ABSL_GUARDED_BY,
# ABSL_EXCLUSIVE_LOCKS_REQUIRED, ...) instead of treating them as comments.
# -fsized-deallocation: gcc's default since C++14; clang 14 otherwise leaves
# operator delete(void*, size_t) undeclared (the task cache frees sized).
_COMPILER_WARNINGS = select({
    "//bazel:clang": ["-Wthread-safety", "-fsized-deallocation"],
    "//conditions:default": [],
})

RIPCORD_COPTS = _WARNINGS + _COMPILER_WARNINGS

# Tests keep the same bar. Add a relaxation here, with the reason, only when a
# GoogleTest macro needs it.
RIPCORD_TEST_COPTS = _WARNINGS + _COMPILER_WARNINGS
