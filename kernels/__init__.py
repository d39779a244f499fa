"""kernels: the bit-exact arithmetic of 1-bit and ternary LLM layers.

This package is the reference that the simulator, the RTL and every device are checked against.
"""

from kernels.binary import (
    BinaryLinearTrain,
    OneBitLinearTrain,
    binarize_weights,
    binary_linear,
    fake_binarize_weights,
    onebit_linear,
    onebit_linear_ste,
    sign_ste,
    xnor_matmul,
    xnor_matmul_ste,
)
from kernels.bitlinear import (
    BitLinear,
    BitLinearTrain,
    fake_quantize_activations,
    fake_quantize_weights,
)
from kernels.fast import ternary_gemm, xnor_gemm
from kernels.packing import (
    BINARY_FORMATS,
    FORMATS,
    TERNARY_FORMATS,
    pack_weights,
    packed_dtype,
    packed_shape,
    unpack_weights,
)
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
    "BINARY_FORMATS",
    "EPS",
    "FORMATS",
    "INT32_SAFE_K",
    "TERNARY_FORMATS",
    "BinaryLinearTrain",
    "BitLinear",
    "BitLinearTrain",
    "OneBitLinearTrain",
    "binarize_weights",
    "binary_linear",
    "bitlinear",
    "dequantize_output",
    "fake_binarize_weights",
    "fake_quantize_activations",
    "fake_quantize_weights",
    "onebit_linear",
    "onebit_linear_ste",
    "pack_weights",
    "packed_dtype",
    "packed_shape",
    "quantize_activations",
    "quantize_weights",
    "sign_ste",
    "ternary_gemm",
    "ternary_matmul",
    "unpack_weights",
    "xnor_gemm",
    "xnor_matmul",
    "xnor_matmul_ste",
]
