"""The timing model of an ``mvu`` layer: its fold schedule, and `LayerRun`, its result.

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
the load of tile i + 1 overlaps the compute of tile i. The weights lie in DRAM tile after tile,
B bytes each, and the run reads them as one sequential stream of whole bursts of S bytes
(`sim.Board.dram_burst_bytes`), each burst once: tile i is complete when the first
ceil((i + 1) B / S) bursts have arrived, and a burst shared by two tiles serves both. The data
flows at the bandwidth BW from A = ceil(latency f) cycles after the start
(`sim.Board.dram_latency_ns`, clock f); the DMA keeps its requests in flight, so the latency is
paid once per run. Arrival times are exact fractions of a cycle, rounded up only where a fold
looks at them, so the stream's time does not depend on how the tiles cut it. The data of tile i
needs its buffer slot, free once fold i - 2 has been computed: when the slot frees after the
stream reached tile i, the stream pauses until then. A fold starts when its tile has arrived
and the previous fold has finished. `sim.run_layer` and `estimate_layer` step this schedule fold
by fold (`stream_schedule`).

With F folds and T vectors per tile, x_0 = ceil(ceil(B / S) S f / BW) the arrival of tile 0 and
M = ceil(ceil(F B / S) S f / BW) that of the whole layer, the closed form of
`sim.evaluate_layer` is

    cycles = max(A + x_0 + T F, A + M + T) + D

the first term when the array is compute-bound (only the first load is exposed), the second
when it is memory-bound (only the last fold's compute is exposed). It is a lower bound of the
stepped schedule in every case. Fold 0 waits for its tile and the folds run one after the
other, which gives the first term. The stream only ever pauses and the last fold follows the
last tile, which gives the second. It equals the schedule when no fold after the first waits
for its tile, and when the stream never pauses and the last fold waits for its tile; the tests
check both against an independent model. Between the two regimes, where folds wait on some tiles
and the stream pauses on others, the closed form is only a bound.

Limits of this model, each a simplification of the hardware: the DRAM has one latency and a
constant bandwidth (no page misses, bank conflicts or refresh), activation and result transfers
are not counted, and zero-skipping does not shorten the schedule.

NOTE: the width of the fabric's memory ports is not modelled either, so one MVU can take the
board's whole bandwidth: 460 GB/s (U280 HBM) at 300 MHz would need a 12,000-bit port.
"""

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from sim import energy
from sim.config import JIT_OPTIONS
from sim.design import Design

__all__ = [
    "BOUNDS",
    "MAX_CYCLES",
    "MAX_STEPPED_FOLDS",
    "LayerRun",
    "estimate_layer",
    "latency_cycles",
    "load_cycles",
    "pipeline_depth",
    "stream_schedule",
]

BOUNDS = ("compute", "memory")
"""The values of `LayerRun.bound`: the larger term of the schedule's closed form."""

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
        Cycles of the weight stream without pauses: the latency A plus the transfer of the
        layer's bursts, A + M (0 for on-chip weights).
    stall_cycles : int
        Cycles the array waits for weights: ``cycles - compute_cycles - pipeline_depth``.
    pipeline_depth : int
        Cycles from a fold's issue to its result in the accumulators.
    bound : {"compute", "memory"}
        ``"memory"`` when the memory term of the schedule's closed form, A + M + T, exceeds the
        compute term, A + x_0 + T F (module docstring), and ``"compute"`` otherwise.
    time_s : float
        ``cycles`` at the design's clock.
    energy_j : float
        Estimated energy of the run, see `sim.energy.layer_energy_j`.
    weight_bytes : int
        Bytes of the layer's weights in the design's weight format.
    dram_bytes : int
        Bytes read from DRAM in this run: ``weight_bytes`` rounded up to whole bursts when
        streamed, 0 on chip.
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


def latency_cycles(design: Design) -> int:
    """Return the cycles A from the start of a run to the stream's first data (0 on chip).

    A = ceil(latency f), in integers: the board's ``dram_latency_ns`` at the clock f in Hz.
    """
    if design.weight_store == "onchip":
        return 0
    return -(-(design.board.dram_latency_ns * design.clock_hz) // 10**9)


def load_cycles(design: Design) -> int:
    """Return x_0, the cycles from the stream's first data to the arrival of tile 0 (0 on chip).

    x_0 = ceil(n S f / BW) with n = ceil(B / S) bursts of S bytes for a B-byte tile, f the clock
    in Hz and BW the DRAM bandwidth in bytes per second; the latency is not included.
    """
    if design.weight_store == "onchip":
        return 0
    burst = design.board.dram_burst_bytes
    bursts = -(-design.tile_bytes // burst)
    return _transfer_cycles(bursts * burst, design.clock_hz, design.board.dram_bytes_per_s)


def _transfer_cycles(size: int, clock_hz: int, bandwidth: int) -> int:
    return -(-(size * clock_hz) // bandwidth)


def stream_totals(design: Design, folds: int) -> tuple[int, int]:
    """Return the bursts that F folds read from DRAM and M, the cycles to transfer them.

    The stream reads ceil(F B / S) bursts, each once; both figures are 0 for on-chip weights.
    """
    if design.weight_store == "onchip":
        return 0, 0
    burst = design.board.dram_burst_bytes
    bursts = -(-(folds * design.tile_bytes) // burst)
    cycles = _transfer_cycles(bursts * burst, design.clock_hz, design.board.dram_bytes_per_s)
    return bursts, cycles


@njit(**JIT_OPTIONS)
def stream_schedule(folds, tokens, tile, burst, clock_hz, bandwidth, latency, depth, buffers):
    """Return the cycle at which the last result leaves the pipeline, stepping fold by fold.

    The layer's ``tile``-byte tiles stream as whole bursts of ``burst`` bytes at ``bandwidth``
    bytes per second from cycle ``latency``. Tile f arrives when the bursts up to its last byte
    have, at the exact time rounded up to a cycle. The stream pauses until fold f - ``buffers``
    has freed tile f's slot. Fold f starts when its tile has arrived and fold f - 1 has finished.
    With ``tile = 0`` and ``latency = 0`` (weights on chip) no fold ever waits. All arguments
    are ints, ``burst`` and ``bandwidth`` positive, and ``folds * tile * clock_hz`` must fit
    int64.
    """
    compute_end = np.zeros(buffers, dtype=np.int64)
    # The stream has run without pause since cycle segment_start, when segment_base bytes had
    # arrived. Byte b therefore arrives at segment_start + (b - segment_base) f / BW exactly.
    segment_start = latency
    segment_base = 0
    previous_needed = 0
    previous_end = 0
    for f in range(folds):
        needed = ((f + 1) * tile + burst - 1) // burst * burst
        if f >= buffers:
            free = compute_end[f % buffers]
            # Pause when the slot frees after the exact end of tile f - 1's bursts; the first
            # test keeps the product below from overflowing.
            span = (previous_needed - segment_base) * clock_hz
            late = free - segment_start
            if late > span // bandwidth + 1 or (late > 0 and late * bandwidth > span):
                segment_start = free
                segment_base = previous_needed
        arrival = segment_start + ((needed - segment_base) * clock_hz + bandwidth - 1) // bandwidth
        start = previous_end if previous_end > arrival else arrival
        previous_end = start + tokens
        compute_end[f % buffers] = previous_end
        previous_needed = needed
    return previous_end + depth


MAX_CYCLES = 2**62
"""Largest cycle count, and largest bytes x clock product, that the int64 schedule handles."""

MAX_STEPPED_FOLDS = 2**30
"""Most folds a streamed run may step one by one (about 10 s at the 10 ns a fold measured on
a 2-core AMD EPYC)."""


def schedule_cycles(design: Design, folds: int, tokens: int) -> int:
    """Return the cycles of a run of ``folds`` tiles over ``tokens`` vectors.

    On-chip weights never wait, so their T F + D cycles need no stepping; streamed weights are
    stepped fold by fold with `stream_schedule`.

    Raises
    ------
    ValueError
        If the run could take 2**62 cycles or more, if its streamed bytes times the clock in Hz
        reach 2**62 (both beyond the int64 arithmetic of the schedule), or if a streamed run has
        more than `MAX_STEPPED_FOLDS` folds.
    """
    depth = pipeline_depth(design)
    latency = latency_cycles(design)
    _, transfer = stream_totals(design, folds)
    longest = latency + transfer + tokens * folds + depth
    if longest >= MAX_CYCLES:
        raise ValueError(
            f"a run of {tokens} vectors over {folds} folds can take about {longest:.3e} cycles, "
            "beyond the timing model's limit of 2**62; use fewer tokens or larger pe and simd"
        )
    if design.weight_store == "onchip":
        return tokens * folds + depth
    tile = design.tile_bytes
    burst = design.board.dram_burst_bytes
    bandwidth = design.board.dram_bytes_per_s
    if (folds * tile + burst) * design.clock_hz >= MAX_CYCLES:
        raise ValueError(
            f"a streamed layer of {folds * tile} bytes at {design.clock_hz} Hz exceeds the "
            f"timing model's int64 range (bytes x clock must stay below 2**62); split the "
            "layer or lower clock_mhz"
        )
    if folds > MAX_STEPPED_FOLDS:
        raise ValueError(
            f"a streamed layer of {folds} folds exceeds the {MAX_STEPPED_FOLDS} folds that the "
            "engine steps one by one; use larger pe and simd"
        )
    cycles = stream_schedule(
        folds,
        tokens,
        tile,
        burst,
        design.clock_hz,
        bandwidth,
        latency,
        depth,
        WEIGHT_BUFFERS,
    )
    return int(cycles)


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

    This is the engine's timing-only mode: it steps the same fold schedule as `sim.run_layer`
    and returns the same result without the outputs.

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
    tokens = int(tokens)  # a numpy integer would wrap in the products below
    if isinstance(nonzero_fraction, bool) or not isinstance(nonzero_fraction, int | float):
        raise TypeError(f"nonzero_fraction must be a number, got {nonzero_fraction!r}")
    if not 0.0 <= nonzero_fraction <= 1.0:
        raise ValueError(f"nonzero_fraction must be between 0 and 1, got {nonzero_fraction}")

    folds = (n // design.pe) * (k // design.simd)
    cycles = schedule_cycles(design, folds, tokens)
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
    bursts, transfer = stream_totals(design, folds)
    memory = latency_cycles(design) + transfer
    weight_bytes = design.weight_bytes(n, k)
    dram_bytes = bursts * design.board.dram_burst_bytes
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
        bound="memory" if transfer + tokens > load_cycles(design) + compute else "compute",
        time_s=time_s,
        energy_j=energy_j,
        weight_bytes=weight_bytes,
        dram_bytes=dram_bytes,
    )
