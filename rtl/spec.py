"""`UnitSpec`: a `sim.Design` and a layer shape checked for the RTL, with the stream formats.

The generated matrix-vector unit (`rtl.MatrixVectorUnit`) runs one fixed N x K layer over T
vectors per run. Everything the generator needs is validated here, before any Amaranth code is
elaborated, and every rejection names the field and its value.

Stream formats (all integers little-endian inside a payload; the payload is the struct
``{data, first, last}`` with ``data`` in the low bits):

weights
    F = (N / PE)(K / SIMD) beats, tile f = i (K / SIMD) + j holding rows i PE .. (i+1) PE - 1 and
    inputs j SIMD .. (j+1) SIMD - 1. Weight (p, l) of a tile sits at bit b (p SIMD + l), b bits
    wide: the 2-bit code w + 1 of `kernels.pack_weights` for ``ternary`` (0 is -1, 1 is 0, 2 is
    +1), one bit (1 for +1, 0 for -1) for ``xnor``.
act
    (K / SIMD) T beats per run, column group major: beat j T + t holds inputs
    j SIMD .. (j+1) SIMD - 1 of vector t, lane l at bits a l .. a l + a - 1 in two's complement
    (a = act_bits; ``xnor``: one bit per lane, 1 for +1). ``first`` marks beat 0, ``last`` the
    final beat. The unit consumes one beat per cycle while it computes the first row group and
    reuses its buffered copy for the others, so no beat waits for the whole vector.
acc
    (N / PE) T beats per run, beat i T + t holding the int32 accumulators of rows
    i PE .. (i+1) PE - 1 of vector t, row p at bits 32 p .. 32 p + 31.
"""

from dataclasses import dataclass

import numpy as np

from sim.design import Design
from sim.timing import estimate_layer, pipeline_depth

__all__ = ["MAX_TOKENS", "OUTPUT_BITS", "RTL_DATAPATHS", "RTL_WEIGHT_FORMATS", "UnitSpec"]

MAX_TOKENS = 4096
"""Largest number of vectors per run that a generated unit accepts."""

RTL_DATAPATHS = ("ternary", "xnor")
"""Datapaths the RTL generator builds."""

RTL_WEIGHT_FORMATS = {"ternary": ("2bit", "hf", "i2_s"), "xnor": ("binary",)}
"""Weight formats per datapath whose code the on-chip memory stores as is (2 bits or 1 bit)."""

OUTPUT_BITS = 32
"""Width of each accumulator on the output stream: int32, as `kernels.ternary_matmul` returns."""

_WEIGHT_BITS = {"ternary": 2, "xnor": 1}


@dataclass(frozen=True)
class UnitSpec:
    """A design and a layer shape that the RTL generator can build, with derived sizes.

    Parameters
    ----------
    design : sim.Design
        An ``mvu`` design with datapath ``ternary`` or ``xnor`` and ``weight_store="onchip"``.
    n, k : int
        Output rows and inputs of the layer; PE must divide N and SIMD must divide K.
    tokens : int
        Vectors per run, T (1 for decode).

    Raises
    ------
    TypeError
        If ``design`` is not a `sim.Design` or a size is not an int.
    ValueError
        If the design keeps its weights in DRAM, uses a weight format whose codes the unit does
        not store, or cannot run the layer (see `sim.Design.check_layer`).
    NotImplementedError
        For a ``systolic`` array or the ``lut`` datapath, which have no RTL yet.

    Notes
    -----
    ``zero_skip`` is accepted: the generated lanes are not clock-gated, so it changes neither
    the outputs nor the cycles, only the energy that sim/ estimates.
    """

    design: Design
    n: int
    k: int
    tokens: int = 1

    def __post_init__(self) -> None:
        design = self.design
        if not isinstance(design, Design):
            raise TypeError(f"design must be a sim.Design, got {type(design).__name__}")
        if design.array != "mvu":
            raise NotImplementedError(
                f"Design.array = {design.array!r} has no RTL generator; the RTL builds "
                "Design.array = 'mvu'"
            )
        if design.datapath not in RTL_DATAPATHS:
            raise NotImplementedError(
                f"Design.datapath = {design.datapath!r} has no RTL generator yet; the RTL builds "
                f"{', '.join(RTL_DATAPATHS)}"
            )
        if design.weight_store != "onchip":
            raise ValueError(
                f"Design.weight_store = {design.weight_store!r} is not supported by the RTL, "
                "which keeps the layer's weights in on-chip memory: set weight_store=onchip"
            )
        formats = RTL_WEIGHT_FORMATS[design.datapath]
        if design.weight_format not in formats:
            raise ValueError(
                f"Design.weight_format = {design.weight_format!r} is not stored by the RTL's "
                f"weight memory; for datapath {design.datapath!r} use one of {', '.join(formats)}"
            )
        for name in ("n", "k", "tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
            object.__setattr__(self, name, int(value))
        if self.tokens > MAX_TOKENS:
            raise ValueError(
                f"tokens must be at most {MAX_TOKENS}, got {self.tokens}: the unit keeps a run's "
                "activation vectors in on-chip memory, whose size grows with tokens"
            )
        design.check_layer(self.n, self.k)

    @property
    def pe(self) -> int:
        """Output rows per fold, PE."""
        return self.design.pe

    @property
    def simd(self) -> int:
        """Input lanes per fold, SIMD."""
        return self.design.simd

    @property
    def row_groups(self) -> int:
        """N / PE."""
        return self.n // self.design.pe

    @property
    def col_groups(self) -> int:
        """K / SIMD."""
        return self.k // self.design.simd

    @property
    def folds(self) -> int:
        """F = (N / PE)(K / SIMD), the weight tiles and the depth of the weight memory."""
        return self.row_groups * self.col_groups

    @property
    def weight_bits(self) -> int:
        """Bits per weight in the weight memory: 2 for ``ternary``, 1 for ``xnor``."""
        return _WEIGHT_BITS[self.design.datapath]

    @property
    def act_bits(self) -> int:
        """Bits per activation lane on the ``act`` stream."""
        return self.design.act_bits

    @property
    def acc_bits(self) -> int:
        """Width of the internal accumulators, `sim.Design.accumulator_bits` of K."""
        return self.design.accumulator_bits(self.k)

    @property
    def tree_levels(self) -> int:
        """Levels of the adder tree over the SIMD lanes, ceil(log2 SIMD)."""
        return (self.design.simd - 1).bit_length()

    @property
    def depth(self) -> int:
        """Pipeline depth D, equal to `sim.pipeline_depth` of the design."""
        return pipeline_depth(self.design)

    @property
    def act_beats(self) -> int:
        """Beats on the ``act`` stream per run: (K / SIMD) T."""
        return self.col_groups * self.tokens

    @property
    def acc_beats(self) -> int:
        """Beats on the ``acc`` stream per run: (N / PE) T."""
        return self.row_groups * self.tokens

    def predicted_cycles(self) -> int:
        """Return sim's cycles for one run, `sim.estimate_layer` (T F + D for on-chip weights)."""
        return estimate_layer(self.design, self.n, self.k, tokens=self.tokens).cycles

    def to_dict(self) -> dict:
        """Return the unit's parameters and derived sizes as a JSON-ready dict."""
        return {
            "design": self.design.to_dict(),
            "n": self.n,
            "k": self.k,
            "tokens": self.tokens,
            "folds": self.folds,
            "acc_bits": self.acc_bits,
            "pipeline_depth": self.depth,
            "act_beats": self.act_beats,
            "acc_beats": self.acc_beats,
            "predicted_cycles": self.predicted_cycles(),
        }

    def pack_weights(self, w_q: np.ndarray) -> list[int]:
        """Pack int8 weight codes ``[N, K]`` into the F words of the ``weights`` stream.

        Raises
        ------
        ValueError
            If the shape is not ``[N, K]`` or a code is not one the datapath takes.
        """
        w_q = np.asarray(w_q)
        if w_q.shape != (self.n, self.k):
            raise ValueError(f"weights must have shape [{self.n}, {self.k}], got {w_q.shape}")
        if self.design.datapath == "xnor":
            if not np.isin(w_q, (-1, 1)).all():
                raise ValueError("weights must hold binary codes in {-1, +1} for datapath 'xnor'")
            codes = (w_q > 0).astype(np.int64)
        else:
            if not np.isin(w_q, (-1, 0, 1)).all():
                raise ValueError("weights must hold ternary codes in {-1, 0, 1}")
            codes = w_q.astype(np.int64) + 1
        pe, simd = self.pe, self.simd
        # [N, K] -> [N/PE, PE, K/SIMD, SIMD] -> [N/PE, K/SIMD, PE * SIMD]: one row per tile.
        tiles = codes.reshape(self.row_groups, pe, self.col_groups, simd).transpose(0, 2, 1, 3)
        tiles = tiles.reshape(self.folds, pe * simd)
        return [_pack_fields(row, self.weight_bits) for row in tiles]

    def pack_activations(self, x_q: np.ndarray) -> list[int]:
        """Pack int8 activation codes ``[T, K]`` into the data words of one run's ``act`` beats.

        Raises
        ------
        ValueError
            If the shape is not ``[T, K]`` or a code is outside the activation range.
        """
        x_q = np.asarray(x_q)
        if x_q.shape != (self.tokens, self.k):
            raise ValueError(
                f"activations must have shape [{self.tokens}, {self.k}], got {x_q.shape}"
            )
        if self.design.datapath == "xnor":
            if not np.isin(x_q, (-1, 1)).all():
                raise ValueError(
                    "activations must hold binary codes in {-1, +1} for datapath 'xnor'"
                )
            fields, bits = (x_q > 0).astype(np.int64), 1
        else:
            high = 2 ** (self.act_bits - 1)
            if x_q.min() < -high or x_q.max() >= high:
                raise ValueError(
                    f"activations must be {self.act_bits}-bit codes in [{-high}, {high - 1}]"
                )
            bits = self.act_bits
            fields = x_q.astype(np.int64) & ((1 << bits) - 1)
        # [T, K] -> [T, K/SIMD, SIMD] -> [K/SIMD, T, SIMD]: column group major, as the unit reads.
        beats = fields.reshape(self.tokens, self.col_groups, self.simd).transpose(1, 0, 2)
        return [_pack_fields(row, bits) for row in beats.reshape(-1, self.simd)]

    def unpack_accumulators(self, words: list[int]) -> np.ndarray:
        """Unpack one run's ``acc`` data words into int32 accumulators ``[T, N]``.

        Raises
        ------
        ValueError
            If the number of words is not (N / PE) T.
        """
        if len(words) != self.acc_beats:
            raise ValueError(f"a run has {self.acc_beats} acc beats, got {len(words)} words")
        mask = (1 << OUTPUT_BITS) - 1
        out = np.empty((self.row_groups, self.tokens, self.pe), dtype=np.int64)
        for beat, word in enumerate(words):
            i, t = divmod(beat, self.tokens)
            for p in range(self.pe):
                value = (word >> (OUTPUT_BITS * p)) & mask
                out[i, t, p] = value - (1 << OUTPUT_BITS) if value >> (OUTPUT_BITS - 1) else value
        # [N/PE, T, PE] -> [T, N/PE, PE] -> [T, N]
        return out.transpose(1, 0, 2).reshape(self.tokens, self.n).astype(np.int32)


def _pack_fields(values: np.ndarray, bits: int) -> int:
    word = 0
    for index, value in enumerate(values.tolist()):
        word |= int(value) << (bits * index)
    return word
