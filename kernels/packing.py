"""Packed ternary and binary weight formats, each with an exact inverse.

Only the Hugging Face BitNet layout (``"hf"``) is implemented so far; `pack_weights` and
`unpack_weights` dispatch on the format name so that further formats slot in beside it.
"""

import torch

from kernels._checks import require_dtype, require_nonempty, require_tensor, require_ternary

__all__ = ["FORMATS", "pack_weights", "packed_shape", "unpack_weights"]

FORMATS = ("hf",)
"""Names of the implemented formats."""

_HF_CODES_PER_BYTE = 4


def packed_shape(shape: tuple[int, int], fmt: str) -> tuple[int, ...]:
    """Return the shape of the packed tensor that holds weights of ``shape`` in ``fmt``."""
    rows, cols = _check_shape(shape)
    if fmt == "hf":
        return (-(-rows // _HF_CODES_PER_BYTE), cols)
    raise ValueError(f"unknown weight format {fmt!r}; known formats: {', '.join(FORMATS)}")


def pack_weights(w: torch.Tensor, fmt: str) -> torch.Tensor:
    """Pack ternary weights ``[M, K]`` into the format ``fmt``.

    ``"hf"`` is the layout of Hugging Face BitNet checkpoints (``quant_method: bitnet``): uint8,
    four 2-bit codes per byte with code = w + 1, packed along the output dimension. With
    R = ceil(M / 4), packed row p holds rows p, R + p, 2R + p and 3R + p in bit pairs 0-1, 2-3, 4-5
    and 6-7, least significant first. Rows past M are padded with code 0, as `transformers` does;
    `unpack_weights` drops them, so padding never reaches a result.

    Raises
    ------
    TypeError
        If ``w`` is not a tensor.
    ValueError
        If ``w`` is not 2-D, is empty or holds values other than -1, 0 and 1, or ``fmt`` is unknown.
    """
    require_tensor(w, "weights")
    if fmt not in FORMATS:
        raise ValueError(f"unknown weight format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if w.dim() != 2:
        raise ValueError(f"weights to pack must be 2-D [M, K], got shape {tuple(w.shape)}")
    require_nonempty(w, "weights")
    require_ternary(w, "weights")
    rows, cols = w.shape
    packed_rows = packed_shape((rows, cols), fmt)[0]
    codes = (w.to(torch.int16) + 1).to(torch.uint8)
    padded = torch.zeros((packed_rows * _HF_CODES_PER_BYTE, cols), dtype=torch.uint8)
    padded[:rows] = codes
    # [4 * R, K] -> [4, R, K]: quarter i holds rows i * R .. i * R + R - 1.
    quarters = padded.reshape(_HF_CODES_PER_BYTE, packed_rows, cols)
    packed = torch.zeros((packed_rows, cols), dtype=torch.uint8)
    for i in range(_HF_CODES_PER_BYTE):
        packed |= quarters[i] << (2 * i)
    return packed


def unpack_weights(packed: torch.Tensor, fmt: str, shape: tuple[int, int]) -> torch.Tensor:
    """Unpack ``packed`` (written by `pack_weights` or a checkpoint) to int8 ternary ``shape``.

    Raises
    ------
    TypeError
        If ``packed`` is not a uint8 tensor.
    ValueError
        If ``fmt`` is unknown, ``packed`` does not have the packed shape of ``shape``, or a code
        decodes to a value outside {-1, 0, 1} (code 3 in ``"hf"``).
    """
    require_tensor(packed, "packed weights")
    expected = packed_shape(shape, fmt)
    require_dtype(packed, "packed weights", (torch.uint8,))
    if tuple(packed.shape) != expected:
        raise ValueError(
            f"packed weights of shape {tuple(packed.shape)} cannot hold {tuple(shape)} weights in "
            f"format {fmt!r}, which needs shape {expected}"
        )
    rows, cols = shape
    quarters = torch.stack([(packed >> (2 * i)) & 3 for i in range(_HF_CODES_PER_BYTE)])
    # [4, R, K] -> [4 * R, K], then drop the padding rows past M.
    codes = quarters.reshape(-1, cols)[:rows]
    if bool((codes == 3).any()):
        index = tuple(int(i) for i in torch.nonzero(codes == 3)[0])
        raise ValueError(
            f"packed weights hold the invalid 2-bit code 3 (value 2) for weight {index}; "
            "valid codes are 0, 1 and 2 (values -1, 0 and 1)"
        )
    return codes.to(torch.int8) - 1


def _check_shape(shape) -> tuple[int, int]:
    if len(shape) != 2 or any(isinstance(d, bool) or not isinstance(d, int) for d in shape):
        raise ValueError(f"weight shape must be two ints (M, K), got {shape!r}")
    rows, cols = shape
    if rows <= 0 or cols <= 0:
        raise ValueError(f"weight shape must be positive, got {tuple(shape)}")
    return rows, cols
