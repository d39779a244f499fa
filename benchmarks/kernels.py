"""Benchmark the Numba ternary kernels against torch F.linear in fp32 and bf16.

Shapes are N x K (output features x input features, the shape of F.linear's weight) of the
BitNet b1.58 2B-4T linear layers: 2560x2560 (attention q/o projections), 2560x6912 (down
projection) and 6912x2560 (gate and up projections). Each layer is timed at batch 1 (GEMV, the
decode step) and batch 64 (GEMM). All contenders run with the same thread count. The time of a
case is the minimum over ``--repeat`` runs, because the machine is shared and slower runs
measure other load, not the kernel.

Run from the repository root: ``python -m benchmarks.kernels [--threads N] [--repeat R]
[--formats i2_s,2bit,...]``. Run as a module because ``python benchmarks/kernels.py`` would put
benchmarks/ first on the import path, where this file shadows the ``kernels`` package.
"""

import sys

if __name__ == "__main__" and not __package__:
    sys.exit(
        "run this benchmark as a module from the repository root: python -m benchmarks.kernels"
    )

import argparse
import platform
import time

import numba
import numpy as np
import torch
import torch.nn.functional as F

import kernels

SHAPES = [(2560, 2560), (2560, 6912), (6912, 2560)]
BATCHES = [1, 64]


def best_time(function, arguments: tuple, repeat: int, **keywords) -> float:
    """Return the minimum wall time of ``repeat`` calls, in seconds, after one warm-up call."""
    function(*arguments, **keywords)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*arguments, **keywords)
        times.append(time.perf_counter() - start)
    return min(times)


def memory_bandwidth(repeat: int) -> float:
    """Return the copy bandwidth of a 256 MiB numpy array in GB/s (bytes read + written)."""
    source = np.ones(256 * 2**20 // 8)
    target = np.empty_like(source)
    seconds = best_time(np.copyto, (target, source), repeat)
    return 2 * source.nbytes / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per case")
    parser.add_argument("--formats", default="i2_s,2bit,hf,base3", help="comma-separated")
    args = parser.parse_args()
    formats = args.formats.split(",")

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    print(
        f"# {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}, numba {numba.__version__}, min of {args.repeat} runs"
    )
    print(f"# memory copy bandwidth: {memory_bandwidth(args.repeat):.1f} GB/s")
    header = f"{'N x K':>11} {'batch':>5} {'fp32 ms':>8} {'bf16 ms':>8}"
    for fmt in formats:
        header += f" {fmt + ' ms':>9} {'vs fp32':>7} {'vs bf16':>7} {'GB/s':>6}"
    print(header)

    generator = np.random.default_rng(0)
    for rows, cols in SHAPES:
        w = generator.integers(-1, 2, (rows, cols)).astype(np.int8)
        w32 = torch.from_numpy(w.astype(np.float32))
        w16 = w32.to(torch.bfloat16)
        packed = {fmt: kernels.pack_weights(w, fmt) for fmt in formats}
        for batch in BATCHES:
            x_q = generator.integers(-128, 128, (batch, cols)).astype(np.int8)
            x32 = torch.from_numpy(x_q.astype(np.float32))
            x16 = x32.to(torch.bfloat16)
            expected = (x_q.astype(np.int64) @ w.astype(np.int64).T).astype(np.int32)
            t32 = best_time(F.linear, (x32, w32), args.repeat)
            t16 = best_time(F.linear, (x16, w16), args.repeat)
            line = f"{rows:>5}x{cols:<5} {batch:>5} {t32 * 1e3:8.3f} {t16 * 1e3:8.3f}"
            for fmt in formats:
                p = packed[fmt]
                acc = kernels.ternary_gemm(x_q, p, fmt, (rows, cols), check=False)
                if not np.array_equal(acc, expected):
                    raise RuntimeError(
                        f"ternary_gemm {fmt} {rows}x{cols} differs from the reference"
                    )
                gemm_arguments = (x_q, p, fmt, (rows, cols))
                seconds = best_time(kernels.ternary_gemm, gemm_arguments, args.repeat, check=False)
                line += (
                    f" {seconds * 1e3:9.3f} {t32 / seconds:7.2f} {t16 / seconds:7.2f}"
                    f" {p.nbytes / seconds / 1e9:6.2f}"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
