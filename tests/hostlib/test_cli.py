import json
import subprocess
import sys

import pytest

from hostlib.cli import main

_FAST = ["--max-new-tokens", "6"]


def _run_json(capsys, *args):
    status = main(["run", *args, "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out)


def test_run_sim_matches_reference(capsys):
    on_sim = _run_json(capsys, "--device", "sim", "--check", *_FAST)
    on_reference = _run_json(capsys, "--device", "reference", *_FAST)
    assert on_sim["tokens"] == on_reference["tokens"]
    assert on_sim["text"] == on_reference["text"]
    assert on_sim["check"] is True
    assert on_reference["check"] is None
    assert len(on_sim["tokens"]) == 6


def test_run_json_reports_layers(capsys):
    result = _run_json(capsys, "--device", "sim", *_FAST)
    assert result["text"].startswith("ROMEO:")
    assert result["modelled"]["tokens_per_s"] > 0
    assert result["modelled"]["design"]["board"] == "kv260"
    names = [layer["name"] for layer in result["layers"]]
    assert "model.layers.0.self_attn.q_proj" in names
    assert "model.layers.0.mlp.down_proj" in names
    for layer in result["layers"]:
        assert layer["bound"] in ("compute", "memory")
        assert layer["cycles"] > 0
    total = sum(layer["cycles"] for layer in result["layers"])
    assert result["modelled"]["cycles_per_token"] == pytest.approx(total)


def test_run_reference_models_same_cycles_as_sim(capsys):
    on_sim = _run_json(capsys, "--device", "sim", *_FAST)
    on_reference = _run_json(capsys, "--device", "reference", *_FAST)
    sim_cycles = [layer["cycles"] for layer in on_sim["layers"]]
    reference_cycles = [layer["cycles"] for layer in on_reference["layers"]]
    assert sim_cycles == reference_cycles


def test_run_human_output(capsys):
    assert main(["run", "--device", "sim", *_FAST]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ROMEO:")
    assert "modelled accelerator:" in out
    assert "modelled end to end:" in out
    assert "model.layers.0.self_attn.q_proj" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", ""], "the prompt is empty"),
        (["--prompt", "ROMEO\u00e9"], "\u00e9"),
        (["--max-new-tokens", "100000"], "exceed the model's context"),
        (["--max-new-tokens", "0"], "max_new_tokens must be at least 1, got 0"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--device", "rtl", "--design", "weight_store=stream"], "set weight_store=onchip"),
        (["--device", "serial:/nonexistent/tty"], "cannot open serial port '/nonexistent/tty'"),
        (["--board", "nosuchboard"], "nosuchboard"),
        (["--design", "pe=0"], "pe"),
        (["--design", "pe=7"], "pe"),
    ],
)
def test_run_bad_input(capsys, args, message):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("onebit: error: ")
    assert message in err
    assert "Traceback" not in err


def test_run_path_not_checkpoint(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    assert main(["run", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("onebit: error: ")
    assert str(tmp_path) in err


def test_boards_json_lists_kv260(capsys):
    assert main(["boards", "--json"]) == 0
    boards = json.loads(capsys.readouterr().out)["boards"]
    names = [board["name"] for board in boards]
    assert "kv260" in names
    assert "u280" in names


def test_console_script_error_has_no_traceback():
    completed = subprocess.run(
        [sys.executable, "-m", "hostlib.cli", "run", "--prompt", ""],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "the prompt is empty" in completed.stderr
    assert completed.stdout == ""


def test_models_json_matches_catalogue(capsys):
    assert main(["models", "--json"]) == 0
    models = {row["name"]: row for row in json.loads(capsys.readouterr().out)["models"]}
    bitnet = models["bitnet-2b-4t"]
    assert (bitnet["hidden"], bitnet["intermediate"], bitnet["layers"]) == (2560, 6912, 30)
    # Seven ternary projections per block: q and o are 2560 x 2560, k and v 640 x 2560,
    # gate, up and down 6912 x 2560.
    per_block = 2 * 2560 * 2560 + 2 * 640 * 2560 + 3 * 6912 * 2560
    assert bitnet["ternary_parameters"] == 30 * per_block
    assert "demo" in models


def test_models_table_lists_every_model(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("bitnet-0.7b", "bitnet-2b-4t", "bitnet-3b", "llama3-8b-1.58", "mmfree-370m"):
        assert name in out


def _simulate_json(capsys, *args):
    status = main(["simulate", *args, "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out)


def test_simulate_gemm_systolic_scalesim_convention(capsys):
    # 256 x 256 input times 256 x 128 weights, ws on 32 x 32: K = 256 on the rows (8 folds),
    # N = 128 on the columns (4 folds), M = 256 streamed; each fold takes
    # 2R + C + T - 2 = 64 + 32 + 256 - 2 = 350 cycles, and SCALE-Sim 3.0 reports 32 * 350 - 1.
    result = _simulate_json(
        capsys, "--gemm", "256,128,256", "--design", "array=systolic,rows=32,cols=32,dataflow=ws"
    )
    assert result["folds"] == 32
    assert result["fold_cycles"] == 350
    assert result["cycles"] == 32 * 350 - 1
    assert "out" not in result


def test_simulate_gemm_mvu_compute_bound(capsys):
    # On-chip weights: (N / PE) (K / SIMD) folds per vector, M vectors, plus the pipeline depth
    # 3 + log2(SIMD).
    result = _simulate_json(
        capsys, "--gemm", "4,256,512", "--design", "pe=16,simd=64,weight_store=onchip"
    )
    assert result["compute_cycles"] == 4 * (256 // 16) * (512 // 64)
    assert result["cycles"] == 4 * 16 * 8 + 3 + 6
    assert result["bound"] == "compute"


def test_simulate_model_decode_json(capsys):
    result = _simulate_json(
        capsys, "--model", "bitnet-2b-4t", "--board", "kv260", "--context", "1024"
    )
    assert result["phase"] == "decode"
    assert result["context"] == 1024
    assert result["tokens_per_s"] > 0
    assert result["energy_j_per_token"] > 0
    assert "resources" in result
    ternary = [layer for layer in result["layers"] if layer["kind"] == "ternary"]
    assert len(ternary) == 30 * 7
    assert all(layer["bound"] in ("compute", "memory") for layer in ternary)
    assert result["cycles"] == sum(layer["cycles"] for layer in ternary)
    # Decode can never beat the DRAM roofline: bandwidth over the weight bytes per token.
    dram_bytes_per_s = 19.2e9
    assert result["tokens_per_s"] <= dram_bytes_per_s / result["dram_bytes_read"]


def test_simulate_model_prefill_table(capsys):
    assert main(["simulate", "--model", "demo", "--phase", "prefill", "--tokens", "32"]) == 0
    out = capsys.readouterr().out
    assert "demo on kv260, prefill (32 tokens" in out
    assert "layers.0.mlp.down_proj" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gemm", "1,2"], "--gemm must be three positive integers M,N,K; got '1,2'"),
        (["--gemm", "0,4,4"], "--gemm sizes must be at least 1; got '0,4,4'"),
        (["--gemm", "4,4,64", "--bandwidth", "2"], "--bandwidth applies to systolic designs"),
        (["--model", "nosuchmodel"], "nosuchmodel"),
        (["--model", "demo", "--tokens", "8"], "--tokens is the prompt length of a prefill"),
        (
            ["--model", "demo", "--phase", "prefill", "--context", "8"],
            "--context applies to decode",
        ),
        (["--model", "demo", "--design", "simd=256"], "simd"),
        (["--gemm", "1,64,64", "--tokens", "3"], "--tokens applies to --model"),
        (["--gemm", "1,64,64", "--phase", "prefill"], "--phase applies to --model"),
        (["--gemm", "1,64,64", "--nonzero-fraction", "0.5"], "--nonzero-fraction applies to"),
        (
            ["--model", "demo", "--design", "array=systolic"],
            "--model runs on an mvu array, got array=systolic",
        ),
        (["--model", "demo", "--nonzero-fraction", "1.5"], "nonzero_fraction must be between"),
    ],
)
def test_simulate_bad_input(capsys, args, message):
    assert main(["simulate", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("onebit: error: ")
    assert message in err


def test_simulate_nonzero_fraction_saves_energy(capsys):
    def energy(*extra):
        args = ["simulate", "--model", "bitnet-0.7b", "--design", "zero_skip=true", "--json"]
        assert main([*args, *extra]) == 0
        return json.loads(capsys.readouterr().out)

    dense, sparse = energy(), energy("--nonzero-fraction", "0.6")
    assert sparse["energy_j_per_token"] < dense["energy_j_per_token"]
    assert sparse["cycles"] == dense["cycles"]


def test_run_json_costs_end_to_end(capsys):
    result = _run_json(capsys, "--device", "reference", *_FAST)
    end_to_end = result["modelled"]["end_to_end"]
    assert end_to_end["fits"] is True
    assert end_to_end["context"] == len(result["prompt_tokens"]) + 6
    # Host-side layers only add time, so the whole token is slower than its BitLinear layers.
    assert end_to_end["tokens_per_s"] < result["modelled"]["tokens_per_s"]


def test_run_warns_when_design_does_not_fit(capsys):
    assert main(["run", "--device", "reference", "--board", "icebreaker", *_FAST]) == 0
    out = capsys.readouterr().out
    assert "warning: the design does not fit board icebreaker:" in out
    assert "LUTs: needs" in out
