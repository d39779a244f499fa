import dataclasses
import math
import re

import numpy as np
import pytest
import torch

import kernels
import sim
from tests.sim import stream_reference


def design_on(board="kv260", **fields):
    return sim.Design.from_spec(fields, board)


def random_layer(rng, n, k, tokens, act_bits=8):
    w_q = rng.integers(-1, 2, size=(n, k)).astype(np.int8)
    high = 2 ** (act_bits - 1)
    x_q = rng.integers(-high, high, size=(tokens, k)).astype(np.int8)
    return w_q, x_q


def reference(x_q, w_q):
    return kernels.ternary_matmul(torch.from_numpy(x_q), torch.from_numpy(w_q)).numpy()


def tile_bytes_of(design):
    """Bytes of a PE x SIMD tile, from the format's bits per weight, computed here independently."""
    bits = {"binary": 1, "lut2": 2, "lut3": 5 / 3, "2bit": 2, "base3": 8 / 5}
    return math.ceil(design.pe * design.simd * bits[design.weight_format] / 8)


def expected_schedule(design, n, k, tokens):
    """Return (cycles, memory cycles, DRAM bytes) of a run from `stream_reference`."""
    folds = (n // design.pe) * (k // design.simd)
    depth = expected_depth(design)
    if design.weight_store == "onchip":
        return folds * tokens + depth, 0, 0
    board = design.board
    schedule = stream_reference.stream(
        folds,
        tokens,
        tile_bytes_of(design),
        board.dram_burst_bytes,
        round(design.clock_mhz * 10**6),
        board.dram_bytes_per_s,
        board.dram_latency_ns,
    )
    memory = schedule.latency + schedule.stream_cycles
    return schedule.cycles + depth, memory, schedule.dram_bytes


SHAPES = [
    # (pe, simd, n, k, tokens)
    (1, 1, 3, 5, 1),
    (2, 4, 6, 8, 3),
    (16, 64, 384, 128, 1),
    (16, 64, 128, 384, 7),
    (4, 32, 64, 96, 16),
    (8, 16, 24, 48, 2),
]


@pytest.mark.parametrize(("pe", "simd", "n", "k", "tokens"), SHAPES)
@pytest.mark.parametrize("weight_store", ["stream", "onchip"])
def test_acc_matches_ternary_matmul(pe, simd, n, k, tokens, weight_store):
    rng = np.random.default_rng(n * 1000 + k + tokens)
    w_q, x_q = random_layer(rng, n, k, tokens)
    design = design_on(pe=pe, simd=simd, weight_store=weight_store)
    run = sim.run_layer(sim.prepare_layer(design, w_q, name="layer"), x_q)
    assert run.acc.dtype == np.int32
    assert run.acc.shape == (tokens, n)
    np.testing.assert_array_equal(run.acc, reference(x_q, w_q))
    assert run.name == "layer"
    assert run.tokens == tokens


def test_acc_extreme_values():
    # Every weight -1 against activations of -128 gives the largest sum, K * 128.
    n, k = 4, 256
    w_q = np.full((n, k), -1, dtype=np.int8)
    x_q = np.full((2, k), -128, dtype=np.int8)
    x_q[1] = 127
    run = sim.run_layer(sim.prepare_layer(design_on(pe=4, simd=64), w_q), x_q)
    np.testing.assert_array_equal(run.acc, reference(x_q, w_q))
    assert run.acc[0, 0] == k * 128


def test_acc_narrow_activations():
    rng = np.random.default_rng(7)
    w_q, x_q = random_layer(rng, 8, 16, 3, act_bits=4)
    design = design_on(pe=4, simd=8, act_bits=4)
    run = sim.run_layer(sim.prepare_layer(design, w_q), x_q)
    np.testing.assert_array_equal(run.acc, reference(x_q, w_q))


def test_program_reused_across_runs():
    rng = np.random.default_rng(3)
    w_q, _ = random_layer(rng, 32, 64, 1)
    program = sim.prepare_layer(design_on(pe=8, simd=16), w_q)
    for tokens in (1, 4, 1):
        _, x_q = random_layer(rng, 32, 64, tokens)
        np.testing.assert_array_equal(sim.run_layer(program, x_q).acc, reference(x_q, w_q))


def test_non_contiguous_activations():
    rng = np.random.default_rng(5)
    w_q, x_q = random_layer(rng, 16, 32, 6)
    program = sim.prepare_layer(design_on(pe=4, simd=8), w_q)
    strided = x_q[::2]
    np.testing.assert_array_equal(sim.run_layer(program, strided).acc, reference(strided, w_q))


# Boards and parallelism chosen so that each bound is hit. A 256-byte tile (pe=16, simd=64,
# 2-bit) is 4 DDR4 bursts of 64 bytes: 4 cycles at 300 MHz from 19.2 GB/s (KV260), 0.17 cycles
# from 460 GB/s (U280). 26 bytes (128 base3 weights) stream in 1.24 cycles at 100 MHz from
# 2.1 GB/s (Pynq-Z2), but tiles straddle 16-byte bursts, so arrivals come 1 or 2 cycles apart.
# The array is memory-bound when the stream takes longer than the T vectors of every tile.
TIMING_CASES = [
    ("kv260", {"pe": 16, "simd": 64}, 384, 128, 1, "memory"),
    ("kv260", {"pe": 16, "simd": 64}, 384, 128, 4, "compute"),
    ("kv260", {"pe": 16, "simd": 64}, 384, 128, 5, "compute"),
    ("kv260", {"pe": 16, "simd": 64}, 384, 128, 3, "memory"),
    ("u280", {"pe": 16, "simd": 64}, 384, 128, 1, "compute"),
    ("u280", {"pe": 128, "simd": 64}, 384, 128, 1, "memory"),
    ("pynq-z2", {"pe": 2, "simd": 8, "clock_mhz": 100.0}, 16, 32, 1, "compute"),
    ("pynq-z2", {"pe": 4, "simd": 32, "weight_format": "base3"}, 64, 128, 1, "memory"),
    ("pynq-z2", {"pe": 4, "simd": 32, "weight_format": "base3"}, 64, 128, 2, "compute"),
    ("pynq-z2", {"pe": 4, "simd": 32, "weight_format": "base3"}, 64, 128, 3, "compute"),
    ("kv260", {"pe": 16, "simd": 64, "weight_store": "onchip"}, 384, 128, 1, "compute"),
    ("u55c", {"pe": 8, "simd": 8, "weight_store": "onchip"}, 64, 64, 3, "compute"),
    ("zcu104", {"pe": 1, "simd": 1}, 3, 5, 1, "compute"),
]


@pytest.mark.parametrize(("board", "fields", "n", "k", "tokens", "bound"), TIMING_CASES)
def test_cycles_match_schedule(board, fields, n, k, tokens, bound):
    design = design_on(board, **fields)
    rng = np.random.default_rng(11)
    w_q, x_q = random_layer(rng, n, k, tokens)
    run = sim.run_layer(sim.prepare_layer(design, w_q), x_q)
    cycles, memory, dram_bytes = expected_schedule(design, n, k, tokens)
    folds = (n // design.pe) * (k // design.simd)
    depth = 3 + math.ceil(math.log2(design.simd))

    assert run.cycles == cycles
    assert run.bound == bound
    assert run.pipeline_depth == depth
    assert run.compute_cycles == folds * tokens
    assert run.memory_cycles == memory
    assert run.dram_bytes == dram_bytes
    assert run.stall_cycles == cycles - folds * tokens - depth
    assert run.time_s == pytest.approx(cycles / (design.clock_mhz * 1e6), rel=1e-12)


@pytest.mark.parametrize(("board", "fields", "n", "k", "tokens", "bound"), TIMING_CASES)
def test_estimate_equals_run(board, fields, n, k, tokens, bound):
    design = design_on(board, **fields)
    rng = np.random.default_rng(13)
    w_q, x_q = random_layer(rng, n, k, tokens)
    run = sim.run_layer(sim.prepare_layer(design, w_q), x_q)
    estimate = sim.estimate_layer(design, n, k, tokens=tokens)
    assert estimate.acc is None
    for field in ("cycles", "compute_cycles", "memory_cycles", "stall_cycles", "pipeline_depth"):
        assert getattr(estimate, field) == getattr(run, field), field
    assert estimate.bound == run.bound
    assert estimate.weight_bytes == run.weight_bytes
    assert estimate.dram_bytes == run.dram_bytes
    assert estimate.energy_j == pytest.approx(run.energy_j, rel=1e-12)


def test_estimate_equals_run_over_random_designs():
    rng = np.random.default_rng(17)
    boards = list(sim.BOARDS)
    for _ in range(60):
        pe = int(rng.choice([1, 2, 4, 8, 16]))
        simd = int(rng.choice([1, 2, 4, 8, 16, 32]))
        n, k = pe * int(rng.integers(1, 5)), simd * int(rng.integers(1, 5))
        tokens = int(rng.integers(1, 9))
        design = design_on(
            boards[int(rng.integers(len(boards)))],
            pe=pe,
            simd=simd,
            clock_mhz=float(rng.choice([50.0, 100.0, 300.0, 1000.0])),
            weight_format=str(rng.choice(["2bit", "base3"])),
        )
        w_q, x_q = random_layer(rng, n, k, tokens)
        run = sim.run_layer(sim.prepare_layer(design, w_q), x_q)
        assert sim.estimate_layer(design, n, k, tokens).cycles == run.cycles
        assert run.cycles == expected_schedule(design, n, k, tokens)[0]


def test_streamed_weights_read_once_per_run():
    design = design_on(pe=16, simd=64)
    single = sim.estimate_layer(design, 384, 128, tokens=1)
    batch = sim.estimate_layer(design, 384, 128, tokens=8)
    assert single.dram_bytes == batch.dram_bytes == 384 * 128 // 4
    assert sim.estimate_layer(design_on(weight_store="onchip"), 384, 128).dram_bytes == 0


def test_energy_components():
    # Rebuild the estimate from the documented terms: DRAM, on-chip reads, adds, static power.
    design = design_on("kv260", pe=16, simd=64)
    n, k, tokens = 384, 128, 2
    run = sim.estimate_layer(design, n, k, tokens=tokens)
    weight_bits = n * k * 2
    dram = weight_bits * design.board.dram_pj_per_bit
    onchip = (weight_bits + tokens * k * (n // 16) * 8) * sim.energy.SRAM_PJ_PER_BIT
    adds = tokens * n * k * sim.energy.LANE_ADD_PJ + tokens * n * (k // 64) * sim.energy.ACC_ADD_PJ
    static = design.board.static_power_w * run.time_s
    assert run.energy_j == pytest.approx((dram + onchip + adds) * 1e-12 + static, rel=1e-12)


def test_zero_skip_saves_energy_not_cycles():
    rng = np.random.default_rng(19)
    w_q, x_q = random_layer(rng, 64, 128, 1)
    w_q[:, ::2] = 0
    plain = sim.run_layer(sim.prepare_layer(design_on(pe=16, simd=64), w_q), x_q)
    skip_design = design_on(pe=16, simd=64, zero_skip=True)
    skipping = sim.run_layer(sim.prepare_layer(skip_design, w_q), x_q)
    assert skipping.cycles == plain.cycles
    np.testing.assert_array_equal(skipping.acc, plain.acc)
    saved = (64 * 128 - np.count_nonzero(w_q)) * sim.energy.LANE_ADD_PJ * 1e-12
    assert plain.energy_j - skipping.energy_j == pytest.approx(saved, rel=1e-9)
    fraction = np.count_nonzero(w_q) / w_q.size
    estimate = sim.estimate_layer(skip_design, 64, 128, nonzero_fraction=fraction)
    assert estimate.energy_j == pytest.approx(skipping.energy_j, rel=1e-12)


def test_prepare_layer_errors():
    design = design_on(pe=4, simd=8)
    good = np.zeros((8, 16), dtype=np.int8)
    with pytest.raises(TypeError, match=re.escape("weights must be a numpy.ndarray, got Tensor")):
        sim.prepare_layer(design, torch.zeros(8, 16, dtype=torch.int8))
    with pytest.raises(TypeError, match="weights must have dtype int8, got int32"):
        sim.prepare_layer(design, good.astype(np.int32))
    with pytest.raises(ValueError, match=re.escape("weights must be 2-D [N, K], got shape (8,)")):
        sim.prepare_layer(design, good[:, 0])
    bad = good.copy()
    bad[2, 3] = 2
    message = "weights must hold ternary codes in {-1, 0, 1}, found 2 at index (2, 3)"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.prepare_layer(design, bad)
    with pytest.raises(ValueError, match="Design.pe = 4 must divide the layer's N = 6"):
        sim.prepare_layer(design, good[:6])
    with pytest.raises(TypeError, match="design must be a sim.Design, got str"):
        sim.prepare_layer("kv260", good)


def test_run_layer_errors():
    program = sim.prepare_layer(design_on(pe=4, simd=8), np.zeros((8, 16), dtype=np.int8))
    x_q = np.zeros((1, 16), dtype=np.int8)
    with pytest.raises(TypeError, match="program must be a sim.LayerProgram, got ndarray"):
        sim.run_layer(x_q, x_q)
    with pytest.raises(TypeError, match="activations must be a numpy.ndarray, got list"):
        sim.run_layer(program, [[0] * 16])
    with pytest.raises(TypeError, match="activations must have dtype int8, got float32"):
        sim.run_layer(program, x_q.astype(np.float32))
    message = "activations must have shape [T, 16] with T >= 1 for layer of 8 x 16, got (1, 8)"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.run_layer(program, x_q[:, :8])
    with pytest.raises(ValueError, match=re.escape("got (0, 16)")):
        sim.run_layer(program, x_q[:0])
    with pytest.raises(ValueError, match=re.escape("got (16,)")):
        sim.run_layer(program, x_q[0])


def test_run_layer_rejects_codes_outside_act_bits():
    program = sim.prepare_layer(
        design_on(pe=4, simd=8, act_bits=4), np.zeros((8, 16), dtype=np.int8)
    )
    x_q = np.zeros((1, 16), dtype=np.int8)
    x_q[0, 3] = 8
    message = "activations must be 4-bit codes in [-8, 7], found values in [0, 8]"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.run_layer(program, x_q)


def test_estimate_layer_errors():
    design = design_on(pe=4, simd=8)
    with pytest.raises(ValueError, match="tokens must be >= 1, got 0"):
        sim.estimate_layer(design, 8, 16, tokens=0)
    with pytest.raises(TypeError, match="tokens must be an int, got float"):
        sim.estimate_layer(design, 8, 16, tokens=1.0)
    with pytest.raises(ValueError, match="nonzero_fraction must be between 0 and 1, got 1.5"):
        sim.estimate_layer(design, 8, 16, nonzero_fraction=1.5)
    with pytest.raises(TypeError, match="nonzero_fraction must be a number, got 'x'"):
        sim.estimate_layer(design, 8, 16, nonzero_fraction="x")
    with pytest.raises(TypeError, match="design must be a sim.Design, got NoneType"):
        sim.estimate_layer(None, 8, 16)
    with pytest.raises(ValueError, match="Design.simd = 8 must divide the layer's K = 12"):
        sim.estimate_layer(design, 8, 12)


def test_warm_up_runs():
    sim.warm_up()


# The xnor and lut datapaths.


def random_binary_layer(rng, n, k, tokens):
    w_b = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, k))
    a_b = rng.choice(np.array([-1, 1], dtype=np.int8), size=(tokens, k))
    return w_b, a_b


def naive_bipolar(a_b, w_b):
    """Bipolar dot products as agreements minus disagreements, counted one position at a time."""
    out = np.zeros((a_b.shape[0], w_b.shape[0]), dtype=np.int64)
    for t in range(a_b.shape[0]):
        for n in range(w_b.shape[0]):
            agree = int(np.sum(a_b[t] == w_b[n]))
            out[t, n] = agree - (w_b.shape[1] - agree)
    return out


@pytest.mark.parametrize(("pe", "simd", "n", "k", "tokens"), SHAPES)
def test_xnor_acc_matches_xnor_matmul(pe, simd, n, k, tokens):
    rng = np.random.default_rng(n * 100 + k)
    w_b, a_b = random_binary_layer(rng, n, k, tokens)
    design = design_on(datapath="xnor", pe=pe, simd=simd)
    run = sim.run_layer(sim.prepare_layer(design, w_b), a_b)
    expected = kernels.xnor_matmul(torch.from_numpy(a_b), torch.from_numpy(w_b)).numpy()
    assert run.acc.dtype == np.int32
    np.testing.assert_array_equal(run.acc, expected)
    np.testing.assert_array_equal(run.acc, naive_bipolar(a_b, w_b))


def test_xnor_binarized_weights():
    # Weights from kernels.binarize_weights, the BitNet rule, run as they come.
    torch.manual_seed(0)
    w_b, _ = kernels.binarize_weights(torch.randn(32, 64))
    rng = np.random.default_rng(1)
    _, a_b = random_binary_layer(rng, 32, 64, 2)
    program = sim.prepare_layer(design_on(datapath="xnor", pe=8, simd=16), w_b.numpy())
    expected = kernels.xnor_matmul(torch.from_numpy(a_b), w_b).numpy()
    np.testing.assert_array_equal(sim.run_layer(program, a_b).acc, expected)


LUT_SHAPES = [
    # (weight_format, pe, simd, n, k, tokens)
    ("lut2", 1, 2, 3, 4, 1),
    ("lut2", 4, 16, 8, 64, 3),
    ("lut2", 16, 64, 64, 128, 2),
    ("lut3", 2, 3, 4, 9, 2),
    ("lut3", 8, 48, 16, 96, 4),
]


@pytest.mark.parametrize(("weight_format", "pe", "simd", "n", "k", "tokens"), LUT_SHAPES)
def test_lut_acc_matches_ternary_matmul(weight_format, pe, simd, n, k, tokens):
    rng = np.random.default_rng(n + k + tokens)
    w_q, x_q = random_layer(rng, n, k, tokens)
    design = design_on(datapath="lut", weight_format=weight_format, pe=pe, simd=simd)
    run = sim.run_layer(sim.prepare_layer(design, w_q), x_q)
    np.testing.assert_array_equal(run.acc, reference(x_q, w_q))


def test_lut_acc_extreme_values():
    w_q = np.full((3, 96), -1, dtype=np.int8)
    x_q = np.full((1, 96), -128, dtype=np.int8)
    design = design_on(datapath="lut", weight_format="lut3", pe=3, simd=48)
    run = sim.run_layer(sim.prepare_layer(design, w_q), x_q)
    assert run.acc[0, 0] == 96 * 128


def expected_depth(design):
    if design.datapath == "lut":
        return 4 + math.ceil(math.log2(design.simd // design.group_size))
    return 3 + math.ceil(math.log2(design.simd))


@pytest.mark.parametrize(
    ("board", "fields"),
    [
        ("kv260", {"datapath": "xnor", "pe": 16, "simd": 64}),
        ("pynq-z2", {"datapath": "xnor", "pe": 8, "simd": 32}),
        ("kv260", {"datapath": "lut", "pe": 16, "simd": 64}),
        ("pynq-z2", {"datapath": "lut", "weight_format": "lut3", "pe": 4, "simd": 24}),
        ("ulx3s", {"datapath": "lut", "pe": 4, "simd": 8}),
        ("icebreaker", {"datapath": "lut", "pe": 2, "simd": 8}),
        ("icebreaker", {"pe": 2, "simd": 8}),
    ],
)
@pytest.mark.parametrize("tokens", [1, 2, 9])
def test_datapath_cycles_follow_fold_schedule(board, fields, tokens):
    design = design_on(board, **fields)
    n, k = 4 * design.pe, 3 * design.simd
    rng = np.random.default_rng(23)
    if design.datapath == "xnor":
        w_q, x_q = random_binary_layer(rng, n, k, tokens)
    else:
        w_q, x_q = random_layer(rng, n, k, tokens)
    run = sim.run_layer(sim.prepare_layer(design, w_q), x_q)
    cycles, memory, _ = expected_schedule(design, n, k, tokens)
    assert run.pipeline_depth == expected_depth(design)
    assert run.cycles == cycles
    assert run.memory_cycles == memory
    estimate = sim.estimate_layer(design, n, k, tokens)
    assert estimate.cycles == run.cycles
    assert estimate.energy_j == pytest.approx(run.energy_j, rel=1e-12)


def test_lut_zero_skip_counts_zero_groups():
    w_q = np.zeros((4, 8), dtype=np.int8)
    w_q[0, 0] = 1  # one nonzero weight: one nonzero group in row 0
    w_q[1, 2:4] = -1  # one group with two nonzero weights
    w_q[2, 5] = 1  # the second weight of group (4, 5)
    x_q = np.ones((1, 8), dtype=np.int8)
    plain = design_on(datapath="lut", pe=2, simd=4)
    skipping = design_on(datapath="lut", pe=2, simd=4, zero_skip=True)
    program = sim.prepare_layer(skipping, w_q)
    assert program.nonzero == 3
    saved = (4 * 8 // 2 - 3) * sim.energy.LANE_ADD_PJ * 1e-12
    plain_run = sim.run_layer(sim.prepare_layer(plain, w_q), x_q)
    skip_run = sim.run_layer(program, x_q)
    assert plain_run.energy_j - skip_run.energy_j == pytest.approx(saved, rel=1e-9)
    assert skip_run.cycles == plain_run.cycles


def test_xnor_energy_components():
    design = design_on("kv260", datapath="xnor", pe=16, simd=64)
    n, k = 64, 128
    run = sim.estimate_layer(design, n, k)
    weight_bits = n * k
    dram = weight_bits * design.board.dram_pj_per_bit
    onchip = (weight_bits + k * (n // 16) * 1) * sim.energy.SRAM_PJ_PER_BIT
    lanes = n * k * sim.energy.LANE_ADD_PJ / 8
    acc = n * (k // 64) * sim.energy.ACC_ADD_PJ
    static = design.board.static_power_w * run.time_s
    assert run.energy_j == pytest.approx((dram + onchip + lanes + acc) * 1e-12 + static, rel=1e-12)


def test_lut_energy_counts_table_builds():
    design = design_on("kv260", datapath="lut", weight_format="lut3", pe=8, simd=48)
    n, k, tokens = 16, 96, 2
    run = sim.estimate_layer(design, n, k, tokens)
    weight_bytes = (n // 8) * (k // 48) * math.ceil(8 * 48 / 3 * 5 / 8)
    # Four 80-byte tiles, 320 bytes, stream as five whole 64-byte DDR4 bursts.
    dram_bytes = 5 * 64
    dram = dram_bytes * 8 * design.board.dram_pj_per_bit
    onchip = (weight_bytes * 8 + tokens * k * (n // 8) * 8) * sim.energy.SRAM_PJ_PER_BIT
    lookups = tokens * n * (k // 3) * sim.energy.LANE_ADD_PJ
    tables = tokens * (n // 8) * (k // 3) * 26 * sim.energy.LANE_ADD_PJ
    acc = tokens * n * (k // 48) * sim.energy.ACC_ADD_PJ
    static = design.board.static_power_w * run.time_s
    expected = (dram + onchip + lookups + tables + acc) * 1e-12 + static
    assert run.energy_j == pytest.approx(expected, rel=1e-12)


def test_xnor_rejects_ternary_codes():
    design = design_on(datapath="xnor", pe=2, simd=4)
    w_q = np.ones((2, 4), dtype=np.int8)
    w_q[1, 2] = 0
    message = "weights must hold binary codes in {-1, +1} for datapath 'xnor', found 0 at index"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.prepare_layer(design, w_q)
    program = sim.prepare_layer(design, np.ones((2, 4), dtype=np.int8))
    x_q = np.array([[1, -1, 3, 1]], dtype=np.int8)
    message = (
        "activations must hold binary codes in {-1, +1} for datapath 'xnor', found 3 at index "
        "(0, 2)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.run_layer(program, x_q)


def test_xnor_accumulator_bits():
    # ±1 sums lie in [-K, K]: K = 4 needs 4 bits (up to 7), K = 3 needs 3 bits (up to 3).
    design = design_on(datapath="xnor")
    assert design.min_accumulator_bits(3) == 3
    assert design.min_accumulator_bits(4) == 4


def test_schedule_matches_reference_and_bound():
    # The stepped schedule against the fraction model over many small streams, and the closed
    # form as a bound of both, exact where the reference requires it.
    from sim.timing import stream_schedule

    rng = np.random.default_rng(41)
    strict = exact = 0
    for _ in range(3000):
        folds, tokens = int(rng.integers(1, 26)), int(rng.integers(1, 9))
        tile, burst = int(rng.integers(1, 41)), int(rng.choice([1, 2, 4, 8, 16, 32, 64]))
        clock, bandwidth = int(rng.integers(1, 8)), int(rng.integers(1, 41))
        latency_ns = int(rng.integers(0, 10)) * 10**9 // clock  # whole cycles at this clock
        reference = stream_reference.stream(
            folds, tokens, tile, burst, clock, bandwidth, latency_ns
        )
        latency = reference.latency
        stepped = stream_schedule(folds, tokens, tile, burst, clock, bandwidth, latency, 0, 2)
        assert stepped == reference.cycles, (folds, tokens, tile, burst, clock, bandwidth)
        closed = max(
            latency + reference.first_arrival + tokens * folds,
            latency + reference.stream_cycles + tokens,
        )
        assert closed <= stepped
        if stream_reference.closed_form_is_exact(reference):
            exact += 1
            assert closed == stepped, (folds, tokens, tile, burst, clock, bandwidth)
        strict += closed < stepped
    assert exact > 1000
    assert strict > 100


def test_estimate_layer_rejects_int64_overflow():
    design = design_on(pe=1, simd=1)
    with pytest.raises(ValueError, match=r"beyond the timing model's limit of 2\*\*62"):
        sim.estimate_layer(design, 16, 32, tokens=2**62)
    slow = dataclasses.replace(design.board, dram_latency_ns=10**30)
    with pytest.raises(ValueError, match=r"beyond the timing model's limit of 2\*\*62"):
        sim.estimate_layer(sim.Design(board=slow, pe=1, simd=1), 16, 32)


def test_streamed_fold_count_is_capped(monkeypatch):
    monkeypatch.setattr(sim.timing, "MAX_STEPPED_FOLDS", 100)
    streamed = design_on(pe=1, simd=1)
    assert sim.estimate_layer(streamed, 10, 10).cycles > 100
    with pytest.raises(ValueError, match="101 folds exceeds the 100 folds"):
        sim.estimate_layer(streamed, 1, 101)
    # On-chip weights never wait, so their closed form needs no stepping and no cap.
    onchip = design_on(pe=1, simd=1, weight_store="onchip")
    run = sim.estimate_layer(onchip, 1000, 1000, check_capacity=False)
    assert run.cycles == 1000 * 1000 + 3
