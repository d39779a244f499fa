"""Benchmark `sim.explore`: an exhaustive sweep of more than 100,000 designs for one model and
board, written to a fresh SQLite store, then the same sweep resumed from the store.

The space crosses the default space of the board with three activation widths and 30 clocks.
Prints the design count, the wall time of the fresh sweep and of the resumed one, the time of
the evaluation alone (`sim.explore.evaluate_designs` on every design in this process), and the
export times.

    .venv/bin/python -m benchmarks.explore [--model bitnet-2b-4t] [--board kv260] [--workers 1]
"""

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from sim.explore import EVALUATOR, Workload, evaluate_designs, explore
from sim.space import default_space
from sim.store import ResultStore


def _space(board: str):
    return default_space(board).with_axes(
        {
            "act_bits": (4, 6, 8),
            "clock_mhz": {"start": 150, "stop": 440, "step": 10},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bitnet-2b-4t")
    parser.add_argument("--board", default="kv260")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--chunk-size", type=int, default=4096, help="designs per task")
    args = parser.parse_args()

    space = _space(args.board)
    print(f"host: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    print(f"model {args.model}, board {args.board}, workers {args.workers}")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "results.sqlite"
        start = time.perf_counter()
        fresh = explore(
            args.model,
            args.board,
            space,
            store=str(path),
            workers=args.workers,
            chunk_size=args.chunk_size,
        )
        fresh_s = time.perf_counter() - start
        start = time.perf_counter()
        resumed = explore(args.model, args.board, space, store=str(path), workers=args.workers)
        resumed_s = time.perf_counter() - start

        designs, _ = space.expand(args.board)
        fields = [design.to_dict() for design in designs]
        start = time.perf_counter()
        evaluate_designs(Workload(args.model, args.board).to_dict(), fields)
        evaluate_s = time.perf_counter() - start

        with ResultStore(path, evaluator=EVALUATOR) as store:
            start = time.perf_counter()
            store.export_csv(Path(directory) / "results.csv")
            csv_s = time.perf_counter() - start
            start = time.perf_counter()
            store.export_parquet(Path(directory) / "results.parquet")
            parquet_s = time.perf_counter() - start
        store_mb = path.stat().st_size / 1e6

    print(
        f"designs: {fresh.designs_total} valid ({fresh.designs_invalid} invalid combinations), "
        f"{fresh.feasible} feasible, {len(fresh.pareto)} on the Pareto front"
    )
    print(
        f"fresh sweep:   {fresh_s:6.2f} s  ({fresh.designs_evaluated_now / fresh_s:,.0f} designs/s,"
        f" {fresh.designs_evaluated_now} evaluated)"
    )
    print(
        f"resumed sweep: {resumed_s:6.2f} s  ({resumed.designs_reused} reused, "
        f"{resumed.designs_evaluated_now} evaluated)"
    )
    print(f"evaluation alone (one chunk, in process): {evaluate_s:6.2f} s")
    print(f"export: CSV {csv_s:.2f} s, Parquet {parquet_s:.2f} s; store {store_mb:.1f} MB")


if __name__ == "__main__":
    main()
