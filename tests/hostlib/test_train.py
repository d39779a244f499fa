"""The training script, on a small generated text with a tiny model."""

import json
import subprocess
import sys

import pytest
import torch

from hostlib import load_model
from hostlib.train import evaluate, main, split_text

TINY_ARGS = [
    "--steps", "40", "--batch-size", "8", "--context", "16", "--hidden", "16",
    "--intermediate", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1",
    "--lr", "1e-2", "--warmup", "4", "--eval-every", "20", "--eval-batches", "2",
    "--threads", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "it"]
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(0, len(words), (900,), generator=generator).tolist()
    path = tmp_path_factory.mktemp("text") / "words.txt"
    path.write_text(" ".join(words[i] for i in picks) + "\n", encoding="utf-8")
    return path


def _train(text_file, out, *extra):
    return main(["--text", str(text_file), "--out", str(out), *TINY_ARGS, *extra])


def test_training_lowers_loss_and_loads(text_file, tmp_path, capsys):
    assert _train(text_file, tmp_path / "run") == 0
    printed = capsys.readouterr().out
    assert "train loss" in printed
    assert "val loss" in printed

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val_loss"] < metrics["val_loss_initial"] - 0.5
    assert metrics["full_precision"] is False

    model = load_model(tmp_path / "run")
    text = text_file.read_text(encoding="utf-8")
    assert model.tokenizer.vocab == "".join(sorted(set(text)))
    assert model.training_metadata["steps"] == 40
    assert model.training_metadata["val_loss_packed"] == metrics["val_loss_packed"]
    assert model.config.max_position_embeddings == 16


def test_packed_loss_reproduced_by_loaded_model(text_file, tmp_path):
    assert _train(text_file, tmp_path / "run") == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    model = load_model(tmp_path / "run")
    text = text_file.read_text(encoding="utf-8")
    ids = torch.tensor(model.tokenizer.encode(text))
    _, val_ids = split_text(ids, 16)
    starts = torch.linspace(0, len(val_ids) - 17, 16).round().to(torch.long)
    assert evaluate(model, val_ids, starts, 16, 8) == metrics["val_loss_packed"]


def test_same_seed_same_checkpoint(text_file, tmp_path):
    assert _train(text_file, tmp_path / "a") == 0
    assert _train(text_file, tmp_path / "b") == 0
    assert _train(text_file, tmp_path / "c", "--seed", "1") == 0
    first = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert first == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert first != (tmp_path / "c" / "model.safetensors").read_bytes()
    config = (tmp_path / "a" / "config.json").read_text()
    assert config == (tmp_path / "b" / "config.json").read_text()


def test_full_precision_writes_metrics_only(text_file, tmp_path):
    assert _train(text_file, tmp_path / "fp", "--full-precision") == 0
    assert not (tmp_path / "fp" / "model.safetensors").exists()
    metrics = json.loads((tmp_path / "fp" / "metrics.json").read_text())
    assert metrics["full_precision"] is True
    assert "val_loss_packed" not in metrics
    assert metrics["val_loss"] < metrics["val_loss_initial"] - 0.5


def test_split_is_ninety_ten():
    train_ids, val_ids = split_text(torch.arange(1000), 16)
    assert torch.equal(train_ids, torch.arange(900))
    assert torch.equal(val_ids, torch.arange(900, 1000))


def test_text_too_short(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("abcdefghij" * 10, encoding="utf-8")
    assert _train(short, tmp_path / "out") == 1
    assert (
        "error: the text is too short for --context 16: the splits hold 90 and 10 characters, "
        "and each needs at least 17" in capsys.readouterr().err
    )


def test_missing_text_file(tmp_path, capsys):
    assert _train(tmp_path / "absent.txt", tmp_path / "out") == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "message"),
    [("--steps", "--steps must be at least 1, got 0"), ("--threads", "--threads must be at least")],
)
def test_bad_arguments(text_file, tmp_path, capsys, flag, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--text", str(text_file), "--out", str(tmp_path), flag, "0"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_module_command_prints_progress(text_file, tmp_path):
    command = [sys.executable, "-m", "hostlib.train", "--text", str(text_file)]
    command += ["--out", str(tmp_path / "run"), *TINY_ARGS]
    finished = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "step    40  train loss" in finished.stdout
    assert "validation loss of the packed ternary model" in finished.stdout
