"""Simulate the generated matrix-vector unit with the cocotb bench on Verilator and Icarus.

Each parameter set is built once (builds are shared by equal Verilog, see `rtl.verify`) under
build/rtl/. The bench checks every output against kernels/ exactly and the full-rate run's
cycles against `sim.estimate_layer`; see `rtl.bench`.
"""

from pathlib import Path

import pytest

import sim
from rtl import simulator_missing, verify

CHECKPOINT = Path(__file__).resolve().parents[2] / "hostlib" / "data" / "demo" / "model.safetensors"

# (spec, N, K, T): each Verilator build takes about half a minute on two cores, so the sweep is
# a handful of sets covering both datapaths, a single lane, non-powers of two, several row and
# column groups and runs of more than one vector.
VERILATOR_SETS = [
    ("datapath=ternary,pe=4,simd=8", 8, 32, 2),
    ("datapath=ternary,pe=3,simd=5", 6, 15, 1),
    ("datapath=xnor,pe=4,simd=16", 8, 64, 1),
    ("datapath=ternary,pe=1,simd=1,act_bits=4", 2, 3, 3),
]
ICARUS_SETS = [
    ("datapath=ternary,pe=2,simd=4", 4, 8, 2),
    ("datapath=xnor,pe=2,simd=3", 4, 9, 1),
]


def checkpoint_or_none():
    return CHECKPOINT if CHECKPOINT.is_file() else None


def check(result, expected_tests):
    assert result.passed, result.tests
    assert len(result.tests) == expected_tests
    assert result.cycles_measured == result.cycles_predicted
    for test in result.tests:
        assert test["mismatches"] == []


def run_set(spec, n, k, tokens, simulator):
    missing = simulator_missing(simulator)
    if missing:
        if simulator == "verilator":
            pytest.fail(missing)
        pytest.skip(missing)
    design = sim.Design.from_spec(spec, "icebreaker")
    checkpoint = checkpoint_or_none()
    result = verify(design, n, k, tokens=tokens, simulator=simulator, checkpoint=checkpoint)
    check(result, 3 if checkpoint else 2)
    assert result.cycles_predicted == sim.estimate_layer(design, n, k, tokens=tokens).cycles
    assert result.vectors >= tokens * 5


@pytest.mark.rtl
@pytest.mark.parametrize(("spec", "n", "k", "tokens"), VERILATOR_SETS)
def test_mvu_verilator(spec, n, k, tokens):
    run_set(spec, n, k, tokens, "verilator")


@pytest.mark.rtl
@pytest.mark.parametrize(("spec", "n", "k", "tokens"), ICARUS_SETS)
def test_mvu_icarus(spec, n, k, tokens):
    run_set(spec, n, k, tokens, "icarus")


@pytest.mark.rtl
def test_bench_detects_wrong_reference(tmp_path, monkeypatch):
    # Shares the build of the first Icarus set; a wrong expected value must fail the bench,
    # and with waves requested the failing run is rerun with a wave dump.
    if simulator_missing("icarus"):
        pytest.skip(simulator_missing("icarus"))
    monkeypatch.setenv("ONEBIT_RTL_WAVES", "1")
    spec, n, k, tokens = ICARUS_SETS[0]
    design = sim.Design.from_spec(spec, "icebreaker")
    result = verify(design, n, k, tokens=tokens, simulator="icarus", reference_fault=True)
    assert not result.passed
    mismatches = [line for test in result.tests for line in test["mismatches"]]
    assert any("vector 0 row 0" in line for line in mismatches)
    assert result.waves is not None
    assert Path(result.waves).stat().st_size > 0


def test_verify_rejects_unknown_simulator():
    design = sim.Design.from_spec("pe=2,simd=4", "icebreaker")
    with pytest.raises(ValueError, match="simulator must be one of verilator, icarus; got 'vcs'"):
        verify(design, 4, 8, simulator="vcs")


def test_verify_rejects_bad_probability():
    design = sim.Design.from_spec("pe=2,simd=4", "icebreaker")
    with pytest.raises(ValueError, match=r"idle must be a probability in \[0, 1\), got 1.0"):
        verify(design, 4, 8, idle=1.0)


def test_verify_rejects_missing_checkpoint(tmp_path):
    design = sim.Design.from_spec("pe=2,simd=4", "icebreaker")
    missing = tmp_path / "none.safetensors"
    with pytest.raises(ValueError, match=f"checkpoint {missing} is not a file"):
        verify(design, 4, 8, checkpoint=missing)
