"""Tests of the packed weight formats against the element-by-element packers in naive.py."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import kernels
from tests.kernels import naive

SHAPES = [(1, 1), (3, 5), (4, 4), (5, 127), (7, 128), (9, 129), (2, 64), (3, 65), (6, 300)]


def _ternary(shape, seed):
    return np.random.default_rng(seed).integers(-1, 2, shape).astype(np.int8)


def _binary(shape, seed):
    return (2 * np.random.default_rng(seed).integers(0, 2, shape) - 1).astype(np.int8)


def _values(fmt, shape, seed):
    return _binary(shape, seed) if fmt == "binary" else _ternary(shape, seed)


def _naive_pack(w, fmt):
    if fmt == "base3":
        return naive.pack_base3(w)
    if fmt == "binary":
        return naive.pack_binary(w)
    return naive.pack_2bit_codes(w, fmt)


def _pattern(shape):
    # Weight k of the flattened matrix is (k mod 3) - 1, so each position gets a known value
    # and neighbours differ.
    rows, cols = shape
    return (np.arange(rows * cols).reshape(rows, cols) % 3 - 1).astype(np.int8)


@pytest.mark.parametrize("fmt", kernels.FORMATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_pack_matches_naive(fmt, shape):
    w = _values(fmt, shape, sum(shape))
    packed = kernels.pack_weights(w, fmt)
    assert packed.shape == kernels.packed_shape(shape, fmt)
    assert packed.dtype == kernels.packed_dtype(fmt)
    np.testing.assert_array_equal(packed, _naive_pack(w, fmt))


@pytest.mark.parametrize("fmt", kernels.TERNARY_FORMATS)
@pytest.mark.parametrize("shape", [(1, 1), (4, 6), (5, 131), (3, 260)])
def test_known_pattern_every_position(fmt, shape):
    w = _pattern(shape)
    packed = kernels.pack_weights(w, fmt)
    np.testing.assert_array_equal(packed, _naive_pack(w, fmt))
    unpacked = kernels.unpack_weights(packed, fmt, shape)
    for m, k in np.ndindex(shape):
        assert unpacked[m, k] == (m * shape[1] + k) % 3 - 1, (m, k)


def test_known_pattern_binary_every_position():
    # Binary has no zero: map the pattern's 0 to +1, so weight k is -1 only when k mod 3 == 0.
    shape = (3, 130)
    w = np.where(_pattern(shape) == -1, -1, 1).astype(np.int8)
    unpacked = kernels.unpack_weights(kernels.pack_weights(w, "binary"), "binary", shape)
    for m, k in np.ndindex(shape):
        assert unpacked[m, k] == (-1 if (m * shape[1] + k) % 3 == 0 else 1), (m, k)


def test_i2s_byte_layout():
    # Block of 128 weights: byte j holds weights j, j+32, j+64, j+96 from the high bit pair down,
    # with code = w + 1 (0 -> -1, 1 -> 0, 2 -> +1).
    w = np.zeros((1, 128), dtype=np.int8)
    w[0, 5] = 1  # code 2 in bits 6-7 of byte 5
    w[0, 37] = -1  # code 0 in bits 4-5 of byte 5
    w[0, 69] = 1  # code 2 in bits 2-3 of byte 5
    w[0, 101] = 0  # code 1 in bits 0-1 of byte 5
    packed = kernels.pack_weights(w, "i2_s")
    assert packed[0, 5] == 0b10_00_10_01
    assert all(packed[0, j] == 0b01_01_01_01 for j in range(32) if j != 5)


def test_hf_byte_layout():
    # Rows p, R+p, 2R+p, 3R+p of packed row p in bit pairs 0-1 .. 6-7; M = 5 gives R = 2.
    w = np.array([[1], [0], [-1], [1], [0]], dtype=np.int8)
    packed = kernels.pack_weights(w, "hf")
    assert packed.tolist() == [[2 | 0 << 2 | 1 << 4], [1 | 2 << 2]]


def test_base3_and_2bit_byte_layout():
    w = np.array([[1, -1, 0, 1, 1, -1]], dtype=np.int8)
    assert kernels.pack_weights(w, "base3").tolist() == [[2 + 0 * 3 + 1 * 9 + 2 * 27 + 2 * 81, 0]]
    assert kernels.pack_weights(w, "2bit").tolist() == [[2 | 0 << 2 | 1 << 4 | 2 << 6, 2 | 0 << 2]]


def test_binary_word_layout():
    w = -np.ones((1, 70), dtype=np.int8)
    w[0, 0] = w[0, 63] = w[0, 65] = 1
    packed = kernels.pack_weights(w, "binary")
    assert packed.tolist() == [[1 | 1 << 63, 1 << 1]]


@pytest.mark.parametrize("fmt", kernels.FORMATS)
def test_padding_is_ignored(fmt):
    shape = (5, 67)
    w = _values(fmt, shape, 3)
    packed = np.array(kernels.pack_weights(w, fmt))
    flipped = packed.copy()
    # Set every padding bit; shape (5, 67) leaves padding in every format.
    if fmt == "hf":
        # R = 2: quarter 3 (rows 6, 7) and row 2R + 1 = 5 are padding.
        flipped[:, :] |= 0b11 << 6
        flipped[1, :] |= 0b11 << 4
    elif fmt == "2bit":
        # Byte 16 holds weights 64..66 in bit pairs 0..2; pair 3 is padding.
        flipped[:, -1] |= 0b11 << 6
    elif fmt == "i2_s":
        # One block: weights 64..66 sit in bits 2-3 of bytes 0..2; the rest of bits 0-3 is padding.
        flipped[:, :] |= 0b11
        flipped[:, 3:] |= 0b11 << 2
    elif fmt == "base3":
        # Byte 13 holds weights 65 and 66 in trits 0 and 1; trits 2..4 become 2.
        flipped[:, -1] = flipped[:, -1] % 9 + 2 * (9 + 27 + 81)
    else:
        # Word 1 holds weights 64..66 in bits 0..2.
        flipped[:, -1] |= np.uint64(~np.uint64(0) << np.uint64(3))
    assert not np.array_equal(flipped, packed)
    np.testing.assert_array_equal(kernels.unpack_weights(flipped, fmt, shape), w)


@pytest.mark.parametrize("fmt", kernels.FORMATS)
def test_torch_in_torch_out(fmt):
    w = torch.from_numpy(_values(fmt, (6, 70), 4))
    packed = kernels.pack_weights(w, fmt)
    assert isinstance(packed, torch.Tensor)
    unpacked = kernels.unpack_weights(packed, fmt, (6, 70))
    assert isinstance(unpacked, torch.Tensor)
    assert unpacked.dtype == torch.int8
    assert torch.equal(unpacked, w)


def test_pack_accepts_float_codes():
    w = torch.tensor([[1.0, -1.0, 0.0]])
    assert torch.equal(
        kernels.unpack_weights(kernels.pack_weights(w, "hf"), "hf", (1, 3)), w.to(torch.int8)
    )


_shapes = st.tuples(st.integers(1, 9), st.integers(1, 200))


@pytest.mark.parametrize("fmt", kernels.FORMATS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip_property(fmt, data):
    shape = data.draw(_shapes)
    elements = st.sampled_from([-1, 1] if fmt == "binary" else [-1, 0, 1])
    w = data.draw(hnp.arrays(np.int8, shape, elements=elements))
    packed = kernels.pack_weights(w, fmt)
    np.testing.assert_array_equal(kernels.unpack_weights(packed, fmt, shape), w)


@pytest.mark.parametrize(
    ("shape", "fmt", "expected"),
    [
        ((5, 3), "hf", (2, 3)),
        ((5, 3), "2bit", (5, 1)),
        ((2, 129), "i2_s", (2, 64)),
        ((2, 128), "i2_s", (2, 32)),
        ((2, 11), "base3", (2, 3)),
        ((2, 65), "binary", (2, 2)),
    ],
)
def test_packed_shape(shape, fmt, expected):
    assert kernels.packed_shape(shape, fmt) == expected


@pytest.mark.parametrize(
    ("w", "fmt", "error", "message"),
    [
        ([[1, 0]], "hf", TypeError, "weights must be a torch.Tensor or numpy.ndarray, got list"),
        (np.zeros((2, 2)), "i2", ValueError, "unknown weight format 'i2'; known formats: hf, 2bit"),
        (np.zeros(4), "hf", ValueError, r"weights to pack must be 2-D \[M, K\], got shape \(4,\)"),
        (np.zeros((0, 4)), "2bit", ValueError, r"weights must not be empty, got shape \(0, 4\)"),
        (
            np.array([[0, 2]]),
            "i2_s",
            ValueError,
            r"weights must hold ternary codes in \{-1, 0, 1\}, found 2 at index \(0, 1\)",
        ),
        (
            np.array([[1, 0]]),
            "binary",
            ValueError,
            r"weights in format 'binary' must hold only -1 and \+1, found 0 at index \(0, 1\); "
            "binary weights have no zero",
        ),
    ],
)
def test_pack_rejects(w, fmt, error, message):
    with pytest.raises(error, match=message):
        kernels.pack_weights(w, fmt)


@pytest.mark.parametrize(
    ("packed", "fmt", "shape", "error", "message"),
    [
        ("x", "hf", (4, 1), TypeError, "packed weights must be a torch.Tensor or numpy.ndarray"),
        (np.zeros((1, 1), np.uint8), "hf", (4,), ValueError, r"weight shape must be two ints"),
        (np.zeros((1, 1), np.uint8), "hf", (4, 1.0), ValueError, r"weight shape must be two ints"),
        (np.zeros((1, 1), np.uint8), "hf", (0, 1), ValueError, r"must be positive, got \(0, 1\)"),
        (np.zeros((1, 1), np.int8), "hf", (4, 1), TypeError, "must have dtype uint8, got int8"),
        (np.zeros((1, 1), np.uint8), "binary", (1, 5), TypeError, "dtype uint64, got uint8"),
        (
            np.zeros((2, 1), np.uint8),
            "hf",
            (4, 1),
            ValueError,
            r"packed weights of shape \(2, 1\) cannot hold \(4, 1\) weights in format 'hf', "
            r"which needs shape \(1, 1\)",
        ),
        (
            np.full((1, 1), 0b11_01_01_01, np.uint8),
            "hf",
            (4, 1),
            ValueError,
            r"invalid 2-bit code 3 \(value 2\) for weight \(3, 0\); valid codes are 0, 1 and 2",
        ),
        (
            np.full((1, 32), 0b01_11_01_01, np.uint8),
            "i2_s",
            (1, 128),
            ValueError,
            r"invalid 2-bit code 3 \(value 2\) for weight \(0, 32\)",
        ),
        (
            np.full((1, 1), 0b01_01_11_01, np.uint8),
            "2bit",
            (1, 4),
            ValueError,
            r"invalid 2-bit code 3 \(value 2\) for weight \(0, 1\)",
        ),
        (
            np.full((1, 1), 243, np.uint8),
            "base3",
            (1, 5),
            ValueError,
            r"invalid base-3 byte 243 at \(0, 0\); five trits give bytes 0 to 242",
        ),
    ],
)
def test_unpack_rejects(packed, fmt, shape, error, message):
    with pytest.raises(error, match=message):
        kernels.unpack_weights(packed, fmt, shape)
