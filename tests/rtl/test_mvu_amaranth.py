"""The matrix-vector unit in Amaranth's own simulator: quick checks that need no compiler.

The cocotb benches (test_mvu.py) check the emitted Verilog; these tests check the same
elaborated design, faster, including weight reloads and the framing error flag.
"""

import random

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator

import kernels
import sim
from rtl import MatrixVectorUnit, UnitSpec
from rtl.testing import stream_get, stream_put


def reference(datapath, x_q, w_q):
    x, w = torch.from_numpy(x_q), torch.from_numpy(w_q)
    if datapath == "xnor":
        return kernels.xnor_matmul(x, w).numpy()
    return kernels.ternary_matmul(x, w).numpy()


def framed(words, data_bits):
    # Raw payload words: data in the low bits, then first, then last.
    last = len(words) - 1
    return [
        word | (int(i == 0) << data_bits) | (int(i == last) << (data_bits + 1))
        for i, word in enumerate(words)
    ]


def act_bits(spec):
    return spec.simd * (1 if spec.design.datapath == "xnor" else spec.act_bits)


def weight_bits(spec):
    return spec.pe * spec.simd * spec.weight_bits


def run_unit(spec_text, n, k, tokens, runs, *, seed=0, idle=0.0, stall=0.0, weights=None):
    design = sim.Design.from_spec(spec_text, "icebreaker")
    dut = MatrixVectorUnit(design, n, k, tokens=tokens)
    spec = dut.spec
    rng = np.random.default_rng(seed)
    if weights is None:
        if design.datapath == "xnor":
            weights = np.where(rng.random((n, k)) < 0.5, -1, 1).astype(np.int8)
        else:
            weights = rng.integers(-1, 2, size=(n, k)).astype(np.int8)
    if design.datapath == "xnor":
        xs = [np.where(rng.random((tokens, k)) < 0.5, -1, 1).astype(np.int8) for _ in range(runs)]
    else:
        high = 2 ** (design.act_bits - 1)
        xs = [rng.integers(-high, high, size=(tokens, k)).astype(np.int8) for _ in range(runs)]
    act_words = []
    for x_q in xs:
        act_words += framed(spec.pack_activations(x_q), act_bits(spec))
    out = {}
    pace = random.Random(seed)

    async def producer(ctx):
        load = framed(spec.pack_weights(weights), weight_bits(spec))
        load_ticks = await stream_put(ctx, dut.weights, load)
        act_ticks = await stream_put(ctx, dut.act, act_words, rng=pace, idle=idle)
        out["act_ticks"] = [load_ticks[-1] + tick for tick in act_ticks]

    async def consumer(ctx):
        beats, ticks = await stream_get(ctx, dut.acc, runs * spec.acc_beats, rng=pace, stall=stall)
        out["beats"], out["acc_ticks"] = beats, ticks
        out["framing_error"] = ctx.get(dut.framing_error)

    simulator = Simulator(dut)
    simulator.add_clock(1e-6)
    simulator.add_testbench(producer)
    simulator.add_testbench(consumer)
    simulator.run()

    results = []
    for r, x_q in enumerate(xs):
        beats = out["beats"][r * spec.acc_beats : (r + 1) * spec.acc_beats]
        got = np.zeros((tokens, n), dtype=np.int64)
        for beat_index, beat in enumerate(beats):
            i, t = divmod(beat_index, tokens)
            got[t, i * spec.pe : (i + 1) * spec.pe] = [int(v) for v in beat.data]
            assert bool(beat.first) == (beat_index == 0)
            assert bool(beat.last) == (beat_index == spec.acc_beats - 1)
        first = out["act_ticks"][r * spec.act_beats]
        last = out["acc_ticks"][(r + 1) * spec.acc_beats - 1]
        results.append((got, reference(design.datapath, x_q, weights), last - first + 1))
    return spec, results, out["framing_error"]


@pytest.mark.parametrize(
    ("spec_text", "n", "k", "tokens"),
    [
        ("pe=2,simd=4", 4, 8, 2),
        ("pe=3,simd=3", 6, 9, 1),
        ("pe=1,simd=1", 1, 1, 1),
        ("pe=2,simd=2,act_bits=3", 2, 6, 3),
        ("datapath=xnor,pe=2,simd=5", 4, 10, 2),
    ],
)
def test_unit_full_rate_exact_and_timed(spec_text, n, k, tokens):
    spec, results, framing_error = run_unit(spec_text, n, k, tokens, runs=1)
    ((got, expected, cycles),) = results
    np.testing.assert_array_equal(got, expected)
    assert cycles == sim.estimate_layer(spec.design, n, k, tokens=tokens).cycles
    assert not framing_error


def test_unit_back_to_back_runs_with_stalls():
    spec, results, framing_error = run_unit("pe=2,simd=4", 6, 12, 2, runs=5, idle=0.3, stall=0.4)
    for got, expected, cycles in results:
        np.testing.assert_array_equal(got, expected)
        assert cycles >= spec.predicted_cycles()
    assert not framing_error


def test_unit_extreme_activations():
    # All weights -1 against -128: the largest positive sum, 128 K.
    weights = np.full((2, 16), -1, dtype=np.int8)
    design = sim.Design.from_spec("pe=2,simd=4", "icebreaker")
    assert UnitSpec(design, 2, 16).acc_bits == 8 + (16).bit_length()
    _, results, _ = run_unit("pe=2,simd=4", 2, 16, 1, runs=3, weights=weights, seed=3)
    for got, expected, _ in results:
        np.testing.assert_array_equal(got, expected)


def test_unit_flags_bad_framing():
    design = sim.Design.from_spec("pe=1,simd=2", "icebreaker")
    dut = MatrixVectorUnit(design, 1, 4)
    seen = {}

    async def bench(ctx):
        tiles = dut.spec.pack_weights(np.ones((1, 4), np.int8))
        await stream_put(ctx, dut.weights, framed(tiles, weight_bits(dut.spec)))
        seen["before"] = ctx.get(dut.framing_error)
        # Two act beats per run; the first lacks its first flag.
        words = dut.spec.pack_activations(np.ones((1, 4), np.int8))
        last_flag = 1 << (act_bits(dut.spec) + 1)
        await stream_put(ctx, dut.act, [words[0], words[1] | last_flag])
        seen["after"] = ctx.get(dut.framing_error)

    async def sink(ctx):
        await stream_get(ctx, dut.acc, 1)

    simulator = Simulator(dut)
    simulator.add_clock(1e-6)
    simulator.add_testbench(bench)
    simulator.add_testbench(sink)
    simulator.run()
    assert seen == {"before": 0, "after": 1}
