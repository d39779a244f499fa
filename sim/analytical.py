"""The analytical model: closed-form cycles, resources and energy, vectorized over many designs.

`DesignTable` holds N ``mvu`` designs as numpy arrays, one entry per design. `evaluate_layer`
computes the timing and energy of one layer on all of them at once, with the closed form of
`sim.timing`. For on-chip weights, and for streamed weights where no fold after the first waits
for its tile or where the stream never pauses and the last fold waits for its tile, each entry
equals what `sim.estimate_layer` returns for that design alone (integers exactly, floats to the
last bit, because the same operations run in the same order). In the other cases its cycles
are a lower bound of the engine's, and its time and energy follow from those cycles.
`evaluate_model` adds up a whole model and checks the fit; `simulate_model` does the same for
one design, layer by layer, and returns a `ModelRun` with the per-layer entries.

Host model
----------
Layers that the accelerator does not run (embedding, norms, attention over the KV cache, the
BF16 LM head, sampling) are costed on a `Host` as a roofline: a layer takes
max(bytes / bandwidth, flops / peak flops) and the host's power for that time. Accelerator and
host run one after the other, so a token takes the sum of both, and both are reported apart.
Each board has a default host (`BOARD_HOSTS`): its own processor on Zynq boards, a desktop PC
for the PCIe cards and the USB-attached Lattice boards.

NOTE: transfers of activations and results between host and accelerator are not counted (on a
Zynq they share the DRAM; over the UART of a Lattice board they would dominate).

Phases
------
``decode``: one token at a given context (KV cache length); tokens/s = 1 / time per token.

``prefill``: N prompt tokens from an empty cache. Each ternary layer runs once on T = N vectors,
so a weight tile is read once for all of them. Each host layer costs the sum of its decode
costs at contexts 1 .. N (bytes and flops summed, then the roofline), except the final norm,
the LM head and sampling, which only the last token needs. The host sum counts the host
weights once per token, an upper bound for a host that batches the prompt.
"""

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sim import energy
from sim.design import WEIGHT_FORMATS, Design
from sim.models import Layer, ModelConfig, get_model, host_memory_bytes, model_layers
from sim.resources import (
    DATAPATH_CODES,
    RESOURCE_NAMES,
    FitReport,
    Resources,
    _bit_length,
    fit_report,
    logic_resources,
)
from sim.timing import MAX_CYCLES, WEIGHT_BUFFERS, check_tokens, estimate_layer

__all__ = [
    "BOARD_HOSTS",
    "HOSTS",
    "PHASES",
    "DesignTable",
    "Host",
    "ModelLayerRun",
    "ModelRun",
    "evaluate_layer",
    "evaluate_model",
    "get_host",
    "simulate_model",
]

PHASES = ("decode", "prefill")
"""The phases `simulate_model` costs."""

_LAST_TOKEN_LAYERS = ("norm", "lm_head.norm", "lm_head", "sample")


@dataclass(frozen=True)
class Host:
    """The processor that runs the host-side layers, as a roofline.

    Attributes
    ----------
    name : str
        Key in `HOSTS`.
    bytes_per_s : float
        Memory bandwidth available to the host layers.
    flops_per_s : float
        Peak floating-point operations per second.
    power_w : float
        Power drawn while it runs the host layers (an estimate).
    source : str
        Where the figures come from.
    shares_board_dram : bool
        Whether the host's memory is the board's DRAM (a Zynq's processing system), so that the
        host's weights and cache count against the board's DRAM in the fit.
    """

    name: str
    bytes_per_s: float
    flops_per_s: float
    power_w: float
    source: str
    shares_board_dram: bool = False

    def seconds(self, bytes_moved, flops):
        """Return the roofline time of moving ``bytes_moved`` bytes and ``flops`` operations."""
        return max(bytes_moved / self.bytes_per_s, flops / self.flops_per_s)


HOSTS = {
    host.name: host
    for host in (
        Host(
            name="cortex-a9",
            # 2 cores at 650 MHz, NEON 2 fp32 multiply-accumulates a cycle: 2 * 0.65e9 * 4.
            bytes_per_s=2.1e9,
            flops_per_s=5.2e9,
            power_w=1.0,
            source=(
                "Zynq-7000 XC7Z020 processing system (AMD DS190); the PYNQ-Z2's DDR3 at 2.1 GB/s"
            ),
            shares_board_dram=True,
        ),
        Host(
            name="cortex-a53",
            # 4 cores at 1.333 GHz, NEON 2 fp32 fused multiply-adds a cycle: 4 * 1.333e9 * 4.
            bytes_per_s=19.2e9,
            flops_per_s=21.3e9,
            power_w=2.0,
            source="Zynq UltraScale+ processing system (AMD DS891, DS987); DDR4 at 19.2 GB/s",
            shares_board_dram=True,
        ),
        Host(
            name="desktop",
            # 8 cores at 3 GHz with two 8-lane fp32 FMA units: 8 * 3e9 * 32.
            bytes_per_s=51.2e9,
            flops_per_s=768e9,
            power_w=65.0,
            source="an 8-core x86 desktop with AVX2 and dual-channel DDR4-3200 (an assumption)",
        ),
    )
}
"""Host processors, keyed by name. Bandwidths are peaks; powers are estimates."""

BOARD_HOSTS = {
    "pynq-z2": "cortex-a9",
    "kv260": "cortex-a53",
    "zcu104": "cortex-a53",
    "u280": "desktop",
    "u55c": "desktop",
    "icebreaker": "desktop",
    "ulx3s": "desktop",
}
"""The default host of each board; boards not listed take ``desktop``."""


def get_host(host: "str | Host | None", board_name: str = "") -> Host:
    """Return ``host`` as a `Host`: itself, the `HOSTS` entry of that name, or the board's default.

    Raises
    ------
    TypeError
        If ``host`` is not a str, a `Host` or None.
    ValueError
        If no host has that name; the message lists the valid names.
    """
    if host is None:
        return HOSTS[BOARD_HOSTS.get(board_name, "desktop")]
    if isinstance(host, Host):
        return host
    if not isinstance(host, str):
        raise TypeError(f"host must be a host name, a sim.analytical.Host or None, got {host!r}")
    if host not in HOSTS:
        raise ValueError(f"unknown host {host!r}; valid names: {', '.join(HOSTS)}")
    return HOSTS[host]


# Designs as arrays.


_TABLE_FIELDS = (
    "datapath",
    "pe",
    "simd",
    "act_bits",
    "acc_bits",
    "group",
    "code_weights",
    "code_bits",
    "stream",
    "zero_skip",
    "clock_hz",
    "dram_bytes_per_s",
    "dram_burst_bytes",
    "dram_latency_ns",
    "dram_pj_per_bit",
    "static_power_w",
    "lut_inputs",
    "lut",
    "ff",
    "dsp",
    "onchip_bytes",
    "dram_bytes",
)


@dataclass(frozen=True, eq=False)
class DesignTable:
    """N ``mvu`` designs as arrays of length N, for `evaluate_layer` and `evaluate_model`.

    Build it with `from_designs`. Each array holds one field per design: ``datapath`` as the
    codes of `sim.resources.DATAPATH_CODES`, ``acc_bits`` as -1 where the design derives it,
    ``group`` the lookup group g (1 except for ``lut``), ``code_weights`` and ``code_bits`` the
    weight format (`sim.WEIGHT_FORMATS`), ``stream`` and ``zero_skip`` as booleans, and the
    board's bandwidth, burst, latency, energy, power and capacities (``lut``, ``ff``, ``dsp``,
    ``onchip_bytes``, ``dram_bytes``) per design. ``designs`` keeps the `Design` objects and
    ``board_names`` the board of each.
    """

    designs: tuple
    board_names: tuple
    datapath: np.ndarray
    pe: np.ndarray
    simd: np.ndarray
    act_bits: np.ndarray
    acc_bits: np.ndarray
    group: np.ndarray
    code_weights: np.ndarray
    code_bits: np.ndarray
    stream: np.ndarray
    zero_skip: np.ndarray
    clock_hz: np.ndarray
    dram_bytes_per_s: np.ndarray
    dram_burst_bytes: np.ndarray
    dram_latency_ns: np.ndarray
    dram_pj_per_bit: np.ndarray
    static_power_w: np.ndarray
    lut_inputs: np.ndarray
    lut: np.ndarray
    ff: np.ndarray
    dsp: np.ndarray
    onchip_bytes: np.ndarray
    dram_bytes: np.ndarray

    @classmethod
    def from_designs(cls, designs: Iterable[Design]) -> "DesignTable":
        """Collect validated designs into arrays.

        Raises
        ------
        TypeError
            If an entry is not a `Design`.
        ValueError
            If there are no designs.
        NotImplementedError
            If a design is not an ``mvu``.
        """
        designs = tuple(designs)
        if not designs:
            raise ValueError("a DesignTable needs at least one design, got none")
        columns = {name: [] for name in _TABLE_FIELDS}
        for index, design in enumerate(designs):
            if not isinstance(design, Design):
                raise TypeError(
                    f"designs must be sim.Design objects, got {type(design).__name__} at "
                    f"index {index}"
                )
            if design.array != "mvu":
                raise NotImplementedError(
                    f"the analytical model covers Design.array = 'mvu' only, got "
                    f"{design.array!r} at index {index}"
                )
            _, code_weights, code_bits = WEIGHT_FORMATS[design.weight_format]
            board = design.board
            row = {
                "datapath": DATAPATH_CODES[design.datapath],
                "pe": design.pe,
                "simd": design.simd,
                "act_bits": design.act_bits,
                "acc_bits": -1 if design.acc_bits is None else design.acc_bits,
                "group": design.group_size if design.datapath == "lut" else 1,
                "code_weights": code_weights,
                "code_bits": code_bits,
                "stream": design.weight_store == "stream",
                "zero_skip": design.zero_skip,
                "clock_hz": design.clock_hz,
                # 1 where the board has no DRAM: such designs keep their weights on chip, and
                # the bandwidth is then never used (it only avoids a division by zero).
                "dram_bytes_per_s": board.dram_bytes_per_s or 1,
                "dram_burst_bytes": board.dram_burst_bytes or 1,
                "dram_latency_ns": board.dram_latency_ns,
                "dram_pj_per_bit": board.dram_pj_per_bit,
                "static_power_w": board.static_power_w,
                "lut_inputs": board.lut_inputs,
                "lut": board.lut,
                "ff": board.ff,
                "dsp": board.dsp,
                "onchip_bytes": board.onchip_bytes,
                "dram_bytes": board.dram_bytes,
            }
            for name, value in row.items():
                columns[name].append(value)
        arrays = {}
        for name, values in columns.items():
            if name in ("stream", "zero_skip"):
                arrays[name] = np.array(values, dtype=bool)
            elif name in ("dram_pj_per_bit", "static_power_w"):
                arrays[name] = np.array(values, dtype=np.float64)
            else:
                arrays[name] = np.array(values, dtype=np.int64)
        return cls(
            designs=designs,
            board_names=tuple(design.board.name for design in designs),
            **arrays,
        )

    def __len__(self) -> int:
        return len(self.designs)


# One layer.


def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"layer {name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"layer {name} must be >= 1, got {value}")
    return int(value)


def _check_fraction(nonzero_fraction) -> float:
    if isinstance(nonzero_fraction, bool) or not isinstance(nonzero_fraction, int | float):
        raise TypeError(f"nonzero_fraction must be a number, got {nonzero_fraction!r}")
    if not 0.0 <= nonzero_fraction <= 1.0:
        raise ValueError(f"nonzero_fraction must be between 0 and 1, got {nonzero_fraction}")
    return nonzero_fraction


def _accumulator_bits(table: DesignTable, k: int) -> np.ndarray:
    needed = table.act_bits + int(k).bit_length()
    return np.where(table.acc_bits < 0, needed, table.acc_bits)


def _check_int64_range(table: DesignTable, n: int, k: int, tokens: int, tile_bytes) -> None:
    """Raise ValueError where a design's cycles or stream products could pass 2**62.

    The check runs in float64 before any int64 product, with a factor of 4 to spare for
    rounding, so that no entry can wrap silently.
    """
    folds = np.floor(n / table.pe) * np.floor(k / table.simd)
    streamed = np.where(table.stream, (folds * tile_bytes + table.dram_burst_bytes), 0.0)
    product = streamed * table.clock_hz
    latency = np.where(table.stream, table.dram_latency_ns * table.clock_hz / 1e9, 0.0)
    cycles = latency + product / table.dram_bytes_per_s + tokens * folds + 64
    worst = max(float(np.max(product)), float(np.max(cycles)))
    if worst >= MAX_CYCLES / 4:
        raise ValueError(
            f"layer {n} x {k} over {tokens} vectors needs about {worst:.3e} cycles or "
            "bytes x Hz on some design, beyond the timing model's limit of 2**62; use fewer "
            "tokens or a smaller layer"
        )


def _stream_loads(table: DesignTable, folds: np.ndarray, tile_bytes: np.ndarray) -> dict:
    """Return the DRAM figures of each design's weight stream, as `sim.timing` defines them.

    Keys: ``latency`` (A), ``first`` (x_0, the arrival of tile 0 after the first data),
    ``transfer`` (M, that of the whole layer) and ``bursts`` (bursts read), all 0 for on-chip
    weights.
    """
    burst, clock, bandwidth = table.dram_burst_bytes, table.clock_hz, table.dram_bytes_per_s
    bursts = -(-(folds * tile_bytes) // burst)
    figures = {
        "latency": -(-(table.dram_latency_ns * clock) // 10**9),
        "first": -(-(-(-tile_bytes // burst) * burst * clock) // bandwidth),
        "transfer": -(-(bursts * burst * clock) // bandwidth),
        "bursts": bursts,
    }
    return {name: np.where(table.stream, value, 0) for name, value in figures.items()}


def evaluate_layer(
    table: DesignTable, n: int, k: int, tokens: int = 1, *, nonzero_fraction: float = 1.0
) -> dict:
    """Model one run of an N x K layer over ``tokens`` vectors on every design of ``table``.

    The formulas are those of `sim.timing` (see its module docstring): F = (N / PE)(K / SIMD)
    folds, A cycles of DRAM latency, x_0 and M the arrivals of the first tile and of the whole
    layer after the first data (0 on chip), D the pipeline depth, and
    cycles = max(A + x_0 + T F, A + M + T) + D. That equals the engine's schedule where the
    `sim.timing` docstring says so and bounds it from below elsewhere.
    Energy follows `sim.energy.layer_energy_j`.

    Parameters
    ----------
    table : DesignTable
        The designs.
    n, k : int
        Output rows and inputs.
    tokens : int
        Vectors in the run (T).
    nonzero_fraction : float
        Share of nonzero weights, as in `sim.estimate_layer`.

    Returns
    -------
    dict of numpy.ndarray
        One array of length N per key: ``runs`` (bool: PE divides N, SIMD divides K and the
        accumulator is wide enough; the other entries are meaningless where it is False),
        ``cycles``, ``compute_cycles``, ``memory_cycles``, ``stall_cycles``,
        ``pipeline_depth``, ``memory_bound`` (bool), ``time_s``, ``energy_j``,
        ``weight_bytes``, ``dram_bytes``, ``lane_ops``.

    Raises
    ------
    TypeError, ValueError
        If ``table`` is not a `DesignTable`, a size or ``tokens`` is not a positive int, or
        ``nonzero_fraction`` is outside [0, 1].
    """
    if not isinstance(table, DesignTable):
        raise TypeError(f"table must be a sim.analytical.DesignTable, got {type(table).__name__}")
    n, k = _check_size("n", n), _check_size("k", k)
    check_tokens(tokens)
    tokens = int(tokens)
    nonzero_fraction = _check_fraction(nonzero_fraction)

    pe, simd, group = table.pe, table.simd, table.group
    is_lut = table.datapath == DATAPATH_CODES["lut"]
    width = _accumulator_bits(table, k)
    needed = table.act_bits + k.bit_length()
    runs = (n % pe == 0) & (k % simd == 0) & (width >= needed) & (needed <= 32)

    codes = -(-(pe * simd) // table.code_weights)
    tile_bytes = -(-(codes * table.code_bits) // 8)
    _check_int64_range(table, n, k, tokens, tile_bytes)
    folds = (n // pe) * (k // simd)
    loads = _stream_loads(table, folds, tile_bytes)
    depth = np.where(is_lut, 4 + _bit_length(simd // group - 1), 3 + _bit_length(simd - 1))
    compute = tokens * folds
    memory = loads["latency"] + loads["transfer"]
    # The two terms of sim.timing's closed form: compute-bound and memory-bound.
    serial = loads["latency"] + loads["first"] + compute
    streamed = memory + tokens
    cycles = np.maximum(serial, streamed) + depth
    time_s = cycles / table.clock_hz

    weight_bytes = folds * tile_bytes
    dram_bytes = loads["bursts"] * table.dram_burst_bytes
    lane_ops = np.where(is_lut, tokens * n * (k // group), tokens * n * k)
    fraction = np.where(is_lut, 1.0 - (1.0 - nonzero_fraction) ** group, nonzero_fraction)
    skipped = np.round(lane_ops * fraction).astype(np.int64)
    lane_ops = np.where(table.zero_skip, skipped, lane_ops)

    # The terms and their order are those of sim.energy.layer_energy_j, so the sums agree
    # to the last bit.
    activation_bits = tokens * k * (n // pe) * table.act_bits
    accumulator_adds = tokens * n * (k // simd)
    is_xnor = table.datapath == DATAPATH_CODES["xnor"]
    lane_pj = np.where(is_xnor, energy.XNOR_LANE_PJ, energy.LANE_ADD_PJ)
    table_entries = np.where(is_lut, tokens * (n // pe) * (k // group) * (3**group - 1), 0)
    dynamic_pj = (
        dram_bytes * 8 * table.dram_pj_per_bit
        + (weight_bytes * 8 + activation_bits) * energy.SRAM_PJ_PER_BIT
        + lane_ops * lane_pj
        + accumulator_adds * energy.ACC_ADD_PJ
        + table_entries * energy.TABLE_ENTRY_PJ
    )
    energy_j = dynamic_pj * 1e-12 + table.static_power_w * time_s
    return {
        "runs": runs,
        "cycles": cycles,
        "compute_cycles": compute,
        "memory_cycles": memory,
        "stall_cycles": cycles - compute - depth,
        "pipeline_depth": depth,
        "memory_bound": streamed > serial,
        "time_s": time_s,
        "energy_j": energy_j,
        "weight_bytes": weight_bytes,
        "dram_bytes": dram_bytes,
        "lane_ops": lane_ops,
    }


# Whole models.


def _check_phase(config, phase: str, tokens: int, context) -> tuple[ModelConfig, int | None]:
    if isinstance(config, str):
        config = get_model(config)
    elif not isinstance(config, ModelConfig):
        raise TypeError(
            f"model must be a model name or a sim.ModelConfig, got {type(config).__name__}"
        )
    if not isinstance(phase, str) or phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    check_tokens(tokens)
    if phase == "decode" and tokens != 1:
        raise ValueError(
            f"tokens = {tokens} applies to prefill; decode costs one token at a time "
            "(set phase='prefill' or tokens=1)"
        )
    if phase == "prefill":
        if context is not None:
            raise ValueError(
                f"context = {context} applies to decode; a prefill of N tokens attends to "
                "contexts 1 .. N (leave context out)"
            )
        if config.family != "matmulfree" and tokens > config.max_context:
            raise ValueError(
                f"tokens ({tokens}) exceeds the max_context of {config.name} ({config.max_context})"
            )
    return config, context


def _host_dram_bytes(host: Host, config: ModelConfig, phase: str, tokens: int, context) -> int:
    """Return the bytes a host that shares the board's DRAM keeps there during the phase."""
    if not host.shares_board_dram:
        return 0
    return host_memory_bytes(config, context if phase == "decode" else tokens)


@dataclass(frozen=True)
class _Step:
    """One entry of a phase: a layer, the vectors its run takes and its summed host costs."""

    layer: Layer
    tokens: int
    host_bytes: int
    host_flops: int


def _phase_steps(config: ModelConfig, phase: str, tokens: int, context) -> list[_Step]:
    if phase == "decode":
        return [
            _Step(layer, 1, layer.bytes_read + layer.bytes_written, layer.flops)
            for layer in model_layers(config, context)
        ]
    # Host costs are linear in the context c (cost(c) = a + b c), so the sum over c = 1 .. N is
    # N cost(1) + b N (N - 1) / 2 with b = cost(2) - cost(1), exactly.
    first = model_layers(config, 1)
    second = model_layers(config, 2) if tokens > 1 else first
    last = model_layers(config, tokens) if tokens > 1 else first
    pairs = tokens * (tokens - 1) // 2
    steps = []
    for layer, later, final in zip(first, second, last, strict=True):
        if layer.name in _LAST_TOKEN_LAYERS:
            steps.append(_Step(final, 1, final.bytes_read + final.bytes_written, final.flops))
            continue
        bytes_1 = layer.bytes_read + layer.bytes_written
        bytes_2 = later.bytes_read + later.bytes_written
        host_bytes = tokens * bytes_1 + (bytes_2 - bytes_1) * pairs
        host_flops = tokens * layer.flops + (later.flops - layer.flops) * pairs
        steps.append(_Step(layer, tokens, host_bytes, host_flops))
    return steps


@dataclass(frozen=True)
class ModelLayerRun:
    """One layer of a `ModelRun`.

    Attributes
    ----------
    name, kind : str
        As `sim.Layer`: ``"ternary"`` (on the accelerator) or ``"host"``.
    out_features, in_features : int
        N and K of a matrix layer (0 for host steps that are not matrix products).
    tokens : int
        Vectors the layer runs on in this phase.
    cycles : int or None
        Accelerator cycles; None for a host layer.
    bound : str
        ``"compute"`` or ``"memory"`` for a ternary layer, ``"host"`` for a host layer.
    time_s, energy_j : float
        Modelled time and energy of the layer in this phase.
    dram_bytes : int
        Weight bytes the accelerator streams from DRAM (0 on chip and for host layers).
    host_bytes, host_flops : int
        Bytes and operations of a host layer (0 for a ternary layer).
    """

    name: str
    kind: str
    out_features: int
    in_features: int
    tokens: int
    cycles: int | None
    bound: str
    time_s: float
    energy_j: float
    dram_bytes: int
    host_bytes: int
    host_flops: int

    def to_dict(self) -> dict:
        """Return the entry as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelRun:
    """The modelled cost of one phase of a model on a design: per layer and in total.

    Attributes
    ----------
    model, board, phase, host : str
        What was costed, where, and on which host processor.
    tokens : int
        Tokens of the phase (1 for decode, N for prefill).
    context : int or None
        KV cache length of a decode token (None for prefill).
    design : dict
        `Design.to_dict`.
    layers : tuple of ModelLayerRun
        Every step, in execution order.
    cycles : int
        Accelerator cycles, summed over the ternary layers.
    accelerator_time_s, host_time_s, time_s : float
        Time on the accelerator, on the host, and both (they run one after the other).
    tokens_per_s : float
        ``tokens / time_s``: decode throughput, or prompt tokens per second of a prefill.
    accelerator_energy_j, host_energy_j, energy_j : float
        Energy of the phase.
    energy_j_per_token : float
        ``energy_j / tokens``.
    dram_bytes_read : int
        Weight bytes streamed from DRAM in the phase.
    resources : Resources
        What the design needs to hold the model (`sim.resources.design_resources`); its
        ``dram_bytes`` include the host's weights and cache when the host shares the board's
        DRAM (`Host.shares_board_dram`).
    fit : FitReport
        The needs against the board's capacity.
    """

    model: str
    board: str
    phase: str
    host: str
    tokens: int
    context: int | None
    design: dict
    layers: tuple
    cycles: int
    accelerator_time_s: float
    host_time_s: float
    time_s: float
    tokens_per_s: float
    accelerator_energy_j: float
    host_energy_j: float
    energy_j: float
    energy_j_per_token: float
    dram_bytes_read: int
    resources: Resources
    fit: FitReport

    @property
    def fits(self) -> bool:
        """Whether the design fits its board with this model."""
        return self.fit.fits

    def to_dict(self) -> dict:
        """Return the run as a JSON-ready dict (one object, as ``onebit simulate --json``)."""
        fields = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in ("layers", "resources", "fit")
        }
        fields["fits"] = self.fits
        fields["resources"] = self.resources.to_dict()
        fields["fit"] = self.fit.to_dict()
        fields["layers"] = [layer.to_dict() for layer in self.layers]
        return fields


def simulate_model(
    design: Design,
    model: "str | ModelConfig",
    phase: str = "decode",
    tokens: int = 1,
    context: int | None = None,
    *,
    host: "str | Host | None" = None,
    nonzero_fraction: float = 1.0,
) -> ModelRun:
    """Cost one phase of ``model`` on ``design``: every layer, the totals and the fit.

    Ternary layers are costed with `sim.estimate_layer`, the engine's timing-only mode, which
    steps each distinct layer shape fold by fold; host layers on the host roofline (see the
    module docstring).

    Parameters
    ----------
    design : Design
        An ``mvu`` design; its PE and SIMD must divide every ternary layer.
    model : str or ModelConfig
        A catalogue name (`sim.MODELS`) or a configuration.
    phase : {"decode", "prefill"}
        One decode token, or a prefill of ``tokens`` prompt tokens.
    tokens : int
        Prompt tokens of a prefill; must be 1 for decode.
    context : int or None
        KV cache length of the decode token (None: the model's max_context); must be None
        for prefill.
    host : str, Host or None
        The host processor; None takes the board's default (`BOARD_HOSTS`).
    nonzero_fraction : float
        Share of nonzero weights, for the energy of zero-skipping designs.

    Returns
    -------
    ModelRun
        It reports the fit rather than raising, so designs that do not fit can still be
        compared; call `ModelRun.fit.raise_if_not_fits` to reject them.

    Raises
    ------
    TypeError, ValueError
        If an argument is invalid, or the design cannot run a layer (PE or SIMD not dividing
        it, accumulator too narrow); the message names the layer.
    NotImplementedError
        For a ``systolic`` design.
    """
    if not isinstance(design, Design):
        raise TypeError(f"design must be a sim.Design, got {type(design).__name__}")
    if design.array != "mvu":
        raise NotImplementedError(
            f"simulate_model covers Design.array = 'mvu' only, got {design.array!r}"
        )
    config, context = _check_phase(model, phase, tokens, context)
    nonzero_fraction = _check_fraction(nonzero_fraction)
    host = get_host(host, design.board.name)
    steps = _phase_steps(config, phase, tokens, context)

    entries = []
    runs_by_shape = {}
    for step in steps:
        layer = step.layer
        if layer.kind == "host":
            seconds = host.seconds(step.host_bytes, step.host_flops)
            entries.append(
                ModelLayerRun(
                    name=layer.name,
                    kind="host",
                    out_features=layer.out_features,
                    in_features=layer.in_features,
                    tokens=step.tokens,
                    cycles=None,
                    bound="host",
                    time_s=seconds,
                    energy_j=host.power_w * seconds,
                    dram_bytes=0,
                    host_bytes=step.host_bytes,
                    host_flops=step.host_flops,
                )
            )
            continue
        # Equal shapes step the same schedule, so each distinct shape is stepped once.
        shape = (layer.out_features, layer.in_features, step.tokens)
        run = runs_by_shape.get(shape)
        if run is None:
            try:
                run = estimate_layer(
                    design, *shape, nonzero_fraction=nonzero_fraction, check_capacity=False
                )
            except ValueError as error:
                raise ValueError(
                    f"layer {layer.name!r} ({layer.out_features} x {layer.in_features}): {error}"
                ) from None
            runs_by_shape[shape] = run
        entries.append(
            ModelLayerRun(
                name=layer.name,
                kind="ternary",
                out_features=layer.out_features,
                in_features=layer.in_features,
                tokens=step.tokens,
                cycles=run.cycles,
                bound=run.bound,
                time_s=run.time_s,
                energy_j=run.energy_j,
                dram_bytes=run.dram_bytes,
                host_bytes=0,
                host_flops=0,
            )
        )

    ternary = [entry for entry in entries if entry.kind == "ternary"]
    hosted = [entry for entry in entries if entry.kind == "host"]
    accelerator_time = math.fsum(entry.time_s for entry in ternary)
    host_time = math.fsum(entry.time_s for entry in hosted)
    accelerator_energy = math.fsum(entry.energy_j for entry in ternary)
    host_energy = math.fsum(entry.energy_j for entry in hosted)
    time_s = accelerator_time + host_time
    total_energy = accelerator_energy + host_energy
    host_dram = _host_dram_bytes(host, config, phase, tokens, context)
    report = fit_report(
        design, [entry.layer for entry in steps], tokens=tokens, host_dram_bytes=host_dram
    )
    decode_context = None
    if phase == "decode":
        decode_context = config.max_context if context is None else context
    return ModelRun(
        model=config.name,
        board=design.board.name,
        phase=phase,
        host=host.name,
        tokens=tokens,
        context=decode_context,
        design=design.to_dict(),
        layers=tuple(entries),
        cycles=sum(entry.cycles for entry in ternary),
        accelerator_time_s=accelerator_time,
        host_time_s=host_time,
        time_s=time_s,
        tokens_per_s=tokens / time_s,
        accelerator_energy_j=accelerator_energy,
        host_energy_j=host_energy,
        energy_j=total_energy,
        energy_j_per_token=total_energy / tokens,
        dram_bytes_read=sum(entry.dram_bytes for entry in ternary),
        resources=report.need,
        fit=report,
    )


def evaluate_model(
    table: "DesignTable | Sequence[Design]",
    model: "str | ModelConfig",
    phase: str = "decode",
    tokens: int = 1,
    context: int | None = None,
    *,
    host: "str | Host | None" = None,
    nonzero_fraction: float = 1.0,
) -> dict:
    """Cost one phase of ``model`` on every design of ``table`` at once.

    The arguments are those of `simulate_model`, with many designs. Equal layer shapes are
    costed once and weighted by their count, so a model costs a few dozen array operations.

    Returns
    -------
    dict of numpy.ndarray
        One array of length N per key: ``runs`` (every ternary layer can run), ``fits``
        (``runs`` and every resource within the board's capacity), ``cycles``,
        ``accelerator_time_s``, ``host_time_s``, ``time_s``, ``tokens_per_s``,
        ``accelerator_energy_j``, ``host_energy_j``, ``energy_j``, ``energy_j_per_token``,
        ``dram_bytes_read`` (weights streamed in the phase), and the needs ``lut``, ``ff``,
        ``dsp``, ``onchip_bytes`` and ``dram_bytes`` (weights stored in DRAM). Where
        ``runs`` is False the timing entries are meaningless. ``dram_bytes_read`` and the
        resources equal `simulate_model`'s exactly. ``cycles`` equal them exactly where every
        layer meets the conditions of `evaluate_layer` and bound them from below elsewhere.
        Float sums may also differ in the last bits, because they add in another order.

    Raises
    ------
    TypeError, ValueError, NotImplementedError
        As `DesignTable.from_designs` and `simulate_model`.
    """
    if not isinstance(table, DesignTable):
        table = DesignTable.from_designs(table)
    config, context = _check_phase(model, phase, tokens, context)
    nonzero_fraction = _check_fraction(nonzero_fraction)
    steps = _phase_steps(config, phase, tokens, context)
    size = len(table)

    # Ternary layers, grouped by (N, K, vectors).
    shapes: dict[tuple[int, int, int], int] = {}
    host_steps = []
    for step in steps:
        if step.layer.kind == "ternary":
            key = (step.layer.out_features, step.layer.in_features, step.tokens)
            shapes[key] = shapes.get(key, 0) + 1
        else:
            host_steps.append(step)
    runs = np.ones(size, dtype=bool)
    cycles = np.zeros(size, dtype=np.int64)
    accelerator_time = np.zeros(size)
    accelerator_energy = np.zeros(size)
    dram_bytes = np.zeros(size, dtype=np.int64)
    resident_bytes = np.zeros(size, dtype=np.int64)
    cycles_bound = np.zeros(size)
    for (n, k, vectors), count in shapes.items():
        layer = evaluate_layer(table, n, k, vectors, nonzero_fraction=nonzero_fraction)
        runs &= layer["runs"]
        cycles_bound += count * layer["cycles"].astype(np.float64)
        if np.max(cycles_bound, initial=0.0) >= MAX_CYCLES / 4:
            raise ValueError(
                f"{config.name} ({phase}, {tokens} tokens) needs about "
                f"{np.max(cycles_bound):.3e} cycles on some design, beyond the timing model's "
                "limit of 2**62; use fewer tokens"
            )
        cycles += count * layer["cycles"]
        accelerator_time += count * layer["time_s"]
        accelerator_energy += count * layer["energy_j"]
        dram_bytes += count * layer["dram_bytes"]
        resident_bytes += np.where(layer["runs"], count * layer["weight_bytes"], 0)

    # Host layers, per distinct host.
    host_time = np.zeros(size)
    host_energy = np.zeros(size)
    host_dram = np.zeros(size, dtype=np.int64)
    host_names = [get_host(host, board).name for board in table.board_names]
    for name in sorted(set(host_names)):
        chosen = HOSTS[name] if not isinstance(host, Host) else host
        seconds = math.fsum(chosen.seconds(s.host_bytes, s.host_flops) for s in host_steps)
        mask = np.array([entry == name for entry in host_names])
        host_time[mask] = seconds
        host_energy[mask] = chosen.power_w * seconds
        host_dram[mask] = _host_dram_bytes(chosen, config, phase, tokens, context)

    # Resources, as sim.resources.design_resources.
    ternary_k = [k for (_, k, _) in shapes]
    max_k = max(ternary_k, default=None)
    if max_k is None:
        # No ternary layer: one fold's inputs, as sim.resources.design_resources sizes them.
        max_k_array = table.simd
        derived = table.act_bits + _bit_length(table.simd)
        acc_bits = np.where(table.acc_bits < 0, derived, table.acc_bits)
    else:
        max_k_array = np.full(size, max_k, dtype=np.int64)
        acc_bits = np.max([_accumulator_bits(table, k) for k in ternary_k], axis=0)
    logic = logic_resources(
        table.datapath,
        table.pe,
        table.simd,
        table.act_bits,
        acc_bits,
        table.group,
        table.lut_inputs,
    )
    codes = -(-(table.pe * table.simd) // table.code_weights)
    tile_bytes = -(-(codes * table.code_bits) // 8)
    weight_bytes = np.where(table.stream, WEIGHT_BUFFERS * tile_bytes, resident_bytes)
    dram_weight_bytes = np.where(table.stream, resident_bytes, 0)
    buffer_bytes = -(-(tokens * max_k_array * table.act_bits) // 8)
    if tokens > 1:
        buffer_bytes = buffer_bytes + -(-(tokens * table.pe * acc_bits) // 8)
    dram_weight_bytes = dram_weight_bytes + host_dram
    need = {
        "lut": logic["lut"],
        "ff": logic["ff"],
        "dsp": logic["dsp"],
        "onchip_bytes": weight_bytes + buffer_bytes,
        "dram_bytes": dram_weight_bytes,
    }
    fits = runs.copy()
    for name in RESOURCE_NAMES:
        fits &= need[name] <= getattr(table, name)

    time_s = accelerator_time + host_time
    total_energy = accelerator_energy + host_energy
    return {
        "runs": runs,
        "fits": fits,
        "cycles": cycles,
        "accelerator_time_s": accelerator_time,
        "host_time_s": host_time,
        "time_s": time_s,
        "tokens_per_s": tokens / time_s,
        "accelerator_energy_j": accelerator_energy,
        "host_energy_j": host_energy,
        "energy_j": total_energy,
        "energy_j_per_token": total_energy / tokens,
        "dram_bytes_read": dram_bytes,
        **need,
    }
