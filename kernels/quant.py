"""Bit-exact PyTorch reference of BitNet b1.58 quantization and the ternary integer core.

The formulas follow the BitNet b1.58 paper ("The Era of 1-bit LLMs", Ma et al., 2024, section 2)
and the public reference code that Hugging Face `transformers` ships for `BitNetForCausalLM`:

- weights, per tensor: gamma = mean|W|, W_q = clamp(round(W / max(gamma, 1e-5)), -1, 1);
- activations, per token: s = 127 / max(max|x|, 1e-5), x_q = clamp(round(x * s), -128, 127);
- integer core: acc = sum_k W_q[n, k] * x_q[k] in int32;
- output: y = acc / s * gamma.

`torch.round` rounds half to even, as the public implementations do. All scale arithmetic is in
float32 whatever the input dtype, so every device that shares these functions gets the same bits.
"""

import torch

from kernels._checks import (
    require_dtype,
    require_finite,
    require_nonempty,
    require_tensor,
    require_ternary,
)

__all__ = [
    "EPS",
    "INT32_SAFE_K",
    "bitlinear",
    "dequantize_output",
    "quantize_activations",
    "quantize_weights",
    "ternary_matmul",
]

EPS = 1e-5
"""Floor of the weight and activation scale denominators, as in the public implementations."""

INT32_SAFE_K = (2**31 - 1) // 128
"""Largest K for which a ternary dot product of int8 activations cannot overflow int32.

The worst case is K * |-128| = 128 K, so K <= 16,777,215 is always safe.
"""


def quantize_weights(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize latent weights to ternary codes with the BitNet b1.58 absmean rule.

    Parameters
    ----------
    w : torch.Tensor
        Floating-point weights of any shape, usually ``[out_features, in_features]``.

    Returns
    -------
    w_q : torch.Tensor
        int8 codes in {-1, 0, 1}, same shape as ``w``.
    gamma : torch.Tensor
        float32 scalar, mean(|w|) over the whole tensor.

    Raises
    ------
    TypeError
        If ``w`` is not a floating-point tensor.
    ValueError
        If ``w`` is empty or holds NaN or infinity.
    """
    require_tensor(w, "weights")
    if not w.is_floating_point():
        raise TypeError(f"weights must be a floating-point tensor, got dtype {w.dtype}")
    require_nonempty(w, "weights")
    require_finite(w, "weights")
    w32 = w.detach().to(torch.float32)
    gamma = w32.abs().mean()
    w_q = torch.clamp(torch.round(w32 / gamma.clamp(min=EPS)), -1, 1).to(torch.int8)
    return w_q, gamma


def quantize_activations(x: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize activations per token (over the last dimension) with the absmax rule.

    Parameters
    ----------
    x : torch.Tensor
        Floating-point activations ``[..., K]``.
    bits : int
        Activation width, 2 to 8. BitNet b1.58 uses 8: Q = 127, codes in [-128, 127].

    Returns
    -------
    x_q : torch.Tensor
        int8 codes in [-2**(bits-1), 2**(bits-1) - 1], same shape as ``x``.
    s : torch.Tensor
        float32 scales ``[..., 1]``: Q / max(max|x|, 1e-5). A row of zeros gets s = Q / 1e-5 and
        codes of zero, so its output is zero, never NaN.

    Raises
    ------
    TypeError
        If ``x`` is not floating point or ``bits`` is not an int.
    ValueError
        If ``x`` is empty or holds NaN or infinity, or ``bits`` is outside 2..8.
    """
    require_tensor(x, "activations")
    if not x.is_floating_point():
        raise TypeError(f"activations must be a floating-point tensor, got dtype {x.dtype}")
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"bits must be an int, got {type(bits).__name__}")
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be between 2 and 8, got {bits}")
    require_nonempty(x, "activations")
    require_finite(x, "activations")
    q_max = 2 ** (bits - 1) - 1
    x32 = x.detach().to(torch.float32)
    if not bool(torch.isfinite(x32).all()):
        bad = x[~torch.isfinite(x32)].flatten()[0].item()
        raise ValueError(
            f"activations must lie within the float32 range (|x| <= 3.4028235e38), found {bad}"
        )
    s = q_max / x32.abs().amax(dim=-1, keepdim=True).clamp(min=EPS)
    x_q = torch.clamp(torch.round(x32 * s), -q_max - 1, q_max).to(torch.int8)
    return x_q, s


def ternary_matmul(x_q: torch.Tensor, w_q: torch.Tensor) -> torch.Tensor:
    """Compute the exact integer core acc[..., n] = sum_k w_q[n, k] * x_q[..., k] in int32.

    Parameters
    ----------
    x_q : torch.Tensor
        int8 activation codes ``[..., K]``.
    w_q : torch.Tensor
        int8 ternary weight codes ``[N, K]``.

    Returns
    -------
    torch.Tensor
        int32 accumulators ``[..., N]``.

    Notes
    -----
    The products are summed in float64, which is exact here because every partial sum is an
    integer of magnitude at most 128 K < 2**53. K is limited to ``INT32_SAFE_K`` so the result
    always fits int32.
    """
    require_tensor(x_q, "activation codes")
    require_tensor(w_q, "weight codes")
    require_dtype(x_q, "activation codes", (torch.int8,))
    require_dtype(w_q, "weight codes", (torch.int8,))
    if w_q.dim() != 2:
        raise ValueError(f"weight codes must be 2-D [N, K], got shape {tuple(w_q.shape)}")
    if x_q.dim() < 1 or x_q.shape[-1] != w_q.shape[1]:
        raise ValueError(
            f"activation codes {tuple(x_q.shape)} and weight codes {tuple(w_q.shape)} disagree: "
            "the last dimension of the activations must equal K, the second of the weights"
        )
    if w_q.shape[1] > INT32_SAFE_K:
        raise ValueError(
            f"K = {w_q.shape[1]} could overflow an int32 accumulator; the maximum is {INT32_SAFE_K}"
        )
    require_ternary(w_q, "weight codes")
    acc = torch.matmul(x_q.to(torch.float64), w_q.to(torch.float64).t())
    return acc.to(torch.int32)


def dequantize_output(
    acc: torch.Tensor, s: torch.Tensor, weight_scale: torch.Tensor, convention: str = "multiply"
) -> torch.Tensor:
    """Scale int32 accumulators back to real values in float32.

    ``convention="multiply"`` computes acc / s * weight_scale (Hugging Face ``autobitlinear``, the
    stored scale is gamma). ``convention="divide"`` computes acc / (s * weight_scale) (Hugging Face
    ``bitlinear``, the stored scale is 1 / gamma).
    """
    scale = weight_scale.to(torch.float32)
    if convention == "multiply":
        return acc.to(torch.float32) / s * scale
    if convention == "divide":
        return acc.to(torch.float32) / (s * scale)
    raise ValueError(f"convention must be 'multiply' or 'divide', got {convention!r}")


def bitlinear(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    weight_scale: torch.Tensor | float | None = None,
    convention: str = "multiply",
) -> torch.Tensor:
    """Apply a BitNet b1.58 linear layer: y = acc / s * gamma, all integer work exact.

    Parameters
    ----------
    x : torch.Tensor
        Floating-point activations ``[..., K]``.
    w : torch.Tensor
        Without ``weight_scale``: latent floating-point weights ``[N, K]``, quantized here with
        `quantize_weights`. With ``weight_scale``: ternary codes ``[N, K]`` (any integer or float
        dtype holding only -1, 0 and 1).
    weight_scale : torch.Tensor, float or None
        The stored per-tensor weight scale of a quantized checkpoint.
    convention : {"multiply", "divide"}
        How ``weight_scale`` applies: multiplied (it is gamma) or divided (it is 1 / gamma).

    Returns
    -------
    torch.Tensor
        float32 outputs ``[..., N]``.

    Raises
    ------
    ValueError
        If ``w`` is not ternary when a scale is given, the scale is not positive and finite,
        the convention is unknown, or the shapes disagree.
    """
    if convention not in ("multiply", "divide"):
        raise ValueError(f"convention must be 'multiply' or 'divide', got {convention!r}")
    require_tensor(w, "weights")
    if weight_scale is None:
        w_q, scale = quantize_weights(w)
        convention = "multiply"
    else:
        require_nonempty(w, "weights")
        require_ternary(w, "weights")
        w_q = w.to(torch.int8)
        scale = torch.as_tensor(weight_scale, dtype=torch.float32).reshape(())
        if not bool(torch.isfinite(scale)) or float(scale) <= 0.0:
            raise ValueError(f"weight_scale must be positive and finite, got {float(scale)}")
    x_q, s = quantize_activations(x)
    acc = ternary_matmul(x_q, w_q)
    return dequantize_output(acc, s, scale, convention)
