"""The Markdown report of an exploration: tables, figures and published accelerators.

`write_report` turns a `sim.ExploreResult` into ``explore-<model>-<board>.md`` with its PNG
figures under ``figures/``: the Pareto front, the best designs with their bounds and their
distance from the DRAM-bandwidth roofline, the roofline, layer breakdown and resources of the
fastest design, and published FPGA accelerators of the same board class beside the numbers
onebit models for comparable models on this board. `generate_report` runs the exploration
first; ``onebit report`` calls it.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import sim
from hostlib import plots
from sim.analytical import get_host
from sim.explore import CONSTRAINTS

__all__ = ["PUBLISHED", "Publication", "generate_report", "write_report"]

logger = logging.getLogger(__name__)

BOARD_CLASSES = {
    "pynq-z2": "edge",
    "kv260": "edge",
    "zcu104": "edge",
    "icebreaker": "edge",
    "ulx3s": "edge",
    "u280": "datacenter",
    "u55c": "datacenter",
}
"""Board class of each catalogue board: ``edge`` (embedded, a few watts) or ``datacenter``."""

_BEST_ROWS = 10


@dataclass(frozen=True)
class Publication:
    """A published FPGA accelerator of 1-bit or ternary LLMs, as its paper reports it.

    Attributes
    ----------
    name : str
        Short name used in the table.
    citation : str
        Authors, title, venue or arXiv number, year.
    board_class : str
        ``edge`` or ``datacenter`` (see `BOARD_CLASSES`).
    board : str
        The board as the paper names it, or what could not be confirmed.
    model : str
        The model as the paper names it, or what could not be confirmed.
    reported : str
        The decode throughput and power the paper reports, in its words and units.
    compare_with : tuple of (str, int or None)
        Catalogue models (and decode contexts, None for the model's maximum) that onebit models
        on the report's board for comparison.
    note : str
        What the comparison does not match, and which figures are unconfirmed.
    """

    name: str
    citation: str
    board_class: str
    board: str
    model: str
    reported: str
    compare_with: tuple
    note: str


# Figures as stated in each paper's arXiv abstract. Details that the abstracts do not give are
# marked as not confirmed.
PUBLISHED = (
    Publication(
        name="TeLLMe",
        citation=(
            'Y. Qiao, Z. Chen, Y. Zhang, Y. Wang, S. Huang, "TeLLMe: An Energy-Efficient '
            'Ternary LLM Accelerator for Prefilling and Decoding on Edge FPGAs", '
            "arXiv:2504.16266, 2025"
        ),
        board_class="edge",
        board="AMD KV260 (the abstract's example of a low-power FPGA)",
        model="1.58-bit weights, 8-bit activations; the model is not confirmed here",
        reported=(
            "up to 9 tokens/s decode over 1,024-token contexts under a 7 W power budget; "
            "prefill 0.55 to 1.15 s for 64 to 128-token prompts"
        ),
        compare_with=(("bitnet-0.7b", 1024), ("bitnet-2b-4t", 1024)),
        note="table-lookup matrix engine (as onebit's lut datapath) with on-FPGA attention",
    ),
    Publication(
        name="TeLLMe v2",
        citation=(
            'Y. Qiao, Z. Chen, Y. Zhang, Y. Wang, S. Huang, "TeLLMe v2: An Efficient End-to-End '
            'Ternary LLM Prefill and Decode Accelerator with Table-Lookup Matmul on Edge FPGAs", '
            "arXiv:2510.15926, 2025"
        ),
        board_class="edge",
        board="edge FPGAs; the board (KV260 in the first version) is not confirmed here",
        model="1.58-bit weights, 8-bit activations; the model is not confirmed here",
        reported=(
            "up to 25 tokens/s decode under a 5 W power budget; time to first token 0.45 to "
            "0.96 s for 64 to 128-token prompts"
        ),
        compare_with=(("bitnet-0.7b", 1024), ("bitnet-2b-4t", 1024)),
        note="the decode context is not confirmed; onebit's figures use 1,024 tokens",
    ),
    Publication(
        name="TerEffic",
        citation=(
            'C. Yin, Z. Bai, P. Venkatram, S. Aggarwal, Z. Li, T. Mitra, "TerEffic: Highly '
            'Efficient Ternary LLM Inference on FPGA", arXiv:2502.16473 (v2), 2025'
        ),
        board_class="datacenter",
        board="an HBM FPGA board; which one is not confirmed here",
        model="a 2.7B-parameter ternary model (MatMul-free LM per a summary, not confirmed)",
        reported=(
            "HBM-assisted design: 727 tokens/s at 46 W for the 2.7B model (521 tokens/s at 33 W "
            "in the first version); fully on-chip over several FPGAs: 16,300 tokens/s for a "
            "370M model"
        ),
        compare_with=(("mmfree-2.7b", None), ("mmfree-370m", None)),
        note=(
            "whether the HBM figure is batch 1 is not confirmed; onebit models batch-1 decode "
            "on one board"
        ),
    ),
    Publication(
        name="MatMul-free LM",
        citation=(
            'R.-J. Zhu et al., "Scalable MatMul-free Language Modeling", 2024 '
            "(github.com/ridgerchu/matmulfreellm)"
        ),
        board_class="datacenter",
        board="a custom FPGA implementation; the board is not confirmed here",
        model="billion-parameter scale MatMul-free LM",
        reported="billion-parameter scale models at 13 W; tokens/s not confirmed here",
        compare_with=(("mmfree-1.3b", None),),
        note="only the 13 W figure is confirmed from the abstract",
    ),
)
"""Published accelerators quoted in the reports, with the figures their papers report."""


def generate_report(
    model: str,
    board: str,
    out_dir="reports",
    *,
    space: "sim.Space | None" = None,
    store: str | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress=None,
    command: str | None = None,
) -> dict:
    """Explore ``model`` on ``board`` and write the report; see `write_report`.

    The other arguments go to `sim.explore`. Returns what `write_report` returns, with the
    exploration summary under ``summary``.
    """
    result = sim.explore(
        model,
        board,
        space,
        store=store,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
    )
    written = write_report(result, out_dir, command=command)
    written["summary"] = result.summary()
    return written


def write_report(result: sim.ExploreResult, out_dir, *, command: str | None = None) -> dict:
    """Write the Markdown report and its figures for an exploration.

    Parameters
    ----------
    result : ExploreResult
        A finished exploration with at least one feasible design.
    out_dir : str or Path
        The directory of ``explore-<model>-<board>.md``; figures go to ``figures/`` in it.
    command : str or None
        The command line to quote as the report's origin.

    Returns
    -------
    dict
        ``report``: the Markdown path; ``figures``: the PNG paths.
    """
    out_dir = Path(out_dir)
    workload = result.workload
    stem = f"{workload.model}-{workload.board}"
    figures_dir = out_dir / "figures"
    chosen = result.best()
    design = result.design(chosen)
    decode = sim.simulate_model(design, workload.model, context=workload.context)
    prefill = sim.simulate_model(design, workload.model, "prefill", tokens=workload.prefill_tokens)
    figures = {
        "pareto": plots.plot_pareto(result, figures_dir / f"{stem}-pareto.png", chosen=chosen),
        "roofline": plots.plot_roofline(
            design,
            workload.model,
            figures_dir / f"{stem}-roofline.png",
            prefill_tokens=workload.prefill_tokens,
        ),
        "layers": plots.plot_layer_breakdown(
            design, workload.model, figures_dir / f"{stem}-layers.png"
        ),
        "resources": plots.plot_resources(prefill.fit, figures_dir / f"{stem}-resources.png"),
    }
    logger.info("wrote %d figures to %s", len(figures), figures_dir)

    sections = [
        _header(result, command),
        _space_section(result),
        _result_section(result, figures["pareto"].relative_to(out_dir)),
        _best_section(result),
        _chosen_section(result, design, decode, prefill, figures, out_dir),
        _published_section(result),
        _limits_section(),
    ]
    path = out_dir / f"explore-{stem}.md"
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    logger.info("wrote %s", path)
    return {"report": str(path), "figures": [str(figure) for figure in figures.values()]}


def _header(result, command) -> str:
    workload = result.workload
    config = sim.get_model(workload.model)
    board = sim.get_board(workload.board)
    origin = f"`{command}`" if command else "`hostlib.report.write_report`"
    return "\n".join(
        [
            f"# Design-space exploration: {workload.model} on {board.title}",
            "",
            f"Generated by {origin} with evaluator `{sim.EVALUATOR}`. Every number here is "
            "modelled by onebit's analytical model (`sim.evaluate_model`), not measured on a "
            "board; the published figures at the end are the papers' own.",
            "",
            f"- Model: {workload.model}, {sim.ternary_parameters(config) / 1e9:.2f} B ternary "
            f"weights on the accelerator, {sim.host_parameters(config) / 1e9:.2f} B BF16 "
            "weights on the host (embedding, norms, LM head).",
            f"- Board: {board.title}: {board.lut:,} LUTs, {board.onchip_bytes / 1e6:.1f} MB "
            f"on-chip memory, DRAM {board.dram_bytes_per_s / 1e9:.1f} GB/s.",
            f"- Host: {get_host(workload.host, board.name).name}; decode: one "
            f"token at context {workload.context or config.max_context}; prefill: "
            f"{workload.prefill_tokens} prompt tokens; share of nonzero weights "
            f"{workload.nonzero_fraction:g}.",
        ]
    )


def _space_section(result) -> str:
    lines = ["## Space", "", "| axis | values |", "|---|---|"]
    for name, values in result.space.axes.items():
        shown = ", ".join(_format_value(value) for value in values)
        lines.append(f"| {name} | {shown} |")
    lines.append("")
    lines.append(
        f"{result.designs_total:,} distinct designs; {result.designs_invalid:,} more "
        "combinations are not valid designs (for example a lut format whose group does not "
        "divide SIMD)."
    )
    return "\n".join(lines)


def _result_section(result, pareto_png) -> str:
    lines = [
        "## Feasible designs and the Pareto front",
        "",
        f"{result.feasible:,} of {result.designs_total:,} designs fit the board and run every "
        f"layer; {len(result.pareto):,} of them are Pareto-optimal in decode tokens/s, decode "
        "energy per token, prefill latency and LUTs. Designs removed, per constraint (a design "
        "can fail several):",
        "",
        "| constraint | designs removed |",
        "|---|---|",
    ]
    for name, count in result.rejected.items():
        lines.append(f"| {CONSTRAINTS[name]} (`{name}`) | {count:,} |")
    lines += [
        "",
        f"![Pareto front]({pareto_png.as_posix()})",
        "",
        "Grey: every feasible design. Colour: the Pareto front, by decode energy per token. "
        "Star: the design examined below (the fastest decode; ties go to fewer LUTs).",
    ]
    return "\n".join(lines)


def _roofline_share(result, index) -> str:
    table = result.table
    if table["weight_store"][index] != "stream":
        return "weights on chip"
    board = sim.get_board(result.workload.board)
    bound = board.dram_bytes_per_s / table["decode_dram_bytes"][index]
    return f"{_accelerator_rate(table, index) / bound:.0%}"


def same_figures(result, group: list[int]) -> str:
    """Return the other designs of a Pareto group as the fields they change, ``zero_skip=true``.

    The result is empty when the group has one design.
    """
    first = result.design(group[0]).to_dict()
    others = []
    for index in group[1:]:
        fields = result.design(index).to_dict()
        changed = [key for key, value in fields.items() if value != first[key]]
        others.append(",".join(f"{key}={_spec_value(fields[key])}" for key in changed))
    return "; ".join(others)


def _spec_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _accelerator_rate(table, index) -> float:
    return 1.0 / table["decode_accelerator_time_s"][index]


def _best_section(result) -> str:
    table = result.table
    board = sim.get_board(result.workload.board)
    lines = [
        "## Best designs",
        "",
        f"The {min(_BEST_ROWS, len(result.pareto_groups()))} fastest Pareto-optimal designs; "
        "designs with equal figures share a row. "
        "*Accelerator* is decode tokens/s with the host's time left out; *of roofline* is that "
        "rate over the DRAM-bandwidth bound (bandwidth / weight bytes read per token), for "
        "designs that stream their weights. *Memory-bound* counts the ternary layers of one "
        "decode token whose weight stream takes longer than their compute.",
        "",
        "| design | tokens/s | accelerator tokens/s | of roofline | mJ/token | prefill (ms) "
        "| LUT | on-chip | memory-bound |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for group in result.pareto_groups()[:_BEST_ROWS]:
        index = group[0]
        design = result.design(index)
        run = sim.simulate_model(design, result.workload.model, context=result.workload.context)
        ternary = [layer for layer in run.layers if layer.kind == "ternary"]
        memory = sum(1 for layer in ternary if layer.bound == "memory")
        same = same_figures(result, group)
        label = f"`{_short_spec(table, index)}`" + (f" (same figures: {same})" if same else "")
        lines.append(
            f"| {label} | {table['decode_tokens_per_s'][index]:.2f} "
            f"| {_accelerator_rate(table, index):.1f} | {_roofline_share(result, index)} "
            f"| {table['decode_energy_j_per_token'][index] * 1e3:.1f} "
            f"| {table['prefill_time_s'][index] * 1e3:.0f} "
            f"| {table['lut'][index] / board.lut:.0%} "
            f"| {table['onchip_bytes'][index] / board.onchip_bytes:.0%} "
            f"| {memory}/{len(ternary)} |"
        )
    return "\n".join(lines)


def _chosen_section(result, design, decode, prefill, figures, out_dir) -> str:
    host_share = decode.host_time_s / decode.time_s
    ternary = [layer for layer in decode.layers if layer.kind == "ternary"]
    memory = sum(1 for layer in ternary if layer.bound == "memory")
    lines = [
        "## The fastest design",
        "",
        f"`{design.to_spec()}`",
        "",
        f"Decode: {decode.tokens_per_s:.2f} tokens/s, {decode.energy_j_per_token * 1e3:.1f} mJ "
        f"per token; the accelerator takes {decode.accelerator_time_s * 1e3:.2f} ms of a "
        f"token and the host {decode.host_time_s * 1e3:.2f} ms ({host_share:.0%}). "
        f"{memory} of {len(ternary)} ternary layers are memory-bound. Prefill of "
        f"{prefill.tokens} tokens: {prefill.time_s * 1e3:.0f} ms "
        f"({prefill.tokens_per_s:.0f} tokens/s).",
        "",
        f"![Roofline]({figures['roofline'].relative_to(out_dir).as_posix()})",
        "",
        "Circles: decode layers (one vector); squares: prefill layers "
        f"({prefill.tokens} vectors per weight tile).",
        "",
        f"![Layer breakdown]({figures['layers'].relative_to(out_dir).as_posix()})",
        "",
        f"![Resources]({figures['resources'].relative_to(out_dir).as_posix()})",
        "",
        "Resources of the prefill phase, whose activation and partial-sum buffers are the larger.",
    ]
    return "\n".join(lines)


def _modelled(model: str, board: str, context) -> dict:
    result = sim.explore(model, board, context=context)
    design = result.design(result.best())
    run = sim.simulate_model(design, model, context=context)
    return {
        "model": model,
        "context": run.context,
        "tokens_per_s": run.tokens_per_s,
        "accelerator_w": run.accelerator_energy_j / run.accelerator_time_s,
        "total_w": run.energy_j / run.time_s,
        "spec": design.to_spec(),
    }


def _published_section(result) -> str:
    board = result.workload.board
    board_class = BOARD_CLASSES.get(board, "datacenter")
    entries = [entry for entry in PUBLISHED if entry.board_class == board_class]
    lines = [
        "## Published accelerators",
        "",
        f"Published FPGA accelerators of ternary LLMs for {board_class} boards, as their papers "
        f"report them, beside what onebit models on {board} for catalogue models of a similar "
        "size (the best design of each model's default space). onebit's power is the "
        "accelerator's modelled average (static power plus the energy estimates of "
        "`sim.energy`) and, in brackets, with the host included.",
        "",
        "| work | board | model | reported | onebit on this board |",
        "|---|---|---|---|---|",
    ]
    for entry in entries:
        modelled = []
        for model, context in entry.compare_with:
            figures = _modelled(model, board, context)
            modelled.append(
                f"{model} at context {figures['context']}: {figures['tokens_per_s']:.1f} "
                f"tokens/s, {figures['accelerator_w']:.1f} W ({figures['total_w']:.1f} W)"
            )
        lines.append(
            f"| {entry.name} | {entry.board} | {entry.model} | {entry.reported} "
            f"| {'; '.join(modelled)} |"
        )
    lines += ["", "Notes and sources:", ""]
    for entry in entries:
        lines.append(f"- {entry.name}: {entry.citation}. {entry.note[0].upper()}{entry.note[1:]}.")
    return "\n".join(lines)


def _limits_section() -> str:
    return "\n".join(
        [
            "## What the model leaves out",
            "",
            "- Resources are estimates from `sim.resources`, not synthesis results; memory is "
            "counted in bytes, not in whole blocks.",
            "- The clock is the board's typical clock; timing closure is not modelled.",
            "- Transfers of activations between host and accelerator are not counted, and the "
            "host layers (attention, LM head) are a roofline estimate of the board's host "
            "processor.",
            "- Energy figures are estimates (`sim.energy`); with a share of nonzero weights "
            "of 1, zero skipping saves nothing.",
        ]
    )


def _short_spec(table, index) -> str:
    parts = [
        table["datapath"][index],
        f"pe={table['pe'][index]}",
        f"simd={table['simd'][index]}",
        table["weight_format"][index],
        table["weight_store"][index],
    ]
    if table["zero_skip"][index]:
        parts.append("zero_skip")
    if table["act_bits"][index] != 8:
        parts.append(f"act_bits={table['act_bits'][index]}")
    parts.append(f"{table['clock_mhz'][index]:g} MHz")
    return ",".join(parts)


def _format_value(value) -> str:
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
