"""BitLinear modules: a training layer with the straight-through estimator, an inference layer.

`BitLinearTrain` keeps latent float weights and fakes the quantization in the forward pass, so the
gradient reaches the latent weights unchanged (the straight-through estimator of Bengio et al.,
2013, as the BitNet papers train). `BitLinear` holds ternary codes and a weight scale and splits
its forward pass into three steps: quantize the activations, the integer core, dequantize. A
device replaces only the integer core (`BitLinear.integer_core`), so every device shares the
floating-point steps and gets the same bits when its integers are the same.
"""

import torch
from torch import nn

from kernels._checks import require_ternary
from kernels.quant import (
    EPS,
    dequantize_output,
    quantize_activations,
    quantize_weights,
    ternary_matmul,
)

__all__ = ["BitLinear", "BitLinearTrain", "fake_quantize_activations", "fake_quantize_weights"]


def fake_quantize_weights(w: torch.Tensor) -> torch.Tensor:
    """Return w_q * gamma; the backward pass is the identity (straight-through estimator)."""
    gamma = w.abs().mean().clamp(min=EPS)
    w_dq = torch.clamp(torch.round(w / gamma), -1, 1) * gamma
    return w + (w_dq - w).detach()


def fake_quantize_activations(x: torch.Tensor) -> torch.Tensor:
    """Return x_q / s per token with the straight-through estimator."""
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=EPS)
    x_dq = torch.clamp(torch.round(x * s), -128, 127) / s
    return x + (x_dq - x).detach()


class BitLinearTrain(nn.Linear):
    """Linear layer trained with quantization-aware training; no bias, as in BitNet b1.58."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(
            fake_quantize_activations(x), fake_quantize_weights(self.weight)
        )

    def to_inference(self) -> "BitLinear":
        """Quantize the latent weights into an inference `BitLinear`."""
        w_q, gamma = quantize_weights(self.weight)
        return BitLinear(w_q, gamma, convention="multiply")


class BitLinear(nn.Module):
    """Inference BitLinear: int8 ternary codes ``[N, K]`` and one per-tensor weight scale.

    Parameters
    ----------
    weight : torch.Tensor
        Ternary codes ``[out_features, in_features]`` (converted to int8).
    weight_scale : torch.Tensor or float
        The stored scale: gamma for ``convention="multiply"``, 1 / gamma for ``"divide"``.
    convention : {"multiply", "divide"}
        How the stored scale applies to the accumulators (see `kernels.dequantize_output`).
    name : str
        The layer's name inside its model, used by devices in their per-layer statistics.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        weight_scale: torch.Tensor | float,
        convention: str = "multiply",
        name: str = "",
    ) -> None:
        super().__init__()
        if convention not in ("multiply", "divide"):
            raise ValueError(f"convention must be 'multiply' or 'divide', got {convention!r}")
        if weight.dim() != 2:
            raise ValueError(
                f"BitLinear weight must be 2-D [N, K], got shape {tuple(weight.shape)}"
            )
        require_ternary(weight, f"BitLinear {name} weight" if name else "BitLinear weight")
        scale = torch.as_tensor(weight_scale, dtype=torch.float32).reshape(())
        if not bool(torch.isfinite(scale)) or float(scale) <= 0.0:
            raise ValueError(f"weight_scale must be positive and finite, got {float(scale)}")
        self.register_buffer("weight", weight.to(torch.int8).contiguous())
        self.register_buffer("weight_scale", scale)
        self.convention = convention
        self.name = name

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def integer_core(self, x_q: torch.Tensor) -> torch.Tensor:
        """Compute the int32 accumulators ``[..., N]`` of int8 codes ``[..., K]``."""
        return ternary_matmul(x_q, self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_q, s = quantize_activations(x)
        acc = self.integer_core(x_q)
        return dequantize_output(acc, s, self.weight_scale, self.convention).to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"convention={self.convention!r}"
        )
