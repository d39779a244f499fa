"""The resource model of an ``mvu`` design: LUTs, flip-flops, DSPs and on-chip memory.

Every figure here is an estimate, written down so that synthesis (Yosys, nextpnr, Vivado) can
calibrate it later. The model counts one LUT and one flip-flop per bit of every adder and
register on the datapath, because an adder bit is one LUT on both AMD (LUT6 with carry chain)
and Lattice (LUT4 with carry) fabrics. Only multiplexers depend on the LUT size.

Per PE row of SIMD lanes S, activation width a, accumulator width b:

``ternary``
    Lanes: S (a + 1) LUTs and FFs (select +x, -x or 0, registered). Adder tree over the S lane
    outputs: `tree_bits` (S, a + 1) LUTs and FFs. Accumulator: b LUTs and b FFs.
``xnor``
    Lanes: S LUTs and FFs (one XNOR per bit). Popcount tree: `tree_bits` (S, 1). Accumulator:
    b LUTs and b FFs.
``lut`` (group size g, table entries of width e = a + bit_length(g))
    Lookups: S / g multiplexers of 3**g entries, e bits wide, registered: (S / g) e
    `mux_luts` (3**g) LUTs and (S / g) e FFs. Adder tree: `tree_bits` (S / g, e).
    Accumulator: b LUTs and b FFs. Shared by all PE rows: the S / g tables, each with
    3**g - 1 nonzero entries of one e-bit add and register: (S / g)(3**g - 1) e LUTs and FFs.

Every design adds a fixed `CONTROL_LUT` and `CONTROL_FF` for the control state machine and the
memory interface. No datapath multiplies, so no design uses DSP slices.

DRAM, in bytes: the weights of every layer when they stream; they must fit the board's DRAM.

On-chip memory, in bytes: the weights of every layer when they are resident
(``weight_store="onchip"``) or `sim.timing.WEIGHT_BUFFERS` weight tiles when they stream, the
activation buffer (T vectors of the longest K at a bits) and, for runs of T > 1 vectors, the
T PE partial sums of a row group (b bits each), which then live in block RAM rather than in
flip-flops.

NOTE: memory is counted in bytes against the board's total; the rounding of each memory to
whole blocks of a given width and depth is not modelled, so a design near the capacity may
still fail to place.
"""

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sim.design import Design
from sim.models import Layer, ModelConfig, model_layers
from sim.timing import WEIGHT_BUFFERS, check_tokens

__all__ = [
    "CONTROL_FF",
    "CONTROL_LUT",
    "RESOURCE_NAMES",
    "FitReport",
    "Resources",
    "design_resources",
    "fit_report",
    "logic_resources",
    "mux_luts",
    "tree_bits",
]

# Calibrated against Yosys synthesis (synth_xilinx, xc7) of eight generated RTL units: the
# intercepts of a least-squares line through measured against modelled datapath logic
# (reports/rtl_synthesis.md, `python -m rtl.calibrate`). The LUT slope is 0.99, so the per-lane
# LUT terms stand as they are (mean error 4.6 %).
# NOTE: the FF slope is 1.18: the RTL also registers the weight memory's output, b bits per
# lane (2 for ternary, 1 for xnor), which the lane terms below do not count yet (mean FF error
# 12 %, all under-estimates).
CONTROL_LUT = 65
"""LUTs of the control state machine and memory interface of every design (fitted)."""

CONTROL_FF = 270
"""Flip-flops of the control state machine and memory interface of every design (fitted)."""

RESOURCE_NAMES = ("lut", "ff", "dsp", "onchip_bytes", "dram_bytes")
"""The resources a design is checked against, as `Resources` and `sim.Board` name them."""

DATAPATH_CODES = {"ternary": 0, "xnor": 1, "lut": 2}
"""Integer code of each datapath in the vectorized formulas."""

_MAX_TREE_LEVELS = 40


def _bit_length(value):
    # int.bit_length for ints and numpy int arrays alike (exact below 2**53): frexp returns
    # the exponent e with value = f 2**e and 0.5 <= f < 1, and e = 0 for 0.
    return np.frexp(np.asarray(value, dtype=np.float64))[1].astype(np.int64)


def tree_bits(inputs, width):
    """Return the adder bits of a binary adder tree over ``inputs`` values of ``width`` bits.

    Level l (1, 2, ...) has ceil(inputs / 2**l) adders of width + l bits, up to the level with
    one output: sum over l of ceil(m / 2**l) (w + l). A single input needs no adder. Accepts
    ints or numpy int arrays (broadcast together).
    """
    inputs = np.asarray(inputs, dtype=np.int64)
    width = np.asarray(width, dtype=np.int64)
    levels = _bit_length(inputs - 1)  # ceil(log2 m), 0 for m = 1
    total = np.zeros(np.broadcast(inputs, width).shape, dtype=np.int64)
    for level in range(1, int(np.max(levels, initial=0)) + 1):
        adders = -(-inputs // (1 << level))
        total = total + np.where(level <= levels, adders * (width + level), 0)
    return total


def mux_luts(entries, lut_inputs):
    """Return the LUTs of one bit of an ``entries``:1 multiplexer.

    A LUT6 holds a 4:1 multiplexer (4 data and 2 select inputs) and a LUT4 a 2:1 multiplexer,
    so a tree of them takes ceil((n - 1) / (d - 1)) LUTs for d data inputs per LUT.
    """
    entries = np.asarray(entries, dtype=np.int64)
    data_inputs = np.asarray(lut_inputs, dtype=np.int64) - 2
    return -(-(entries - 1) // (data_inputs - 1))


def logic_resources(datapath, pe, simd, act_bits, acc_bits, group, lut_inputs):
    """Return the LUTs, FFs and DSPs of an MVU's datapath plus control, as int64 arrays.

    All arguments are ints or numpy int arrays (broadcast together); ``datapath`` holds the
    codes of `DATAPATH_CODES`. See the module docstring for the formulas.

    Returns
    -------
    dict
        ``lut``, ``ff``, ``dsp``: int64 arrays of the broadcast shape.
    """
    datapath = np.asarray(datapath, dtype=np.int64)
    pe = np.asarray(pe, dtype=np.int64)
    simd = np.asarray(simd, dtype=np.int64)
    act_bits = np.asarray(act_bits, dtype=np.int64)
    acc_bits = np.asarray(acc_bits, dtype=np.int64)
    group = np.asarray(group, dtype=np.int64)

    # ternary
    ternary_row = simd * (act_bits + 1) + tree_bits(simd, act_bits + 1)
    # xnor
    xnor_row = simd + tree_bits(simd, 1)
    # lut: the group size is 1 for the other datapaths, where these terms are discarded
    groups = simd // group
    entries = 3**group
    entry_bits = act_bits + _bit_length(group)
    lookup_lut = groups * entry_bits * mux_luts(entries, lut_inputs)
    lookup_ff = groups * entry_bits
    lut_tree = tree_bits(groups, entry_bits)
    tables = groups * (entries - 1) * entry_bits

    is_lut = datapath == DATAPATH_CODES["lut"]
    is_xnor = datapath == DATAPATH_CODES["xnor"]
    row_lut = np.where(is_lut, lookup_lut + lut_tree, np.where(is_xnor, xnor_row, ternary_row))
    row_ff = np.where(is_lut, lookup_ff + lut_tree, np.where(is_xnor, xnor_row, ternary_row))
    shared = np.where(is_lut, tables, 0)
    lut = pe * (row_lut + acc_bits) + shared + CONTROL_LUT
    ff = pe * (row_ff + acc_bits) + shared + CONTROL_FF
    dsp = np.zeros_like(lut)
    return {"lut": lut, "ff": ff, "dsp": dsp}


@dataclass(frozen=True)
class Resources:
    """The resources a design needs.

    Attributes
    ----------
    lut, ff, dsp : int
        Look-up tables, flip-flops and DSP slices.
    onchip_bytes : int
        On-chip memory: ``weight_bytes + buffer_bytes``.
    weight_bytes : int
        Resident weights (``onchip``) or the streamed weight tile buffers (``stream``).
    buffer_bytes : int
        Activation buffer plus, for runs of more than one vector, the partial sums.
    dram_bytes : int
        Weights kept in DRAM to be streamed (0 when they are resident on chip).
    """

    lut: int
    ff: int
    dsp: int
    onchip_bytes: int
    weight_bytes: int
    buffer_bytes: int
    dram_bytes: int = 0

    def to_dict(self) -> dict:
        """Return the resources as a JSON-ready dict."""
        return {
            "lut": self.lut,
            "ff": self.ff,
            "dsp": self.dsp,
            "onchip_bytes": self.onchip_bytes,
            "weight_bytes": self.weight_bytes,
            "buffer_bytes": self.buffer_bytes,
            "dram_bytes": self.dram_bytes,
        }


def _layer_shapes(layers) -> list[tuple[int, int]]:
    if isinstance(layers, ModelConfig):
        layers = model_layers(layers, 1)
    if isinstance(layers, str | bytes) or not isinstance(layers, Iterable):
        raise TypeError(
            "layers must be a ModelConfig or an iterable of sim.Layer or (N, K) pairs, "
            f"got {type(layers).__name__}"
        )
    shapes = []
    for layer in layers:
        if isinstance(layer, Layer):
            if layer.kind == "ternary":
                shapes.append((layer.out_features, layer.in_features))
            continue
        if not (isinstance(layer, tuple) and len(layer) == 2):
            raise TypeError(f"a layer must be a sim.Layer or an (N, K) pair, got {layer!r}")
        n, k = layer
        for name, value in (("N", n), ("K", k)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"layer {name} must be an int, got {value!r} in {layer!r}")
            if value < 1:
                raise ValueError(f"layer {name} must be >= 1, got {value} in {layer!r}")
        shapes.append((int(n), int(k)))
    return shapes


def design_resources(design: Design, layers=(), *, tokens: int = 1) -> Resources:
    """Estimate the resources of ``design`` holding ``layers``, for runs of ``tokens`` vectors.

    Parameters
    ----------
    design : Design
        An ``mvu`` design.
    layers : ModelConfig, iterable of Layer or of (N, K) pairs
        The layers the design runs; only ternary `Layer` entries count. They size the
        accumulator (the widest that any layer needs), the activation buffer (the longest K)
        and, with ``weight_store="onchip"``, the resident weights. With no layers, the buffer
        holds one fold's SIMD inputs and the accumulator is sized for K = SIMD.
    tokens : int
        Vectors per run (T).

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``tokens`` is below 1 or a layer size is below 1.
    NotImplementedError
        For a ``systolic`` design, which this model does not cover yet.
    """
    if not isinstance(design, Design):
        raise TypeError(f"design must be a sim.Design, got {type(design).__name__}")
    if design.array != "mvu":
        raise NotImplementedError(
            f"the resource model covers Design.array = 'mvu' only, got {design.array!r}"
        )
    check_tokens(tokens)
    shapes = _layer_shapes(layers)
    max_k = max((k for _, k in shapes), default=design.simd)
    acc_bits = max(design.accumulator_bits(k) for k in [max_k] + [k for _, k in shapes])
    logic = logic_resources(
        DATAPATH_CODES[design.datapath],
        design.pe,
        design.simd,
        design.act_bits,
        acc_bits,
        design.group_size if design.datapath == "lut" else 1,
        design.board.lut_inputs,
    )
    model_bytes = sum(design.weight_bytes(n, k) for n, k in shapes if _divides(design, n, k))
    if design.weight_store == "onchip":
        weight_bytes, dram_bytes = model_bytes, 0
    else:
        weight_bytes, dram_bytes = WEIGHT_BUFFERS * design.tile_bytes, model_bytes
    buffer_bytes = -(-(tokens * max_k * design.act_bits) // 8)
    if tokens > 1:
        buffer_bytes += -(-(tokens * design.pe * acc_bits) // 8)
    return Resources(
        lut=int(logic["lut"]),
        ff=int(logic["ff"]),
        dsp=int(logic["dsp"]),
        onchip_bytes=weight_bytes + buffer_bytes,
        weight_bytes=weight_bytes,
        buffer_bytes=buffer_bytes,
        dram_bytes=dram_bytes,
    )


def _divides(design: Design, n: int, k: int) -> bool:
    # A layer the design cannot tile is rejected by check_layer when it runs; its weights are
    # not counted here, so the report stays about capacity.
    return n % design.pe == 0 and k % design.simd == 0


@dataclass(frozen=True)
class FitReport:
    """Whether a design fits its board: the need, the capacity and each excess.

    Attributes
    ----------
    board : str
        The board's short name.
    need : Resources
        What the design needs.
    capacity : dict
        The board's ``lut``, ``ff``, ``dsp``, ``onchip_bytes`` and ``dram_bytes``.
    problems : tuple of str
        One sentence per resource over capacity, naming the need, the capacity and the excess.
    """

    board: str
    need: Resources
    capacity: dict
    problems: tuple[str, ...]

    @property
    def fits(self) -> bool:
        """Whether every resource is within the board's capacity."""
        return not self.problems

    @property
    def utilization(self) -> dict:
        """Need over capacity per resource (``inf`` where the board has none and some is needed)."""
        shares = {}
        for name in RESOURCE_NAMES:
            need, capacity = getattr(self.need, name), self.capacity[name]
            if capacity:
                shares[name] = need / capacity
            elif need:
                shares[name] = float("inf")
            else:
                shares[name] = 0.0
        return shares

    def raise_if_not_fits(self) -> None:
        """Raise `ValueError` listing every resource over capacity, or return."""
        if self.problems:
            raise ValueError(
                f"design does not fit board {self.board!r}: " + "; ".join(self.problems)
            )

    def to_dict(self) -> dict:
        """Return the report as a JSON-ready dict."""
        return {
            "board": self.board,
            "fits": self.fits,
            "need": self.need.to_dict(),
            "capacity": dict(self.capacity),
            "utilization": self.utilization,
            "problems": list(self.problems),
        }


_RESOURCE_LABELS = {
    "lut": "LUTs",
    "ff": "FFs",
    "dsp": "DSPs",
    "onchip_bytes": "on-chip bytes",
    "dram_bytes": "DRAM bytes",
}


def fit_report(
    design: Design, layers=(), *, tokens: int = 1, host_dram_bytes: int = 0
) -> FitReport:
    """Compare the resources of ``design`` (see `design_resources`) with its board's capacity.

    ``host_dram_bytes`` adds what a host sharing the board's DRAM keeps there (its weights and
    cache, `sim.host_memory_bytes`) to the DRAM the design needs.

    Returns
    -------
    FitReport
        ``fits`` is False when a resource is over capacity, and ``problems`` names each such
        resource and its excess. `Design.check_fits` raises instead.

    Raises
    ------
    TypeError, ValueError, NotImplementedError
        As `design_resources`.
    """
    need = design_resources(design, layers, tokens=tokens)
    if host_dram_bytes:
        need = dataclasses.replace(need, dram_bytes=need.dram_bytes + host_dram_bytes)
    board = design.board
    capacity = {name: getattr(board, name) for name in RESOURCE_NAMES}
    problems = []
    for name in RESOURCE_NAMES:
        used, available = getattr(need, name), capacity[name]
        if used > available:
            problems.append(
                f"{_RESOURCE_LABELS[name]}: needs {used}, the board has {available} "
                f"(over by {used - available})"
            )
    return FitReport(board=board.name, need=need, capacity=capacity, problems=tuple(problems))
