import random
import re

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator

from rtl.requant import Requantizer, requantize_parameters, requantize_reference
from rtl.testing import stream_get, stream_put


def naive_requantize(acc: int, multiplier: int, shift: int) -> int:
    """Round half to even with Python's exact rational arithmetic, then clamp."""
    from fractions import Fraction

    value = Fraction(acc * multiplier, 2**shift)
    floor = value.numerator // value.denominator
    rest = value - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        floor += 1
    return max(-128, min(127, floor))


def simulate(lanes, beats, multiplier, shift, seed, stall):
    dut = Requantizer(lanes)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    rng = random.Random(seed)
    results = {}

    async def producer(ctx):
        ctx.set(dut.multiplier, multiplier)
        ctx.set(dut.shift, shift)
        payloads = [
            {"data": list(row), "first": index == 0, "last": index == len(beats) - 1}
            for index, row in enumerate(beats)
        ]
        await stream_put(ctx, dut.acc, payloads, rng=rng, idle=stall)

    async def consumer(ctx):
        results["out"], _ = await stream_get(ctx, dut.out, len(beats), rng=rng, stall=stall)

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return results["out"]


@pytest.mark.parametrize(
    ("multiplier", "shift", "stall"), [(1, 0, 0.0), (3, 2, 0.3), (40000, 20, 0.5), (65535, 47, 0.2)]
)
def test_requantizer_matches_reference(multiplier, shift, stall):
    rng = np.random.default_rng(shift)
    lanes = 3
    beats = rng.integers(-(2**31), 2**31, size=(12, lanes), dtype=np.int64)
    # Ties and small values, where rounding half to even matters.
    beats[0] = [2, -2, 6]
    beats[1] = [0, 1, -1]
    out = simulate(lanes, beats.tolist(), multiplier, shift, seed=shift, stall=stall)
    got = np.array([[int(value) for value in beat.data] for beat in out], dtype=np.int64)
    expected = requantize_reference(torch.from_numpy(beats), multiplier, shift).numpy()
    np.testing.assert_array_equal(got, expected)
    assert [bool(beat.first) for beat in out] == [True] + [False] * 11
    assert [bool(beat.last) for beat in out] == [False] * 11 + [True]


def test_reference_matches_exact_rounding():
    rng = np.random.default_rng(5)
    for _ in range(300):
        acc = int(rng.integers(-(2**31), 2**31))
        multiplier = int(rng.integers(0, 2**16))
        shift = int(rng.integers(0, 48))
        got = int(requantize_reference(torch.tensor([acc]), multiplier, shift)[0])
        assert got == naive_requantize(acc, multiplier, shift), (acc, multiplier, shift)
    for acc, shift in [(1, 1), (3, 1), (-1, 1), (-3, 1), (5, 2), (6, 2)]:
        got = int(requantize_reference(torch.tensor([acc]), 1, shift)[0])
        assert got == naive_requantize(acc, 1, shift)


def test_requantize_parameters_round_trip():
    multiplier, shift = requantize_parameters(0.0123)
    assert multiplier < 2**16
    assert multiplier >= 2**15
    assert abs(multiplier / 2**shift - 0.0123) <= 2 ** -(shift + 1)


def test_requantize_parameters_rejects_bad_scale():
    with pytest.raises(ValueError, match="scale must be positive and finite, got -1.0"):
        requantize_parameters(-1.0)
    with pytest.raises(ValueError, match=re.escape("scale 1e-20 is outside the range")):
        requantize_parameters(1e-20)


def test_reference_rejects_bad_shift():
    with pytest.raises(ValueError, match="shift must be between 0 and 47, got 48"):
        requantize_reference(torch.tensor([1]), 1, 48)


def test_requantizer_rejects_bad_lanes():
    with pytest.raises(ValueError, match="lanes must be >= 1, got 0"):
        Requantizer(0)
    with pytest.raises(TypeError, match="lanes must be an int, got str"):
        Requantizer("4")
