"""Tests of the binary layers: BitNet binarization, XNOR products and OneBit."""

import numpy as np
import pytest
import torch

import kernels
from tests.kernels import naive


def _random(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _bipolar(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return (2 * torch.randint(0, 2, shape, generator=generator) - 1).to(torch.int8)


def test_binarize_weights_sign_of_zero():
    # mean = 1, so the centred weights are [-1, 0, 1, 0]: sign(0) must give -1.
    w = torch.tensor([[0.0, 1.0, 2.0, 1.0]])
    w_b, beta = kernels.binarize_weights(w)
    assert w_b.tolist() == [[-1, -1, 1, -1]]
    assert w_b.dtype == torch.int8
    assert beta.item() == 1.0


@pytest.mark.parametrize("seed", range(3))
def test_binarize_weights_matches_naive(seed):
    w = _random((6, 9), seed) + 0.3
    w_b, beta = kernels.binarize_weights(w)
    mean = w.mean()
    expected = [[1 if float(v - mean) > 0 else -1 for v in row] for row in w]
    assert w_b.tolist() == expected
    assert beta.item() == pytest.approx(float(np.abs(w.numpy().astype(np.float64)).mean()))


@pytest.mark.parametrize(("rows", "n", "k"), [(1, 1, 1), (2, 3, 63), (3, 4, 64), (2, 5, 130)])
def test_xnor_matmul_matches_naive(rows, n, k):
    a_b = _bipolar((rows, k), k)
    w_b = _bipolar((n, k), k + 1)
    acc = kernels.xnor_matmul(a_b, w_b)
    assert acc.dtype == torch.int32
    np.testing.assert_array_equal(acc.numpy(), naive.xnor_matmul(a_b.numpy(), w_b.numpy()))


def test_binary_linear_matches_parts():
    x = _random((3, 20), 1)
    w = _random((4, 20), 2)
    w_b, beta = kernels.binarize_weights(w)
    x_q, s = naive.quantize_activations(x.numpy())
    acc = naive.ternary_matmul(x_q, w_b.numpy())
    expected = acc.astype(np.float32) / s * beta.numpy()
    np.testing.assert_array_equal(kernels.binary_linear(x, w).numpy(), expected)


def test_onebit_linear_matches_loops():
    x = _random((2, 5), 3)
    sign = _bipolar((3, 5), 4)
    g = _random(5, 5)
    h = _random(3, 6)
    y = kernels.onebit_linear(x, sign, g, h)
    for i in range(2):
        for n in range(3):
            total = sum(float(x[i, k]) * float(g[k]) * int(sign[n, k]) for k in range(5))
            assert y[i, n].item() == pytest.approx(total * float(h[n]), rel=1e-5, abs=1e-6)


def test_sign_ste_forward_and_gradient():
    x = torch.tensor([-2.0, 0.0, 0.5]).requires_grad_()
    y = kernels.sign_ste(x)
    assert y.tolist() == [-1.0, -1.0, 1.0]
    y.backward(torch.tensor([1.0, 2.0, 3.0]))
    assert x.grad.tolist() == [1.0, 2.0, 3.0]


def test_fake_binarize_weights_forward_and_gradient():
    w = (_random((4, 6), 7) + 0.2).requires_grad_()
    w_b, beta = kernels.binarize_weights(w)
    fake = kernels.fake_binarize_weights(w)
    expected = w_b.to(torch.float32) * beta
    torch.testing.assert_close(fake.detach(), expected, rtol=0, atol=float(beta) * 1e-6)
    upstream = _random((4, 6), 8)
    fake.backward(upstream)
    assert torch.equal(w.grad, upstream)


def test_xnor_matmul_ste_forward_and_gradient():
    a = _random((2, 7), 9).requires_grad_()
    w = _random((3, 7), 10).requires_grad_()
    y = kernels.xnor_matmul_ste(a, w)
    a_b = torch.where(a > 0, 1, -1)
    w_b = torch.where(w > 0, 1, -1)
    assert y.detach().to(torch.int32).tolist() == kernels.xnor_matmul(a_b, w_b).tolist()
    upstream = _random((2, 3), 11)
    y.backward(upstream)
    # sign() passes gradients through unchanged, so dL/da = g @ sign(w).
    torch.testing.assert_close(a.grad, upstream @ w_b.to(torch.float32))
    torch.testing.assert_close(w.grad, upstream.t() @ a_b.to(torch.float32))


def test_binary_linear_train_matches_binary_linear():
    torch.manual_seed(0)
    layer = kernels.BinaryLinearTrain(16, 5)
    assert layer.bias is None
    x = _random((3, 16), 12)
    expected = kernels.binary_linear(x, layer.weight.detach())
    torch.testing.assert_close(layer(x).detach(), expected, rtol=1e-5, atol=1e-6)
    layer(x).sum().backward()
    assert layer.weight.grad is not None


def test_onebit_train_from_linear_and_inference():
    weight = _random((6, 8), 13)
    layer = kernels.OneBitLinearTrain.from_linear(weight)
    sign, g, h = layer.to_inference()
    assert torch.equal(sign, torch.where(weight > 0, 1, -1).to(torch.int8))
    # The rank-1 value vectors are non-negative and approximate |W| better than zero does.
    assert bool((g >= 0).all()) and bool((h >= 0).all())
    approx = h[:, None] * g[None, :]
    assert (weight.abs() - approx).norm() < weight.abs().norm()
    x = _random((2, 8), 14)
    torch.testing.assert_close(layer(x).detach(), kernels.onebit_linear(x, sign, g, h))
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.g.grad is not None and layer.h.grad is not None


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: kernels.binarize_weights([1.0]), TypeError, "weights must be a torch.Tensor"),
        (
            lambda: kernels.binarize_weights(torch.ones(2, dtype=torch.int8)),
            TypeError,
            "weights must be a floating-point tensor, got dtype torch.int8",
        ),
        (lambda: kernels.binarize_weights(torch.ones(0)), ValueError, "must not be empty"),
        (
            lambda: kernels.binarize_weights(torch.tensor([float("nan")])),
            ValueError,
            "weights must be finite, found nan",
        ),
        (
            lambda: kernels.xnor_matmul(torch.tensor([[1, 0]]), torch.ones(1, 2)),
            ValueError,
            r"binary activations must hold only -1 and \+1, found 0 at \(0, 1\)",
        ),
        (
            lambda: kernels.xnor_matmul(torch.ones(1, 2), torch.full((1, 2), 2.0)),
            ValueError,
            r"binary weights must hold only -1 and \+1, found 2.0 at \(0, 0\)",
        ),
        (
            lambda: kernels.xnor_matmul(torch.ones(1, 2), torch.ones(2)),
            ValueError,
            r"binary weights must be 2-D \[N, K\], got shape \(2,\)",
        ),
        (
            lambda: kernels.xnor_matmul(torch.ones(1, 3), torch.ones(1, 2)),
            ValueError,
            r"binary activations \(1, 3\) and binary weights \(1, 2\) disagree",
        ),
        (
            lambda: kernels.xnor_matmul(torch.ones(0, 2), torch.ones(1, 2)),
            ValueError,
            "binary activations must not be empty",
        ),
        (
            lambda: kernels.onebit_linear(
                torch.ones(1, 2), torch.ones(3), torch.ones(2), torch.ones(3)
            ),
            ValueError,
            r"sign matrix must be 2-D \[N, K\], got shape \(3,\)",
        ),
        (
            lambda: kernels.onebit_linear(
                torch.ones(1, 2), torch.ones(3, 2), torch.ones(3), torch.ones(3)
            ),
            ValueError,
            r"g must have shape \(2,\) to match K, got \(3,\)",
        ),
        (
            lambda: kernels.onebit_linear(
                torch.ones(1, 2), torch.ones(3, 2), torch.ones(2), torch.ones(2)
            ),
            ValueError,
            r"h must have shape \(3,\) to match N, got \(2,\)",
        ),
        (
            lambda: kernels.onebit_linear(
                torch.ones(1, 4), torch.ones(3, 2), torch.ones(2), torch.ones(3)
            ),
            ValueError,
            r"activations \(1, 4\) and sign matrix \(3, 2\) disagree",
        ),
        (
            lambda: kernels.onebit_linear(
                torch.ones(1, 2), torch.ones(3, 2), torch.ones(2, dtype=torch.int64), torch.ones(3)
            ),
            TypeError,
            "g must be a floating-point tensor",
        ),
        (
            lambda: kernels.OneBitLinearTrain.from_linear(torch.ones(3)),
            ValueError,
            r"weights must be 2-D \[N, K\], got shape \(3,\)",
        ),
    ],
)
def test_binary_layers_reject(call, error, message):
    with pytest.raises(error, match=message):
        call()
