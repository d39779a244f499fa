"""Binary (1-bit) layers: BitNet's binarized linear layer, XNOR-popcount products and OneBit.

- BitNet (Wang et al., 2023, "BitNet: Scaling 1-bit Transformers for Large Language Models",
  section 2): W_b = sign(W - mean W) with sign(0) = -1, beta = mean|W| per tensor; activations
  are quantized per token to 8 bits as in BitNet b1.58, and y = (W_b x_q) / s * beta.
- XNOR-popcount: for vectors a, w in {-1, +1}^K, a . w = 2 * popcount(XNOR(a, w)) - K, because
  each agreeing position adds 1 and each disagreeing one subtracts 1.
- OneBit (Xu et al., 2024, "OneBit: Towards Extremely Low-bit Large Language Models", section
  3.2): W is replaced by a sign matrix and two value vectors g (inputs) and h (outputs),
  y = ((x * g) @ sign^T) * h.

The ``*_ste`` functions and the ``*Train`` modules are the training forms: the forward pass
applies sign(), the backward pass lets the gradient through unchanged (the straight-through
estimator, Bengio et al., 2013), as the papers train.
"""

import torch
from torch import nn

from kernels._checks import require_finite, require_nonempty, require_tensor
from kernels.bitlinear import fake_quantize_activations
from kernels.quant import dequantize_output, quantize_activations, ternary_matmul

__all__ = [
    "BinaryLinearTrain",
    "OneBitLinearTrain",
    "binarize_weights",
    "binary_linear",
    "fake_binarize_weights",
    "onebit_linear",
    "onebit_linear_ste",
    "sign_ste",
    "xnor_matmul",
    "xnor_matmul_ste",
]


def _require_float(value, name: str) -> torch.Tensor:
    require_tensor(value, name)
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    require_nonempty(value, name)
    require_finite(value, name)
    return value


def _require_bipolar(value, name: str) -> torch.Tensor:
    require_tensor(value, name)
    require_nonempty(value, name)
    bad = (value != 1) & (value != -1)
    if bool(bad.any()):
        index = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"{name} must hold only -1 and +1, found {value[index].item()} at {index}")
    return value


def _sign(x: torch.Tensor) -> torch.Tensor:
    # torch.sign maps 0 to 0; the binary methods map it to -1.
    return torch.where(x > 0, 1.0, -1.0).to(x.dtype)


def binarize_weights(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Binarize latent weights with BitNet's rule: W_b = sign(W - mean W), sign(0) = -1.

    Returns
    -------
    w_b : torch.Tensor
        int8 codes in {-1, +1}, same shape as ``w``.
    beta : torch.Tensor
        float32 scalar mean|W| (of the uncentred weights, as the paper defines it).

    Raises
    ------
    TypeError
        If ``w`` is not a floating-point tensor.
    ValueError
        If ``w`` is empty or holds NaN or infinity.
    """
    _require_float(w, "weights")
    w32 = w.detach().to(torch.float32)
    w_b = torch.where(w32 - w32.mean() > 0, 1, -1).to(torch.int8)
    return w_b, w32.abs().mean()


def binary_linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Apply BitNet's 1-bit linear layer to latent weights: y = (W_b x_q) / s * beta.

    The integer core is `ternary_matmul`, since {-1, +1} codes are ternary codes without zeros.
    """
    w_b, beta = binarize_weights(w)
    x_q, s = quantize_activations(x)
    return dequantize_output(ternary_matmul(x_q, w_b), s, beta)


def xnor_matmul(a_b: torch.Tensor, w_b: torch.Tensor) -> torch.Tensor:
    """Compute the bipolar dot products acc[..., n] = sum_k a_b[..., k] * w_b[n, k] in int32.

    For ±1 vectors this equals 2 * popcount(XNOR(a, w)) - K, what `kernels.fast.xnor_gemm`
    computes on bit-packed words.

    Parameters
    ----------
    a_b : torch.Tensor
        ``[..., K]`` holding only -1 and +1 (any dtype).
    w_b : torch.Tensor
        ``[N, K]`` holding only -1 and +1 (any dtype).

    Raises
    ------
    TypeError
        If an argument is not a tensor.
    ValueError
        If a value is not ±1, a tensor is empty, ``w_b`` is not 2-D or the K dimensions differ.
    """
    _require_bipolar(a_b, "binary activations")
    _require_bipolar(w_b, "binary weights")
    if w_b.dim() != 2:
        raise ValueError(f"binary weights must be 2-D [N, K], got shape {tuple(w_b.shape)}")
    if a_b.shape[-1] != w_b.shape[1]:
        raise ValueError(
            f"binary activations {tuple(a_b.shape)} and binary weights {tuple(w_b.shape)} "
            "disagree: the last dimension of the activations must equal K"
        )
    # float64 sums of ±1 are exact for K < 2**53; the result fits int32 for K < 2**31.
    return torch.matmul(a_b.to(torch.float64), w_b.to(torch.float64).t()).to(torch.int32)


def onebit_linear(
    x: torch.Tensor, sign: torch.Tensor, g: torch.Tensor, h: torch.Tensor
) -> torch.Tensor:
    """Apply a OneBit linear layer: y = ((x * g) @ sign^T) * h, in float32.

    Parameters
    ----------
    x : torch.Tensor
        Floating-point activations ``[..., K]``.
    sign : torch.Tensor
        The sign matrix ``[N, K]``, holding only -1 and +1.
    g : torch.Tensor
        Input value vector ``[K]``.
    h : torch.Tensor
        Output value vector ``[N]``.

    Raises
    ------
    TypeError
        If an argument is not a tensor, or ``x``, ``g`` or ``h`` is not floating point.
    ValueError
        If ``sign`` is not ±1, a value is not finite, or the shapes disagree.
    """
    _require_float(x, "activations")
    _require_bipolar(sign, "sign matrix")
    _require_float(g, "g")
    _require_float(h, "h")
    _check_onebit_shapes(x, sign, g, h)
    x32 = x.to(torch.float32)
    return ((x32 * g.to(torch.float32)) @ sign.to(torch.float32).t()) * h.to(torch.float32)


def _check_onebit_shapes(x, sign, g, h) -> None:
    if sign.dim() != 2:
        raise ValueError(f"sign matrix must be 2-D [N, K], got shape {tuple(sign.shape)}")
    out_features, in_features = sign.shape
    if tuple(g.shape) != (in_features,):
        raise ValueError(f"g must have shape ({in_features},) to match K, got {tuple(g.shape)}")
    if tuple(h.shape) != (out_features,):
        raise ValueError(f"h must have shape ({out_features},) to match N, got {tuple(h.shape)}")
    if x.shape[-1] != in_features:
        raise ValueError(
            f"activations {tuple(x.shape)} and sign matrix {tuple(sign.shape)} disagree: "
            "the last dimension of the activations must equal K"
        )


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """Return sign(x) with sign(0) = -1; the backward pass is the identity."""
    return x + (_sign(x) - x).detach()


def fake_binarize_weights(w: torch.Tensor) -> torch.Tensor:
    """Return W_b * beta (BitNet) with the straight-through estimator."""
    beta = w.abs().mean()
    w_dq = _sign(w - w.mean()) * beta
    return w + (w_dq - w).detach()


def xnor_matmul_ste(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Return sign(a) @ sign(w)^T in floating point, with straight-through gradients to a and w."""
    return torch.matmul(sign_ste(a), sign_ste(w).t())


def onebit_linear_ste(
    x: torch.Tensor, w: torch.Tensor, g: torch.Tensor, h: torch.Tensor
) -> torch.Tensor:
    """Return ((x * g) @ sign(w)^T) * h with the straight-through estimator through sign."""
    return ((x * g) @ sign_ste(w).t()) * h


class BinaryLinearTrain(nn.Linear):
    """BitNet 1-bit linear layer for quantization-aware training; no bias.

    The forward pass uses binarized weights and 8-bit activations, both faked with the
    straight-through estimator, so it computes what `binary_linear` computes.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(
            fake_quantize_activations(x), fake_binarize_weights(self.weight)
        )


class OneBitLinearTrain(nn.Module):
    """OneBit linear layer for training: latent weights ``[N, K]`` and value vectors g, h.

    The sign matrix is sign(weight) with the straight-through estimator. ``from_linear``
    initializes from a float layer with OneBit's Sign-Value-Independent Decomposition: sign(W)
    and a rank-1 approximation of |W| = h g^T by the first singular vectors.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * in_features**-0.5)
        self.g = nn.Parameter(torch.ones(in_features))
        self.h = nn.Parameter(torch.ones(out_features))

    @classmethod
    def from_linear(cls, weight: torch.Tensor) -> "OneBitLinearTrain":
        """Build a layer from float weights ``[N, K]`` by sign-value decomposition."""
        _require_float(weight, "weights")
        if weight.dim() != 2:
            raise ValueError(f"weights must be 2-D [N, K], got shape {tuple(weight.shape)}")
        out_features, in_features = weight.shape
        layer = cls(in_features, out_features)
        magnitude = weight.detach().to(torch.float32).abs()
        u, sigma, v_t = torch.linalg.svd(magnitude, full_matrices=False)
        # |W| >= 0, so the first singular vectors can be taken non-negative (Perron-Frobenius).
        root = sigma[0].sqrt()
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.h.copy_(u[:, 0].abs() * root)
            layer.g.copy_(v_t[0].abs() * root)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return onebit_linear_ste(x, self.weight, self.g, self.h)

    def to_inference(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (sign as int8, g, h) for `onebit_linear`."""
        sign = torch.where(self.weight > 0, 1, -1).to(torch.int8)
        return sign, self.g.detach().clone(), self.h.detach().clone()
