"""RTL simulation speed: simulated cycles per second of the cocotb bench on Verilator and Icarus.

Usage: ``python -m benchmarks.rtl [--runs R]`` from the repository root.

Two units, PE x SIMD = 16 x 16 (a 64 x 64 layer, 16 folds) and 64 x 64 (a 256 x 256 layer,
16 folds), each run R times back to back at full rate under the bench. The driver, monitor,
scoreboard and kernels/ reference run in Python, so the figure is the speed of a verification
run, not of the bare simulator. Build time is reported separately. The Markdown table goes to
stdout, for the "## rtl" section of reports/benchmarks.md.
"""

import argparse
import platform
import sys

import sim
from rtl.verify import measure_speed, simulator_missing

UNITS = [("pe=16,simd=16", 64, 64), ("pe=64,simd=64", 256, 256)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="runs per unit (default: 500)")
    args = parser.parse_args(argv)
    lines = [
        "| unit (PE x SIMD) | layer | simulator | cycles | run s | cycles/s | build s |",
        "|---|---|---|---|---|---|---|",
    ]
    for simulator in ("verilator", "icarus"):
        missing = simulator_missing(simulator)
        if missing:
            print(f"skipping {simulator}: {missing}", file=sys.stderr)
            continue
        for spec, n, k in UNITS:
            design = sim.Design.from_spec(spec, "icebreaker")
            figures = measure_speed(design, n, k, simulator=simulator, runs=args.runs)
            if not figures["passed"]:
                print(f"{simulator} {spec}: the bench failed", file=sys.stderr)
                return 1
            pe_simd = spec.replace("pe=", "").replace(",simd=", " x ")
            lines.append(
                f"| {pe_simd} | {n}x{k} | {simulator} | {figures['cycles']} | "
                f"{figures['seconds']:.2f} | {figures['cycles_per_s']:.0f} | "
                f"{figures['build_s']:.0f} |"
            )
    print(f"Python {platform.python_version()}, {platform.machine()}, runs={args.runs}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
