"""The cycle-approximate engine: an ``mvu`` layer stepped fold by fold in Numba.

A layer is prepared once (`prepare_layer`: checked, cut into fold tiles, held by the returned
`LayerProgram`) and then run any number of times (`run_layer`). Each run computes the exact int32
accumulators and, for streamed weights, steps the double-buffered weight schedule that
`sim.timing` describes (DRAM bursts, latency and buffer slots) fold by fold;
`sim.evaluate_layer`'s closed form is checked against it.

Each datapath computes the dot products the way its lanes do, and all three give the exact
integer result:

- ``ternary``: each lane adds, subtracts or skips its activation (`kernels.ternary_matmul`).
- ``xnor``: weights and activations are ±1, held as bits (1 for +1); a fold's partial sum is
  2 * popcount(XNOR(a, w)) - SIMD, the bipolar dot product (`kernels.xnor_matmul`).
- ``lut``: for each vector and each group of g activations, a table of the 3**g values
  sum_i d_i x_i (d_i in {-1, 0, 1}) is built; each group of g weights is stored as its table
  index sum_i (w_i + 1) 3**i and a lane adds the entry it selects. This is the table-lookup
  scheme of T-MAC and of bitnet.cpp's TL1 (g = 2) and TL2 (g = 3) kernels, and the result
  equals `kernels.ternary_matmul`.

Warm-up: the first run in a fresh environment compiles the two kernels (about a second or two);
the compiled code is cached on disk next to this file (see `sim.config`), so later processes
only load it. `warm_up` triggers the compilation ahead of time.
"""

from dataclasses import dataclass

import numpy as np
from numba import njit

from sim.config import JIT_OPTIONS
from sim.design import Design
from sim.timing import (
    WEIGHT_BUFFERS,
    LayerRun,
    lane_operations,
    make_run,
    schedule_cycles,
    stream_schedule,
)

__all__ = ["LayerProgram", "prepare_layer", "run_layer", "warm_up"]


@njit(**JIT_OPTIONS)
def _mvu_accumulate(tiles, x):
    """Return acc[t, n] = sum_k w[n, k] x[t, k] as int32, computed fold by fold.

    ``tiles`` is ``[N / PE, K / SIMD, PE, SIMD]`` int8 and ``x`` is ``[T, K]`` int8. The loop
    order is the hardware's: folds outer, the T vectors of the run inner.
    """
    row_groups, col_groups, pe, simd = tiles.shape
    tokens = x.shape[0]
    acc = np.zeros((tokens, row_groups * pe), dtype=np.int32)
    for i in range(row_groups):
        for j in range(col_groups):
            base = j * simd
            for t in range(tokens):
                for p in range(pe):
                    # The products are in {-x, 0, x}; a lane adds, subtracts or skips. The
                    # caller has checked that the sum fits the accumulator, so int32 is exact.
                    partial = np.int32(0)
                    for lane in range(simd):
                        partial += np.int32(tiles[i, j, p, lane]) * np.int32(x[t, base + lane])
                    acc[t, i * pe + p] += partial
    return acc


@njit(**JIT_OPTIONS)
def _xnor_accumulate(bits, x_bits):
    """Return acc[t, n] = sum_k w[n, k] a[t, k] for ±1 operands held as 0/1 bits, as int32.

    ``bits`` is ``[N / PE, K / SIMD, PE, SIMD]`` uint8 and ``x_bits`` is ``[T, K]`` uint8, 1 for
    +1 and 0 for -1. Each fold adds 2 * popcount(XNOR) - SIMD per row.
    """
    row_groups, col_groups, pe, simd = bits.shape
    tokens = x_bits.shape[0]
    acc = np.zeros((tokens, row_groups * pe), dtype=np.int32)
    for i in range(row_groups):
        for j in range(col_groups):
            base = j * simd
            for t in range(tokens):
                for p in range(pe):
                    agree = np.int32(0)
                    for lane in range(simd):
                        agree += np.int32(1 ^ bits[i, j, p, lane] ^ x_bits[t, base + lane])
                    acc[t, i * pe + p] += 2 * agree - simd
    return acc


@njit(**JIT_OPTIONS)
def _lut_accumulate(codes, x, digits):
    """Return acc[t, n] = sum_k w[n, k] x[t, k] as int32 by table lookup, fold by fold.

    ``codes`` is ``[N / PE, K / SIMD, PE, SIMD / g]`` uint8 table indices, ``x`` is ``[T, K]``
    int8 and ``digits`` is ``[3**g, g]`` int8: row c holds the weights d_i in {-1, 0, 1} that
    index c encodes. Per fold and vector the SIMD / g tables are built once and shared by the
    PE rows, as the hardware shares them.
    """
    row_groups, col_groups, pe, groups = codes.shape
    entries, g = digits.shape
    tokens = x.shape[0]
    acc = np.zeros((tokens, row_groups * pe), dtype=np.int32)
    table = np.zeros((groups, entries), dtype=np.int32)
    for i in range(row_groups):
        for j in range(col_groups):
            base = j * groups * g
            for t in range(tokens):
                for q in range(groups):
                    for c in range(entries):
                        value = np.int32(0)
                        for d in range(g):
                            value += np.int32(digits[c, d]) * np.int32(x[t, base + q * g + d])
                        table[q, c] = value
                for p in range(pe):
                    partial = np.int32(0)
                    for q in range(groups):
                        partial += table[q, codes[i, j, p, q]]
                    acc[t, i * pe + p] += partial
    return acc


@dataclass(frozen=True, eq=False)
class LayerProgram:
    """A layer prepared for the engine: the design, the weight tiles and the fixed timing.

    Attributes
    ----------
    design : Design
        The accelerator the layer runs on.
    name : str
        The layer's name, copied into each `LayerRun`.
    n, k : int
        Output rows and inputs.
    tiles : numpy.ndarray
        int8 ``[N / PE, K / SIMD, PE, SIMD]``: tile (i, j) holds rows i PE .. (i+1) PE - 1 and
        inputs j SIMD .. (j+1) SIMD - 1, contiguous in the order the engine reads them.
    nonzero : int
        Lane operations per vector that switch under ``zero_skip``: the nonzero weights
        (``ternary``), the groups of g weights with a nonzero weight (``lut``), or all N K
        weights (``xnor``, which has no zeros).
    """

    design: Design
    name: str
    n: int
    k: int
    tiles: np.ndarray
    nonzero: int
    _operands: np.ndarray
    _act_min: int
    _act_max: int


def prepare_layer(design: Design, w_q: np.ndarray, name: str = "") -> LayerProgram:
    """Check an N x K layer of weights against ``design`` and cut it into fold tiles.

    Done once per layer, like uploading the weights to the board; `run_layer` then reuses the
    program without checking or copying the weights again.

    Parameters
    ----------
    design : Design
        The accelerator.
    w_q : numpy.ndarray
        int8 codes ``[N, K]``: ternary codes in {-1, 0, 1} for the ``ternary`` and ``lut``
        datapaths, binary codes in {-1, +1} for ``xnor``.
    name : str
        The layer's name, for the per-layer reports.

    Returns
    -------
    LayerProgram

    Raises
    ------
    TypeError
        If ``design`` is not a `Design` or ``w_q`` is not an int8 numpy array.
    ValueError
        If ``w_q`` is not 2-D or holds codes the datapath does not take, or the design cannot
        run the layer (see `Design.check_layer`).
    """
    if not isinstance(design, Design):
        raise TypeError(f"design must be a sim.Design, got {type(design).__name__}")
    if not isinstance(w_q, np.ndarray):
        raise TypeError(
            f"weights must be a numpy.ndarray, got {type(w_q).__name__} "
            "(convert a torch tensor with .numpy())"
        )
    if w_q.dtype != np.int8:
        raise TypeError(f"weights must have dtype int8, got {w_q.dtype}")
    if w_q.ndim != 2:
        raise ValueError(f"weights must be 2-D [N, K], got shape {w_q.shape}")
    if design.datapath == "xnor":
        bad = (w_q != 1) & (w_q != -1)
        rule = "binary codes in {-1, +1} for datapath 'xnor'"
    else:
        bad = (w_q != 0) & (w_q != 1) & (w_q != -1)
        rule = "ternary codes in {-1, 0, 1}"
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"weights must hold {rule}, found {w_q[index]} at index {index}")
    n, k = (int(size) for size in w_q.shape)
    design.check_layer(n, k)

    pe, simd = design.pe, design.simd
    # [N, K] -> [N/PE, PE, K/SIMD, SIMD] -> [N/PE, K/SIMD, PE, SIMD]: one contiguous tile per fold.
    tiles = np.ascontiguousarray(w_q.reshape(n // pe, pe, k // simd, simd).transpose(0, 2, 1, 3))
    if design.datapath == "xnor":
        operands = (tiles > 0).astype(np.uint8)
        nonzero = n * k
    elif design.datapath == "lut":
        operands = _lut_codes(tiles, design.group_size)
        # A group whose weights are all zero selects table entry sum_i 3**i = (3**g - 1) / 2.
        nonzero = int(np.count_nonzero(operands != (3**design.group_size - 1) // 2))
    else:
        operands = tiles
        nonzero = int(np.count_nonzero(w_q))
    act_max = 2 ** (design.act_bits - 1) - 1
    return LayerProgram(
        design=design,
        name=name,
        n=n,
        k=k,
        tiles=tiles,
        nonzero=nonzero,
        _operands=operands,
        _act_min=-act_max - 1,
        _act_max=act_max,
    )


def _lut_codes(tiles: np.ndarray, group: int) -> np.ndarray:
    # [..., SIMD] -> [..., SIMD/g, g]; weight i of a group is base-3 digit i of its index.
    grouped = tiles.reshape(*tiles.shape[:-1], tiles.shape[-1] // group, group).astype(np.int16)
    powers = 3 ** np.arange(group, dtype=np.int16)
    return np.ascontiguousarray(((grouped + 1) * powers).sum(axis=-1).astype(np.uint8))


def _lut_digits(group: int) -> np.ndarray:
    # Row c: the weights (-1, 0, 1) that table index c encodes, digit i = (c // 3**i) % 3 - 1.
    codes = np.arange(3**group)[:, None]
    return ((codes // 3 ** np.arange(group)) % 3 - 1).astype(np.int8)


def run_layer(program: LayerProgram, x_q: np.ndarray) -> LayerRun:
    """Run a prepared layer on T activation vectors: exact outputs, cycles, time and energy.

    Parameters
    ----------
    program : LayerProgram
        From `prepare_layer`.
    x_q : numpy.ndarray
        int8 activation codes ``[T, K]`` within the design's ``act_bits`` range; ``xnor``
        takes binary codes in {-1, +1}.

    Returns
    -------
    LayerRun
        ``acc`` is int32 ``[T, N]``, equal to ``kernels.ternary_matmul(x_q, w_q)`` (``ternary``
        and ``lut``) or ``kernels.xnor_matmul(x_q, w_q)`` (``xnor``).

    Raises
    ------
    TypeError
        If ``program`` is not a `LayerProgram` or ``x_q`` is not an int8 numpy array.
    ValueError
        If ``x_q`` is not ``[T, K]`` with T >= 1, or holds codes outside the ``act_bits`` range
        (``xnor``: codes other than -1 and +1).
    """
    if not isinstance(program, LayerProgram):
        raise TypeError(f"program must be a sim.LayerProgram, got {type(program).__name__}")
    if not isinstance(x_q, np.ndarray):
        raise TypeError(f"activations must be a numpy.ndarray, got {type(x_q).__name__}")
    if x_q.dtype != np.int8:
        raise TypeError(f"activations must have dtype int8, got {x_q.dtype}")
    if x_q.ndim != 2 or x_q.shape[1] != program.k or x_q.shape[0] < 1:
        raise ValueError(
            f"activations must have shape [T, {program.k}] with T >= 1 for layer "
            f"{program.name or 'of'} {program.n} x {program.k}, got {x_q.shape}"
        )
    design = program.design
    if design.datapath == "xnor":
        bad = (x_q != 1) & (x_q != -1)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"activations must hold binary codes in {{-1, +1}} for datapath 'xnor', found "
                f"{x_q[index]} at index {index}"
            )
    # int8 holds every 8-bit code; narrower activations need a range check.
    elif design.act_bits < 8:
        low, high = int(x_q.min()), int(x_q.max())
        if low < program._act_min or high > program._act_max:
            raise ValueError(
                f"activations must be {design.act_bits}-bit codes in [{program._act_min}, "
                f"{program._act_max}], found values in [{low}, {high}]"
            )

    tokens = x_q.shape[0]
    x_q = np.ascontiguousarray(x_q)
    if design.datapath == "xnor":
        acc = _xnor_accumulate(program._operands, (x_q > 0).astype(np.uint8))
    elif design.datapath == "lut":
        acc = _lut_accumulate(program._operands, x_q, _lut_digits(design.group_size))
    else:
        acc = _mvu_accumulate(program._operands, x_q)
    folds = program.tiles.shape[0] * program.tiles.shape[1]
    cycles = schedule_cycles(design, folds, tokens)
    every_op = lane_operations(design, program.n, program.k, tokens)
    lane_ops = tokens * program.nonzero if design.zero_skip else every_op
    return make_run(
        design,
        n=program.n,
        k=program.k,
        tokens=tokens,
        acc=acc,
        cycles=int(cycles),
        lane_ops=lane_ops,
        name=program.name,
    )


def warm_up() -> None:
    """Compile (or load from the cache) the engine's kernels for int8 inputs."""
    tiles = np.zeros((1, 1, 1, 1), dtype=np.int8)
    x = np.zeros((1, 1), dtype=np.int8)
    _mvu_accumulate(tiles, x)
    _xnor_accumulate(tiles.astype(np.uint8), x.astype(np.uint8))
    _lut_accumulate(tiles.astype(np.uint8), x, _lut_digits(1))
    stream_schedule(1, 1, 0, 1, 1, 1, 0, 0, WEIGHT_BUFFERS)
