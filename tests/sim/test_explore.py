import importlib
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import sim
from sim.explore import (
    CONSTRAINTS,
    EVALUATOR,
    OBJECTIVES,
    NoFeasibleDesignError,
    Workload,
    explore,
    pareto_front,
)
from sim.space import Space
from sim.store import ResultStore

explore_module = importlib.import_module("sim.explore")

MODEL = "bitnet-0.7b"
SPACE = Space.from_dict(
    {
        "datapath": ["ternary", "lut"],
        "pe": [8, 16, 24, 512],
        "simd": [32, 64],
        "weight_format": ["2bit", "base3", "lut2"],
        "weight_store": ["stream", "onchip"],
    }
)


def naive_pareto(points, maximize):
    """Mask of points that no other point dominates, by comparing every pair."""
    signs = [-1 if flag else 1 for flag in maximize]
    keep = []
    for a in points:
        dominated = False
        for b in points:
            no_worse = all(s * y <= s * x for s, x, y in zip(signs, a, b, strict=True))
            better = any(s * y < s * x for s, x, y in zip(signs, a, b, strict=True))
            if no_worse and better:
                dominated = True
                break
        keep.append(not dominated)
    return np.array(keep)


def same_tables(first, second):
    assert first.keys() == second.keys()
    for name in first:
        if first[name].dtype == np.float64:
            assert np.array_equal(first[name], second[name], equal_nan=True), name
        else:
            assert np.array_equal(first[name], second[name]), name


@pytest.fixture(scope="module")
def result():
    return explore(MODEL, "kv260", SPACE, chunk_size=7)


def test_pareto_front_matches_naive():
    rng = np.random.default_rng(5)
    for size, columns in [(1, 2), (40, 2), (60, 3), (80, 4)]:
        points = rng.integers(0, 6, size=(size, columns)).astype(float)
        maximize = [bool(flag) for flag in rng.integers(0, 2, size=columns)]
        assert np.array_equal(pareto_front(points, maximize), naive_pareto(points, maximize))


def test_pareto_front_keeps_equal_points():
    points = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    assert list(pareto_front(points, [False, False])) == [True, True, False]
    assert pareto_front(np.zeros((0, 2)), [True, False]).shape == (0,)


def test_pareto_front_errors():
    with pytest.raises(ValueError, match="values must be a 2-D array"):
        pareto_front(np.zeros(3), [True])
    with pytest.raises(ValueError, match="maximize has 1 entries, but values has 2 columns"):
        pareto_front(np.zeros((3, 2)), [True])
    with pytest.raises(ValueError, match="values must not contain NaN"):
        pareto_front(np.array([[np.nan, 1.0]]), [True, True])


def test_results_match_simulate_model(result):
    table = result.table
    designs, _ = SPACE.expand("kv260")
    assert result.designs_total == len(designs) == len(table["key"])
    config = sim.get_model(MODEL)
    checked = 0
    for index, design in enumerate(designs):
        assert table["spec"][index] == design.to_spec()
        runs = all(
            layer.out_features % design.pe == 0 and layer.in_features % design.simd == 0
            for layer in sim.model_layers(config)
            if layer.kind == "ternary"
        )
        assert bool(table["runs"][index]) == runs
        if not runs:
            assert "tiling" in table["reasons"][index].split(",")
            assert not table["fits"][index]
            continue
        decode = sim.simulate_model(design, MODEL)
        prefill = sim.simulate_model(design, MODEL, "prefill", tokens=128)
        assert table["decode_cycles"][index] == decode.cycles
        assert table["prefill_cycles"][index] == prefill.cycles
        assert math.isclose(table["decode_tokens_per_s"][index], decode.tokens_per_s, rel_tol=1e-12)
        assert math.isclose(table["prefill_time_s"][index], prefill.time_s, rel_tol=1e-12)
        assert math.isclose(
            table["decode_energy_j_per_token"][index], decode.energy_j_per_token, rel_tol=1e-12
        )
        assert table["decode_dram_bytes"][index] == decode.dram_bytes_read
        for name in ("lut", "ff", "dsp", "onchip_bytes", "dram_bytes"):
            need = max(getattr(decode.resources, name), getattr(prefill.resources, name))
            assert table[name][index] == need, name
        assert bool(table["fits"][index]) == (decode.fits and prefill.fits)
        over = set()
        for problem in decode.fit.problems + prefill.fit.problems:
            label = problem.split(":")[0]
            over.add({"LUTs": "lut", "FFs": "ff", "on-chip bytes": "onchip_bytes"}[label])
        reasons = table["reasons"][index]
        assert set(reasons.split(",")) - {""} == over
        checked += 1
    assert checked > 10
    assert result.feasible > 0


def test_pareto_is_naive_front_of_feasible(result):
    table = result.table
    feasible = np.flatnonzero(table["fits"])
    points = [[table[name][index] for name in OBJECTIVES] for index in feasible]
    mask = naive_pareto(points, [direction == "max" for direction in OBJECTIVES.values()])
    assert sorted(result.pareto.tolist()) == sorted(feasible[mask].tolist())
    speeds = table["decode_tokens_per_s"][result.pareto]
    assert list(speeds) == sorted(speeds, reverse=True)


def test_pareto_groups_share_objectives(result):
    groups = result.pareto_groups()
    flat = [index for group in groups for index in group]
    assert flat == sorted(flat, key=result.pareto.tolist().index)
    assert sorted(flat) == sorted(result.pareto.tolist())
    for group in groups:
        first = [result.table[name][group[0]] for name in OBJECTIVES]
        for index in group[1:]:
            assert [result.table[name][index] for name in OBJECTIVES] == first
    firsts = [[result.table[name][group[0]] for name in OBJECTIVES] for group in groups]
    assert len({tuple(values) for values in firsts}) == len(groups)


def test_rejected_counts(result):
    reasons = result.table["reasons"]
    for name in CONSTRAINTS:
        expected = sum(1 for entry in reasons if name in entry.split(","))
        assert result.rejected[name] == expected
    assert result.rejected["tiling"] > 0


def test_summary_fields(result):
    summary = result.summary()
    for name in ("designs_total", "designs_evaluated_now", "designs_reused", "feasible"):
        assert isinstance(summary[name], int)
    assert summary["designs_evaluated_now"] == summary["designs_total"]
    assert summary["designs_reused"] == 0
    assert len(summary["pareto"]) == len(result.pareto)
    entry = summary["pareto"][0]
    assert set(entry["objectives"]) == set(OBJECTIVES)
    assert entry["design"]["board"] == "kv260"
    design = sim.Design.from_spec(entry["spec"], "kv260")
    assert design.to_dict() == entry["design"]


def test_best_design(result):
    index = result.best()
    table = result.table
    assert table["fits"][index]
    fastest = np.nanmax(np.where(table["fits"], table["decode_tokens_per_s"], np.nan))
    assert table["decode_tokens_per_s"][index] == fastest
    lowest = result.best("decode_energy_j_per_token")
    assert table["decode_energy_j_per_token"][lowest] == np.nanmin(
        np.where(table["fits"], table["decode_energy_j_per_token"], np.nan)
    )
    with pytest.raises(ValueError, match="unknown objective 'speed'"):
        result.best("speed")


def test_resume_evaluates_nothing_twice(tmp_path, monkeypatch):
    calls = []
    original = explore_module.evaluate_designs

    def counting(workload, designs):
        calls.append(len(designs))
        return original(workload, designs)

    monkeypatch.setattr(explore_module, "evaluate_designs", counting)
    path = str(tmp_path / "results.sqlite")
    small = SPACE.with_axes({"pe": [8, 16]})
    first = explore(MODEL, "kv260", small, store=path, chunk_size=5)
    assert sum(calls) == first.designs_total
    calls.clear()
    larger = explore(MODEL, "kv260", SPACE, store=path, chunk_size=5)
    assert sum(calls) == larger.designs_total - first.designs_total
    assert larger.designs_reused == first.designs_total
    assert larger.designs_evaluated_now == sum(calls)
    calls.clear()
    again = explore(MODEL, "kv260", SPACE, store=path)
    assert calls == []
    assert again.designs_evaluated_now == 0
    same_tables(again.table, larger.table)


KILLED_SWEEP = textwrap.dedent(
    """
    import builtins, sys, time
    import sim.store
    from sim.explore import explore
    from sim.space import Space

    batches = 0

    def slow_zip(*columns, strict=False):
        # The rows of the third batch stop halfway, inside the open transaction.
        global batches
        batches += 1
        for index, row in enumerate(builtins.zip(*columns, strict=strict)):
            if batches == 3 and index == 4:
                print("inside batch 3", flush=True)
                time.sleep(120)
            yield row

    sim.store.zip = slow_zip
    space = Space.from_dict({SPACE!r})
    explore({MODEL!r}, "kv260", space, store=sys.argv[1], chunk_size=10)
    """
)


def test_resume_after_sigkill(tmp_path, monkeypatch):
    path = tmp_path / "results.sqlite"
    script = KILLED_SWEEP.replace("{SPACE!r}", repr(SPACE.to_dict())).replace(
        "{MODEL!r}", repr(MODEL)
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.strip() == "inside batch 3", process.stderr.read()
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
        process.stderr.close()

    connection = sqlite3.connect(path)
    stored, distinct = connection.execute(
        "SELECT COUNT(*), COUNT(DISTINCT key) FROM results"
    ).fetchone()
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()
    # Two whole batches were committed; the half-written third was rolled back.
    assert stored == distinct == 20

    calls = []
    original = explore_module.evaluate_designs

    def counting(workload, designs):
        calls.append(len(designs))
        return original(workload, designs)

    monkeypatch.setattr(explore_module, "evaluate_designs", counting)
    resumed = explore(MODEL, "kv260", SPACE, store=str(path), chunk_size=10)
    assert resumed.designs_reused == 20
    assert sum(calls) == resumed.designs_evaluated_now == resumed.designs_total - 20
    with ResultStore(path, evaluator=EVALUATOR) as store:
        assert len(store) == resumed.designs_total
    fresh = explore(MODEL, "kv260", SPACE)
    same_tables(resumed.table, fresh.table)


def test_local_processes_match_serial(result):
    parallel = explore(MODEL, "kv260", SPACE, workers=2, chunk_size=7)
    assert parallel.executor == "processes"
    same_tables(parallel.table, result.table)
    assert list(parallel.pareto) == list(result.pareto)


def test_dask_cluster_matches_local(result):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1,
        processes=False,
        threads_per_worker=2,
        host="127.0.0.1",
        protocol="tcp",
        scheduler_port=0,
        dashboard_address=None,
    ) as cluster:
        remote = explore(MODEL, "kv260", SPACE, scheduler=cluster.scheduler_address, chunk_size=7)
    assert remote.executor == "dask"
    same_tables(remote.table, result.table)
    assert list(remote.pareto) == list(result.pareto)


def test_no_feasible_design_names_constraint():
    space = Space.from_dict({"pe": [3], "simd": [32, 64]})
    message = (
        "no design of the 2 in the space fits bitnet-0.7b on kv260: PE and SIMD dividing every "
        "layer's N and K (tiling) removed every design (designs removed per constraint: PE and "
        "SIMD dividing every layer's N and K (tiling) 2); choose pe and simd values that divide "
        "every layer's N and K"
    )
    with pytest.raises(NoFeasibleDesignError, match=re.escape(message)) as caught:
        explore(MODEL, "kv260", space)
    assert caught.value.result.feasible == 0
    assert caught.value.result.rejected["tiling"] == 2

    space = Space.from_dict({"pe": [256], "simd": [256], "weight_store": ["onchip"]})
    message = (
        "LUTs (lut), flip-flops (ff) and on-chip memory (onchip_bytes) removed every design "
        "(designs removed per constraint: LUTs (lut) 1, flip-flops (ff) 1, on-chip memory "
        "(onchip_bytes) 1); try smaller pe or simd; try weight_store=stream, or smaller pe or simd"
    )
    with pytest.raises(NoFeasibleDesignError, match=re.escape(message)):
        explore(MODEL, "kv260", space)


def test_no_feasible_design_combined():
    space = Space.from_dict({"pe": [3, 512], "simd": [64]})
    message = "no single constraint removed every design, but together they did"
    with pytest.raises(NoFeasibleDesignError, match=re.escape(message)):
        explore(MODEL, "kv260", space)


def test_explore_input_errors(tmp_path):
    with pytest.raises(ValueError, match="the space's datapath axis has 'xnor'"):
        explore(MODEL, "kv260", Space.from_dict({"datapath": ["xnor"]}))
    with pytest.raises(ValueError, match="no combination of the space is a valid design on kv260"):
        explore(
            MODEL,
            "kv260",
            Space.from_dict({"datapath": ["lut"], "simd": [4], "weight_format": ["lut3"]}),
        )
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1, got 0"):
        explore(MODEL, "kv260", SPACE, chunk_size=0)
    with pytest.raises(TypeError, match="space must be a sim.space.Space or None, got dict"):
        explore(MODEL, "kv260", {"pe": [4]})
    with pytest.raises(ValueError, match="exclude each other"):
        explore(MODEL, "kv260", SPACE, workers=2, scheduler="tcp://127.0.0.1:1")
    path = tmp_path / "old.sqlite"
    ResultStore(path, evaluator="analytical-0").close()
    with pytest.raises(ValueError, match="holds results of evaluator 'analytical-0'"):
        explore(MODEL, "kv260", SPACE, store=str(path))


def test_workload_errors():
    with pytest.raises(ValueError, match="unknown model"):
        Workload("bitnet-9t", "kv260")
    with pytest.raises(ValueError, match="exceeds the max_context"):
        Workload(MODEL, "kv260", prefill_tokens=100_000)
    with pytest.raises(ValueError, match="Workload.nonzero_fraction must be between 0 and 1"):
        Workload(MODEL, "kv260", nonzero_fraction=1.5)
    with pytest.raises(TypeError, match="Workload.model must be a model name, got 3"):
        Workload(3, "kv260")


def test_workload_changes_keys():
    first = explore(MODEL, "kv260", SPACE.with_axes({"pe": [8]}))
    second = explore(MODEL, "kv260", SPACE.with_axes({"pe": [8]}), context=256)
    assert set(first.table["key"]).isdisjoint(second.table["key"])
    assert np.all(second.table["decode_host_time_s"] < first.table["decode_host_time_s"])


def test_pareto_groups_pair_zero_skip():
    # At the default nonzero fraction of 1, zero-skipping saves nothing, so both designs tie.
    space = Space.from_dict(
        {
            "datapath": ["ternary"],
            "pe": [16],
            "simd": [64],
            "weight_format": ["2bit"],
            "weight_store": ["stream"],
            "zero_skip": [False, True],
        }
    )
    result = explore(MODEL, "kv260", space)
    assert len(result.pareto) == 2
    assert result.pareto_groups() == [result.pareto.tolist()]

    from hostlib.report import same_figures

    group = result.pareto_groups()[0]
    skipping = result.design(group[1]).zero_skip
    assert same_figures(result, group) == f"zero_skip={'true' if skipping else 'false'}"
    assert same_figures(result, group[:1]) == ""
