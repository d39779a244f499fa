"""The `onebit` command line."""

import argparse
import dataclasses
import json
import logging
import shlex
import sqlite3
import sys
from pathlib import Path

import sim
from hostlib.devices import DEVICE_NAMES, make_device
from hostlib.offload import MismatchError

__all__ = ["main"]

logger = logging.getLogger("onebit")

_EXIT_INPUT_ERROR = 2
_EXIT_CHECK_FAILED = 1
_PARETO_ROWS = 10


class _UsageError(Exception):
    """Bad input from the command line: reported as one line, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    """Run the `onebit` command line and return its exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.handler(args)
    except BrokenPipeError:
        # The reader of stdout went away (for example `| head`); nothing more can be shown.
        sys.stderr.close()
        return 0
    except MismatchError as error:
        print(f"onebit: check failed: {error}", file=sys.stderr)
        return _EXIT_CHECK_FAILED
    except sqlite3.Error as error:
        print(f"onebit: error: the result store cannot be used: {error}", file=sys.stderr)
        return _EXIT_INPUT_ERROR
    except (
        _UsageError,
        ValueError,
        TypeError,
        NotImplementedError,
        OSError,
        OverflowError,
    ) as error:
        print(f"onebit: error: {error}", file=sys.stderr)
        return _EXIT_INPUT_ERROR


_DESIGN_HELP = (
    "design fields as k=v,... from: datapath, array, pe, simd, rows, cols, dataflow, "
    "act_bits, acc_bits, weight_store, weight_format, zero_skip, clock_mhz; "
    f"datapath is one of {'|'.join(sim.DATAPATHS)}, array {'|'.join(sim.ARRAYS)}, dataflow "
    f"{'|'.join(sim.DATAFLOWS)}, weight_store {'|'.join(sim.WEIGHT_STORES)}, weight_format "
    f"{'|'.join(sim.WEIGHT_FORMATS)}; "
    "for example pe=16,simd=64,weight_store=onchip (default: pe=16,simd=64 on a ternary mvu)"
)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onebit",
        description="Co-design suite for FPGA accelerators of 1-bit and ternary LLMs.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list the model catalogue")
    models.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    models.set_defaults(handler=_models)

    boards = commands.add_parser("boards", help="list the board catalogue")
    boards.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    boards.set_defaults(handler=_boards)

    simulate = commands.add_parser(
        "simulate", help="simulate one GEMM (--gemm) or a model's layers (--model) on a design"
    )
    target = simulate.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="a model from 'onebit models'")
    target.add_argument(
        "--gemm",
        help="M,N,K: an M x K input times K x N weights (SCALE-Sim's topology convention)",
    )
    simulate.add_argument(
        "--board", default="kv260", help="board from 'onebit boards' (default: kv260)"
    )
    simulate.add_argument("--design", default=None, help=_DESIGN_HELP)
    simulate.add_argument(
        "--phase",
        choices=("decode", "prefill"),
        default="decode",
        help="with --model: one decode token or a prefill of --tokens (default: decode)",
    )
    simulate.add_argument(
        "--tokens",
        type=int,
        default=None,
        help="with --model --phase prefill: prompt tokens (default: 128)",
    )
    simulate.add_argument(
        "--context",
        type=int,
        default=None,
        help="with --model: KV-cache length of the decode token (default: the model's maximum)",
    )
    simulate.add_argument(
        "--bandwidth",
        type=float,
        default=None,
        help="with --gemm on a systolic design: DRAM words per cycle into the array's SRAM, a "
        "word being one operand element as in SCALE-Sim (the board, weight_store and "
        "weight_format do not apply there); default: no DRAM stalls, as SCALE-Sim's CALC mode",
    )
    simulate.add_argument(
        "--nonzero-fraction",
        type=float,
        default=1.0,
        help="with --model: share of nonzero weights, which sets the energy saved by "
        "zero_skip (default: 1, nothing skipped)",
    )
    simulate.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    simulate.set_defaults(handler=_simulate)

    run = commands.add_parser(
        "run", help="generate text with the BitLinear layers offloaded to a device"
    )
    run.add_argument(
        "--model", default="demo", help="'demo' or a checkpoint directory (default: demo)"
    )
    run.add_argument(
        "--device",
        default="sim",
        help=f"where the BitLinear layers run: {', '.join(DEVICE_NAMES)} (default: sim)",
    )
    run.add_argument(
        "--board", default="kv260", help="board of the modelled accelerator (default: kv260)"
    )
    run.add_argument(
        "--design",
        default=None,
        help=_DESIGN_HELP + "; the rtl device needs weight_store=onchip, its default there",
    )
    run.add_argument("--prompt", default="ROMEO:", help="text to continue (default: ROMEO:)")
    run.add_argument(
        "--max-new-tokens", type=int, default=64, help="tokens to generate (default: 64)"
    )
    run.add_argument(
        "--check",
        action="store_true",
        help="run the PyTorch reference alongside and fail on any accumulator or logit difference",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    run.set_defaults(handler=_run)

    explore = commands.add_parser(
        "explore", help="sweep a design space for a model and a board, keep the Pareto front"
    )
    _add_space_arguments(explore)
    explore.add_argument(
        "--out",
        default=None,
        help="directory of the result store (results.sqlite) and its CSV and Parquet exports "
        "(default: onebit-explore/MODEL-BOARD)",
    )
    explore.add_argument(
        "--context",
        type=int,
        default=None,
        help="KV-cache length of the decode token (default: the model's maximum)",
    )
    explore.add_argument(
        "--prefill-tokens",
        type=int,
        default=128,
        help="prompt tokens of the prefill phase (default: 128)",
    )
    explore.add_argument(
        "--nonzero-fraction",
        type=float,
        default=1.0,
        help="share of nonzero weights, for the energy of zero-skipping designs (default: 1)",
    )
    explore.add_argument(
        "--chunk-size",
        type=int,
        default=4096,
        help="designs per task and per store write (default: 4096)",
    )
    explore.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    explore.set_defaults(handler=_explore)

    report = commands.add_parser(
        "report", help="explore a model on a board and write a Markdown report with figures"
    )
    _add_space_arguments(report)
    report.add_argument(
        "--out", default="reports", help="directory of the report (default: reports)"
    )
    report.add_argument(
        "--store", default=None, help="result store to reuse (default: a store in memory)"
    )
    report.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    report.set_defaults(handler=_report)

    _add_rtl_commands(commands)
    return parser


def _add_space_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a model from 'onebit models'")
    parser.add_argument("--board", required=True, help="a board from 'onebit boards'")
    parser.add_argument(
        "--space", default=None, help="TOML file with an [axes] table (default: the board's space)"
    )
    parser.add_argument(
        "--axis",
        action="append",
        default=[],
        metavar="NAME=VALUES",
        help="set one axis, as pe=8,16,32 or clock_mhz=200:300:50 (repeatable; replaces that "
        "axis of the space)",
    )
    executor = parser.add_mutually_exclusive_group()
    executor.add_argument(
        "--workers", type=int, default=1, help="local worker processes (default: 1, this one)"
    )
    executor.add_argument(
        "--scheduler", default=None, help="address of a Dask scheduler, such as tcp://host:8786"
    )


def _models(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": key,
            "family": model.family,
            "hidden": model.hidden,
            "intermediate": model.intermediate,
            "layers": model.layers,
            "heads": model.heads,
            "kv_heads": model.kv_heads,
            "vocab": model.vocab,
            "tied_embeddings": model.tied_embeddings,
            "max_context": model.max_context,
            "ternary_parameters": sim.ternary_parameters(model),
            "host_parameters": sim.host_parameters(model),
        }
        for key, model in sim.MODELS.items()
    ]
    if args.json:
        print(json.dumps({"models": rows}))
        return 0
    print(
        f"{'name':<16} {'family':<11} {'hidden':>6} {'inter':>6} {'layers':>6} "
        f"{'heads':>5} {'kv':>3} {'vocab':>7} {'ternary':>10} {'host':>10}"
    )
    for row in rows:
        print(
            f"{row['name']:<16} {row['family']:<11} {row['hidden']:>6} {row['intermediate']:>6} "
            f"{row['layers']:>6} {row['heads']:>5} {row['kv_heads']:>3} {row['vocab']:>7} "
            f"{row['ternary_parameters'] / 1e6:>9.1f}M {row['host_parameters'] / 1e6:>9.1f}M"
        )
    return 0


def _boards(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": key,
            "board": board.name,
            "family": board.family,
            "lut": board.lut,
            "ff": board.ff,
            "dsp": board.dsp,
            "bram36": board.bram36,
            "uram": board.uram,
            "onchip_bytes": board.onchip_bytes,
            "dram_bytes_per_s": board.dram_bytes_per_s,
            "dram_bytes": board.dram_bytes,
            "dram_burst_bytes": board.dram_burst_bytes,
            "dram_latency_ns": board.dram_latency_ns,
            "clock_mhz": board.clock_mhz,
            "static_power_w": board.static_power_w,
            "source": board.source,
        }
        for key, board in sim.BOARDS.items()
    ]
    if args.json:
        print(json.dumps({"boards": rows}))
        return 0
    print(
        f"{'name':<12} {'family':<18} {'LUT':>9} {'DSP':>6} {'on-chip MB':>10} "
        f"{'DRAM GB/s':>10} {'burst B':>8} {'latency ns':>11}"
    )
    for row in rows:
        print(
            f"{row['name']:<12} {row['family']:<18} {row['lut']:>9} {row['dsp']:>6} "
            f"{row['onchip_bytes'] / 1e6:>10.2f} {row['dram_bytes_per_s'] / 1e9:>10.1f} "
            f"{row['dram_burst_bytes']:>8} {row['dram_latency_ns']:>11}"
        )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    design = sim.Design.from_spec(args.design, board=args.board)
    if args.gemm is not None:
        return _simulate_gemm(args, design)
    return _simulate_model(args, design)


def _parse_gemm(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(part.strip().isdigit() for part in parts):
        raise _UsageError(f"--gemm must be three positive integers M,N,K; got {text!r}")
    m, n, k = (int(part) for part in parts)
    if min(m, n, k) < 1:
        raise _UsageError(f"--gemm sizes must be at least 1; got {text!r}")
    return m, n, k


def _simulate_gemm(args: argparse.Namespace, design: sim.Design) -> int:
    m, n, k = _parse_gemm(args.gemm)
    for option, value, unset in (
        ("--phase", args.phase, "decode"),
        ("--tokens", args.tokens, None),
        ("--context", args.context, None),
        ("--nonzero-fraction", args.nonzero_fraction, 1.0),
    ):
        if value != unset:
            raise _UsageError(f"{option} applies to --model; a GEMM's sizes are all in --gemm")
    if design.array == "systolic":
        run = sim.simulate_gemm(design, m, n, k, bandwidth_words_per_cycle=args.bandwidth)
        result = {key: value for key, value in dataclasses.asdict(run).items() if key != "out"}
    else:
        if args.bandwidth is not None:
            raise _UsageError(
                "--bandwidth applies to systolic designs; an mvu design streams at the board's "
                "DRAM bandwidth"
            )
        # An MVU runs the GEMM as a layer of N outputs and K inputs over M token vectors.
        run = sim.estimate_layer(design, n, k, tokens=m)
        result = {
            "m": m,
            "n": n,
            "k": k,
            "cycles": run.cycles,
            "compute_cycles": run.compute_cycles,
            "memory_cycles": run.memory_cycles,
            "stall_cycles": run.stall_cycles,
            "pipeline_depth": run.pipeline_depth,
            "bound": run.bound,
            "time_s": run.time_s,
            "energy_j": run.energy_j,
        }
    result["design"] = design.to_dict()
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"GEMM {m}x{k} @ {k}x{n} on {_format_design(result['design'])}")
    for key, value in result.items():
        if key not in ("design", "m", "n", "k"):
            print(f"  {key:<16} {value}")
    return 0


def _simulate_model(args: argparse.Namespace, design: sim.Design) -> int:
    if args.bandwidth is not None:
        raise _UsageError("--bandwidth applies to --gemm on a systolic design")
    if design.array != "mvu":
        raise _UsageError(
            f"--model runs on an mvu array, got array={design.array}; simulate a systolic "
            "design one GEMM at a time with --gemm M,N,K"
        )
    fraction = {"nonzero_fraction": args.nonzero_fraction}
    if args.phase == "decode":
        if args.tokens not in (None, 1):
            raise _UsageError(
                f"--tokens is the prompt length of a prefill; decode runs one token, "
                f"got --tokens {args.tokens}"
            )
        run = sim.simulate_model(
            design, args.model, phase="decode", context=args.context, **fraction
        )
    else:
        if args.context is not None:
            raise _UsageError("--context applies to decode; a prefill's context is its tokens")
        tokens = 128 if args.tokens is None else args.tokens
        run = sim.simulate_model(design, args.model, phase="prefill", tokens=tokens, **fraction)
    result = run.to_dict()
    if args.json:
        print(json.dumps(result))
        return 0
    _print_model_run(result)
    return 0


def _print_model_run(result: dict) -> None:
    tokens = "1 token" if result["tokens"] == 1 else f"{result['tokens']} tokens"
    print(
        f"{result['model']} on {result['board']}, {result['phase']} "
        f"({tokens}, context {result['context'] or result['tokens']}), host {result['host']}"
    )
    print(f"design: {_format_design(result['design'])}")
    print()
    print(f"{'layer':<34} {'kind':<8} {'N x K':>11} {'cycles':>10} {'time':>11} {'bound':>8}")
    for layer in result["layers"]:
        shape = ""
        if layer["kind"] == "ternary":
            shape = f"{layer['out_features']}x{layer['in_features']}"
        cycles = "" if layer["cycles"] is None else f"{layer['cycles']}"
        print(
            f"{layer['name']:<34} {layer['kind']:<8} {shape:>11} {cycles:>10} "
            f"{layer['time_s'] * 1e6:>9.2f}us {layer['bound']:>8}"
        )
    print()
    print(
        f"accelerator {result['accelerator_time_s'] * 1e3:.3f} ms ({result['cycles']} cycles), "
        f"host {result['host_time_s'] * 1e3:.3f} ms"
    )
    print(
        f"{result['tokens_per_s']:.2f} tokens/s, "
        f"{result['energy_j_per_token'] * 1e3:.3f} mJ/token, "
        f"fits the board: {'yes' if result['fits'] else 'no'}"
    )
    for problem in result["fit"].get("problems", []):
        print(f"  does not fit: {problem}")


def _run(args: argparse.Namespace) -> int:
    from hostlib.checkpoint import load_model
    from hostlib.runner import generate_on_device

    spec = args.design
    if args.device == "rtl" and "weight_store" not in (spec or ""):
        # The generated RTL holds its weights on chip; streaming from DRAM is not built.
        spec = "weight_store=onchip" + (f",{spec}" if spec else "")
    design = sim.Design.from_spec(spec, board=args.board)
    model = load_model(args.model)
    for _, layer in model.bitlinear_layers():
        design.check_layer(layer.out_features, layer.in_features)
    from hostlib.board import BoardError
    from hostlib.transports import TransportError

    try:
        device = make_device(args.device, design)
        logger.info("generating %d tokens on device %s", args.max_new_tokens, device.name)
        try:
            result = generate_on_device(
                model,
                args.prompt,
                device,
                design,
                max_new_tokens=args.max_new_tokens,
                check=args.check,
            )
        finally:
            device.close()
    except (BoardError, TransportError) as error:
        raise _UsageError(str(error)) from None

    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    _print_run(result, args)
    return 0


def _print_run(result, args: argparse.Namespace) -> None:
    print(result.text)
    print()
    modelled = result.modelled
    print(
        f"device: {args.device}   board: {args.board}   "
        f"design: {_format_design(modelled['design'])}"
    )
    if result.check:
        print("check: every accumulator and logit equals the PyTorch reference")
    print()
    print(f"{'layer':<36} {'N x K':>11} {'cycles/token':>13} {'time/token':>11} {'bound':>8}")
    for layer in result.layers:
        shape = f"{layer['shape'][0]}x{layer['shape'][1]}"
        print(
            f"{layer['name']:<36} {shape:>11} {layer['cycles']:>13.0f} "
            f"{layer['time_s'] * 1e6:>9.2f}us {layer['bound']:>8}"
        )
    board_layers = result.device.get("layers")
    if board_layers:
        print()
        print(
            "cycles per decode token counted by the board against sim's prediction; the board "
            "runs each layer as tiles that fit its matrix-vector unit, so a layer costs the sum "
            "over its tiles, not the single pass of the table above:"
        )
        print(f"{'layer':<36} {'tiles':>5} {'board':>9} {'sim, tiles':>11} {'sim, 1 pass':>12}")
        for layer in board_layers:
            measured = layer["board_cycles_per_token"]
            shown = "-" if measured is None else f"{measured:.0f}"
            print(
                f"{layer['name']:<36} {layer['tiles']:>5} {shown:>9} "
                f"{layer['predicted_tiles']:>11} {layer['predicted_layer']:>12}"
            )
        measured = [layer["board_cycles_per_token"] for layer in board_layers]
        if all(value is not None for value in measured):
            predicted = sum(layer["predicted_tiles"] for layer in board_layers)
            print(
                f"board total: {sum(measured):.0f} cycles/token over the BitLinear layers "
                f"(sim predicts {predicted} for the same tiles)"
            )
    print()
    print(
        f"modelled accelerator: {modelled['cycles_per_token']:.0f} cycles/token, "
        f"{modelled['tokens_per_s']:.1f} tokens/s and "
        f"{modelled['energy_j_per_token'] * 1e6:.2f} uJ/token for the BitLinear layers alone"
    )
    end_to_end = modelled.get("end_to_end")
    if end_to_end:
        print(
            f"modelled end to end: {end_to_end['tokens_per_s']:.1f} tokens/s, "
            f"{end_to_end['energy_j_per_token'] * 1e6:.2f} uJ/token with the host-side layers "
            f"on the {end_to_end['host']} host at context {end_to_end['context']}"
        )
        if not end_to_end["fits"]:
            print(f"warning: the design does not fit board {args.board}:")
            for problem in end_to_end["fit_problems"]:
                print(f"  {problem}")
    print(
        f"wall clock: {len(result.new_tokens)} tokens in {result.wall_s:.2f} s "
        f"({result.wall_tokens_per_s:.1f} tokens/s on this host)"
    )


def _space(args: argparse.Namespace) -> "sim.Space":
    if args.space is not None:
        space = sim.Space.from_toml(args.space)
    else:
        space = sim.default_space(args.board)
    overrides = {}
    for text in args.axis:
        name, values = sim.parse_axis(text)
        if name in overrides:
            raise _UsageError(f"--axis {name} is given twice; list all its values in one --axis")
        overrides[name] = values
    return space.with_axes(overrides) if overrides else space


def _explore(args: argparse.Namespace) -> int:
    from hostlib.progress import ProgressBar

    space = _space(args)
    out = Path(args.out or Path("onebit-explore") / f"{args.model}-{args.board}")
    result = sim.explore(
        args.model,
        args.board,
        space,
        store=str(out / "results.sqlite"),
        workers=args.workers,
        scheduler=args.scheduler,
        context=args.context,
        prefill_tokens=args.prefill_tokens,
        nonzero_fraction=args.nonzero_fraction,
        chunk_size=args.chunk_size,
        progress=ProgressBar("explore", "designs"),
    )
    keys = list(result.table["key"])
    with sim.ResultStore(result.store_path, evaluator=sim.EVALUATOR) as store:
        csv_path = store.export_csv(out / "results.csv", keys)
        parquet_path = store.export_parquet(out / "results.parquet", keys)
    summary = result.summary()
    summary["exports"] = {"csv": str(csv_path), "parquet": str(parquet_path)}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{args.model} on {args.board}: {summary['designs_total']} designs "
        f"({summary['designs_evaluated_now']} evaluated now, {summary['designs_reused']} "
        f"from the store), {summary['feasible']} feasible, {len(summary['pareto'])} on the "
        "Pareto front"
    )
    print(f"store: {result.store_path}; exports: {csv_path}, {parquet_path}")
    print()
    from hostlib.report import same_figures

    groups = result.pareto_groups()
    printed_groups = groups[:_PARETO_ROWS]
    print(
        f"Pareto front, fastest decode first ({len(printed_groups)} of {len(groups)} rows "
        "shown; designs with equal figures share a row; --json lists every design):"
    )
    print(f"{'tokens/s':>9} {'mJ/token':>9} {'prefill ms':>10} {'LUT':>8}  design")
    for group in printed_groups:
        entry = result.entry(group[0])
        objectives = entry["objectives"]
        print(
            f"{objectives['decode_tokens_per_s']:>9.2f} "
            f"{objectives['decode_energy_j_per_token'] * 1e3:>9.1f} "
            f"{objectives['prefill_time_s'] * 1e3:>10.1f} {objectives['lut']:>8}  "
            f"{_format_design(entry['design'])}"
            f"{',zero_skip=true' if entry['design']['zero_skip'] else ''}"
        )
        same = same_figures(result, group)
        if same:
            print(f"{'':>40}  same figures: {same}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from hostlib.progress import ProgressBar
    from hostlib.report import generate_report

    command = f"onebit report --model {args.model} --board {args.board}"
    if args.space is not None:
        command += f" --space {shlex.quote(args.space)}"
    for text in args.axis:
        command += f" --axis {shlex.quote(text)}"
    if args.out != "reports":
        command += f" --out {shlex.quote(args.out)}"
    written = generate_report(
        args.model,
        args.board,
        args.out,
        space=_space(args),
        store=args.store,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=ProgressBar("explore", "designs"),
        command=command,
    )
    if args.json:
        print(json.dumps(written))
        return 0
    print(f"report: {written['report']}")
    for figure in written["figures"]:
        print(f"figure: {figure}")
    return 0


def _format_design(design: dict) -> str:
    keys = (
        "datapath",
        "array",
        "pe",
        "simd",
        "rows",
        "cols",
        "dataflow",
        "weight_store",
        "weight_format",
        "clock_mhz",
    )
    return ",".join(f"{key}={design[key]}" for key in keys if design.get(key) is not None)


def _add_rtl_commands(commands) -> None:
    rtl_parser = commands.add_parser(
        "rtl", help="generate, verify or synthesize the RTL of a design (weights on chip)"
    )
    rtl_commands = rtl_parser.add_subparsers(dest="rtl_command", required=True, metavar="STEP")
    steps = {
        "generate": ("write the unit's Verilog, design JSON and port description", _rtl_generate),
        "verify": ("run the cocotb bench against kernels/ and sim's cycles", _rtl_verify),
        "synth": ("synthesize with Yosys, place and route with nextpnr", _rtl_synth),
        "build": (
            "build the board top level (UART or AXI-Stream, protocol front end, one tile)",
            _rtl_build,
        ),
    }
    for name, (help_text, handler) in steps.items():
        step = rtl_commands.add_parser(name, help=help_text)
        step.add_argument(
            "--board",
            default="icebreaker",
            help="board from 'onebit boards' (default: icebreaker, whose weights stay on chip)",
        )
        step.add_argument("--design", default=None, help="design fields as k=v,...")
        step.add_argument(
            "--layer", default="64x128", help="NxK: output rows by inputs (default: 64x128)"
        )
        step.add_argument("--tokens", type=int, default=1, help="vectors per run (default: 1)")
        if name == "generate":
            step.add_argument("--out", required=True, help="output directory")
        if name == "verify":
            step.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
            step.add_argument("--runs", type=int, default=4, help="random runs (default: 4)")
            step.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
            step.add_argument(
                "--checkpoint",
                default=None,
                help="model.safetensors for a real layer slice (default: the demo checkpoint)",
            )
            step.add_argument(
                "--waves", action="store_true", help="rerun a failing bench with a wave dump"
            )
        if name == "build":
            step.add_argument("--out", required=True, help="output directory")
            step.add_argument(
                "--slots", type=int, default=1, help="weight tiles kept on chip (default: 1)"
            )
        if name == "synth":
            step.add_argument("--target", choices=("ice40", "ecp5", "xc7"), required=True)
            step.add_argument("--no-pnr", action="store_true", help="skip nextpnr place and route")
        step.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        step.set_defaults(handler=handler)


def _rtl_build(args: argparse.Namespace) -> int:
    from rtl.bitstream import BUILD_BOARDS, XILINX_BOARDS, build_bitstream, export_xilinx
    from rtl.frontend import CommandFrontEnd

    design, n, k = _rtl_design(args)
    if args.board not in (*BUILD_BOARDS, *XILINX_BOARDS):
        raise _UsageError(
            f"onebit rtl build makes bitstreams for {', '.join(BUILD_BOARDS)} and Vivado projects "
            f"for {', '.join(XILINX_BOARDS)}; got --board {args.board}"
        )
    frontend = CommandFrontEnd(design, n, k, slots=args.slots)
    if args.board in XILINX_BOARDS:
        result = export_xilinx(frontend, args.board, args.out)
        result["note"] = "Verilog, Vivado script and PYNQ description only: Vivado is not run here"
    else:
        try:
            result = build_bitstream(frontend, args.board, args.out)
        except RuntimeError as error:  # a tool failed
            raise _UsageError(str(error)) from None
    _print_result(result, args, f"board {args.board}: a {n}x{k} tile of {design.to_spec()}")
    return 0


def _parse_layer(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise _UsageError(f"--layer must be NxK with two positive integers; got {text!r}")
    n, k = (int(part) for part in parts)
    if min(n, k) < 1:
        raise _UsageError(f"--layer sizes must be at least 1; got {text!r}")
    return n, k


def _rtl_design(args: argparse.Namespace) -> tuple[sim.Design, int, int]:
    design = sim.Design.from_spec(args.design, board=args.board)
    n, k = _parse_layer(args.layer)
    return design, n, k


def _print_result(result: dict, args: argparse.Namespace, title: str) -> None:
    if args.json:
        print(json.dumps(result))
        return
    print(title)
    for key, value in result.items():
        if key not in ("unit", "tests", "cells"):
            print(f"  {key:<18} {value}")


def _rtl_generate(args: argparse.Namespace) -> int:
    import rtl

    design, n, k = _rtl_design(args)
    result = rtl.generate(design, n, k, args.out, tokens=args.tokens)
    _print_result(result, args, f"RTL of a {n}x{k} layer on {design.to_spec()}")
    return 0


def _rtl_verify(args: argparse.Namespace) -> int:
    import rtl

    design, n, k = _rtl_design(args)
    checkpoint = args.checkpoint
    if checkpoint is None:
        demo = Path(__file__).parent / "data" / "demo" / "model.safetensors"
        checkpoint = demo if demo.is_file() else None
    missing = rtl.simulator_missing(args.simulator)
    if missing:
        raise _UsageError(missing)
    try:
        result = rtl.verify(
            design,
            n,
            k,
            tokens=args.tokens,
            simulator=args.simulator,
            runs=args.runs,
            seed=args.seed,
            checkpoint=checkpoint,
            waves=True if args.waves else None,
        ).to_dict()
    except RuntimeError as error:  # a failed simulator build
        raise _UsageError(str(error)) from None
    _print_result(result, args, f"RTL bench of a {n}x{k} layer on {design.to_spec()}")
    if not result["passed"]:
        print(
            f"onebit: check failed: the RTL bench failed; see {result['build_dir']}",
            file=sys.stderr,
        )
        return _EXIT_CHECK_FAILED
    return 0


def _rtl_synth(args: argparse.Namespace) -> int:
    import rtl.synth

    design, n, k = _rtl_design(args)
    try:
        result = rtl.synth.synthesize(
            design, n, k, args.target, tokens=args.tokens, place_and_route=not args.no_pnr
        ).to_dict()
    except RuntimeError as error:  # Yosys failed
        raise _UsageError(str(error)) from None
    result["design"] = design.to_dict()
    result["layer"] = [n, k]
    _print_result(result, args, f"Synthesis of a {n}x{k} layer for {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
