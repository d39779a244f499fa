import io
import math

import matplotlib.image
import pytest

import sim
from hostlib import plots
from hostlib.progress import ProgressBar
from hostlib.report import BOARD_CLASSES, PUBLISHED, write_report

SPACE = sim.Space.from_dict(
    {"pe": [8, 16, 32], "simd": [32, 64], "weight_format": ["2bit", "base3"]}
)


@pytest.fixture(scope="module")
def result():
    return sim.explore("bitnet-0.7b", "kv260", SPACE)


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, write_report(result, out, command="onebit report --model bitnet-0.7b --board kv260")


def test_layer_breakdown_adds_up():
    design = sim.Design.from_spec("pe=16,simd=64", "kv260")
    run = sim.simulate_model(design, "bitnet-0.7b")
    entries = plots.layer_breakdown(design, "bitnet-0.7b")
    accelerator = math.fsum(entry["compute_s"] + entry["stall_s"] for entry in entries)
    host = math.fsum(entry["host_s"] for entry in entries)
    assert math.isclose(accelerator, run.accelerator_time_s, rel_tol=1e-12)
    assert math.isclose(host, run.host_time_s, rel_tol=1e-12)
    assert sum(entry["count"] for entry in entries) == len(run.layers)
    names = [entry["name"] for entry in entries]
    assert "self_attn.q_proj" in names
    q_proj = entries[names.index("self_attn.q_proj")]
    assert q_proj["count"] == sim.get_model("bitnet-0.7b").layers
    assert q_proj["host_s"] == 0.0


def test_figures_are_png(written):
    _, paths = written
    assert len(paths["figures"]) == 4
    for path in paths["figures"]:
        image = matplotlib.image.imread(path)
        assert image.ndim == 3
        assert image.shape[1] == 700


def test_report_sections(written, result):
    out, paths = written
    text = (out / "explore-bitnet-0.7b-kv260.md").read_text()
    assert paths["report"] == str(out / "explore-bitnet-0.7b-kv260.md")
    for heading in (
        "## Space",
        "## Feasible designs and the Pareto front",
        "## Best designs",
        "## The fastest design",
        "## Published accelerators",
    ):
        assert heading in text
    for kind in ("pareto", "roofline", "layers", "resources"):
        assert f"](figures/bitnet-0.7b-kv260-{kind}.png)" in text
    best = result.design(result.best())
    assert f"`{best.to_spec()}`" in text
    assert f"{result.feasible:,} of {result.designs_total:,} designs fit" in text


def test_report_roofline_share(written, result):
    out, _ = written
    text = (out / "explore-bitnet-0.7b-kv260.md").read_text()
    index = result.pareto[0]
    design = result.design(index)
    run = sim.simulate_model(design, "bitnet-0.7b")
    if design.weight_store == "stream":
        bound = design.board.dram_bytes_per_s / run.dram_bytes_read
        expected = f"| {(1 / run.accelerator_time_s) / bound:.0%} |"
    else:
        expected = "| weights on chip |"
    row = next(line for line in text.splitlines() if line.startswith("| `"))
    assert expected in row


def test_report_cites_board_class(written):
    out, _ = written
    text = (out / "explore-bitnet-0.7b-kv260.md").read_text()
    for entry in PUBLISHED:
        if entry.board_class == BOARD_CLASSES["kv260"]:
            assert entry.citation in text
        else:
            assert entry.citation not in text
    assert "arXiv:2504.16266" in text


def test_published_entries_complete():
    names = [entry.name for entry in PUBLISHED]
    assert len(names) == len(set(names))
    for entry in PUBLISHED:
        assert entry.board_class in ("edge", "datacenter")
        for model, _ in entry.compare_with:
            assert model in sim.MODELS


class _Pipe(io.StringIO):
    def isatty(self):
        return False


def test_progress_bar_lines():
    stream = _Pipe()
    bar = ProgressBar("explore", "designs", stream=stream, quiet_interval_s=3600)
    bar(0, 200)
    bar(50, 200)
    bar(200, 200)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("explore  0/200 designs    0.0%")
    assert lines[1].startswith("explore  200/200 designs  100.0%")
    assert "designs/s  done in" in lines[1]
