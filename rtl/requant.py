"""`Requantizer`: int32 accumulators to int8 codes with a fixed-point scale, for the next layer.

What is bit-exact against what
------------------------------
The RTL does not dequantize to float: `rtl.MatrixVectorUnit` returns the int32 accumulators,
which equal `kernels.ternary_matmul` (or `kernels.xnor_matmul`) exactly, and the host applies
`kernels.dequantize_output` to them, so the float outputs are those of kernels/ bit for bit.

For a chain of layers kept on chip, the requantizer maps each accumulator to an int8 code with
a static scale M / 2**S (M an unsigned integer below 2**16, S from 0 to 47):

    q = clamp(round(acc * M / 2**S), -128, 127),  round = half to even,

bit-exact against `requantize_reference`, which evaluates the same formula with
``torch.round`` in float64 (exact, since |acc M| < 2**47 < 2**53). This is a static
requantizer: BitNet's per-token absmax quantizer (`kernels.quantize_activations`) needs the
whole output vector and a float division, and it stays on the host.
"""

import torch
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.mvu import frame_layout
from rtl.spec import OUTPUT_BITS

__all__ = [
    "MAX_SHIFT",
    "MULTIPLIER_BITS",
    "Requantizer",
    "requantize_parameters",
    "requantize_reference",
]

MULTIPLIER_BITS = 16
"""Width of the unsigned multiplier M."""

MAX_SHIFT = 47
"""Largest right shift S; acc M has at most 32 + 16 = 48 bits."""

_PRODUCT_BITS = OUTPUT_BITS + MULTIPLIER_BITS + 1


def requantize_reference(acc: torch.Tensor, multiplier: int, shift: int) -> torch.Tensor:
    """Return clamp(round(acc * M / 2**S), -128, 127) as int8, rounding half to even."""
    _check_scale(multiplier, shift)
    scaled = acc.to(torch.float64) * multiplier / 2.0**shift
    return torch.clamp(torch.round(scaled), -128, 127).to(torch.int8)


def requantize_parameters(scale: float) -> tuple[int, int]:
    """Return (M, S) with M / 2**S closest to ``scale`` for the largest usable M.

    Raises
    ------
    ValueError
        If ``scale`` is not positive and finite, or too small or large for M and S.
    """
    if not (isinstance(scale, int | float) and 0.0 < scale < float("inf")):
        raise ValueError(f"scale must be positive and finite, got {scale!r}")
    for shift in range(MAX_SHIFT, -1, -1):
        multiplier = round(scale * 2**shift)
        if multiplier < 2**MULTIPLIER_BITS:
            if multiplier == 0:
                break
            return multiplier, shift
    raise ValueError(
        f"scale {scale!r} is outside the range of M / 2**S with M < 2**{MULTIPLIER_BITS} and "
        f"S <= {MAX_SHIFT}"
    )


def _check_scale(multiplier, shift) -> None:
    for name, value, high in (
        ("multiplier", multiplier, 2**MULTIPLIER_BITS - 1),
        ("shift", shift, MAX_SHIFT),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if not 0 <= value <= high:
            raise ValueError(f"{name} must be between 0 and {high}, got {value}")


class Requantizer(wiring.Component):
    """Scale, round and clamp a stream of int32 accumulator beats to int8 codes.

    Two pipeline stages (product, then rounding and clamping), with a global stall on output
    backpressure; ``first`` and ``last`` pass through unchanged.

    Parameters
    ----------
    lanes : int
        Accumulators per beat (PE of the unit it follows).

    Attributes
    ----------
    acc : In(stream.Signature(frame_layout(ArrayLayout(signed(32), lanes))))
    out : Out(stream.Signature(frame_layout(ArrayLayout(signed(8), lanes))))
    multiplier : In(unsigned(16))
        M; with ``shift``, held constant while beats are in flight.
    shift : In(range(48))
        S.
    """

    def __init__(self, lanes: int) -> None:
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            # A rejected block is never elaborated; spare the caller Amaranth's unused warning.
            self._MustUse__silence = True
            if isinstance(lanes, bool) or not isinstance(lanes, int):
                raise TypeError(f"lanes must be an int, got {type(lanes).__name__}")
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self._lanes = lanes
        super().__init__(
            {
                "acc": In(
                    stream.Signature(frame_layout(data.ArrayLayout(signed(OUTPUT_BITS), lanes)))
                ),
                "out": Out(stream.Signature(frame_layout(data.ArrayLayout(signed(8), lanes)))),
                "multiplier": In(unsigned(MULTIPLIER_BITS)),
                "shift": In(range(MAX_SHIFT + 1)),
            }
        )

    @property
    def lanes(self) -> int:
        """Accumulators per beat."""
        return self._lanes

    def elaborate(self, platform):
        m = Module()

        advance = Signal(name="advance")
        s1_valid = Signal(name="s1_valid")
        s1_first = Signal(name="s1_first")
        s1_last = Signal(name="s1_last")

        m.d.comb += [
            advance.eq(~self.out.valid | self.out.ready),
            self.acc.ready.eq(advance),
        ]

        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(self.acc.valid),
                s1_first.eq(self.acc.payload.first),
                s1_last.eq(self.acc.payload.last),
                self.out.valid.eq(s1_valid),
                self.out.payload.first.eq(s1_first),
                self.out.payload.last.eq(s1_last),
            ]

        for lane in range(self._lanes):
            product = Signal(signed(_PRODUCT_BITS), name=f"product_{lane}")
            floor = Signal(signed(_PRODUCT_BITS), name=f"floor_{lane}")
            remainder = Signal(unsigned(MAX_SHIFT + 1), name=f"remainder_{lane}")
            half = Signal(unsigned(MAX_SHIFT + 1), name=f"half_{lane}")
            rounded = Signal(signed(_PRODUCT_BITS), name=f"rounded_{lane}")
            round_up = Signal(name=f"round_up_{lane}")
            m.d.comb += [
                # Arithmetic shift: floor(product / 2**S) for negative products too.
                floor.eq(product >> self.shift),
                remainder.eq(product - (floor << self.shift)),
                half.eq((Const(1, unsigned(MAX_SHIFT + 1)) << self.shift) >> 1),
                # Half to even: up when above half, or exactly half with an odd floor.
                round_up.eq(
                    (self.shift != 0) & ((remainder > half) | ((remainder == half) & floor[0]))
                ),
                rounded.eq(floor + round_up),
            ]
            with m.If(advance):
                m.d.sync += product.eq(self.acc.payload.data[lane] * self.multiplier)
                m.d.sync += self.out.payload.data[lane].eq(
                    Mux(rounded > 127, 127, Mux(rounded < -128, -128, rounded))
                )

        return m
