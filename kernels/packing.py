"""Packed ternary and binary weight formats, each with an exact inverse.

Every format stores a weight matrix ``[M, K]`` (M output rows, K inputs). Where the shape is not a
multiple of the format's group, the packed tensor is padded with zero bits, and `unpack_weights`
and the kernels in `kernels.fast` never read the padding, so padding cannot change a result.

Formats, with the packed shape and dtype for weights [M, K]:

- ``hf`` (ceil(M/4), K) uint8: the Hugging Face BitNet layout. Code = w + 1; with
  R = ceil(M/4), row p + iR is stored in bits 2i..2i+1 of packed row p (low pair first).
- ``2bit`` (M, ceil(K/4)) uint8: row-major, code = w + 1, weight k in bits 2(k % 4)..2(k % 4)+1
  of byte k // 4.
- ``i2_s`` (M, 32 ceil(K/128)) uint8: bitnet.cpp I2_S with the x86 block of 128 weights in 32
  bytes. Code = w + 1; byte j of block b holds weight 128b + 32g + j in bits 6-2g..7-2g, so
  weights j, j+32, j+64 and j+96 go from the high bit pair down.
- ``base3`` (M, ceil(K/5)) uint8: five trits per byte, byte j = sum_i (w[5j + i] + 1) * 3**i.
- ``binary`` (M, ceil(K/64)) uint64: +1 is bit 1 and -1 is bit 0; weight k is bit k % 64 of
  word k // 64.

The 2-bit code of every ternary format is code = w + 1: 0 is -1, 1 is 0, 2 is +1, and 3 is
invalid. Hugging Face BitNet checkpoints use this code. bitnet.cpp's ``quantize_i2_s`` (in its
public source) uses it too: it writes 0, 1 or 2 per weight and shifts weight 32g + j of each
128-weight block into byte j at bit 6 - 2g. bitnet.cpp packs the whole tensor as one flat run
of blocks and stores one float scale per tensor beside the codes. Here each row is padded to
whole blocks and the scale is kept apart, so for K a multiple of 128 (every BitNet model) the
bytes of each row are exactly bitnet.cpp's. The ARM build of bitnet.cpp uses blocks of 64,
which this format does not cover.
"""

import numpy as np
import torch

from kernels._checks import require_ternary_array

__all__ = [
    "BINARY_FORMATS",
    "FORMATS",
    "TERNARY_FORMATS",
    "pack_weights",
    "packed_dtype",
    "packed_shape",
    "unpack_weights",
]

TERNARY_FORMATS = ("hf", "2bit", "i2_s", "base3")
"""Formats that hold ternary weights {-1, 0, 1}."""

BINARY_FORMATS = ("binary",)
"""Formats that hold binary weights {-1, +1}."""

FORMATS = TERNARY_FORMATS + BINARY_FORMATS
"""Names of the implemented formats."""

I2S_BLOCK = 128
"""Weights per bitnet.cpp I2_S block (x86); the block takes 32 bytes."""

BASE3_TRITS = 5
"""Trits per base-3 byte: 3**5 = 243 <= 256."""

BINARY_WORD_BITS = 64

_POWERS_OF_3 = np.array([3**i for i in range(BASE3_TRITS)], dtype=np.int64)


def _check_format(fmt) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown weight format {fmt!r}; known formats: {', '.join(FORMATS)}")
    return fmt


def _check_shape(shape) -> tuple[int, int]:
    if (
        not isinstance(shape, (tuple, list, torch.Size))
        or len(shape) != 2
        or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) for d in shape)
    ):
        raise ValueError(f"weight shape must be two ints (M, K), got {shape!r}")
    rows, cols = (int(d) for d in shape)
    if rows <= 0 or cols <= 0:
        raise ValueError(f"weight shape must be positive, got {(rows, cols)}")
    return rows, cols


def packed_shape(shape: tuple[int, int], fmt: str) -> tuple[int, int]:
    """Return the shape of the packed tensor that holds weights of ``shape`` in ``fmt``.

    Raises
    ------
    ValueError
        If ``shape`` is not two positive ints or ``fmt`` is unknown.
    """
    _check_format(fmt)
    rows, cols = _check_shape(shape)
    if fmt == "hf":
        return (-(-rows // 4), cols)
    if fmt == "2bit":
        return (rows, -(-cols // 4))
    if fmt == "i2_s":
        return (rows, 32 * -(-cols // I2S_BLOCK))
    if fmt == "base3":
        return (rows, -(-cols // BASE3_TRITS))
    return (rows, -(-cols // BINARY_WORD_BITS))


def packed_dtype(fmt: str) -> np.dtype:
    """Return the numpy dtype of packed ``fmt`` tensors: uint64 for ``binary``, else uint8."""
    return np.dtype(np.uint64) if _check_format(fmt) == "binary" else np.dtype(np.uint8)


def _as_array(value, name: str) -> tuple[np.ndarray, bool]:
    """Return ``value`` as a numpy array and whether it came as a torch tensor."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy(), True
    if isinstance(value, np.ndarray):
        return value, False
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


def _like(array: np.ndarray, as_torch: bool):
    return torch.from_numpy(np.ascontiguousarray(array)) if as_torch else array


def pack_weights(w, fmt: str):
    """Pack weights ``[M, K]`` into the format ``fmt`` (see the module docstring for layouts).

    Parameters
    ----------
    w : torch.Tensor or numpy.ndarray
        Weights of any integer or float dtype holding only -1, 0 and 1 (ternary formats) or only
        -1 and 1 (``binary``).
    fmt : str
        One of `FORMATS`.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        The packed weights, of `packed_shape` and `packed_dtype`, the same kind as ``w``.
        Padding bits are zero.

    Raises
    ------
    TypeError
        If ``w`` is neither a tensor nor an array.
    ValueError
        If ``fmt`` is unknown, or ``w`` is not 2-D, is empty or holds a value the format cannot
        store.
    """
    array, as_torch = _as_array(w, "weights")
    _check_format(fmt)
    if array.ndim != 2:
        raise ValueError(f"weights to pack must be 2-D [M, K], got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"weights must not be empty, got shape {array.shape}")
    if fmt == "binary":
        _require_binary(array, "weights")
    else:
        require_ternary_array(array, "weights")
    w_int = array.astype(np.int64)
    packers = {
        "hf": _pack_hf,
        "2bit": _pack_2bit,
        "i2_s": _pack_i2s,
        "base3": _pack_base3,
        "binary": _pack_binary,
    }
    return _like(packers[fmt](w_int), as_torch)


def unpack_weights(packed, fmt: str, shape: tuple[int, int]):
    """Unpack ``packed`` (written by `pack_weights` or a checkpoint) to int8 weights of ``shape``.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        int8 weights ``shape``, the same kind as ``packed``. Padding is ignored whatever it holds.

    Raises
    ------
    TypeError
        If ``packed`` is neither a tensor nor an array, or has the wrong dtype for ``fmt``.
    ValueError
        If ``fmt`` or ``shape`` is invalid, ``packed`` does not have the packed shape of
        ``shape``, or a weight position holds an invalid code (2-bit code 3, base-3 byte > 242).
    """
    array, as_torch = _as_array(packed, "packed weights")
    expected = packed_shape(shape, fmt)
    dtype = packed_dtype(fmt)
    if array.dtype != dtype:
        raise TypeError(
            f"packed weights in format {fmt!r} must have dtype {dtype}, got {array.dtype}"
        )
    if array.shape != expected:
        raise ValueError(
            f"packed weights of shape {array.shape} cannot hold {tuple(shape)} weights in "
            f"format {fmt!r}, which needs shape {expected}"
        )
    rows, cols = (int(d) for d in shape)
    if fmt == "base3":
        return _like(_unpack_base3(array, rows, cols), as_torch)
    if fmt == "binary":
        return _like(_unpack_binary(array, rows, cols), as_torch)
    unpackers = {"hf": _unpack_hf_codes, "2bit": _unpack_2bit_codes, "i2_s": _unpack_i2s_codes}
    codes = unpackers[fmt](array, rows, cols)
    invalid = codes == 3
    if invalid.any():
        index = tuple(int(i) for i in np.argwhere(invalid)[0])
        raise ValueError(
            f"packed weights hold the invalid 2-bit code 3 (value 2) for weight {index}; "
            "valid codes are 0, 1 and 2 (values -1, 0 and 1)"
        )
    return _like(codes.astype(np.int8) - 1, as_torch)


def _require_binary(array: np.ndarray, name: str) -> None:
    bad = (array != 1) & (array != -1)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} in format 'binary' must hold only -1 and +1, found {array[index]} at index "
            f"{index}; binary weights have no zero"
        )


def _pack_hf(w: np.ndarray) -> np.ndarray:
    rows, cols = w.shape
    quarter_rows = -(-rows // 4)
    padded = np.zeros((4 * quarter_rows, cols), dtype=np.uint8)
    padded[:rows] = w + 1
    # [4 * R, K] -> [4, R, K]: quarter i holds rows i * R .. i * R + R - 1, stored in bit pair i.
    quarters = padded.reshape(4, quarter_rows, cols)
    packed = np.zeros((quarter_rows, cols), dtype=np.uint8)
    for i in range(4):
        packed |= quarters[i] << (2 * i)
    return packed


def _unpack_hf_codes(packed: np.ndarray, rows: int, cols: int) -> np.ndarray:
    quarters = np.stack([(packed >> (2 * i)) & 3 for i in range(4)])
    # [4, R, K] -> [4 * R, K], then drop the padding rows past M.
    return quarters.reshape(-1, cols)[:rows]


def _pack_2bit(w: np.ndarray) -> np.ndarray:
    rows, cols = w.shape
    padded = np.zeros((rows, 4 * -(-cols // 4)), dtype=np.uint8)
    padded[:, :cols] = w + 1
    # [M, 4 * B] -> [M, B, 4]: weight 4j + i goes to bit pair i of byte j.
    groups = padded.reshape(rows, -1, 4)
    packed = np.zeros(groups.shape[:2], dtype=np.uint8)
    for i in range(4):
        packed |= groups[:, :, i] << (2 * i)
    return packed


def _unpack_2bit_codes(packed: np.ndarray, rows: int, cols: int) -> np.ndarray:
    # [M, B] -> [M, B, 4] -> [M, 4 * B], then drop the padding columns past K.
    codes = np.stack([(packed >> (2 * i)) & 3 for i in range(4)], axis=-1)
    return codes.reshape(rows, -1)[:, :cols]


def _pack_i2s(w: np.ndarray) -> np.ndarray:
    rows, cols = w.shape
    blocks = -(-cols // I2S_BLOCK)
    padded = np.zeros((rows, blocks * I2S_BLOCK), dtype=np.uint8)
    padded[:, :cols] = w + 1
    # [M, 128 * blocks] -> [M, blocks, 4, 32]: group g of a block goes to bits 6 - 2g of byte j.
    groups = padded.reshape(rows, blocks, 4, 32)
    packed = np.zeros((rows, blocks, 32), dtype=np.uint8)
    for g in range(4):
        packed |= groups[:, :, g, :] << (6 - 2 * g)
    return packed.reshape(rows, blocks * 32)


def _unpack_i2s_codes(packed: np.ndarray, rows: int, cols: int) -> np.ndarray:
    blocks = packed.reshape(rows, -1, 32)
    # [M, blocks, 32] -> [M, blocks, 4, 32] -> [M, 128 * blocks], then drop the padding.
    codes = np.stack([(blocks >> (6 - 2 * g)) & 3 for g in range(4)], axis=2)
    return codes.reshape(rows, -1)[:, :cols]


def _pack_base3(w: np.ndarray) -> np.ndarray:
    rows, cols = w.shape
    groups = -(-cols // BASE3_TRITS)
    trits = np.zeros((rows, groups * BASE3_TRITS), dtype=np.int64)
    trits[:, :cols] = w + 1
    # Padding trits are 0, so the bytes past K hold only the trits of real weights.
    values = trits.reshape(rows, groups, BASE3_TRITS) @ _POWERS_OF_3
    return values.astype(np.uint8)


def _unpack_base3(packed: np.ndarray, rows: int, cols: int) -> np.ndarray:
    invalid = packed >= 3**BASE3_TRITS
    if invalid.any():
        index = tuple(int(i) for i in np.argwhere(invalid)[0])
        raise ValueError(
            f"packed weights hold the invalid base-3 byte {packed[index]} at {index}; "
            f"five trits give bytes 0 to {3**BASE3_TRITS - 1}"
        )
    digits = (packed[:, :, None].astype(np.int64) // _POWERS_OF_3) % 3
    return (digits.reshape(rows, -1)[:, :cols] - 1).astype(np.int8)


def _pack_binary(w: np.ndarray) -> np.ndarray:
    rows, cols = w.shape
    words = -(-cols // BINARY_WORD_BITS)
    bits = np.zeros((rows, words * BINARY_WORD_BITS), dtype=np.uint8)
    bits[:, :cols] = w > 0
    # Bytes of bits, least significant bit first, then eight bytes per little-endian word.
    packed_bytes = np.packbits(bits, axis=1, bitorder="little")
    return packed_bytes.view("<u8").astype(np.uint64)


def _unpack_binary(packed: np.ndarray, rows: int, cols: int) -> np.ndarray:
    packed_bytes = np.ascontiguousarray(packed.astype("<u8")).view(np.uint8)
    bits = np.unpackbits(packed_bytes, axis=1, bitorder="little")[:, :cols]
    return (2 * bits.astype(np.int8) - 1).astype(np.int8)
