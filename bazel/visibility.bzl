"""Who may depend on the implementation libraries under //executor.

Only //:ripcord is public; these packages may name the libraries of
executor/*/ directly (tests link what they test, benchmarks and examples
use internal helpers, the libraries use each other).
"""

RIPCORD_INTERNAL_VISIBILITY = [
    "//:__pkg__",
    "//benchmarks:__pkg__",
    "//examples:__pkg__",
    "//executor:__subpackages__",
    "//tests:__pkg__",
]
