"""Numba JIT settings of the fast kernels, in one place.

Set ``NUMBA_DISABLE_JIT=1`` in the environment to run the kernels as plain Python (for coverage
or debugging); the results are the same, only slower.
"""

JIT_CACHE = True
"""Cache compiled kernels on disk (next to the sources) so later imports skip compilation."""

JIT_FASTMATH = False
"""The kernels are integer-only, so fast-math would gain nothing and is left off."""

JIT_PARALLEL = True
"""Parallelize the drivers over output rows with ``prange`` (Numba's threading layer)."""

LANES = 32
"""Per-thread int32 accumulators per row; 32 lanes give LLVM whole AVX2 / AVX-512 vectors."""
