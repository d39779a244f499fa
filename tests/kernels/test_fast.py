"""Tests of the Numba kernels against the plain references, exact to the bit."""

import numpy as np
import pytest
import torch

import kernels
from tests.kernels import naive

SHAPES = [(1, 1), (1, 5), (4, 31), (5, 32), (7, 33), (13, 128), (9, 129), (33, 300), (6, 1029)]


def _ternary(shape, seed):
    return np.random.default_rng(seed).integers(-1, 2, shape).astype(np.int8)


def _codes(shape, seed):
    return np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)


def _bipolar(shape, seed):
    return (2 * np.random.default_rng(seed).integers(0, 2, shape) - 1).astype(np.int8)


@pytest.mark.parametrize("fmt", kernels.TERNARY_FORMATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_ternary_gemm_matches_reference(fmt, shape):
    rows, cols = shape
    w = _ternary(shape, rows * 1000 + cols)
    x_q = _codes((3, cols), cols)
    acc = kernels.ternary_gemm(x_q, kernels.pack_weights(w, fmt), fmt, shape)
    expected = kernels.ternary_matmul(torch.from_numpy(x_q), torch.from_numpy(w)).numpy()
    assert acc.dtype == np.int32
    np.testing.assert_array_equal(acc, expected)


@pytest.mark.parametrize("fmt", kernels.TERNARY_FORMATS)
def test_ternary_gemm_matches_naive_loops(fmt):
    w = _ternary((5, 70), 1)
    x_q = _codes((2, 70), 2)
    acc = kernels.ternary_gemm(x_q, kernels.pack_weights(w, fmt), fmt, (5, 70))
    np.testing.assert_array_equal(acc, naive.ternary_matmul(x_q, w))


@pytest.mark.parametrize("fmt", kernels.TERNARY_FORMATS)
def test_ternary_gemm_worst_case_magnitude(fmt):
    cols = 4099
    w = np.stack([np.ones(cols), -np.ones(cols), np.zeros(cols)]).astype(np.int8)
    x_q = np.full(cols, -128, dtype=np.int8)
    acc = kernels.ternary_gemm(x_q, kernels.pack_weights(w, fmt), fmt, w.shape)
    assert acc.tolist() == [-128 * cols, 128 * cols, 0]


@pytest.mark.parametrize("fmt", kernels.TERNARY_FORMATS)
def test_gemm_equals_separate_gemvs(fmt):
    shape = (11, 261)
    packed = kernels.pack_weights(_ternary(shape, 3), fmt)
    x_q = _codes((9, 261), 4)
    gemm = kernels.ternary_gemm(x_q, packed, fmt, shape)
    for t in range(9):
        gemv = kernels.ternary_gemm(x_q[t], packed, fmt, shape)
        assert gemv.shape == (11,)
        np.testing.assert_array_equal(gemm[t], gemv)


@pytest.mark.parametrize("fmt", kernels.TERNARY_FORMATS)
def test_ternary_gemm_ignores_padding(fmt):
    # Shape (5, 67) leaves padding in every format; set the padding bits (to code 3 where the
    # format has 2-bit codes), the same positions as in test_packing.
    shape = (5, 67)
    w = _ternary(shape, 5)
    packed = np.array(kernels.pack_weights(w, fmt))
    if fmt == "hf":
        packed |= 0b11 << 6
        packed[1] |= 0b11 << 4
    elif fmt == "2bit":
        packed[:, -1] |= 0b11 << 6
    elif fmt == "i2_s":
        packed |= 0b11
        packed[:, 3:] |= 0b11 << 2
    else:
        packed[:, -1] = packed[:, -1] % 9 + 2 * (9 + 27 + 81)
    x_q = _codes((2, 67), 6)
    acc = kernels.ternary_gemm(x_q, packed, fmt, shape)
    np.testing.assert_array_equal(acc, naive.ternary_matmul(x_q, w))


def test_ternary_gemm_leading_dims_and_torch():
    shape = (6, 40)
    w = _ternary(shape, 7)
    x_q = torch.from_numpy(_codes((2, 3, 40), 8))
    packed = kernels.pack_weights(torch.from_numpy(w), "i2_s")
    acc = kernels.ternary_gemm(x_q, packed, "i2_s", shape)
    assert isinstance(acc, torch.Tensor)
    assert acc.dtype == torch.int32
    assert acc.shape == (2, 3, 6)
    assert torch.equal(acc, kernels.ternary_matmul(x_q, torch.from_numpy(w)))


@pytest.mark.parametrize("k", [1, 63, 64, 65, 127, 128, 200, 1000])
def test_xnor_gemm_matches_reference(k):
    a_b = _bipolar((3, k), k)
    w_b = _bipolar((5, k), k + 1)
    acc = kernels.xnor_gemm(
        kernels.pack_weights(a_b, "binary"), kernels.pack_weights(w_b, "binary"), k
    )
    assert acc.dtype == np.int32
    np.testing.assert_array_equal(acc, naive.xnor_matmul(a_b, w_b))


def test_xnor_gemm_padding_bits_never_count():
    k = 70
    a_b = _bipolar((2, k), 9)
    w_b = _bipolar((4, k), 10)
    a_packed = kernels.pack_weights(a_b, "binary")
    w_packed = kernels.pack_weights(w_b, "binary")
    # Make the padding disagree in a and agree in w: neither may count.
    a_packed[:, -1] |= np.uint64(~np.uint64(0) << np.uint64(6))
    expected = naive.xnor_matmul(a_b, w_b)
    np.testing.assert_array_equal(kernels.xnor_gemm(a_packed, w_packed, k), expected)
    w_packed[:, -1] |= np.uint64(~np.uint64(0) << np.uint64(6))
    np.testing.assert_array_equal(kernels.xnor_gemm(a_packed, w_packed, k), expected)


def test_xnor_gemm_gemv_and_torch():
    k = 100
    a_b = torch.from_numpy(_bipolar((4, k), 11))
    w_b = torch.from_numpy(_bipolar((3, k), 12))
    a_packed = kernels.pack_weights(a_b, "binary")
    w_packed = kernels.pack_weights(w_b, "binary")
    gemm = kernels.xnor_gemm(a_packed, w_packed, k)
    assert isinstance(gemm, torch.Tensor)
    assert torch.equal(gemm, kernels.xnor_matmul(a_b, w_b))
    for t in range(4):
        assert torch.equal(kernels.xnor_gemm(a_packed[t], w_packed, k), gemm[t])


_PACKED = np.zeros((1, 32), np.uint8)
_X = np.zeros(128, np.int8)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((_X, _PACKED, "binary", (1, 128)), {}, ValueError, "ternary_gemm needs a ternary format"),
        ((_X, _PACKED, "i2_s", (1, 0)), {}, ValueError, r"weight shape must be positive"),
        (([0], _PACKED, "i2_s", (1, 128)), {}, TypeError, "activation codes must be a torch.Ten"),
        ((_X.astype(np.int16), _PACKED, "i2_s", (1, 128)), {}, TypeError, "dtype int8, got int16"),
        ((_X, _PACKED.astype(np.int8), "i2_s", (1, 128)), {}, TypeError, "dtype uint8, got int8"),
        (
            (_X, _PACKED[:, :16], "i2_s", (1, 128)),
            {},
            ValueError,
            r"packed weights of shape \(1, 16\) cannot hold \(1, 128\) weights in format 'i2_s'",
        ),
        (
            (_X[:100], _PACKED, "i2_s", (1, 128)),
            {},
            ValueError,
            r"activation codes \(100,\) and weight shape \(1, 128\) disagree",
        ),
        (
            (np.zeros((0, 128), np.int8), _PACKED, "i2_s", (1, 128)),
            {},
            ValueError,
            r"activation codes must not be empty, got shape \(0, 128\)",
        ),
        (
            (_X, np.full((1, 32), 0xFF, np.uint8), "i2_s", (1, 128)),
            {},
            ValueError,
            "invalid 2-bit code 3",
        ),
    ],
)
def test_ternary_gemm_rejects(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        kernels.ternary_gemm(*args, **kwargs)


def test_ternary_gemm_rejects_large_k():
    k = kernels.INT32_SAFE_K + 1
    packed = np.zeros((1, -(-k // 4)), np.uint8)
    with pytest.raises(ValueError, match=f"K = {k} could overflow an int32 accumulator"):
        kernels.ternary_gemm(np.zeros(k, np.int8), packed, "2bit", (1, k), check=False)


_WORDS = np.zeros((2, 2), np.uint64)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((_WORDS, _WORDS, 100.0), TypeError, "k must be an int, got float"),
        ((_WORDS, _WORDS, 0), ValueError, r"k must be between 1 and 2\*\*31 - 1, got 0"),
        ((_WORDS.astype(np.int64), _WORDS, 100), TypeError, "packed activations must have dtype"),
        ((_WORDS, _WORDS.astype(np.uint8), 100), TypeError, "packed weights must have dtype"),
        ((_WORDS, _WORDS, 200), ValueError, r"packed weights must have shape \(N, 4\) for K = 2"),
        ((_WORDS, _WORDS[0], 100), ValueError, r"packed weights must have shape \(N, 2\)"),
        (
            (_WORDS[:, :1], _WORDS, 100),
            ValueError,
            r"packed activations must have shape \(\.\.\., 2\) for K = 100, got \(2, 1\)",
        ),
        (("a", _WORDS, 100), TypeError, "packed activations must be a torch.Tensor or numpy"),
    ],
)
def test_xnor_gemm_rejects(args, error, message):
    with pytest.raises(error, match=message):
        kernels.xnor_gemm(*args)
