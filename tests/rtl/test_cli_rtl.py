import json
import re

import pytest

import sim
from hostlib.cli import main
from rtl import simulator_missing


def run_cli(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_rtl_generate_writes_verilog_design_and_ports(tmp_path, capsys):
    status, out, _ = run_cli(
        capsys, "rtl", "generate", "--design", "pe=2,simd=4", "--layer", "4x8", "--out",
        str(tmp_path), "--json",
    )  # fmt: skip
    assert status == 0
    result = json.loads(out)
    verilog = (tmp_path / "onebit_mvu.v").read_text()
    assert result["verilog"] == str(tmp_path / "onebit_mvu.v")
    assert "module onebit_mvu" in verilog
    design = json.loads((tmp_path / "design.json").read_text())
    assert design["n"] == 4
    assert design["k"] == 8
    expected = sim.estimate_layer(sim.Design.from_spec("pe=2,simd=4", "icebreaker"), 4, 8)
    assert design["predicted_cycles"] == expected.cycles
    ports = json.loads((tmp_path / "ports.json").read_text())["ports"]
    # Every described port is declared in the Verilog with the described width.
    for port in ports:
        width = f"[{port['width'] - 1}:0] " if port["width"] > 1 else ""
        assert re.search(rf"\b{port['direction']} {re.escape(width)}{port['name']};", verilog), port


def test_rtl_generate_rejects_lut(tmp_path, capsys):
    status, _, err = run_cli(
        capsys, "rtl", "generate", "--design", "datapath=lut,pe=2,simd=4", "--layer", "4x8",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert status == 2
    assert err.startswith("onebit: error: Design.datapath = 'lut' has no RTL generator yet")


def test_rtl_generate_rejects_stream_board(tmp_path, capsys):
    status, _, err = run_cli(
        capsys, "rtl", "generate", "--board", "kv260", "--design", "pe=2,simd=4", "--layer",
        "4x8", "--out", str(tmp_path),
    )  # fmt: skip
    assert status == 2
    assert "Design.weight_store = 'stream' is not supported by the RTL" in err


@pytest.mark.parametrize("layer", ["4by8", "0x8", "4x"])
def test_rtl_rejects_bad_layer(tmp_path, capsys, layer):
    status, _, err = run_cli(capsys, "rtl", "generate", "--layer", layer, "--out", str(tmp_path))
    assert status == 2
    assert "--layer" in err


@pytest.mark.rtl
def test_rtl_verify_json(capsys):
    if simulator_missing("icarus"):
        pytest.skip(simulator_missing("icarus"))
    # The parameters of the first Icarus set in test_mvu.py, so the build is shared.
    status, out, _ = run_cli(
        capsys, "rtl", "verify", "--design", "pe=2,simd=4", "--layer", "4x8", "--tokens", "2",
        "--simulator", "icarus", "--json",
    )  # fmt: skip
    assert status == 0
    result = json.loads(out)
    assert result["passed"] is True
    assert result["vectors"] >= 10
    assert result["cycles_measured"] == result["cycles_predicted"]
    design = sim.Design.from_spec("pe=2,simd=4", "icebreaker")
    assert result["cycles_predicted"] == sim.estimate_layer(design, 4, 8, tokens=2).cycles


@pytest.mark.rtl
def test_rtl_synth_json(capsys):
    status, out, _ = run_cli(
        capsys, "rtl", "synth", "--design", "pe=2,simd=4", "--layer", "4x8", "--target",
        "ice40", "--json",
    )  # fmt: skip
    assert status == 0
    result = json.loads(out)
    resources = result["resources"]
    assert set(resources) == {"lut", "ff", "carry", "bram", "lutram", "dsp"}
    assert resources["lut"] > 0
    assert resources["ff"] > 0
    # No datapath multiplies, so no DSP is inferred.
    assert resources["dsp"] == 0
    assert result["device"] == "iCE40UP5K"
    assert result["fmax_mhz"] > 0


def test_rtl_verify_rejects_slice_wider_than_checkpoint(capsys):
    # The demo checkpoint's hidden size is 128, so it cannot supply a K = 256 slice; this is
    # rejected before any simulator is built.
    status, _, err = run_cli(capsys, "rtl", "verify", "--layer", "64x256")
    assert status == 2
    assert "has 128 columns, fewer than K = 256" in err


def test_rtl_verify_rejects_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"hidden_size": 128, "intermediate_size": 384}')
    corrupt = tmp_path / "model.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    status, _, err = run_cli(
        capsys, "rtl", "verify", "--layer", "16x64", "--checkpoint", str(corrupt)
    )
    assert status == 2
    assert f"checkpoint {corrupt} cannot supply a layer slice" in err
