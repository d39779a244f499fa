"""Tunables of the simulator: the Numba JIT flags shared by every compiled kernel.

Set ``ONEBIT_JIT_CACHE=0`` in the environment to compile afresh in every process instead of
reusing the on-disk cache. ``NUMBA_DISABLE_JIT=1`` (a Numba setting) runs the kernels as plain
Python, which coverage tools need.
"""

import os

__all__ = ["JIT_CACHE", "JIT_OPTIONS"]

JIT_CACHE = os.environ.get("ONEBIT_JIT_CACHE", "1") != "0"
"""Whether compiled kernels are cached on disk, so only the first process pays the compile time."""

JIT_OPTIONS = {
    "cache": JIT_CACHE,
    # The kernels hold no Python objects, so they can release the GIL for threaded callers.
    "nogil": True,
    # Integer arithmetic only: no fastmath, whose reassociation could matter for a float path.
    "fastmath": False,
    # Every index is checked in Python before the kernel runs, so bounds checks are off.
    "boundscheck": False,
}
"""Keyword arguments passed to every ``numba.njit`` in sim/."""
