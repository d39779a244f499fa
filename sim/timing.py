"""The timing model of an ``mvu`` layer, in closed form, and `LayerRun`, its result.

The three datapaths (``ternary``, ``xnor``, ``lut``) share the fold schedule below. They differ
in the pipeline depth (`pipeline_depth`), the bytes of a weight tile (the weight format) and the
energy of a lane operation (`sim.energy`).

The model
---------
An N x K layer on PE rows by SIMD lanes is cut into F = (N / PE)(K / SIMD) folds; fold (i, j)
multiplies the weight tile of rows i PE .. (i+1) PE - 1 and inputs j SIMD .. (j+1) SIMD - 1. A
run takes T input vectors (T = 1 per decode step). The folds are taken in order, and each tile
stays in the lanes for all T vectors, one vector per cycle, so the array issues T F cycles of
work: FINN's (MH / PE)(MW / SIMD) cycles per vector. Per output row group the lanes keep T
accumulators.

With ``weight_store="onchip"`` the tiles are read from BRAM/URAM and the run takes
T F + D cycles, D being the pipeline depth (`pipeline_depth`).

With ``weight_store="stream"`` the tiles come from DRAM on every run into a double buffer, so
the load of tile i + 1 overlaps the compute of tile i. A load starts only once its buffer slot
is free, that is once tile i - 1 has been computed. A tile of B bytes takes L = ceil(B f / BW)
cycles at clock f and bandwidth BW. Solving that schedule gives

    cycles = max(L + T F, F L + T) + D

the first term when L <= T (compute-bound: only the first load is exposed), the second when
L > T (memory-bound: the loads run back to back and only the last fold's compute is exposed).
`sim.run_layer` steps the same schedule fold by fold, so the two agree exactly.

Limits of this first model, each a simplification of the hardware: DRAM delivers its peak
bandwidth from the first byte (no burst granularity, latency or refresh), activation and result
transfers are not counted, and zero-skipping does not shorten the schedule.
"""

from dataclasses import dataclass, field

import numpy as np

from sim import energy
from sim.design import Design

__all__ = ["BOUNDS", "LayerRun", "estimate_layer", "load_cycles", "pipeline_depth"]

BOUNDS = ("compute", "memory")
"""The values of `LayerRun.bound`."""

WEIGHT_BUFFERS = 2
"""Weight tile buffers between DRAM and the lanes: double buffering."""


@dataclass(frozen=True)
class LayerRun:
    """The outcome of one run of a layer: outputs (when data was given), time and energy.

    Attributes
    ----------
    name : str
        The layer's name (empty when none was given).
    tokens : int
        Input vectors in the run (T).
    acc : numpy.ndarray or None
        int32 accumulators ``[T, N]``; ``None`` in timing-only mode (`estimate_layer`).
    cycles : int
        Total cycles from the start of the run to the last result out of the pipeline.
    compute_cycles : int
        Cycles the array issues work: T F.
    memory_cycles : int
        Cycles the DRAM spends streaming the weight tiles: F L (0 for on-chip weights).
    stall_cycles : int
        Cycles the array waits for weights: ``cycles - compute_cycles - pipeline_depth``.
    pipeline_depth : int
        Cycles from a fold's issue to its result in the accumulators.
    bound : {"compute", "memory"}
        ``"memory"`` when streaming the weights takes longer than computing on them.
    time_s : float
        ``cycles`` at the design's clock.
    energy_j : float
        Estimated energy of the run, see `sim.energy.layer_energy_j`.
    weight_bytes : int
        Bytes of the layer's weights in the design's weight format.
    dram_bytes : int
        Bytes read from DRAM in this run: ``weight_bytes`` when streamed, 0 on chip.
    """

    name: str
    tokens: int
    acc: np.ndarray | None = field(repr=False)
    cycles: int
    compute_cycles: int
    memory_cycles: int
    stall_cycles: int
    pipeline_depth: int
    bound: str
    time_s: float
    energy_j: float
    weight_bytes: int
    dram_bytes: int


def pipeline_depth(design: Design) -> int:
    """Return the pipeline depth D of the design's MVU in cycles.

    Notes
    -----
    Each step below ends in a register, and the RTL must have the same stages.

    ``ternary``: the weight memory read takes 1 cycle and the lane stage that selects +x, -x or
    0 takes 1. The binary adder tree over the SIMD lane outputs takes ceil(log2 SIMD) cycles,
    one per level, and the accumulator add takes 1. Hence D = 3 + ceil(log2 SIMD); for
    SIMD = 64, D = 9.

    ``xnor``: the same stages, with the XNOR of weight and activation bits as the lane stage
    and a popcount tree as the adder tree: D = 3 + ceil(log2 SIMD).

    ``lut``: weight read (1), table build from the SIMD activations (1), lookup of SIMD / g
    entries per PE row (1), adder tree over those entries (ceil(log2(SIMD / g))) and
    accumulator (1): D = 4 + ceil(log2(SIMD / g)); for SIMD = 64 and g = 2, D = 9.
    """
    if design.datapath == "lut":
        # ceil(log2(simd / g)); the design checked that g divides simd.
        return 4 + (design.simd // design.group_size - 1).bit_length()
    tree_levels = (design.simd - 1).bit_length()  # ceil(log2 simd), 0 for a single lane
    return 3 + tree_levels


def load_cycles(design: Design) -> int:
    """Return the cycles L to stream one weight tile from DRAM (0 for on-chip weights).

    L = ceil(tile_bytes * f / BW), in integers: f is the clock in Hz and BW the board's DRAM
    bandwidth in bytes per second.
    """
    if design.weight_store == "onchip":
        return 0
    return -(-(design.tile_bytes * design.clock_hz) // design.board.dram_bytes_per_s)


def estimate_layer(
    design: Design,
    n: int,
    k: int,
    tokens: int = 1,
    *,
    nonzero_fraction: float = 1.0,
    check_capacity: bool = True,
) -> LayerRun:
    """Model one run of an N x K layer over ``tokens`` vectors from the shapes alone.

    This is the timing-only mode: the result is that of `sim.run_layer` without the outputs.
    Cycles, stalls and the bound are equal to the engine's in every case the model covers.

    Parameters
    ----------
    design : Design
        The accelerator.
    n, k : int
        Output rows and inputs of the layer.
    tokens : int
        Input vectors in the run (1 per decode step).
    nonzero_fraction : float
        Share of nonzero weights, 0 to 1; it matters only with ``zero_skip`` and sets the lane
        energy. The default 1.0 is the bound without skipping (BitNet b1.58 layers have about
        two thirds nonzero weights). For ``lut``, whose lanes skip a group only when all g
        weights are zero, the share of groups with a nonzero weight is taken as
        1 - (1 - nonzero_fraction)**g, which assumes zeros independent of each other.
    check_capacity : bool
        Whether an on-chip layer must fit the board's on-chip bytes on its own; `sim.analytical`
        turns it off and judges the fit of the whole model instead.

    Returns
    -------
    LayerRun
        With ``acc=None``.

    Raises
    ------
    TypeError, ValueError
        If the design cannot run the layer (see `Design.check_layer`), ``tokens`` is not a
        positive int or ``nonzero_fraction`` is outside [0, 1].
    """
    if not isinstance(design, Design):
        raise TypeError(f"design must be a sim.Design, got {type(design).__name__}")
    design.check_layer(n, k, capacity=check_capacity)
    check_tokens(tokens)
    if isinstance(nonzero_fraction, bool) or not isinstance(nonzero_fraction, int | float):
        raise TypeError(f"nonzero_fraction must be a number, got {nonzero_fraction!r}")
    if not 0.0 <= nonzero_fraction <= 1.0:
        raise ValueError(f"nonzero_fraction must be between 0 and 1, got {nonzero_fraction}")

    folds = (n // design.pe) * (k // design.simd)
    load = load_cycles(design)
    depth = pipeline_depth(design)
    cycles = max(load + tokens * folds, folds * load + tokens) + depth
    lane_ops = lane_operations(design, n, k, tokens)
    if design.zero_skip:
        if design.datapath == "lut":
            nonzero_fraction = 1.0 - (1.0 - nonzero_fraction) ** design.group_size
        lane_ops = round(lane_ops * nonzero_fraction)
    return make_run(
        design,
        n=n,
        k=k,
        tokens=tokens,
        acc=None,
        cycles=cycles,
        lane_ops=lane_ops,
        name="",
    )


def lane_operations(design: Design, n: int, k: int, tokens: int) -> int:
    """Return the lane operations of a run without zero-skipping.

    One per weight and vector (T N K) for ``ternary`` and ``xnor``; one lookup per group of g
    weights and vector (T N K / g) for ``lut``.
    """
    if design.datapath == "lut":
        return tokens * n * (k // design.group_size)
    return tokens * n * k


def check_tokens(tokens: int) -> None:
    """Raise unless ``tokens`` is a positive int."""
    if isinstance(tokens, bool) or not isinstance(tokens, int | np.integer):
        raise TypeError(f"tokens must be an int, got {type(tokens).__name__}")
    if tokens < 1:
        raise ValueError(f"tokens must be >= 1, got {tokens}")


def make_run(
    design: Design,
    *,
    n: int,
    k: int,
    tokens: int,
    acc: np.ndarray | None,
    cycles: int,
    lane_ops: int,
    name: str,
) -> LayerRun:
    """Package a run's cycle count into a `LayerRun` with its derived figures and energy."""
    folds = (n // design.pe) * (k // design.simd)
    depth = pipeline_depth(design)
    compute = tokens * folds
    memory = folds * load_cycles(design)
    weight_bytes = design.weight_bytes(n, k)
    dram_bytes = weight_bytes if design.weight_store == "stream" else 0
    time_s = cycles / design.clock_hz
    energy_j = energy.layer_energy_j(
        tokens=tokens,
        n=n,
        k=k,
        pe=design.pe,
        simd=design.simd,
        act_bits=design.act_bits,
        lane_ops=lane_ops,
        buffer_bytes=weight_bytes,
        dram_bytes=dram_bytes,
        dram_pj_per_bit=design.board.dram_pj_per_bit,
        static_power_w=design.board.static_power_w,
        time_s=time_s,
        datapath=design.datapath,
        group=design.group_size,
    )
    return LayerRun(
        name=name,
        tokens=int(tokens),
        acc=acc,
        cycles=int(cycles),
        compute_cycles=compute,
        memory_cycles=memory,
        stall_cycles=int(cycles) - compute - depth,
        pipeline_depth=depth,
        bound="memory" if memory > compute else "compute",
        time_s=time_s,
        energy_j=energy_j,
        weight_bytes=weight_bytes,
        dram_bytes=dram_bytes,
    )
