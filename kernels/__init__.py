"""kernels: the bit-exact arithmetic of 1-bit and ternary LLM layers.

This package is the reference that the simulator, the RTL and every device are checked against.
"""

from kernels.bitlinear import (
    BitLinear,
    BitLinearTrain,
    fake_quantize_activations,
    fake_quantize_weights,
)
from kernels.packing import FORMATS, pack_weights, packed_shape, unpack_weights
from kernels.quant import (
    EPS,
    INT32_SAFE_K,
    bitlinear,
    dequantize_output,
    quantize_activations,
    quantize_weights,
    ternary_matmul,
)

__all__ = [
    "EPS",
    "FORMATS",
    "INT32_SAFE_K",
    "BitLinear",
    "BitLinearTrain",
    "bitlinear",
    "dequantize_output",
    "fake_quantize_activations",
    "fake_quantize_weights",
    "pack_weights",
    "packed_shape",
    "quantize_activations",
    "quantize_weights",
    "ternary_matmul",
    "unpack_weights",
]
