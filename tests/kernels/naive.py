"""Slow, obviously correct references that the kernels are tested against.

Every function here works element by element with Python ints or numpy float32 scalars, so it
shares no code path with kernels/. Float32 arithmetic is done one IEEE operation at a time in the
same order as the formulas, so results can be compared for exact equality.
"""

import numpy as np

EPS32 = np.float32(1e-5)


def round_half_even(value) -> int:
    """Round a float to the nearest int, ties to the even neighbour (Python's `round`)."""
    return int(round(float(value)))


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def quantize_weights(w: np.ndarray, gamma: np.float32) -> np.ndarray:
    """Ternary codes of ``w`` for a given per-tensor gamma (BitNet b1.58 absmean rule)."""
    denominator = max(np.float32(gamma), EPS32)
    w_q = np.zeros(w.shape, dtype=np.int8)
    for index in np.ndindex(w.shape):
        w_q[index] = clamp(round_half_even(np.float32(w[index]) / denominator), -1, 1)
    return w_q


def quantize_activations(x: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per-row absmax codes and scales of a 2-D float32 array."""
    q_max = 2 ** (bits - 1) - 1
    rows, cols = x.shape
    x_q = np.zeros((rows, cols), dtype=np.int8)
    s = np.zeros((rows, 1), dtype=np.float32)
    for i in range(rows):
        largest = np.float32(0.0)
        for k in range(cols):
            largest = max(largest, abs(np.float32(x[i, k])))
        # torch evaluates `scalar / tensor` as scalar * (1 / tensor), two float32 roundings,
        # and the public BitNet code writes the scale as `127.0 / tensor`: follow both steps.
        s[i, 0] = np.float32(q_max) * (np.float32(1.0) / max(largest, EPS32))
        for k in range(cols):
            x_q[i, k] = clamp(round_half_even(np.float32(x[i, k]) * s[i, 0]), -q_max - 1, q_max)
    return x_q, s


def ternary_matmul(x_q: np.ndarray, w_q: np.ndarray) -> np.ndarray:
    """acc[i, n] = sum_k w_q[n, k] * x_q[i, k] with Python ints."""
    rows = x_q.shape[0]
    out_features, in_features = w_q.shape
    acc = np.zeros((rows, out_features), dtype=np.int64)
    for i in range(rows):
        for n in range(out_features):
            total = 0
            for k in range(in_features):
                total += int(w_q[n, k]) * int(x_q[i, k])
            acc[i, n] = total
    return acc


def xnor_matmul(a_b: np.ndarray, w_b: np.ndarray) -> np.ndarray:
    """Bipolar dot products by counting agreements: 2 * matches - K."""
    rows = a_b.shape[0]
    out_features, in_features = w_b.shape
    acc = np.zeros((rows, out_features), dtype=np.int64)
    for i in range(rows):
        for n in range(out_features):
            matches = sum(1 for k in range(in_features) if a_b[i, k] == w_b[n, k])
            acc[i, n] = 2 * matches - in_features
    return acc


# Packed formats, written as "where does weight (m, k) live": (byte or word index, bit offset).


def hf_position(m: int, k: int, rows: int) -> tuple[tuple[int, int], int]:
    quarter_rows = -(-rows // 4)
    return (m % quarter_rows, k), 2 * (m // quarter_rows)


def twobit_position(m: int, k: int) -> tuple[tuple[int, int], int]:
    return (m, k // 4), 2 * (k % 4)


def i2s_position(m: int, k: int) -> tuple[tuple[int, int], int]:
    block, offset = divmod(k, 128)
    group, j = divmod(offset, 32)
    return (m, 32 * block + j), 6 - 2 * group


def pack_2bit_codes(w: np.ndarray, fmt: str) -> np.ndarray:
    """Pack ternary ``w`` with code = w + 1 at the positions of ``fmt``, padding left at 0."""
    rows, cols = w.shape
    if fmt == "hf":
        shape = (-(-rows // 4), cols)
    elif fmt == "2bit":
        shape = (rows, -(-cols // 4))
    else:
        shape = (rows, 32 * -(-cols // 128))
    packed = np.zeros(shape, dtype=np.int64)
    for m in range(rows):
        for k in range(cols):
            if fmt == "hf":
                index, shift = hf_position(m, k, rows)
            elif fmt == "2bit":
                index, shift = twobit_position(m, k)
            else:
                index, shift = i2s_position(m, k)
            packed[index] += (int(w[m, k]) + 1) << shift
    return packed.astype(np.uint8)


def pack_base3(w: np.ndarray) -> np.ndarray:
    """Five trits per byte: byte j of a row is sum_i (w[5j + i] + 1) * 3**i."""
    rows, cols = w.shape
    packed = np.zeros((rows, -(-cols // 5)), dtype=np.uint8)
    for m in range(rows):
        for k in range(cols):
            packed[m, k // 5] += (int(w[m, k]) + 1) * 3 ** (k % 5)
    return packed


def pack_binary(w: np.ndarray) -> np.ndarray:
    """Bit k % 64 of word k // 64 is 1 for +1 and 0 for -1."""
    rows, cols = w.shape
    words = [[0] * -(-cols // 64) for _ in range(rows)]
    for m in range(rows):
        for k in range(cols):
            if w[m, k] == 1:
                words[m][k // 64] |= 1 << (k % 64)
    return np.array(words, dtype=np.uint64)
