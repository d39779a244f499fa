"""Figures of an exploration, drawn with matplotlib's Agg back end and saved as PNG.

- `plot_pareto`: decode tokens/s against LUTs for every feasible design, the Pareto front
  coloured by energy per token.
- `plot_roofline`: every ternary layer of a design placed under its compute and memory roofs.
- `plot_layer_breakdown`: per layer kind, the time of one decode token split into compute,
  memory stall and host.
- `plot_resources`: a design's use of each resource of its board.

Every function takes the output path and returns it; figures are closed after saving, so a
report can draw many without holding memory.
"""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

import sim  # noqa: E402

__all__ = [
    "layer_breakdown",
    "plot_layer_breakdown",
    "plot_pareto",
    "plot_resources",
    "plot_roofline",
]

DPI = 100
"""Resolution of the saved PNGs; 100 keeps the committed reports small."""

_BLOCK = re.compile(r"^layers\.\d+\.")


def _save(figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def plot_pareto(result: sim.ExploreResult, path, *, chosen: int | None = None) -> Path:
    """Plot decode tokens/s against LUTs: feasible designs in grey, the Pareto front in colour.

    Parameters
    ----------
    result : ExploreResult
        The exploration.
    path : str or Path
        The PNG to write.
    chosen : int or None
        A row index to mark with a star (the design the report looks at in detail).
    """
    table = result.table
    feasible = np.flatnonzero(table["fits"])
    front = result.pareto
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.scatter(
        table["lut"][feasible],
        table["decode_tokens_per_s"][feasible],
        s=8,
        color="0.75",
        label=f"feasible designs ({feasible.size})",
    )
    points = axes.scatter(
        table["lut"][front],
        table["decode_tokens_per_s"][front],
        s=22,
        c=table["decode_energy_j_per_token"][front] * 1e3,
        cmap="viridis",
        # Energies span orders of magnitude between the smallest and the fastest designs.
        norm=LogNorm(),
        edgecolors="black",
        linewidths=0.3,
        label=f"Pareto front ({front.size})",
    )
    if chosen is not None:
        axes.scatter(
            [table["lut"][chosen]],
            [table["decode_tokens_per_s"][chosen]],
            marker="*",
            s=220,
            color="red",
            edgecolors="black",
            linewidths=0.5,
            label="chosen design",
        )
    figure.colorbar(points, ax=axes, label="decode energy per token (mJ)")
    axes.set_xscale("log")
    axes.set_xlabel("LUTs")
    axes.set_ylabel("decode tokens/s")
    workload = result.workload
    axes.set_title(f"{workload.model} on {workload.board}: {result.designs_total} designs")
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def plot_roofline(design: sim.Design, model: str, path, *, prefill_tokens: int = 128) -> Path:
    """Place every ternary layer of ``model`` on ``design`` under its roofs, decode and prefill.

    The x axis is the operational intensity, lane operations (one per weight and input vector)
    per byte of weights read; the y axis the lane operations per second the layer attains. The
    compute roof is PE x SIMD operations per cycle; the memory roof is the board's DRAM
    bandwidth for streamed weights, or one weight tile per cycle for weights on chip.
    """
    config = sim.get_model(model)
    peak = design.pe * design.simd * design.clock_hz
    if design.weight_store == "stream":
        bandwidth = design.board.dram_bytes_per_s
        memory_label = f"DRAM {bandwidth / 1e9:.1f} GB/s"
    else:
        bandwidth = design.tile_bytes * design.clock_hz
        memory_label = f"on-chip tile reads {bandwidth / 1e9:.1f} GB/s"
    figure, axes = plt.subplots(figsize=(7, 4.5))
    shapes = sorted(
        {
            (layer.out_features, layer.in_features)
            for layer in sim.model_layers(config, 1)
            if layer.kind == "ternary"
        }
    )
    intensities = []
    for tokens, marker, phase in ((1, "o", "decode"), (prefill_tokens, "s", "prefill")):
        for n, k in shapes:
            run = sim.estimate_layer(design, n, k, tokens, check_capacity=False)
            operations = n * k * tokens
            intensity = operations / run.weight_bytes
            intensities.append(intensity)
            axes.scatter(
                [intensity],
                [operations / run.time_s],
                marker=marker,
                s=40,
                label=f"{phase} {n}x{k}",
            )
    x = np.logspace(np.log10(min(intensities) / 4), np.log10(max(intensities) * 4), 200)
    axes.plot(x, np.minimum(peak, bandwidth * x), color="black", linewidth=1.2)
    axes.axhline(peak, color="0.5", linestyle=":", linewidth=0.8)
    axes.text(x[0], peak * 1.15, f"compute {peak / 1e9:.1f} Gop/s", fontsize=8)
    axes.text(x[0], bandwidth * x[0] * 1.3, memory_label, fontsize=8)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("operational intensity (lane operations per weight byte)")
    axes.set_ylabel("lane operations per second")
    axes.set_title(f"roofline: {model} on {design.board.name}, pe={design.pe} simd={design.simd}")
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend(fontsize=7, ncol=2, loc="lower right")
    return _save(figure, path)


def layer_breakdown(design: sim.Design, model: str) -> list[dict]:
    """Return the time of one decode token per layer kind: compute, memory stall and host.

    Layers of every decoder block are summed under their name without the block index
    (``self_attn.q_proj`` for ``layers.0.self_attn.q_proj`` to ``layers.29.self_attn.q_proj``).
    Pipeline fill counts as compute.

    Returns
    -------
    list of dict
        ``name``, ``count``, ``compute_s``, ``stall_s``, ``host_s``, in order of first use.
    """
    run = sim.simulate_model(design, model)
    groups: dict[str, dict] = {}
    for layer in run.layers:
        name = _BLOCK.sub("", layer.name)
        entry = groups.setdefault(
            name, {"name": name, "count": 0, "compute_s": 0.0, "stall_s": 0.0, "host_s": 0.0}
        )
        entry["count"] += 1
        if layer.kind == "host":
            entry["host_s"] += layer.time_s
            continue
        detail = sim.estimate_layer(
            design, layer.out_features, layer.in_features, layer.tokens, check_capacity=False
        )
        entry["stall_s"] += detail.stall_cycles / design.clock_hz
        entry["compute_s"] += (detail.cycles - detail.stall_cycles) / design.clock_hz
    return list(groups.values())


def plot_layer_breakdown(design: sim.Design, model: str, path, *, top: int = 16) -> Path:
    """Plot the ``top`` most expensive layer kinds of one decode token as stacked bars."""
    entries = layer_breakdown(design, model)
    entries.sort(key=lambda entry: entry["compute_s"] + entry["stall_s"] + entry["host_s"])
    entries = entries[-top:]
    names = [f"{entry['name']} (x{entry['count']})" for entry in entries]
    compute = np.array([entry["compute_s"] for entry in entries]) * 1e3
    stall = np.array([entry["stall_s"] for entry in entries]) * 1e3
    host = np.array([entry["host_s"] for entry in entries]) * 1e3
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(entries) + 1.5))
    positions = np.arange(len(entries))
    axes.barh(positions, compute, color="tab:blue", label="compute")
    axes.barh(positions, stall, left=compute, color="tab:orange", label="memory stall")
    axes.barh(positions, host, left=compute + stall, color="tab:gray", label="host")
    axes.set_yticks(positions, names, fontsize=8)
    axes.set_xlabel("time per decode token (ms)")
    axes.set_title(f"{model} on {design.board.name}: where a decode token's time goes")
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(True, axis="x", linewidth=0.3)
    return _save(figure, path)


def plot_resources(fit: sim.FitReport, path) -> Path:
    """Plot the share of each board resource a design needs, on-chip memory split in two."""
    need = fit.need
    capacity = fit.capacity
    labels = ["LUT", "FF", "DSP", "on-chip memory", "DRAM"]
    shares = []
    for name in ("lut", "ff", "dsp"):
        shares.append((getattr(need, name) / capacity[name] if capacity[name] else 0.0, 0.0))
    onchip = capacity["onchip_bytes"]
    shares.append((need.weight_bytes / onchip, need.buffer_bytes / onchip))
    dram = capacity["dram_bytes"]
    shares.append((need.dram_bytes / dram if dram else 0.0, 0.0))
    first = np.array([share[0] for share in shares]) * 100
    second = np.array([share[1] for share in shares]) * 100
    figure, axes = plt.subplots(figsize=(7, 3))
    positions = np.arange(len(labels))
    axes.barh(positions, first, color="tab:blue", label="logic, or weights in memory")
    axes.barh(positions, second, left=first, color="tab:green", label="activation buffers")
    for position, total in zip(positions, first + second, strict=True):
        axes.text(total + 1, position, f"{total:.1f}%", va="center", fontsize=8)
    axes.axvline(100, color="red", linewidth=0.8)
    axes.set_yticks(positions, labels)
    axes.set_xlim(0, max(110, float(np.max(first + second)) + 15))
    axes.set_xlabel(f"share of board {fit.board}'s capacity (%)")
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(True, axis="x", linewidth=0.3)
    return _save(figure, path)
