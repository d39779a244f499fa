"""Compare synthesized resources with sim's resource model and fit the model's constants.

Run ``python -m rtl.calibrate [--target xc7] [--pnr]`` to synthesize `DESIGNS` and print the
Markdown table of reports/rtl_synthesis.md with a least-squares fit of

    measured = slope * modelled datapath + intercept

for LUTs and flip-flops, where the modelled datapath is `sim.resources.logic_resources` minus
its fixed control term, so the intercept is the measured cost of control and memory interface.
"""

import argparse
import json

import numpy as np

import sim
from sim import resources as sim_resources

__all__ = ["DESIGNS", "calibration_rows", "fit_line", "main"]

DESIGNS = [
    ("datapath=ternary,pe=2,simd=8", 16, 64),
    ("datapath=ternary,pe=4,simd=16", 32, 128),
    ("datapath=ternary,pe=8,simd=16", 64, 128),
    ("datapath=ternary,pe=4,simd=32", 32, 256),
    ("datapath=ternary,pe=8,simd=32", 64, 256),
    ("datapath=ternary,pe=16,simd=16", 64, 256),
    ("datapath=xnor,pe=4,simd=32", 32, 256),
    ("datapath=xnor,pe=8,simd=64", 64, 512),
]
"""(design spec, N, K) of the comparison, on the iCEBreaker board (weights on chip)."""


def calibration_rows(target: str, *, place_and_route: bool = False, designs=DESIGNS) -> list:
    """Synthesize each design for ``target``; return rows of measured and modelled figures."""
    from rtl.synth import synthesize

    rows = []
    for spec, n, k in designs:
        design = sim.Design.from_spec(spec, "icebreaker")
        result = synthesize(design, n, k, target, place_and_route=place_and_route)
        model = sim.design_resources(design, [(n, k)])
        rows.append(
            {
                "design": spec,
                "layer": f"{n}x{k}",
                "measured": result.resources,
                "fmax_mhz": result.fmax_mhz,
                "model_lut": model.lut,
                "model_ff": model.ff,
                "model_lut_datapath": model.lut - sim_resources.CONTROL_LUT,
                "model_ff_datapath": model.ff - sim_resources.CONTROL_FF,
            }
        )
    return rows


def fit_line(x, y) -> tuple[float, float, float]:
    """Return (slope, intercept, mean absolute relative error) of a least-squares line."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    error = float(np.mean(np.abs(slope * x + intercept - y) / y))
    return float(slope), float(intercept), error


def markdown(rows: list, target: str) -> str:
    """Return the comparison table and the fit as Markdown."""
    lines = [
        f"| design | layer | {target} LUT | model LUT | {target} FF | model FF | carry | BRAM "
        "| LUT RAM | DSP | fmax MHz |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row["measured"]
        fmax = "" if row["fmax_mhz"] is None else f"{row['fmax_mhz']:.1f}"
        lines.append(
            f"| {row['design']} | {row['layer']} | {m['lut']} | {row['model_lut']} | {m['ff']} | "
            f"{row['model_ff']} | {m['carry']} | {m['bram']} | {m['lutram']} | {m['dsp']} | "
            f"{fmax} |"
        )
    for kind in ("lut", "ff"):
        slope, intercept, error = fit_line(
            [row[f"model_{kind}_datapath"] for row in rows], [row["measured"][kind] for row in rows]
        )
        lines.append("")
        lines.append(
            f"{kind.upper()}: measured = {slope:.3f} x modelled datapath + {intercept:.0f}; "
            f"mean absolute relative error {100 * error:.1f} %"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="xc7", choices=("ice40", "ecp5", "xc7"))
    parser.add_argument("--pnr", action="store_true", help="place and route for fmax")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = calibration_rows(args.target, place_and_route=args.pnr)
    print(json.dumps(rows) if args.json else markdown(rows, args.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
