import csv
import json
import re

import pyarrow.parquet as pq
import pytest

import sim
from hostlib.cli import main

SMALL = ["--model", "bitnet-0.7b", "--board", "kv260", "--axis", "pe=8,16", "--axis", "simd=32,64"]


def run_json(capsys, *args):
    status = main(list(args) + ["--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out), captured.err


def test_explore_json_summary(capsys, tmp_path):
    out = tmp_path / "sweep"
    summary, err = run_json(capsys, "explore", *SMALL, "--out", str(out))
    space = sim.default_space("kv260").with_axes({"pe": (8, 16), "simd": (32, 64)})
    expected = sim.explore("bitnet-0.7b", "kv260", space)
    assert summary["designs_total"] == expected.designs_total
    assert summary["designs_evaluated_now"] == expected.designs_total
    assert summary["designs_reused"] == 0
    assert summary["feasible"] == expected.feasible
    assert [entry["spec"] for entry in summary["pareto"]] == [
        entry["spec"] for entry in expected.pareto_rows()
    ]
    assert set(summary["pareto"][0]["objectives"]) == set(sim.OBJECTIVES)
    assert "explore" in err
    assert "designs/s" in err

    again, _ = run_json(capsys, "explore", *SMALL, "--out", str(out))
    assert again["designs_evaluated_now"] == 0
    assert again["designs_reused"] == expected.designs_total

    with open(out / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == expected.designs_total
    assert [row["key"] for row in rows] == list(expected.table["key"])
    table = pq.read_table(out / "results.parquet")
    assert table.num_rows == expected.designs_total
    assert table.column("fits").to_pylist() == [int(flag) for flag in expected.table["fits"]]


def test_explore_space_file(capsys, tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[axes]\ndatapath = ["ternary"]\npe = [16]\nsimd = [64, 128]\n')
    summary, _ = run_json(
        capsys, "explore", *SMALL[:4], "--space", str(path), "--out", str(tmp_path)
    )
    assert summary["space"] == {"datapath": ["ternary"], "pe": [16], "simd": [64, 128]}
    assert summary["designs_total"] == 2


def test_explore_text_output(capsys, tmp_path):
    status = main(["explore", *SMALL, "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 0
    assert "bitnet-0.7b on kv260:" in captured.out
    assert "tokens/s" in captured.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--axis", "pe=3"], "onebit: error: no design of the "),
        (["--axis", "pee=3"], "onebit: error: --axis 'pee=3': unknown axis 'pee'"),
        (
            ["--axis", "datapath=xnor", "--axis", "weight_format=binary"],
            "onebit: error: the space's datapath axis has 'xnor'",
        ),
        (["--space", "absent.toml"], "onebit: error: [Errno 2] No such file or directory"),
    ],
)
def test_explore_errors(capsys, tmp_path, args, message):
    status = main(
        ["explore", "--model", "bitnet-0.7b", "--board", "kv260", *args, "--out", str(tmp_path)]
    )
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert message in captured.err


def test_explore_malformed_space_file(capsys, tmp_path):
    path = tmp_path / "space.toml"
    path.write_text("[axes]\npe = [4]\nsimd = ['wide']\n")
    status = main(["explore", *SMALL[:4], "--space", str(path), "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 2
    message = f"onebit: error: space file {path}, line 3: axis 'simd' takes integers, got 'wide'"
    assert message in captured.err


def test_explore_incompatible_store(capsys, tmp_path):
    sim.ResultStore(tmp_path / "results.sqlite", evaluator="analytical-0").close()
    status = main(["explore", *SMALL, "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 2
    assert re.search(r"onebit: error: .*results\.sqlite holds results of evaluator", captured.err)


def test_explore_rejects_repeated_axis(capsys, tmp_path):
    arguments = ["explore", "--model", "demo", "--board", "kv260"]
    arguments += ["--axis", "pe=16", "--axis", "pe=32"]
    assert main([*arguments, "--out", str(tmp_path / "sweep")]) == 2
    assert "--axis pe is given twice" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()


def test_explore_workers_and_scheduler_exclusive(capsys):
    with pytest.raises(SystemExit):
        main(["explore", *SMALL, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_report_command(capsys, tmp_path):
    out = tmp_path / "my reports"
    written, _ = run_json(capsys, "report", *SMALL, "--out", str(out))
    report = out / "explore-bitnet-0.7b-kv260.md"
    assert written["report"] == str(report)
    text = report.read_text()
    assert text.startswith("# Design-space exploration: bitnet-0.7b on ")
    # The command line repeats the axes and quotes the path with a space.
    command = (
        "`onebit report --model bitnet-0.7b --board kv260 --axis pe=8,16 --axis simd=32,64 "
        f"--out '{out}'`"
    )
    assert command in text
    for figure in written["figures"]:
        assert figure.endswith(".png")
    space = sim.default_space("kv260").with_axes({"pe": (8, 16), "simd": (32, 64)})
    designs, _ = space.expand("kv260")
    assert written["summary"]["designs_total"] == len(designs)
