"""Tests of the BitNet b1.58 quantizers, the integer core and `bitlinear` against tests/naive.py."""

import numpy as np
import pytest
import torch

import kernels
from tests.kernels import naive


def _random(shape, seed, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator) * scale


# quantize_weights


def test_quantize_weights_ties_to_even():
    # mean|w| = 6 / 6 = 1 exactly, so w / gamma = w and the ties are real ties.
    w = torch.tensor([[0.5, -0.5, 1.5, -1.5, 0.25, 1.75]])
    w_q, gamma = kernels.quantize_weights(w)
    assert gamma.item() == 1.0
    assert w_q.dtype == torch.int8
    assert w_q.tolist() == [[0, 0, 1, -1, 0, 1]]


@pytest.mark.parametrize("seed", range(4))
def test_quantize_weights_matches_naive(seed):
    w = _random((7, 13), seed, scale=0.02)
    w_q, gamma = kernels.quantize_weights(w)
    expected_gamma = np.float64(np.abs(w.numpy().astype(np.float64)).mean())
    assert gamma.dtype == torch.float32
    assert gamma.item() == pytest.approx(expected_gamma, rel=1e-6)
    np.testing.assert_array_equal(w_q.numpy(), naive.quantize_weights(w.numpy(), gamma.numpy()))


def test_quantize_weights_all_zero():
    w_q, gamma = kernels.quantize_weights(torch.zeros(3, 4))
    assert gamma.item() == 0.0
    assert w_q.eq(0).all()


def test_quantize_weights_bfloat16_input():
    w = _random((5, 8), 9).to(torch.bfloat16)
    w_q, gamma = kernels.quantize_weights(w)
    w32 = w.to(torch.float32).numpy()
    np.testing.assert_array_equal(w_q.numpy(), naive.quantize_weights(w32, gamma.numpy()))


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ([1.0], TypeError, "weights must be a torch.Tensor, got list"),
        (torch.ones(2, 2, dtype=torch.int8), TypeError, "weights must be a floating-point tensor"),
        (torch.zeros(0, 3), ValueError, r"weights must not be empty, got shape \(0, 3\)"),
        (torch.tensor([1.0, float("nan")]), ValueError, "weights must be finite, found nan"),
        (torch.tensor([float("-inf")]), ValueError, "weights must be finite, found -inf"),
    ],
)
def test_quantize_weights_rejects(value, error, message):
    with pytest.raises(error, match=message):
        kernels.quantize_weights(value)


# quantize_activations


def test_quantize_activations_ties_to_even():
    # max|x| = 127 makes s = 1 exactly.
    x = torch.tensor([[127.0, 0.5, 1.5, 2.5, -0.5, -2.5, -127.0]])
    x_q, s = kernels.quantize_activations(x)
    assert s.tolist() == [[1.0]]
    assert x_q.tolist() == [[127, 0, 2, 2, 0, -2, -127]]


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("seed", range(3))
def test_quantize_activations_matches_naive(bits, seed):
    x = _random((6, 11), seed, scale=3.0)
    x_q, s = kernels.quantize_activations(x, bits=bits)
    expected_q, expected_s = naive.quantize_activations(x.numpy(), bits)
    np.testing.assert_array_equal(s.numpy(), expected_s)
    np.testing.assert_array_equal(x_q.numpy(), expected_q)


def test_quantize_activations_keeps_leading_dims():
    x = _random((2, 3, 5), 1)
    x_q, s = kernels.quantize_activations(x)
    assert x_q.shape == (2, 3, 5)
    assert s.shape == (2, 3, 1)
    expected_q, _ = naive.quantize_activations(x.reshape(6, 5).numpy())
    np.testing.assert_array_equal(x_q.reshape(6, 5).numpy(), expected_q)


def test_quantize_activations_zero_row():
    x = torch.zeros(2, 4)
    x[1] = torch.tensor([1.0, -2.0, 0.0, 4.0])
    x_q, s = kernels.quantize_activations(x)
    assert x_q[0].eq(0).all()
    assert torch.isfinite(s).all()
    assert s[0].item() == np.float32(127) / np.float32(1e-5)


@pytest.mark.parametrize(
    ("value", "bits", "error", "message"),
    [
        ("x", 8, TypeError, "activations must be a torch.Tensor, got str"),
        (torch.ones(2, dtype=torch.int32), 8, TypeError, "activations must be a floating-point"),
        (torch.ones(2), 8.0, TypeError, "bits must be an int, got float"),
        (torch.ones(2), True, TypeError, "bits must be an int, got bool"),
        (torch.ones(2), 1, ValueError, "bits must be between 2 and 8, got 1"),
        (torch.ones(2), 9, ValueError, "bits must be between 2 and 8, got 9"),
        (torch.ones(2, 0), 8, ValueError, r"activations must not be empty, got shape \(2, 0\)"),
        (torch.tensor([0.0, float("inf")]), 8, ValueError, "activations must be finite, found inf"),
        (torch.tensor([float("nan")]), 8, ValueError, "activations must be finite, found nan"),
    ],
)
def test_quantize_activations_rejects(value, bits, error, message):
    with pytest.raises(error, match=message):
        kernels.quantize_activations(value, bits=bits)


# ternary_matmul


@pytest.mark.parametrize(("rows", "n", "k"), [(1, 1, 1), (3, 5, 7), (4, 9, 130)])
def test_ternary_matmul_matches_naive(rows, n, k):
    generator = torch.Generator().manual_seed(rows * 1000 + n * 10 + k)
    x_q = torch.randint(-128, 128, (rows, k), generator=generator, dtype=torch.int8)
    w_q = torch.randint(-1, 2, (n, k), generator=generator, dtype=torch.int8)
    acc = kernels.ternary_matmul(x_q, w_q)
    assert acc.dtype == torch.int32
    np.testing.assert_array_equal(acc.numpy(), naive.ternary_matmul(x_q.numpy(), w_q.numpy()))


def test_ternary_matmul_extremes():
    # Worst case magnitude: every product is -128 * 1 or -128 * -1.
    k = 1000
    x_q = torch.full((1, k), -128, dtype=torch.int8)
    w_q = torch.stack([torch.ones(k), -torch.ones(k), torch.zeros(k)]).to(torch.int8)
    assert kernels.ternary_matmul(x_q, w_q).tolist() == [[-128 * k, 128 * k, 0]]


def test_ternary_matmul_batched_dims():
    generator = torch.Generator().manual_seed(5)
    x_q = torch.randint(-128, 128, (2, 3, 8), generator=generator, dtype=torch.int8)
    w_q = torch.randint(-1, 2, (4, 8), generator=generator, dtype=torch.int8)
    acc = kernels.ternary_matmul(x_q, w_q)
    assert acc.shape == (2, 3, 4)
    expected = naive.ternary_matmul(x_q.reshape(6, 8).numpy(), w_q.numpy())
    np.testing.assert_array_equal(acc.reshape(6, 4).numpy(), expected)


def test_ternary_matmul_rejects_large_k():
    k = kernels.INT32_SAFE_K + 1
    assert kernels.INT32_SAFE_K == (2**31 - 1) // 128
    with pytest.raises(ValueError, match=f"K = {k} could overflow an int32 accumulator; the max"):
        kernels.ternary_matmul(
            torch.zeros(1, k, dtype=torch.int8), torch.zeros(1, k, dtype=torch.int8)
        )


_X8 = torch.zeros(2, 3, dtype=torch.int8)
_W8 = torch.zeros(4, 3, dtype=torch.int8)


@pytest.mark.parametrize(
    ("x_q", "w_q", "error", "message"),
    [
        ([0], _W8, TypeError, "activation codes must be a torch.Tensor, got list"),
        (_X8, None, TypeError, "weight codes must be a torch.Tensor, got NoneType"),
        (_X8.float(), _W8, TypeError, "activation codes must have dtype torch.int8, got torch"),
        (_X8, _W8.to(torch.int32), TypeError, "weight codes must have dtype torch.int8, got"),
        (_X8, _W8[0], ValueError, r"weight codes must be 2-D \[N, K\], got shape \(3,\)"),
        (_X8[:, :2], _W8, ValueError, r"activation codes \(2, 2\) and weight codes \(4, 3\) disag"),
        (_X8[0, 0], _W8, ValueError, r"activation codes \(\) and weight codes"),
        (
            _X8,
            torch.tensor([[0, 1, 2]] * 4, dtype=torch.int8),
            ValueError,
            r"weight codes must hold ternary codes in \{-1, 0, 1\}, found 2 at index \(0, 2\)",
        ),
    ],
)
def test_ternary_matmul_rejects(x_q, w_q, error, message):
    with pytest.raises(error, match=message):
        kernels.ternary_matmul(x_q, w_q)


# dequantize_output and bitlinear


def _naive_bitlinear(x, w_q, scale, convention):
    x_q, s = naive.quantize_activations(x)
    acc = naive.ternary_matmul(x_q, w_q)
    y = np.zeros(acc.shape, dtype=np.float32)
    for i, n in np.ndindex(acc.shape):
        if convention == "multiply":
            y[i, n] = np.float32(acc[i, n]) / s[i, 0] * np.float32(scale)
        else:
            y[i, n] = np.float32(acc[i, n]) / (s[i, 0] * np.float32(scale))
    return y


@pytest.mark.parametrize("seed", range(3))
def test_bitlinear_latent_weights(seed):
    x = _random((3, 10), seed)
    w = _random((6, 10), seed + 100, scale=0.05)
    y = kernels.bitlinear(x, w)
    w_q, gamma = kernels.quantize_weights(w)
    np.testing.assert_array_equal(w_q.numpy(), naive.quantize_weights(w.numpy(), gamma.numpy()))
    expected = _naive_bitlinear(x.numpy(), w_q.numpy(), gamma.numpy(), "multiply")
    assert y.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), expected)


@pytest.mark.parametrize("convention", ["multiply", "divide"])
def test_bitlinear_stored_scale(convention):
    x = _random((4, 9), 3)
    w_q = torch.randint(-1, 2, (5, 9), generator=torch.Generator().manual_seed(3))
    y = kernels.bitlinear(x, w_q, weight_scale=torch.tensor(0.37), convention=convention)
    expected = _naive_bitlinear(x.numpy(), w_q.numpy(), 0.37, convention)
    np.testing.assert_array_equal(y.numpy(), expected)


def test_bitlinear_conventions_agree():
    # A checkpoint that stores gamma (multiply) and one that stores 1 / gamma (divide) describe
    # the same layer, and must give the same outputs up to the rounding of 1 / gamma.
    x = _random((2, 16), 4)
    w_q = torch.randint(-1, 2, (3, 16), generator=torch.Generator().manual_seed(4))
    gamma = 0.25
    y_multiply = kernels.bitlinear(x, w_q, weight_scale=gamma, convention="multiply")
    y_divide = kernels.bitlinear(x, w_q, weight_scale=1 / gamma, convention="divide")
    np.testing.assert_array_equal(y_multiply.numpy(), y_divide.numpy())
    y_wrong = kernels.bitlinear(x, w_q, weight_scale=1 / gamma, convention="multiply")
    assert not torch.equal(y_wrong, y_multiply)


def test_bitlinear_zero_inputs():
    y = kernels.bitlinear(torch.zeros(2, 4), _random((3, 4), 0))
    assert y.eq(0).all()
    y = kernels.bitlinear(_random((2, 4), 1), torch.zeros(3, 4))
    assert y.eq(0).all()


def test_dequantize_output_conventions():
    acc = torch.tensor([[10, -20]], dtype=torch.int32)
    s = torch.tensor([[2.0]])
    multiplied = kernels.dequantize_output(acc, s, torch.tensor(0.5), "multiply")
    divided = kernels.dequantize_output(acc, s, torch.tensor(0.5), "divide")
    assert multiplied.tolist() == [[2.5, -5.0]]
    assert divided.tolist() == [[10.0, -20.0]]


def test_dequantize_output_rejects_convention():
    with pytest.raises(ValueError, match="convention must be 'multiply' or 'divide', got 'mul'"):
        kernels.dequantize_output(torch.zeros(1, 1), torch.ones(1, 1), torch.tensor(1.0), "mul")


@pytest.mark.parametrize(
    ("w", "kwargs", "error", "message"),
    [
        (torch.ones(2, 3), {"convention": "div"}, ValueError, "convention must be 'multiply' or"),
        ([[1, 0, 1]], {}, TypeError, "weights must be a torch.Tensor, got list"),
        (torch.ones(2, 3), {"weight_scale": 0.0}, ValueError, "weight_scale must be positive and"),
        (torch.ones(2, 3), {"weight_scale": -1.0}, ValueError, "finite, got -1.0"),
        (torch.ones(2, 3), {"weight_scale": float("nan")}, ValueError, "finite, got nan"),
        (torch.ones(2, 3), {"weight_scale": float("inf")}, ValueError, "finite, got inf"),
        (torch.ones(0, 3), {"weight_scale": 1.0}, ValueError, "weights must not be empty"),
        (
            torch.full((2, 3), 0.5),
            {"weight_scale": 1.0},
            ValueError,
            r"weights must hold ternary codes in \{-1, 0, 1\}, found 0.5 at index \(0, 0\)",
        ),
        (torch.ones(2, 4), {"weight_scale": 1.0}, ValueError, r"activation codes \(1, 3\) and"),
    ],
)
def test_bitlinear_rejects(w, kwargs, error, message):
    with pytest.raises(error, match=message):
        kernels.bitlinear(torch.ones(1, 3), w, **kwargs)


def test_quantize_activations_rejects_beyond_float32():
    x = torch.tensor([[1e300, -1.0, 1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="activations must lie within the float32 range"):
        kernels.quantize_activations(x)
