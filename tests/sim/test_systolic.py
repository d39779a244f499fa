import math
import re

import numpy as np
import pytest
import torch

import kernels
import sim
from sim import systolic

# Cycle counts measured with SCALE-Sim 3.0.0 (pip install scalesim, numpy 2.2.6): the "Total
# Cycles" column of COMPUTE_REPORT.csv on a 32 x 32 array. The configuration is SCALE-Sim's
# example scale.cfg with only Dataflow changed; its InterfaceBandwidth CALC means no stalls. The
# command, with topo.csv listing "name, M, N, K," per row:
#     python -m scalesim.scale -c scale.cfg -t topo.csv -l layout.csv -i gemm -p out
# benchmarks/scalesim_compare.py repeats the measurement.
SCALESIM_TOTAL_CYCLES = {
    # (M, N, K): (ws, os, is)
    (16, 16, 16): (109, 77, 109),
    (32, 32, 32): (125, 93, 125),
    (100, 50, 70): (1163, 1055, 1727),
    (64, 200, 33): (2211, 1329, 1175),
    (256, 128, 256): (11199, 10175, 14207),
    (129, 65, 97): (2675, 2384, 3179),
    (1, 40, 300): (1899, 723, 1339),
}
# SCALE-Sim 3.0's "Overall Util %" for 256 x 128 x 256, ws, same run.
SCALESIM_WS_UTIL_PERCENT = 73.14938833824449


def systolic_design(dataflow="ws", rows=32, cols=32, board="kv260", **fields):
    spec = {"array": "systolic", "rows": rows, "cols": cols, "dataflow": dataflow, **fields}
    return sim.Design.from_spec(spec, board)


def random_gemm(rng, m, n, k, act_bits=8):
    high = 2 ** (act_bits - 1)
    x_q = rng.integers(-high, high, size=(m, k)).astype(np.int8)
    w_q = rng.integers(-1, 2, size=(k, n)).astype(np.int8)
    return x_q, w_q


def reference(x_q, w_q):
    weights = torch.from_numpy(np.ascontiguousarray(w_q.T))
    return kernels.ternary_matmul(torch.from_numpy(x_q), weights).numpy()


def naive_fold_cycles(dataflow, rows, cols, m, n, k):
    """SCALE-Sim's fold model written out from its mapping table: (folds, tau)."""
    spatial = {"ws": (k, n, m), "os": (m, n, k), "is": (k, m, n)}
    spatial_rows, spatial_cols, temporal = spatial[dataflow]
    folds = math.ceil(spatial_rows / rows) * math.ceil(spatial_cols / cols)
    tau = rows + cols + temporal - 2 if dataflow == "os" else 2 * rows + cols + temporal - 2
    return folds, tau


def naive_schedule(dataflow, rows, cols, m, n, k, bandwidth):
    """Plain double-buffered schedule: returns (end cycle, prefetch, words) for a bandwidth."""
    spatial = {"ws": (k, n, m), "os": (m, n, k), "is": (k, m, n)}
    spatial_rows, spatial_cols, temporal = spatial[dataflow]
    _, tau = naive_fold_cycles(dataflow, rows, cols, m, n, k)
    loads, words = [], []
    for c0 in range(0, spatial_cols, cols):
        for r0 in range(0, spatial_rows, rows):
            r = min(rows, spatial_rows - r0)
            c = min(cols, spatial_cols - c0)
            if dataflow == "os":
                count = r * temporal + c * temporal
            else:
                count = r * c + r * temporal
            words.append(count)
            loads.append(math.ceil(count / bandwidth))
    ends = []
    load_end = 0
    for f, load in enumerate(loads):
        if f == 0:
            start = 0
        else:
            free = ends[f - 2] if f >= 2 else 0
            load_end = max(load_end, free) + load
            start = max(ends[f - 1], load_end)
        ends.append(start + tau)
    return ends[-1], loads[0], sum(words)


@pytest.mark.parametrize("shape", list(SCALESIM_TOTAL_CYCLES))
@pytest.mark.parametrize("index", [0, 1, 2], ids=["ws", "os", "is"])
def test_cycles_equal_scalesim(shape, index):
    dataflow = ("ws", "os", "is")[index]
    expected = SCALESIM_TOTAL_CYCLES[shape][index]
    design = systolic_design(dataflow)
    run = sim.simulate_gemm(design, *shape)
    assert run.cycles == expected
    assert run.stall_cycles == 0
    assert sim.estimate_gemm(design, *shape).cycles == expected


def test_utilization_equals_scalesim():
    run = sim.simulate_gemm(systolic_design("ws"), 256, 128, 256)
    assert run.utilization * 100 == pytest.approx(SCALESIM_WS_UTIL_PERCENT, rel=1e-12)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize(
    ("rows", "cols", "m", "n", "k"),
    [
        (1, 1, 1, 1, 1),
        (4, 8, 9, 17, 5),
        (8, 4, 64, 32, 48),
        (16, 16, 3, 100, 70),
        (3, 5, 7, 11, 13),
    ],
)
def test_cycles_match_fold_model(dataflow, rows, cols, m, n, k):
    design = systolic_design(dataflow, rows, cols)
    run = sim.simulate_gemm(design, m, n, k)
    folds, tau = naive_fold_cycles(dataflow, rows, cols, m, n, k)
    assert run.folds == folds
    assert run.row_folds * run.col_folds == folds
    assert run.fold_cycles == tau
    assert run.compute_cycles == folds * tau - 1
    assert run.cycles == folds * tau - 1
    assert run.stall_cycles == 0
    assert run.prefetch_cycles == 0
    assert run.dram_words == 0
    assert run.time_s == pytest.approx(run.cycles / (design.clock_mhz * 1e6), rel=1e-12)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize(
    ("rows", "cols", "m", "n", "k"),
    [
        (4, 4, 4, 4, 4),
        (4, 8, 9, 17, 5),
        (8, 4, 33, 31, 47),
        (32, 32, 70, 45, 100),
        (2, 3, 1, 1, 7),
        # One token on a wide array, and many tokens on a narrow one: the ws and os kernels
        # pick their loop order by M against the array's columns.
        (8, 32, 1, 45, 70),
        (4, 4, 200, 9, 13),
    ],
)
def test_out_equals_ternary_matmul(dataflow, rows, cols, m, n, k):
    rng = np.random.default_rng(m * 10000 + n * 100 + k)
    x_q, w_q = random_gemm(rng, m, n, k)
    run = sim.simulate_gemm(systolic_design(dataflow, rows, cols), m, n, k, x_q, w_q)
    assert run.out.dtype == np.int32
    assert run.out.shape == (m, n)
    np.testing.assert_array_equal(run.out, reference(x_q, w_q))


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_out_random_odd_shapes(dataflow):
    # Arrays wider or taller than the GEMM, tiles that do not divide it and 1-wide sides.
    rng = np.random.default_rng({"ws": 31, "os": 32, "is": 33}[dataflow])
    for _ in range(60):
        rows, cols = (int(v) for v in rng.integers(1, 24, size=2))
        m, n, k = (int(v) for v in rng.integers(1, 50, size=3))
        x_q, w_q = random_gemm(rng, m, n, k)
        run = sim.simulate_gemm(systolic_design(dataflow, rows, cols), m, n, k, x_q, w_q)
        expected = x_q.astype(np.int64) @ w_q.astype(np.int64)
        assert run.out.dtype == np.int32
        assert run.out.flags.c_contiguous
        np.testing.assert_array_equal(run.out, expected)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_out_transposed_layer_weights(dataflow):
    # A layer's [N, K] weights passed as the view w.T, which is not C-contiguous.
    m, n, k = 37, 53, 29
    rng = np.random.default_rng(41)
    x_q = rng.integers(-128, 128, size=(m, k)).astype(np.int8)
    layer_w = rng.integers(-1, 2, size=(n, k)).astype(np.int8)
    run = sim.simulate_gemm(systolic_design(dataflow, 8, 16), m, n, k, x_q, layer_w.T)
    expected = x_q.astype(np.int64) @ layer_w.T.astype(np.int64)
    np.testing.assert_array_equal(run.out, expected)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_out_extreme_values(dataflow):
    # Weights of -1 against activations of -128 give the largest sum, K * 128.
    m, n, k = 3, 5, 300
    x_q = np.full((m, k), -128, dtype=np.int8)
    x_q[1] = 127
    w_q = np.full((k, n), -1, dtype=np.int8)
    w_q[:, 4] = 1
    run = sim.simulate_gemm(systolic_design(dataflow, 8, 8), m, n, k, x_q, w_q)
    np.testing.assert_array_equal(run.out, reference(x_q, w_q))
    assert run.out[0, 0] == k * 128


def test_out_narrow_activations_and_strided_input():
    rng = np.random.default_rng(5)
    x_q, w_q = random_gemm(rng, 20, 9, 16, act_bits=4)
    design = systolic_design("is", 4, 4, act_bits=4)
    strided = x_q[::2]
    run = sim.simulate_gemm(design, 10, 9, 16, strided, w_q)
    np.testing.assert_array_equal(run.out, reference(np.ascontiguousarray(strided), w_q))


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize(
    ("rows", "cols", "m", "n", "k", "bandwidth"),
    [
        (32, 32, 129, 65, 97, 10),
        (32, 32, 256, 128, 256, 4),
        (8, 8, 40, 30, 20, 1),
        (8, 4, 17, 9, 33, 2.5),
        (4, 4, 64, 64, 64, 1000),
        (16, 16, 16, 16, 16, 0.5),
    ],
)
def test_stalls_match_naive_schedule(dataflow, rows, cols, m, n, k, bandwidth):
    design = systolic_design(dataflow, rows, cols)
    run = sim.simulate_gemm(design, m, n, k, bandwidth_words_per_cycle=bandwidth)
    end, prefetch, words = naive_schedule(dataflow, rows, cols, m, n, k, bandwidth)
    folds, tau = naive_fold_cycles(dataflow, rows, cols, m, n, k)
    assert run.cycles == end - 1
    assert run.stall_cycles == end - folds * tau
    assert run.compute_cycles == folds * tau - 1
    assert run.prefetch_cycles == prefetch
    assert run.dram_words == words


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_estimate_equals_engine_without_stalls(dataflow):
    # Tiles of 16 x 16 with T = 64 load 16 * 16 + 16 * 64 = 1280 words (ws, is) or 2048 (os);
    # at 25 words per cycle that is 52 or 82 cycles, within a fold of 110 (ws, is) or 94 (os).
    design = systolic_design(dataflow, 16, 16)
    for bandwidth in (None, 25, 1e6):
        run = sim.simulate_gemm(design, 64, 64, 64, bandwidth_words_per_cycle=bandwidth)
        estimate = sim.estimate_gemm(design, 64, 64, 64, bandwidth_words_per_cycle=bandwidth)
        assert run.stall_cycles == 0
        assert estimate.out is None
        assert estimate == run


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_estimate_equals_engine_with_equal_loads(dataflow):
    # Sizes that are multiples of the array give equal loads, so the memory-bound closed form
    # is exact too.
    design = systolic_design(dataflow, 8, 8)
    run = sim.simulate_gemm(design, 64, 32, 48, bandwidth_words_per_cycle=1)
    assert run.stall_cycles > 0
    assert sim.estimate_gemm(design, 64, 32, 48, bandwidth_words_per_cycle=1) == run


def test_estimate_is_lower_bound_with_stalls():
    rng = np.random.default_rng(23)
    strict = 0
    for _ in range(150):
        dataflow = str(rng.choice(["ws", "os", "is"]))
        rows, cols = (int(v) for v in rng.integers(1, 12, size=2))
        m, n, k = (int(v) for v in rng.integers(1, 60, size=3))
        bandwidth = float(rng.choice([0.5, 1, 2, 3.5, 8, 50]))
        design = systolic_design(dataflow, rows, cols)
        run = sim.simulate_gemm(design, m, n, k, bandwidth_words_per_cycle=bandwidth)
        estimate = sim.estimate_gemm(design, m, n, k, bandwidth_words_per_cycle=bandwidth)
        assert estimate.cycles <= run.cycles
        assert estimate.compute_cycles == run.compute_cycles
        assert estimate.prefetch_cycles == run.prefetch_cycles
        assert estimate.dram_words == run.dram_words
        if run.stall_cycles == 0:
            assert estimate.cycles == run.cycles
        strict += estimate.cycles < run.cycles
    assert strict > 0  # the sample reaches cases where the bound is not tight


def test_numpy_integer_sizes():
    design = systolic_design("ws", 4, 4)
    assert sim.simulate_gemm(design, np.int64(5), 6, 7) == sim.simulate_gemm(design, 5, 6, 7)


def test_warm_up_runs():
    systolic.warm_up()


def test_systolic_design_defaults():
    design = sim.Design.from_spec("array=systolic", "kv260")
    assert (design.rows, design.cols, design.dataflow) == (32, 32, "ws")
    assert (design.pe, design.simd) == (None, None)
    mvu = sim.Design.from_spec(None, "kv260")
    assert (mvu.pe, mvu.simd) == (16, 64)
    assert (mvu.rows, mvu.cols, mvu.dataflow) == (None, None, None)


@pytest.mark.parametrize("array", ["mvu", "systolic"])
def test_spec_round_trip_per_array(array):
    spec = "array=systolic,rows=8,cols=16,dataflow=os" if array == "systolic" else "pe=8"
    design = sim.Design.from_spec(spec, "kv260")
    assert sim.Design.from_spec(design.to_spec(), "kv260") == design


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (
            "array=systolic,pe=16",
            ValueError,
            "Design.pe = 16 does not apply to Design.array = 'systolic', which is set by "
            "rows, cols and dataflow; remove pe",
        ),
        ("array=systolic,simd=8", ValueError, "Design.simd = 8 does not apply to Design.array"),
        (
            "rows=32",
            ValueError,
            "Design.rows = 32 does not apply to Design.array = 'mvu', which is set by pe "
            "and simd; remove rows",
        ),
        ("dataflow=ws", ValueError, "Design.dataflow = 'ws' does not apply to Design.array"),
        ("array=systolic,rows=0", ValueError, "Design.rows must be >= 1, got 0"),
        ("array=systolic,cols=-2", ValueError, "Design.cols must be >= 1, got -2"),
        (
            "array=systolic,dataflow=rs",
            ValueError,
            "Design.dataflow must be one of ws, os, is; got 'rs'",
        ),
        ("array=systolic,rows=x", ValueError, "design spec key 'rows' must be an integer"),
    ],
)
def test_systolic_design_errors(spec, error, message):
    with pytest.raises(error, match=re.escape(message)):
        sim.Design.from_spec(spec, "kv260")


def test_systolic_design_rejects_bad_types():
    board = sim.BOARDS["kv260"]
    with pytest.raises(TypeError, match="Design.rows must be an int, got float 4.0"):
        sim.Design(board=board, array="systolic", rows=4.0)
    with pytest.raises(TypeError, match="Design.dataflow must be a str, got int 1"):
        sim.Design(board=board, array="systolic", dataflow=1)


def test_systolic_design_rejects_layer_engine():
    design = systolic_design()
    message = "Design.array 'systolic' runs single GEMMs through sim.simulate_gemm"
    with pytest.raises(NotImplementedError, match=re.escape(message)):
        design.check_layer(64, 64)
    with pytest.raises(NotImplementedError, match=re.escape(message)):
        sim.estimate_layer(design, 64, 64)


def test_simulate_gemm_design_errors():
    with pytest.raises(TypeError, match="design must be a sim.Design, got str"):
        sim.simulate_gemm("kv260", 4, 4, 4)
    mvu = sim.Design.from_spec(None, "kv260")
    message = "GEMMs run on Design.array = 'systolic', got 'mvu': set array=systolic"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.simulate_gemm(mvu, 4, 4, 4)
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.estimate_gemm(mvu, 4, 4, 4)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((4.0, 4, 4), {}, TypeError, "GEMM m must be an int, got float"),
        ((4, True, 4), {}, TypeError, "GEMM n must be an int, got bool"),
        ((4, 4, 0), {}, ValueError, "GEMM k must be >= 1, got 0"),
        ((1, 1, 2**24), {}, ValueError, "K = 16777216 needs a 33-bit accumulator at act_bits"),
        ((4, 4, 4), {"bandwidth_words_per_cycle": 0}, ValueError, "must be positive and finite"),
        (
            (4, 4, 4),
            {"bandwidth_words_per_cycle": float("inf")},
            ValueError,
            "bandwidth_words_per_cycle must be positive and finite, got inf",
        ),
        (
            (4, 4, 4),
            {"bandwidth_words_per_cycle": "10"},
            TypeError,
            "bandwidth_words_per_cycle must be a number or None, got str '10'",
        ),
    ],
)
def test_gemm_size_and_bandwidth_errors(args, kwargs, error, message):
    design = systolic_design("ws", 4, 4)
    for function in (sim.simulate_gemm, sim.estimate_gemm):
        with pytest.raises(error, match=re.escape(message)):
            function(design, *args, **kwargs)


def test_gemm_accumulator_too_narrow():
    design = systolic_design("ws", 4, 4, acc_bits=10)
    sim.estimate_gemm(design, 2, 2, 3)  # 3 * 128 = 384 fits in 10 bits
    message = "Design.acc_bits = 10 can overflow for K = 4 at act_bits = 8: a dot product needs 11"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.simulate_gemm(design, 2, 2, 4)


def test_simulate_gemm_operand_errors():
    design = systolic_design("ws", 4, 4)
    x_q = np.zeros((3, 5), dtype=np.int8)
    w_q = np.zeros((5, 2), dtype=np.int8)
    sim.simulate_gemm(design, 3, 2, 5, x_q, w_q)
    message = "x_q and w_q must be given together, or neither for timing only"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.simulate_gemm(design, 3, 2, 5, x_q)
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.simulate_gemm(design, 3, 2, 5, w_q=w_q)
    with pytest.raises(TypeError, match=re.escape("x_q must be a numpy.ndarray, got Tensor")):
        sim.simulate_gemm(design, 3, 2, 5, torch.zeros(3, 5, dtype=torch.int8), w_q)
    with pytest.raises(TypeError, match="w_q must have dtype int8, got int32"):
        sim.simulate_gemm(design, 3, 2, 5, x_q, w_q.astype(np.int32))
    with pytest.raises(ValueError, match=re.escape("x_q must have shape [3, 5], got [5, 3]")):
        sim.simulate_gemm(design, 3, 2, 5, x_q.T.copy(), w_q)
    with pytest.raises(ValueError, match=re.escape("w_q must have shape [5, 2], got [2, 5]")):
        sim.simulate_gemm(design, 3, 2, 5, x_q, w_q.T.copy())
    bad = w_q.copy()
    bad[4, 1] = -2
    message = "w_q must hold ternary codes in {-1, 0, 1}, found -2 at index (4, 1)"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.simulate_gemm(design, 3, 2, 5, x_q, bad)


def test_simulate_gemm_rejects_codes_outside_act_bits():
    design = systolic_design("ws", 4, 4, act_bits=4)
    x_q = np.zeros((2, 3), dtype=np.int8)
    x_q[1, 2] = -9
    message = "x_q must hold 4-bit codes in [-8, 7], found values in [-9, 0]"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.simulate_gemm(design, 2, 2, 3, x_q, np.zeros((3, 2), dtype=np.int8))


def test_simulate_gemm_rejects_cycles_beyond_int64():
    design = sim.Design.from_spec("array=systolic,rows=8,cols=8,dataflow=ws", board="kv260")
    with pytest.raises(ValueError, match="beyond the simulator's limit of 2\\*\\*62"):
        sim.simulate_gemm(design, 10**18, 64, 64)
    with pytest.raises(ValueError, match="bandwidth_words_per_cycle = 1e-300 makes GEMM"):
        sim.simulate_gemm(design, 4, 64, 64, bandwidth_words_per_cycle=1e-300)


def test_simulate_gemm_caps_stepped_folds(monkeypatch):
    monkeypatch.setattr(systolic, "MAX_STEPPED_FOLDS", 4)
    design = sim.Design.from_spec("array=systolic,rows=4,cols=4,dataflow=ws", "kv260")
    # ws folds: ceil(K / rows) * ceil(N / cols) = 2 * 2 = 4 is allowed, 2 * 3 = 6 is not.
    assert systolic.simulate_gemm(design, 3, 8, 8).folds == 4
    with pytest.raises(ValueError, match="has 6 folds on a 4 x 4 array, more than the 4"):
        systolic.simulate_gemm(design, 3, 12, 8)
    assert systolic.estimate_gemm(design, 3, 12, 8).cycles > 0
