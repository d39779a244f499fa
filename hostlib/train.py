"""Train a small character-level BitNet b1.58 model on a text file.

    python -m hostlib.train --text input.txt --out checkpoints/mine [--steps 600 ...]

Quantization-aware training: every projection is a `kernels.BitLinearTrain`, whose forward
pass uses ternary weights and 8-bit activations and whose backward pass is the straight-through
estimator. The first 90 % of the text is the training split, the last 10 % the validation split.
The result is written with `hostlib.save_checkpoint` as a packed checkpoint that
`hostlib.load_model` reads, and the validation loss is measured again on that packed model.

``--full-precision`` trains the same architecture with plain `torch.nn.Linear` projections, as a
baseline. It writes ``metrics.json`` only, because the packed format stores ternary weights.

A run is deterministic for a given seed, text, arguments and torch build: batches come from a
seeded generator and deterministic algorithms are enforced. The number of threads may change the
floating-point summation order, so it is recorded in the metrics.
"""

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from hostlib.checkpoint import save_checkpoint
from hostlib.model import BitNetConfig, BitNetForCausalLM
from hostlib.tokenizer import CharTokenizer

__all__ = ["TrainResult", "main", "train"]

# Named explicitly: under `python -m hostlib.train` __name__ is "__main__", outside "hostlib".
logger = logging.getLogger("hostlib.train")

VALIDATION_FRACTION = 0.1
INIT_STD = 0.02
"""Standard deviation of the normal initialization, `transformers`' BitNet initializer_range."""


@dataclass
class TrainResult:
    """Losses (mean cross-entropy in nats per character) and timing of one training run."""

    val_loss_initial: float
    train_loss: float
    val_loss: float
    val_loss_packed: float | None
    wall_s: float
    history: list[dict] = field(default_factory=list)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hostlib.train",
        description="Train a character-level BitNet b1.58 model with quantization-aware training.",
    )
    parser.add_argument("--text", required=True, type=Path, help="UTF-8 training text file")
    parser.add_argument("--out", required=True, type=Path, help="output checkpoint directory")
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps (default 600)")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per step")
    parser.add_argument("--context", type=int, default=256, help="sequence length in characters")
    parser.add_argument("--hidden", type=int, default=128, help="hidden_size")
    parser.add_argument("--intermediate", type=int, default=384, help="intermediate_size")
    parser.add_argument("--layers", type=int, default=4, help="num_hidden_layers")
    parser.add_argument("--heads", type=int, default=4, help="num_attention_heads")
    parser.add_argument("--kv-heads", type=int, default=2, help="num_key_value_heads")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of AdamW")
    parser.add_argument("--warmup", type=int, default=50, help="linear warm-up steps")
    parser.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between evaluations")
    parser.add_argument("--eval-batches", type=int, default=4, help="validation batches per eval")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialization and batches")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--full-precision",
        action="store_true",
        help="train plain nn.Linear projections (baseline); writes metrics.json only",
    )
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "context", "eval_every", "eval_batches"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.warmup < 0 or args.lr <= 0 or args.weight_decay < 0:
        parser.error("--warmup and --weight-decay must be non-negative and --lr positive")
    return args


def split_text(ids: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split token ids into the first 90 % (training) and the last 10 % (validation).

    Raises
    ------
    ValueError
        If either split has no more than ``context`` tokens, so no window plus target fits.
    """
    cut = int(len(ids) * (1.0 - VALIDATION_FRACTION))
    train_ids, val_ids = ids[:cut], ids[cut:]
    shortest = min(len(train_ids), len(val_ids))
    if shortest <= context:
        raise ValueError(
            f"the text is too short for --context {context}: the splits hold {len(train_ids)} "
            f"and {len(val_ids)} characters, and each needs at least {context + 1}"
        )
    return train_ids, val_ids


def _windows(ids: torch.Tensor, starts: torch.Tensor, context: int):
    # [batch] starts -> inputs and next-character targets, each [batch, context].
    index = starts[:, None] + torch.arange(context)[None, :]
    return ids[index], ids[index + 1]


def _validation_starts(val_ids: torch.Tensor, context: int, count: int) -> torch.Tensor:
    # Evenly spaced windows over the whole split, the same ones at every evaluation.
    last = len(val_ids) - context - 1
    return torch.linspace(0, last, count).round().to(torch.long)


@torch.no_grad()
def evaluate(model: nn.Module, ids: torch.Tensor, starts: torch.Tensor, context: int, batch: int):
    """Return the mean cross-entropy of ``model`` over the windows at ``starts``."""
    total = 0.0
    for first in range(0, len(starts), batch):
        inputs, targets = _windows(ids, starts[first : first + batch], context)
        logits = model(inputs)
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
        )
        total += float(loss)
    return total / (len(starts) * context)


def _initialize(model: BitNetForCausalLM, seed: int) -> None:
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)


def _learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    # Linear warm-up, then cosine decay to a tenth of the peak.
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    # Decay only the matrices; norms gains are left alone, as is usual for transformers.
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": matrices, "weight_decay": weight_decay},
        {"params": vectors, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def train(args: argparse.Namespace) -> TrainResult:
    """Run one training as ``args`` (from ``python -m hostlib.train``) describes."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    text = args.text.read_text(encoding="utf-8")
    tokenizer = CharTokenizer.from_text(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = split_text(ids, args.context)
    config = BitNetConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=args.context,
        rope_theta=10000.0,
    )
    model = BitNetForCausalLM(config, training=True, full_precision=args.full_precision)
    _initialize(model, args.seed)
    optimizer = _optimizer(model, args.lr, args.weight_decay)
    generator = torch.Generator().manual_seed(args.seed)
    val_starts = _validation_starts(val_ids, args.context, args.eval_batches * args.batch_size)
    kind = "full precision" if args.full_precision else "ternary (QAT)"
    logger.info(
        "training %s: %d parameters, vocab %d, %d training and %d validation characters",
        kind,
        sum(p.numel() for p in model.parameters()),
        tokenizer.vocab_size,
        len(train_ids),
        len(val_ids),
    )

    start = time.perf_counter()
    model.eval()
    val_loss_initial = evaluate(model, val_ids, val_starts, args.context, args.batch_size)
    history = [{"step": 0, "val_loss": val_loss_initial}]
    logger.info("step %5d  val loss %.4f", 0, val_loss_initial)
    train_loss = float("nan")
    running = []
    for step in range(args.steps):
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, args.steps, args.lr, args.warmup)
        starts = torch.randint(
            0, len(train_ids) - args.context - 1, (args.batch_size,), generator=generator
        )
        inputs, targets = _windows(train_ids, starts, args.context)
        logits = model(inputs)
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, config.vocab_size), targets.reshape(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running.append(float(loss.detach()))

        done = step + 1
        if done % args.eval_every == 0 or done == args.steps:
            model.eval()
            train_loss = sum(running) / len(running)
            running = []
            val_loss = evaluate(model, val_ids, val_starts, args.context, args.batch_size)
            elapsed = time.perf_counter() - start
            history.append(
                {"step": done, "train_loss": train_loss, "val_loss": val_loss, "wall_s": elapsed}
            )
            logger.info(
                "step %5d  train loss %.4f  val loss %.4f  %.0f s",
                done,
                train_loss,
                val_loss,
                elapsed,
            )
    wall_s = time.perf_counter() - start

    val_loss_packed = None
    metadata = {
        "text": args.text.name,
        "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "context": args.context,
        "lr": args.lr,
        "warmup": args.warmup,
        "weight_decay": args.weight_decay,
        "seed": args.seed,
        "val_loss_initial": val_loss_initial,
        "train_loss": train_loss,
        "val_loss": history[-1]["val_loss"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.full_precision:
        inference = model.to_inference()
        val_loss_packed = evaluate(inference, val_ids, val_starts, args.context, args.batch_size)
        metadata["val_loss_packed"] = val_loss_packed
        logger.info("validation loss of the packed ternary model: %.4f", val_loss_packed)
        save_checkpoint(inference, tokenizer, args.out, training=metadata)
    metrics = {
        **metadata,
        "full_precision": args.full_precision,
        "threads": torch.get_num_threads(),
        "wall_s": wall_s,
        "history": history,
        "argv": sys.argv,
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return TrainResult(
        val_loss_initial=val_loss_initial,
        train_loss=train_loss,
        val_loss=history[-1]["val_loss"],
        val_loss_packed=val_loss_packed,
        wall_s=wall_s,
        history=history,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status.

    Progress goes to stdout through the ``hostlib`` logger, the final losses as one JSON line.
    """
    args = _parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package_logger = logging.getLogger("hostlib")
    previous_level = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        result = train(args)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)
    print(json.dumps({key: value for key, value in asdict(result).items() if key != "history"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
