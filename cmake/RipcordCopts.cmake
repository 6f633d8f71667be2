# The flags of bazel/copts.bzl (RIPCORD_COPTS, RIPCORD_TEST_COPTS) and
# .bazelrc's -std=c++20, for CMake targets. Keep the two in step.

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
# -std=c++20, not -std=gnu++20, as Bazel passes.
set(CMAKE_CXX_EXTENSIONS OFF)

set(RIPCORD_WARNINGS
  -Wall
  -Wextra
  -Wnon-virtual-dtor
  -Woverloaded-virtual
  -Wvla)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # As //bazel:clang: checked lock annotations; sized operator delete.
  list(APPEND RIPCORD_WARNINGS -Wthread-safety -fsized-deallocation)
endif()

# ripcord_set_copts(target): ripcord's warnings (and -Werror when
# RIPCORD_WERROR is on) for the target's own sources only.
function(ripcord_set_copts target)
  target_compile_options(${target} PRIVATE ${RIPCORD_WARNINGS})
  if(RIPCORD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
