"""Tests of the BitLinear modules and the straight-through estimator."""

import numpy as np
import pytest
import torch

import kernels
from tests.kernels import naive


def _random(shape, seed, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator) * scale


def test_fake_quantize_weights_forward():
    w = _random((5, 7), 0, scale=0.1)
    w_q, gamma = kernels.quantize_weights(w)
    expected = w_q.to(torch.float32) * gamma
    # w + (w_dq - w) rounds twice in float32, so the forward value is w_dq within an ulp or so.
    fake = kernels.fake_quantize_weights(w).detach()
    torch.testing.assert_close(fake, expected, rtol=0, atol=float(gamma) * 1e-6)


def test_fake_quantize_activations_forward():
    x = _random((3, 8), 1, scale=2.0)
    x_q, s = naive.quantize_activations(x.numpy())
    expected = x_q.astype(np.float32) / s
    fake = kernels.fake_quantize_activations(x).detach().numpy()
    np.testing.assert_allclose(fake, expected, rtol=0, atol=float(x.abs().max()) * 1e-6)


@pytest.mark.parametrize(
    "fake_quantize", [kernels.fake_quantize_weights, kernels.fake_quantize_activations]
)
def test_straight_through_gradient_is_identity(fake_quantize):
    w = _random((4, 6), 2).requires_grad_()
    upstream = _random((4, 6), 3)
    fake_quantize(w).backward(upstream)
    assert torch.equal(w.grad, upstream)


def test_fake_quantize_all_zero():
    assert kernels.fake_quantize_weights(torch.zeros(2, 3)).eq(0).all()
    assert kernels.fake_quantize_activations(torch.zeros(2, 3)).eq(0).all()


def test_bitlinear_train_shapes_and_no_bias():
    layer = kernels.BitLinearTrain(8, 5)
    assert layer.bias is None
    assert layer.weight.shape == (5, 8)
    assert layer(torch.ones(2, 3, 8)).shape == (2, 3, 5)


def test_bitlinear_train_forward_matches_reference():
    torch.manual_seed(0)
    layer = kernels.BitLinearTrain(16, 6)
    x = _random((3, 16), 4)
    expected = kernels.bitlinear(x, layer.weight.detach())
    # The fake-quantized forward multiplies the same integers in float32 in another order.
    torch.testing.assert_close(layer(x).detach(), expected, rtol=1e-5, atol=1e-6)


def test_bitlinear_train_gradients():
    torch.manual_seed(1)
    layer = kernels.BitLinearTrain(6, 4)
    x = _random((2, 6), 5).requires_grad_()
    upstream = _random((2, 4), 6)
    layer(x).backward(upstream)
    # With identity gradients through both quantizers, the layer differentiates like
    # F.linear(x_dq, w_dq): dL/dx = g @ w_dq and dL/dW = g^T @ x_dq.
    w_dq = kernels.fake_quantize_weights(layer.weight).detach()
    x_dq = kernels.fake_quantize_activations(x).detach()
    torch.testing.assert_close(x.grad, upstream @ w_dq)
    torch.testing.assert_close(layer.weight.grad, upstream.t() @ x_dq)


def test_to_inference_is_exact():
    torch.manual_seed(2)
    trained = kernels.BitLinearTrain(12, 7)
    inference = trained.to_inference()
    w_q, gamma = kernels.quantize_weights(trained.weight)
    assert torch.equal(inference.weight, w_q)
    assert inference.weight_scale.item() == gamma.item()
    assert inference.convention == "multiply"
    x = _random((3, 12), 7)
    assert torch.equal(inference(x), kernels.bitlinear(x, trained.weight.detach()))


@pytest.mark.parametrize("convention", ["multiply", "divide"])
def test_bitlinear_module_matches_function(convention):
    w_q = torch.randint(-1, 2, (5, 9), generator=torch.Generator().manual_seed(8))
    layer = kernels.BitLinear(w_q, 0.8, convention=convention, name="proj")
    x = _random((2, 4, 9), 9)
    y = layer(x)
    expected = kernels.bitlinear(x, w_q, weight_scale=0.8, convention=convention)
    assert y.shape == (2, 4, 5)
    assert torch.equal(y, expected)
    assert layer.in_features == 9
    assert layer.out_features == 5
    assert layer.weight.dtype == torch.int8
    assert repr(layer) == (f"BitLinear(in_features=9, out_features=5, convention={convention!r})")


def test_bitlinear_module_output_dtype_follows_input():
    layer = kernels.BitLinear(torch.ones(3, 4), 1.0)
    assert layer(torch.ones(2, 4, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_bitlinear_module_integer_core_override():
    class Doubled(kernels.BitLinear):
        def integer_core(self, x_q):
            return 2 * super().integer_core(x_q)

    w_q = torch.tensor([[1, 0, -1]])
    x = torch.tensor([[3.0, 1.0, -2.0]])
    assert torch.equal(Doubled(w_q, 1.0)(x), 2 * kernels.BitLinear(w_q, 1.0)(x))


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((torch.ones(2, 2), 1.0), {"convention": "x"}, "convention must be 'multiply' or 'divide'"),
        ((torch.ones(4), 1.0), {}, r"BitLinear weight must be 2-D \[N, K\], got shape \(4,\)"),
        (
            (torch.full((2, 2), 2.0), 1.0),
            {"name": "q_proj"},
            r"BitLinear q_proj weight must hold ternary codes in \{-1, 0, 1\}, found 2.0 at index",
        ),
        ((torch.ones(2, 2), 0.0), {}, "weight_scale must be positive and finite, got 0.0"),
        ((torch.ones(2, 2), float("inf")), {}, "weight_scale must be positive and finite, got inf"),
    ],
)
def test_bitlinear_module_rejects(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        kernels.BitLinear(*args, **kwargs)
