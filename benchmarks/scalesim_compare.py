"""Compare onebit's systolic engine with SCALE-Sim 3.0, GEMM by GEMM: cycles, stalls, wall time.

SCALE-Sim runs in its own virtual environment (``pip install scalesim "numpy<2.3"``), one
subprocess per dataflow and mode, and times each layer's ``run_scale`` inside that process
without writing traces. Its wheel ships no configuration, so pass SCALE-Sim's example
``scale.cfg``; the script copies it with the array size, dataflow and bandwidth mode replaced.
Without ``--scalesim-python`` only onebit's side runs. Run it as a module from the repository
root, because as a script its folder would put benchmarks/sim.py in place of the ``sim``
package:

    .venv/bin/python -m benchmarks.scalesim_compare \\
        --scalesim-python /tmp/scalesim-venv/bin/python --scalesim-config scale.cfg \\
        [--rows 32 --cols 32] [--bandwidth 10] [--speed]

Prints Markdown tables on stdout. The first gives cycles in SCALE-Sim's "Total Cycles"
convention with unlimited bandwidth (SCALE-Sim's ``CALC`` mode). The second gives stall cycles
at ``--bandwidth`` words per cycle (SCALE-Sim's ``USER`` mode). With ``--speed`` a third gives
the wall time of one 512 x 512 x 512 GEMM per dataflow.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

import sim
from sim import systolic

SHAPES = [
    (16, 16, 16),
    (32, 32, 32),
    (1, 40, 300),
    (100, 50, 70),
    (129, 65, 97),
    (64, 200, 33),
    (256, 128, 256),
]
"""GEMM sizes (M, N, K): whole and partial folds, a single row, and the size of SCALE-Sim's
example topology."""

SPEED_SHAPE = (512, 512, 512)

# Runs inside SCALE-Sim's environment: one layer per run_scale, timed without trace files.
_DRIVER = """
import json, os, sys, time
from scalesim.scale_sim import scalesim
config, layout, out_dir = sys.argv[1:4]
results = []
for index, (m, n, k) in enumerate(json.loads(sys.argv[4])):
    topology = os.path.join(out_dir, f"gemm{index}.csv")
    with open(topology, "w") as f:
        f.write(f"Layer name, M, N, K,\\ngemm{index}, {m}, {n}, {k},\\n")
    run = scalesim(save_disk_space=True, verbose=False, config=config, topology=topology,
                   layout=layout, input_type_gemm=True)
    start = time.perf_counter()
    run.run_scale(top_path=os.path.join(out_dir, f"out{index}"))
    wall = time.perf_counter() - start
    layer = run.runner.single_layer_sim_object_list[0]
    items = layer.get_compute_report_items()
    results.append({"total_cycles": int(items[1]), "stall_cycles": int(items[2]),
                    "util_percent": float(items[3]), "wall_s": wall})
print("RESULTS " + json.dumps(results))
"""


def _write_config(template: str, path: str, rows: int, cols: int, dataflow: str, bandwidth):
    text = open(template).read()
    replacements = {
        r"(?m)^ArrayHeight\s*:.*$": f"ArrayHeight: {rows}",
        r"(?m)^ArrayWidth\s*:.*$": f"ArrayWidth: {cols}",
        r"(?m)^Dataflow\s*:.*$": f"Dataflow : {dataflow}",
        r"(?m)^InterfaceBandwidth\s*:.*$": "InterfaceBandwidth: "
        + ("CALC" if bandwidth is None else "USER"),
    }
    if bandwidth is not None:
        replacements[r"(?m)^Bandwidth\s*:.*$"] = f"Bandwidth : {bandwidth}"
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text)
        if count != 1:
            raise ValueError(f"SCALE-Sim config {template!r} has no single line for {pattern!r}")
    with open(path, "w") as f:
        f.write(text)


def run_scalesim(python, template, rows, cols, dataflow, shapes, bandwidth=None) -> list[dict]:
    """Run SCALE-Sim on each GEMM in its own environment; return its report items per GEMM."""
    with tempfile.TemporaryDirectory(prefix="scalesim-") as work:
        config = os.path.join(work, "scale.cfg")
        _write_config(template, config, rows, cols, dataflow, bandwidth)
        # SCALE-Sim 3.0 opens a layout file even with custom layouts off; a header is enough.
        layout = os.path.join(work, "layout.csv")
        with open(layout, "w") as f:
            f.write("Layer name, unused,\n")
        command = [python, "-c", _DRIVER, config, layout, work, json.dumps(shapes)]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=work)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"SCALE-Sim failed ({done.returncode}): {done.stderr[-2000:]}")
        return json.loads(lines[-1][len("RESULTS ") :])


def time_onebit(design, shape, bandwidth=None, with_data=False, repeats=3):
    """Return (GemmRun, best wall seconds of ``repeats``) for onebit's engine."""
    m, n, k = shape
    x_q = w_q = None
    if with_data:
        rng = np.random.default_rng(0)
        x_q = rng.integers(-128, 128, size=(m, k)).astype(np.int8)
        w_q = rng.integers(-1, 2, size=(k, n)).astype(np.int8)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run = sim.simulate_gemm(design, m, n, k, x_q, w_q, bandwidth_words_per_cycle=bandwidth)
        best = min(best, time.perf_counter() - start)
    return run, best


def _design(rows, cols, dataflow):
    spec = {"array": "systolic", "rows": rows, "cols": cols, "dataflow": dataflow}
    return sim.Design.from_spec(spec, "kv260")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scalesim-python", help="python of the virtual environment of SCALE-Sim")
    parser.add_argument("--scalesim-config", help="SCALE-Sim's example scale.cfg to start from")
    parser.add_argument("--rows", type=int, default=32, help="array rows R")
    parser.add_argument("--cols", type=int, default=32, help="array columns C")
    parser.add_argument(
        "--bandwidth", type=int, default=10, help="DRAM words per cycle for the stall table"
    )
    parser.add_argument("--speed", action="store_true", help="also time one 512^3 GEMM")
    args = parser.parse_args()
    if args.scalesim_python and not args.scalesim_config:
        parser.error("--scalesim-python needs --scalesim-config (the wheel ships no config)")

    systolic.warm_up()
    print(
        f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, numpy {np.__version__}; array "
        f"{args.rows} x {args.cols}\n"
    )
    dataflows = ("ws", "os", "is")
    shapes = [list(shape) for shape in SHAPES]

    theirs = {}
    if args.scalesim_python:
        for dataflow in dataflows:
            theirs[dataflow] = run_scalesim(
                args.scalesim_python,
                args.scalesim_config,
                args.rows,
                args.cols,
                dataflow,
                shapes,
            )
            theirs[dataflow, "bw"] = run_scalesim(
                args.scalesim_python,
                args.scalesim_config,
                args.rows,
                args.cols,
                dataflow,
                shapes,
                bandwidth=args.bandwidth,
            )

    print(
        "| dataflow | M x N x K | onebit cycles | SCALE-Sim cycles | equal | onebit util % "
        "| SCALE-Sim util % | onebit wall (s) | SCALE-Sim wall (s) |"
    )
    print("|---|---|---:|---:|---|---:|---:|---:|---:|")
    for dataflow in dataflows:
        design = _design(args.rows, args.cols, dataflow)
        for index, shape in enumerate(SHAPES):
            run, wall = time_onebit(design, shape, with_data=True)
            ref = theirs.get(dataflow, [{}] * len(SHAPES))[index]
            if ref:
                equal = "yes" if ref["total_cycles"] == run.cycles else "**no**"
                theirs_cells = (
                    f"{ref['total_cycles']} | {equal} | {run.utilization * 100:.2f} | "
                    f"{ref['util_percent']:.2f} | {wall:.2e} | {ref['wall_s']:.2f}"
                )
            else:
                theirs_cells = f"- | - | {run.utilization * 100:.2f} | - | {wall:.2e} | -"
            print(f"| {dataflow} | {'x'.join(map(str, shape))} | {run.cycles} | {theirs_cells} |")

    print(f"\nAt {args.bandwidth} DRAM words per cycle (SCALE-Sim: InterfaceBandwidth USER):\n")
    print(
        "| dataflow | M x N x K | onebit cycles | onebit stalls | onebit prefetch | "
        "SCALE-Sim cycles | SCALE-Sim stalls |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for dataflow in dataflows:
        design = _design(args.rows, args.cols, dataflow)
        for index, shape in enumerate(SHAPES):
            run, _ = time_onebit(design, shape, bandwidth=args.bandwidth, repeats=1)
            ref = theirs.get((dataflow, "bw"), [{}] * len(SHAPES))[index]
            print(
                f"| {dataflow} | {'x'.join(map(str, shape))} | {run.cycles} | "
                f"{run.stall_cycles} | {run.prefetch_cycles} | "
                f"{ref.get('total_cycles', '-')} | {ref.get('stall_cycles', '-')} |"
            )

    if not args.speed:
        return
    print(f"\nOne {'x'.join(map(str, SPEED_SHAPE))} GEMM (simulated cycles per wall second):\n")
    print(
        "| dataflow | cycles | onebit timing only (s) | onebit with outputs (s) | "
        "SCALE-Sim (s) | onebit cycles/s (outputs) | SCALE-Sim cycles/s | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for dataflow in dataflows:
        design = _design(args.rows, args.cols, dataflow)
        timing_run, timing_wall = time_onebit(design, SPEED_SHAPE)
        data_run, data_wall = time_onebit(design, SPEED_SHAPE, with_data=True)
        ref = {}
        if args.scalesim_python:
            ref = run_scalesim(
                args.scalesim_python,
                args.scalesim_config,
                args.rows,
                args.cols,
                dataflow,
                [list(SPEED_SHAPE)],
            )[0]
        cycles = data_run.cycles
        theirs_wall = ref.get("wall_s")
        print(
            f"| {dataflow} | {cycles} | {timing_wall:.2e} | {data_wall:.3f} | "
            + (f"{theirs_wall:.1f} | " if ref else "- | ")
            + f"{cycles / data_wall:.3g} | "
            + (
                f"{cycles / theirs_wall:.3g} | {theirs_wall / data_wall:.0f}x |"
                if ref
                else "- | - |"
            )
        )
        if ref and ref["total_cycles"] != cycles:
            print(f"  cycles differ: onebit {cycles}, SCALE-Sim {ref['total_cycles']}")


if __name__ == "__main__":
    main()
