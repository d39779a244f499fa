"""Benchmark `onebit run` on the demo model: the reference device against the sim device.

Both devices generate the same tokens from the same prompt in one process, one after the other,
after a warm-up run of each (Numba compilation and caches are not timed). Prints tokens/s of the
wall clock for each device and the ratio sim / reference.

    .venv/bin/python -m benchmarks.run [--tokens 128] [--repeats 3] [--model demo]

Run it as a module from the repository root: as a script, benchmarks/ would come first on the
import path, where benchmarks/kernels.py shadows the ``kernels`` package.
"""

import sys

if __name__ == "__main__" and not __package__:
    sys.exit("run this benchmark as a module from the repository root: python -m benchmarks.run")

import argparse
import os
import platform
import statistics
import time

import torch

import sim
from hostlib import load_model
from hostlib.devices import make_device
from hostlib.runner import generate_on_device


def _time_run(model_name: str, device_name: str, design: sim.Design, tokens: int, prompt: str):
    start = time.perf_counter()
    model = load_model(model_name)
    device = make_device(device_name, design)
    result = generate_on_device(model, prompt, device, design, max_new_tokens=tokens)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--board", default="kv260")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per device")
    parser.add_argument("--prompt", default="ROMEO:")
    args = parser.parse_args()

    design = sim.Design.from_spec(None, board=args.board)
    print(
        f"host: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"model {args.model}, {args.tokens} new tokens, prompt {args.prompt!r}, "
        f"median of {args.repeats} runs"
    )
    tokens_by_device = {}
    rates = {}
    for device_name in ("reference", "sim"):
        _time_run(args.model, device_name, design, 4, args.prompt)
        seconds = []
        for _ in range(args.repeats):
            elapsed, result = _time_run(args.model, device_name, design, args.tokens, args.prompt)
            seconds.append(result.wall_s)
        tokens_by_device[device_name] = result.new_tokens
        rates[device_name] = args.tokens / statistics.median(seconds)
        print(
            f"{device_name:>10}: {rates[device_name]:8.1f} tokens/s "
            f"(generation {statistics.median(seconds):.3f} s; "
            f"last run with model load {elapsed:.3f} s)"
        )
    if tokens_by_device["reference"] != tokens_by_device["sim"]:
        raise SystemExit("the devices generated different tokens")
    print(f"sim costs {rates['reference'] / rates['sim']:.2f}x the reference (target: at most 3x)")


if __name__ == "__main__":
    main()
