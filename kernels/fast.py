"""Fast Numba CPU kernels on packed weights: ternary GEMV/GEMM and XNOR-popcount GEMM.

Each kernel has three layers: a private ``@njit`` inner body (one output row, one token), a
private parallel driver (``prange`` over output rows, every token of a row while its packed bytes
are in cache) and a public wrapper that validates, lays out the activations and packages the
result. The references they are tested against are `kernels.ternary_matmul` and
`kernels.xnor_matmul` on the unpacked weights.

How the ternary bodies work: the 2-bit code is c = w + 1, so w = c - 1 is decoded with one
shift, one mask and one subtraction per weight, and the products go to ``LANES`` int32
accumulators that LLVM keeps in vector registers. The activations are rearranged once per call
so that the weights decoded from one bit position of consecutive bytes meet consecutive
activations (the trick of bitnet.cpp's I2_S layout, applied here to every format), and they are
padded with zeros: a padding weight, whatever its bits, is multiplied by zero and never counts.
"""

import numpy as np
import torch
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from kernels import config
from kernels.packing import (
    BASE3_TRITS,
    BINARY_WORD_BITS,
    I2S_BLOCK,
    TERNARY_FORMATS,
    packed_shape,
    unpack_weights,
)
from kernels.quant import INT32_SAFE_K

__all__ = ["ternary_gemm", "xnor_gemm"]

_L = config.LANES
_JIT = {"cache": config.JIT_CACHE, "fastmath": config.JIT_FASTMATH}
_JIT_PARALLEL = dict(_JIT, parallel=config.JIT_PARALLEL)


# Inner bodies: one output row (four for "hf") against one token.


@njit(**_JIT)
def _dot_i2s(row, x, lanes):
    # x is [128 * blocks]: byte j of block b holds weights 128b + j + 32g at bits 6 - 2g.
    lanes[:] = 0
    for b in range(row.shape[0] // 32):
        base = I2S_BLOCK * b
        for j in range(32):
            byte = np.int32(row[32 * b + j])
            lanes[j] += (
                (((byte >> 6) & 3) - 1) * x[base + j]
                + (((byte >> 4) & 3) - 1) * x[base + 32 + j]
                + (((byte >> 2) & 3) - 1) * x[base + 64 + j]
                + ((byte & 3) - 1) * x[base + 96 + j]
            )
    return lanes.sum()


@njit(**_JIT)
def _dot_2bit(row, x, lanes):
    # x is [4, B]: x[i, j] is activation 4j + i, the weight in bit pair i of byte j.
    lanes[:] = 0
    n_bytes = row.shape[0]
    full = n_bytes - n_bytes % _L
    for c in range(0, full, _L):
        for j in range(_L):
            byte = np.int32(row[c + j])
            lanes[j] += (
                ((byte & 3) - 1) * x[0, c + j]
                + (((byte >> 2) & 3) - 1) * x[1, c + j]
                + (((byte >> 4) & 3) - 1) * x[2, c + j]
                + (((byte >> 6) & 3) - 1) * x[3, c + j]
            )
    total = lanes.sum()
    for j in range(full, n_bytes):
        byte = np.int32(row[j])
        for i in range(4):
            total += (((byte >> (2 * i)) & 3) - 1) * x[i, j]
    return total


@njit(**_JIT)
def _dot_base3(row, x, lanes):
    # x is [5, B]: x[i, j] is activation 5j + i, the weight in trit i (3**i) of byte j.
    lanes[:] = 0
    n_bytes = row.shape[0]
    full = n_bytes - n_bytes % _L
    for c in range(0, full, _L):
        for j in range(_L):
            byte = np.int32(row[c + j])
            q1 = byte // 3
            q2 = q1 // 3
            q3 = q2 // 3
            q4 = q3 // 3
            lanes[j] += (
                (byte - 3 * q1 - 1) * x[0, c + j]
                + (q1 - 3 * q2 - 1) * x[1, c + j]
                + (q2 - 3 * q3 - 1) * x[2, c + j]
                + (q3 - 3 * q4 - 1) * x[3, c + j]
                + (q4 - 1) * x[4, c + j]
            )
    total = lanes.sum()
    for j in range(full, n_bytes):
        value = np.int32(row[j])
        for i in range(BASE3_TRITS):
            total += (value % 3 - 1) * x[i, j]
            value //= 3
    return total


@njit(**_JIT)
def _dot_hf(row, x, lanes4, totals):
    # One packed row holds four output rows, one per bit pair, against the same activations.
    lanes4[:, :] = 0
    n_cols = row.shape[0]
    full = n_cols - n_cols % _L
    for c in range(0, full, _L):
        for j in range(_L):
            byte = np.int32(row[c + j])
            xv = x[c + j]
            lanes4[0, j] += ((byte & 3) - 1) * xv
            lanes4[1, j] += (((byte >> 2) & 3) - 1) * xv
            lanes4[2, j] += (((byte >> 4) & 3) - 1) * xv
            lanes4[3, j] += (((byte >> 6) & 3) - 1) * xv
    for i in range(4):
        totals[i] = lanes4[i].sum()
    for k in range(full, n_cols):
        byte = np.int32(row[k])
        for i in range(4):
            totals[i] += (((byte >> (2 * i)) & 3) - 1) * x[k]


# Parallel drivers: x is [T, ...] in the layout of the body, out is [T, M] int32.


@njit(**_JIT_PARALLEL)
def _gemm_i2s(packed, x, out):
    for m in prange(packed.shape[0]):
        lanes = np.empty(_L, np.int32)
        for t in range(x.shape[0]):
            out[t, m] = _dot_i2s(packed[m], x[t], lanes)


@njit(**_JIT_PARALLEL)
def _gemm_2bit(packed, x, out):
    for m in prange(packed.shape[0]):
        lanes = np.empty(_L, np.int32)
        for t in range(x.shape[0]):
            out[t, m] = _dot_2bit(packed[m], x[t], lanes)


@njit(**_JIT_PARALLEL)
def _gemm_base3(packed, x, out):
    for m in prange(packed.shape[0]):
        lanes = np.empty(_L, np.int32)
        for t in range(x.shape[0]):
            out[t, m] = _dot_base3(packed[m], x[t], lanes)


@njit(**_JIT_PARALLEL)
def _gemm_hf(packed, x, out):
    quarter_rows = packed.shape[0]
    rows = out.shape[1]
    for p in prange(quarter_rows):
        lanes4 = np.empty((4, _L), np.int32)
        totals = np.empty(4, np.int64)
        for t in range(x.shape[0]):
            _dot_hf(packed[p], x[t], lanes4, totals)
            for i in range(4):
                # Rows past M are padding: computed, never stored.
                if p + i * quarter_rows < rows:
                    out[t, p + i * quarter_rows] = totals[i]


_DRIVERS = {"hf": _gemm_hf, "2bit": _gemm_2bit, "i2_s": _gemm_i2s, "base3": _gemm_base3}


def _layout_activations(x_q: np.ndarray, fmt: str, cols: int) -> np.ndarray:
    """Return int32 activations [T, ...] in the order the format's body reads them."""
    tokens = x_q.shape[0]
    if fmt == "hf":
        return x_q.astype(np.int32)
    if fmt == "i2_s":
        padded = np.zeros((tokens, I2S_BLOCK * -(-cols // I2S_BLOCK)), dtype=np.int32)
        padded[:, :cols] = x_q
        return padded
    group = 4 if fmt == "2bit" else BASE3_TRITS
    n_bytes = -(-cols // group)
    padded = np.zeros((tokens, n_bytes * group), dtype=np.int32)
    padded[:, :cols] = x_q
    # [T, group * B] -> [T, B, group] -> [T, group, B]: row i holds activations i, group + i, ...
    return np.ascontiguousarray(padded.reshape(tokens, n_bytes, group).transpose(0, 2, 1))


def _as_array(value, name: str) -> tuple[np.ndarray, bool]:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy(), True
    if isinstance(value, np.ndarray):
        return value, False
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


def ternary_gemm(x_q, packed, fmt: str, shape: tuple[int, int], *, check: bool = True):
    """Compute acc[..., m] = sum_k w[m, k] * x_q[..., k] on packed ternary weights, exactly.

    Parameters
    ----------
    x_q : numpy.ndarray or torch.Tensor
        int8 activation codes ``[K]`` (GEMV) or ``[..., K]`` (GEMM over the leading dimensions).
    packed : numpy.ndarray or torch.Tensor
        uint8 weights of ``shape`` packed in ``fmt`` by `kernels.pack_weights` or a checkpoint.
    fmt : {"hf", "2bit", "i2_s", "base3"}
        The packed format.
    shape : tuple of int
        The weight shape (M, K): M outputs, K inputs.
    check : bool
        Verify that every weight position holds a valid code (2-bit code 3 and base-3 bytes over
        242 are invalid) by unpacking once. ``False`` skips this O(M K) pass for weights that
        `kernels.pack_weights` wrote; an invalid code then gives a wrong result, not an error.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        int32 accumulators ``[..., M]``: a torch tensor when ``x_q`` is one, else an array.
        Equal to `kernels.ternary_matmul` on the unpacked weights, and the GEMM over T tokens
        equals T separate GEMVs bit for bit.

    Raises
    ------
    TypeError
        If an argument has the wrong kind or dtype.
    ValueError
        If ``fmt`` is not a ternary format, ``shape`` is invalid, the shapes disagree, ``x_q``
        is empty, K exceeds `kernels.INT32_SAFE_K` or (with ``check``) a code is invalid.

    Notes
    -----
    Accumulation is int32. Every partial sum of a row is bounded by 128 K (|w x| <= 128), so
    the result is exact for K <= `kernels.INT32_SAFE_K` = 16,777,215; larger K is rejected.
    An int16 accumulator would not be enough: one 128-weight block can already sum to
    128 * 128 = 16,384, and two blocks can exceed the int16 range.
    """
    if fmt not in TERNARY_FORMATS:
        raise ValueError(
            f"ternary_gemm needs a ternary format ({', '.join(TERNARY_FORMATS)}), got {fmt!r}; "
            "binary weights use xnor_gemm"
        )
    expected = packed_shape(shape, fmt)
    rows, cols = (int(d) for d in shape)  # validated by packed_shape
    x_array, as_torch = _as_array(x_q, "activation codes")
    packed_array, _ = _as_array(packed, "packed weights")
    if x_array.dtype != np.int8:
        raise TypeError(f"activation codes must have dtype int8, got {x_array.dtype}")
    if packed_array.dtype != np.uint8:
        raise TypeError(
            f"packed weights in format {fmt!r} must have dtype uint8, got {packed_array.dtype}"
        )
    if packed_array.shape != expected:
        raise ValueError(
            f"packed weights of shape {packed_array.shape} cannot hold {(rows, cols)} weights in "
            f"format {fmt!r}, which needs shape {expected}"
        )
    if x_array.ndim < 1 or x_array.shape[-1] != cols:
        raise ValueError(
            f"activation codes {x_array.shape} and weight shape {(rows, cols)} disagree: the last "
            "dimension of the activations must equal K"
        )
    if x_array.size == 0:
        raise ValueError(f"activation codes must not be empty, got shape {x_array.shape}")
    if cols > INT32_SAFE_K:
        raise ValueError(
            f"K = {cols} could overflow an int32 accumulator; the maximum is {INT32_SAFE_K}"
        )
    if check:
        unpack_weights(packed_array, fmt, (rows, cols))

    leading = x_array.shape[:-1]
    tokens = x_array.reshape(-1, cols)
    out = np.empty((tokens.shape[0], rows), dtype=np.int32)
    _DRIVERS[fmt](np.ascontiguousarray(packed_array), _layout_activations(tokens, fmt, cols), out)
    out = out.reshape(*leading, rows)
    return torch.from_numpy(out) if as_torch else out


@intrinsic
def _popcount(typingctx, value):
    """LLVM's ctpop on a uint64 (one POPCNT instruction on x86-64)."""
    if value != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@njit(**_JIT)
def _xnor_dot(a, w, last_mask, k):
    n_words = a.shape[0]
    matches = 0
    for i in range(n_words - 1):
        matches += _popcount(~(a[i] ^ w[i]))
    # Padding bits past K in the last word may differ and must not count.
    matches += _popcount(~(a[n_words - 1] ^ w[n_words - 1]) & last_mask)
    return 2 * np.int64(matches) - k


@njit(**_JIT_PARALLEL)
def _xnor_gemm(a_packed, w_packed, last_mask, k, out):
    for n in prange(w_packed.shape[0]):
        for t in range(a_packed.shape[0]):
            out[t, n] = _xnor_dot(a_packed[t], w_packed[n], last_mask, k)


def xnor_gemm(a_packed, w_packed, k: int):
    """Compute bipolar dot products 2 * popcount(XNOR(a, w)) - K on bit-packed ±1 vectors.

    Parameters
    ----------
    a_packed : numpy.ndarray or torch.Tensor
        uint64 activations ``[W]`` or ``[..., W]``, packed like the ``"binary"`` weight format
        (`kernels.pack_weights(a_b, "binary")`): bit k % 64 of word k // 64 is 1 for +1.
    w_packed : numpy.ndarray or torch.Tensor
        uint64 weights ``[N, W]`` in the ``"binary"`` format.
    k : int
        The number of real elements K; W must equal ceil(K / 64). Padding bits never count.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        int32 ``[..., N]``, equal to `kernels.xnor_matmul` on the unpacked ±1 values; a torch
        tensor when ``a_packed`` is one, else an array.

    Raises
    ------
    TypeError
        If an argument has the wrong kind or dtype.
    ValueError
        If ``k`` is not positive, the word counts disagree with ceil(K / 64), or an input is
        empty.

    Notes
    -----
    |result| <= K, so int32 is exact for K <= 2**31 - 1, the largest K accepted.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 0 < k <= 2**31 - 1:
        raise ValueError(f"k must be between 1 and 2**31 - 1, got {k}")
    a_array, as_torch = _as_array(a_packed, "packed activations")
    w_array, _ = _as_array(w_packed, "packed weights")
    for name, array in (("packed activations", a_array), ("packed weights", w_array)):
        if array.dtype != np.uint64:
            raise TypeError(f"{name} must have dtype uint64, got {array.dtype}")
    n_words = -(-int(k) // BINARY_WORD_BITS)
    if w_array.ndim != 2 or w_array.shape[1] != n_words or w_array.shape[0] == 0:
        raise ValueError(
            f"packed weights must have shape (N, {n_words}) for K = {k}, got {w_array.shape}"
        )
    if a_array.ndim < 1 or a_array.shape[-1] != n_words or a_array.size == 0:
        raise ValueError(
            f"packed activations must have shape (..., {n_words}) for K = {k}, got {a_array.shape}"
        )
    used_bits = int(k) - BINARY_WORD_BITS * (n_words - 1)
    last_mask = np.uint64(2**used_bits - 1)

    leading = a_array.shape[:-1]
    tokens = np.ascontiguousarray(a_array.reshape(-1, n_words))
    out = np.empty((tokens.shape[0], w_array.shape[0]), dtype=np.int32)
    _xnor_gemm(tokens, np.ascontiguousarray(w_array), last_mask, np.int64(k), out)
    out = out.reshape(*leading, w_array.shape[0])
    return torch.from_numpy(out) if as_torch else out
