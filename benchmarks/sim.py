"""Benchmark the simulator against its four speed targets, side by side in one run.

1. Analytical model: at least 1e6 layer x design evaluations per second on one core.
   `sim.evaluate_layer` runs on a `sim.DesignTable` of every ``mvu`` design in the space of
   benchmarks/explore.py (104,400 designs on the default ``--board kv260``), for each distinct
   ternary layer shape of BitNet b1.58 2B-4T at T = 1 and T = 128. One evaluation is one
   layer costed on one design. Building the designs and the table is timed separately and
   left out of the rate.
2. Engine, timing only: one whole BitNet b1.58 2B-4T decode token in under 50 ms.
   `sim.simulate_model` at context 4096 on a few designs, and the bare loop of
   `sim.estimate_layer` over the 210 ternary layers of one token.
3. Engine with exact outputs on full-size tensors: at least 1e9 ternary MACs per second.
   `sim.run_layer` on the 2B-4T shapes for the ``ternary``, ``xnor`` and ``lut`` datapaths, at
   T = 1 and T = 16 vectors. The accumulators are checked against an int64 numpy product
   before timing; MACs/s = T N K / best time.
4. Against SCALE-Sim 3.0 on 512 x 512 x 512 GEMMs (32 x 32 array, ws, os, is): equal cycle
   counts and at least 1000x less wall time. SCALE-Sim runs only with ``--scalesim-python``
   and ``--scalesim-config`` (through benchmarks/scalesim_compare.py); otherwise the verdicts
   compare with the SCALE-Sim figures recorded in reports/scalesim.md, marked as such.

Every process runs on one thread: the script sets NUMBA_NUM_THREADS and the BLAS thread
variables to 1 before numpy and Numba load. Each time is the minimum over ``--repeat`` runs
after one warm-up call, because the machine is shared and slower runs measure other load.

Run from the repository root (``python benchmarks/sim.py`` would let this file shadow the
``sim`` package):

    .venv/bin/python -m benchmarks.sim [--repeat 5] \\
        [--scalesim-python /tmp/scalesim-venv/bin/python --scalesim-config scale.cfg]
"""

import os
import sys

if __name__ == "__main__" and not __package__:
    sys.exit("run this benchmark as a module from the repository root: python -m benchmarks.sim")

# Every target runs on one core, so the thread counts are set before numpy and Numba load.
for _variable in (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

import sim  # noqa: E402
from benchmarks.scalesim_compare import run_scalesim  # noqa: E402
from sim import systolic  # noqa: E402

MODEL = "bitnet-2b-4t"
CONTEXT = 4096

ANALYTICAL_TARGET = 1e6  # layer x design evaluations per second
ANALYTICAL_TOKENS = (1, 128)  # a decode step and a 128-token prefill run

TOKEN_TARGET_S = 50e-3
TOKEN_DESIGNS = [
    ("kv260", "pe=64,simd=64,weight_store=stream,weight_format=2bit"),
    ("kv260", "pe=32,simd=128,weight_store=onchip"),
    # PE = 256 would not divide the 640 rows of the k and v projections, so PE is 128.
    ("u280", "pe=128,simd=256"),
]

ENGINE_TARGET = 1e9  # ternary MACs per second
ENGINE_SHAPES = [(2560, 2560), (6912, 2560), (2560, 6912)]
ENGINE_TOKENS = (1, 16)
ENGINE_DESIGNS = {
    "ternary": "datapath=ternary,pe=64,simd=64,weight_format=2bit",
    "xnor": "datapath=xnor,pe=64,simd=64,weight_format=binary",
    "lut": "datapath=lut,pe=64,simd=64,weight_format=lut2",
}

GEMM_SHAPE = (512, 512, 512)
GEMM_ARRAY = (32, 32)
SPEEDUP_TARGET = 1000.0
# SCALE-Sim 3.0.0 on the 2-core development machine, "Total Cycles" and wall seconds of one
# run_scale per dataflow, as recorded in reports/scalesim.md. Used only without a live run.
RECORDED_SCALESIM = {
    "ws": {"total_cycles": 155135, "wall_s": 31.7},
    "os": {"total_cycles": 146943, "wall_s": 24.7},
    "is": {"total_cycles": 155135, "wall_s": 23.2},
}


def best_time(function, *arguments, repeat: int) -> tuple[float, float]:
    """Return the minimum and the median wall time of ``repeat`` calls after one warm-up call."""
    function(*arguments)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*arguments)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def format_verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def ternary_layer_shapes() -> list[tuple[int, int]]:
    """Return (N, K) of every ternary layer of one decode token, in execution order."""
    layers = sim.model_layers(sim.get_model(MODEL), CONTEXT)
    return [(layer.out_features, layer.in_features) for layer in layers if layer.kind == "ternary"]


def benchmark_analytical(board: str, repeat: int, summary: list) -> None:
    print("\n## 1. Analytical model: sim.evaluate_layer on a DesignTable (target >= 1e6 evals/s)")
    space = sim.default_space(board).with_axes(
        {"act_bits": (4, 6, 8), "clock_mhz": {"start": 150, "stop": 440, "step": 10}}
    )
    start = time.perf_counter()
    designs, invalid = space.expand(board)
    expand_s = time.perf_counter() - start
    start = time.perf_counter()
    table = sim.DesignTable.from_designs(designs)
    table_s = time.perf_counter() - start
    count = len(table)
    print(
        f"space: default space of {board} x act_bits 4,6,8 x 30 clocks (150 to 440 MHz): "
        f"{count} valid mvu designs ({len(invalid)} invalid combinations skipped)"
    )
    print(
        f"set-up, not in the rate: building the Design objects {expand_s:.2f} s, "
        f"DesignTable.from_designs {table_s:.2f} s ({count / table_s:,.0f} designs/s)"
    )

    shape_counts = Counter(ternary_layer_shapes())
    print(
        f"{'N x K':>11} {'layers/token':>12} {'T':>4} {'runs %':>7} {'ms/call':>8} {'evals/s':>10}"
    )
    call_seconds = {}
    total_evaluations = 0
    total_seconds = 0.0
    for (n, k), layers in shape_counts.items():
        for tokens in ANALYTICAL_TOKENS:
            result = sim.evaluate_layer(table, n, k, tokens)
            runs_percent = 100.0 * np.count_nonzero(result["runs"]) / count
            seconds, _ = best_time(sim.evaluate_layer, table, n, k, tokens, repeat=repeat)
            rate = count / seconds
            call_seconds[n, k, tokens] = seconds
            total_evaluations += count
            total_seconds += seconds
            print(
                f"{n:>5}x{k:<5} {layers:>12} {tokens:>4} {runs_percent:7.1f} "
                f"{seconds * 1e3:8.2f} {rate:10.3g}"
            )

    # One decode token costs each of its ternary layers once, so it adds up the T = 1 times.
    token_seconds = sum(layers * call_seconds[n, k, 1] for (n, k), layers in shape_counts.items())
    token_evaluations = sum(shape_counts.values()) * count
    print(
        f"one decode token ({sum(shape_counts.values())} ternary layers, not deduplicated) on "
        f"all {count} designs: {token_seconds:.2f} s, {token_evaluations / token_seconds:.3g} "
        "evals/s"
    )
    slowest = count / max(call_seconds.values())
    summary.append(
        (
            "1 analytical: layer x design evals/s",
            f"{total_evaluations / total_seconds:.3g} (slowest case {slowest:.3g})",
            ">= 1e6",
            format_verdict(slowest >= ANALYTICAL_TARGET),
        )
    )


def benchmark_decode_token(repeat: int, summary: list) -> None:
    print(f"\n## 2. Engine, timing only: one {MODEL} decode token at context {CONTEXT} (< 50 ms)")
    print(f"{'case':<88} {'best ms':>8} {'median ms':>9} {'fits':>5} {'model tok/s':>11}")
    slowest = 0.0
    for board, spec in TOKEN_DESIGNS:
        design = sim.Design.from_spec(spec, board)
        run = sim.simulate_model(design, MODEL, phase="decode", context=CONTEXT)
        seconds, median = best_time(
            sim.simulate_model, design, MODEL, "decode", 1, CONTEXT, repeat=repeat
        )
        slowest = max(slowest, seconds)
        case = f"simulate_model {board} {spec}"
        print(
            f"{case:<88} {seconds * 1e3:8.2f} {median * 1e3:9.2f} {str(run.fits):>5} "
            f"{run.tokens_per_s:11.3g}"
        )

    shapes = ternary_layer_shapes()
    board, spec = TOKEN_DESIGNS[0]
    design = sim.Design.from_spec(spec, board)

    def estimate_token() -> None:
        for n, k in shapes:
            sim.estimate_layer(design, n, k, 1, check_capacity=False)

    seconds, median = best_time(estimate_token, repeat=repeat)
    slowest = max(slowest, seconds)
    case = f"estimate_layer x {len(shapes)} layers, {board} {spec}"
    print(f"{case:<88} {seconds * 1e3:8.2f} {median * 1e3:9.2f} {'-':>5} {'-':>11}")
    print(
        "('fits' is the model's fit on the board, reported by simulate_model; it does not "
        "change the timing)"
    )
    summary.append(
        (
            "2 engine timing only: one decode token",
            f"{slowest * 1e3:.2f} ms (slowest case)",
            "< 50 ms",
            format_verdict(slowest < TOKEN_TARGET_S),
        )
    )


def _engine_operands(rng, datapath: str, n: int, k: int, tokens: int):
    if datapath == "xnor":
        w_q = (2 * rng.integers(0, 2, (n, k)) - 1).astype(np.int8)
        x_q = (2 * rng.integers(0, 2, (tokens, k)) - 1).astype(np.int8)
    else:
        w_q = rng.integers(-1, 2, (n, k)).astype(np.int8)
        x_q = rng.integers(-128, 128, (tokens, k)).astype(np.int8)
    return w_q, x_q


def benchmark_engine_outputs(board: str, repeat: int, summary: list) -> None:
    print("\n## 3. Engine with exact outputs: sim.run_layer (target >= 1e9 ternary MACs/s)")
    print(
        f"designs on {board}: "
        + "; ".join(f"{name}: {spec}" for name, spec in ENGINE_DESIGNS.items())
    )
    sim.warm_up()
    print(
        f"{'datapath':<8} {'N x K':>11} {'T':>3} {'prepare ms':>10} {'run ms':>8} "
        f"{'MACs/s':>9} {'cycles':>9} {'verdict':>7}"
    )
    rng = np.random.default_rng(0)
    rates = {}
    for datapath, spec in ENGINE_DESIGNS.items():
        design = sim.Design.from_spec(spec, board)
        for n, k in ENGINE_SHAPES:
            w_q, _ = _engine_operands(rng, datapath, n, k, 1)
            start = time.perf_counter()
            program = sim.prepare_layer(design, w_q, f"{n}x{k}")
            prepare_s = time.perf_counter() - start
            weights_int64 = w_q.T.astype(np.int64)
            for tokens in ENGINE_TOKENS:
                _, x_q = _engine_operands(rng, datapath, n, k, tokens)
                run = sim.run_layer(program, x_q)
                expected = x_q.astype(np.int64) @ weights_int64
                if not np.array_equal(run.acc, expected):
                    raise RuntimeError(
                        f"run_layer {datapath} {n}x{k} T={tokens}: accumulators differ from "
                        "the int64 reference"
                    )
                seconds, _ = best_time(sim.run_layer, program, x_q, repeat=repeat)
                rate = tokens * n * k / seconds
                rates[datapath, n, k, tokens] = rate
                print(
                    f"{datapath:<8} {n:>5}x{k:<5} {tokens:>3} {prepare_s * 1e3:10.1f} "
                    f"{seconds * 1e3:8.2f} {rate:9.3g} {run.cycles:>9} "
                    f"{format_verdict(rate >= ENGINE_TARGET):>7}"
                )
    print("(every case's accumulators equal x.astype(int64) @ w.T.astype(int64) exactly)")
    for datapath in ENGINE_DESIGNS:
        slowest = min(rate for key, rate in rates.items() if key[0] == datapath)
        summary.append(
            (
                f"3 engine with outputs: {datapath} MACs/s",
                f"{slowest:.3g} (slowest case)",
                ">= 1e9",
                format_verdict(slowest >= ENGINE_TARGET),
            )
        )


def time_onebit_gemm(design, repeat: int) -> tuple[int, float, float, float]:
    """Time one GEMM_SHAPE GEMM on ``design`` three ways and check that the cycles agree.

    Returns the cycles and the best wall seconds of `sim.estimate_gemm`, of
    `sim.simulate_gemm` without data, and of `sim.simulate_gemm` with int8 activations and
    ternary weights, whose outputs are checked against an int64 numpy product first.
    """
    m, n, k = GEMM_SHAPE
    estimate = sim.estimate_gemm(design, m, n, k)
    estimate_s, _ = best_time(sim.estimate_gemm, design, m, n, k, repeat=repeat)
    timing = sim.simulate_gemm(design, m, n, k)
    timing_s, _ = best_time(sim.simulate_gemm, design, m, n, k, repeat=repeat)

    rng = np.random.default_rng(1)
    x_q = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w_q = rng.integers(-1, 2, (k, n)).astype(np.int8)
    outputs = sim.simulate_gemm(design, m, n, k, x_q, w_q)
    if not np.array_equal(outputs.out, x_q.astype(np.int64) @ w_q.astype(np.int64)):
        raise RuntimeError(
            f"simulate_gemm {design.dataflow}: outputs differ from the int64 reference"
        )
    outputs_s, _ = best_time(sim.simulate_gemm, design, m, n, k, x_q, w_q, repeat=repeat)

    if not estimate.cycles == timing.cycles == outputs.cycles:
        raise RuntimeError(
            f"{design.dataflow}: estimate_gemm gives {estimate.cycles} cycles, simulate_gemm "
            f"{timing.cycles} without data and {outputs.cycles} with data; they must be equal"
        )
    return timing.cycles, estimate_s, timing_s, outputs_s


def benchmark_scalesim(args, summary: list) -> None:
    m, n, k = GEMM_SHAPE
    rows, cols = GEMM_ARRAY
    print(
        f"\n## 4. Against SCALE-Sim 3.0: one {m}x{n}x{k} GEMM on a {rows} x {cols} array "
        "(equal cycles, >= 1000x less wall time)"
    )
    live = bool(args.scalesim_python)
    if live:
        print(f"SCALE-Sim: measured now with {args.scalesim_python} (CALC bandwidth mode)")
        mark = ""
    else:
        print(
            "SCALE-Sim: not run (give --scalesim-python and --scalesim-config to measure it). "
            "Its columns are the figures recorded in reports/scalesim.md, not re-measured in "
            "this run, and verdicts against them are marked *."
        )
        mark = "*"
    systolic.warm_up()
    print(
        f"{'flow':<4} {'onebit cycles':>13} {'SCALE-Sim cycles':>16} {'equal':>5} "
        f"{'estimate s':>10} {'timing s':>9} {'outputs s':>9} {'SCALE-Sim s':>11} "
        f"{'x timing':>9} {'x outputs':>9}"
    )

    cycles_equal = []
    speedups_timing = []
    speedups_outputs = []
    for dataflow in ("ws", "os", "is"):
        spec = {"array": "systolic", "rows": rows, "cols": cols, "dataflow": dataflow}
        design = sim.Design.from_spec(spec, "kv260")
        cycles, estimate_s, timing_s, outputs_s = time_onebit_gemm(design, args.repeat)
        if live:
            reference = run_scalesim(
                args.scalesim_python, args.scalesim_config, rows, cols, dataflow, [[m, n, k]]
            )[0]
        else:
            reference = RECORDED_SCALESIM[dataflow]
        equal = reference["total_cycles"] == cycles
        cycles_equal.append(equal)
        speedups_timing.append(reference["wall_s"] / timing_s)
        speedups_outputs.append(reference["wall_s"] / outputs_s)
        print(
            f"{dataflow:<4} {cycles:>13} {reference['total_cycles']:>16} "
            f"{'yes' if equal else 'NO':>5} {estimate_s:10.2e} {timing_s:9.2e} "
            f"{outputs_s:9.3f} {reference['wall_s']:11.1f} {speedups_timing[-1]:9.3g} "
            f"{speedups_outputs[-1]:9.3g}"
        )
    print(
        "(estimate s: estimate_gemm; timing s: simulate_gemm without data, the schedule that "
        "SCALE-Sim computes; outputs s: simulate_gemm with int8 x ternary operands, outputs "
        "checked against int64; x: SCALE-Sim wall time / onebit wall time)"
    )

    summary.append(
        (
            "4 vs SCALE-Sim 512^3: equal cycles",
            f"{sum(cycles_equal)} of 3 dataflows",
            "3 of 3",
            format_verdict(all(cycles_equal)) + mark,
        )
    )
    summary.append(
        (
            "4 vs SCALE-Sim 512^3: speed-up, timing only",
            f"{min(speedups_timing):.3g}x (least)",
            ">= 1000x",
            format_verdict(min(speedups_timing) >= SPEEDUP_TARGET) + mark,
        )
    )
    summary.append(
        (
            "4 vs SCALE-Sim 512^3: speed-up, with outputs",
            f"{min(speedups_outputs):.3g}x (least)",
            ">= 1000x",
            format_verdict(min(speedups_outputs) >= SPEEDUP_TARGET) + mark,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case")
    parser.add_argument("--board", default="kv260", help="board of targets 1 and 3")
    parser.add_argument("--scalesim-python", help="python of the virtual environment of SCALE-Sim")
    parser.add_argument("--scalesim-config", help="SCALE-Sim's example scale.cfg to start from")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.scalesim_python and not args.scalesim_config:
        parser.error("--scalesim-python needs --scalesim-config (the wheel ships no config)")

    started = time.perf_counter()
    load = os.getloadavg()
    print(
        f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
        f"average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; Python {sys.version.split()[0]}, "
        f"numpy {np.__version__}, numba {numba.__version__} at {numba.get_num_threads()} thread; "
        f"min of {args.repeat} runs after a warm-up call"
    )
    summary = []
    benchmark_analytical(args.board, args.repeat, summary)
    benchmark_decode_token(args.repeat, summary)
    benchmark_engine_outputs(args.board, args.repeat, summary)
    benchmark_scalesim(args, summary)

    load = os.getloadavg()
    print(
        f"\n## Summary (wall time {time.perf_counter() - started:.0f} s, load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    print(f"{'target':<46} {'measured':<32} {'goal':<9} verdict")
    for target, measured, goal, result in summary:
        print(f"{target:<46} {measured:<32} {goal:<9} {result}")
    if any(result.endswith("*") for *_, result in summary):
        print("* against the SCALE-Sim figures recorded in reports/scalesim.md, not re-measured")


if __name__ == "__main__":
    main()
