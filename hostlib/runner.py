"""Text generation on a device, with the reference check and the modelled accelerator account."""

import copy
import logging
import time
from dataclasses import dataclass, field

import torch

import sim
from hostlib.devices import Device, LayerStats
from hostlib.offload import MismatchError, offload

__all__ = ["GenerationResult", "generate_on_device", "modelled_layers"]

logger = logging.getLogger(__name__)


@dataclass
class GenerationResult:
    """The outcome of `generate_on_device`."""

    text: str
    prompt_tokens: list[int]
    new_tokens: list[int]
    check: bool | None
    wall_s: float
    layers: list[dict] = field(default_factory=list)
    modelled: dict = field(default_factory=dict)
    device: dict = field(default_factory=dict)

    @property
    def wall_tokens_per_s(self) -> float:
        return len(self.new_tokens) / self.wall_s if self.wall_s > 0 else float("inf")

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "tokens": self.new_tokens,
            "check": self.check,
            "device": self.device,
            "modelled": self.modelled,
            "layers": self.layers,
            "wall": {"seconds": self.wall_s, "tokens_per_s": self.wall_tokens_per_s},
        }


def generate_on_device(
    model: torch.nn.Module,
    prompt: str,
    device: Device,
    design: sim.Design,
    *,
    max_new_tokens: int,
    check: bool = False,
) -> GenerationResult:
    """Generate ``max_new_tokens`` greedily from ``prompt`` with the BitLinear layers on ``device``.

    The prompt is run as one prefill pass and then one token per decode step, with the KV cache.
    With ``check=True`` an untouched copy of the model runs alongside on the PyTorch reference:
    every accumulator and every logit must be identical, else `MismatchError` is raised.

    Raises
    ------
    ValueError
        If the prompt is empty, contains characters outside the tokenizer, or prompt plus new tokens
        exceed the model's context.
    MismatchError
        With ``check=True``, on the first accumulator or logit that differs from the reference.
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("the model has no tokenizer, so it cannot take a text prompt")
    if not prompt:
        raise ValueError("the prompt is empty; give at least one character")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    prompt_ids = tokenizer.encode(prompt)
    context = model.config.max_position_embeddings
    if len(prompt_ids) + max_new_tokens > context:
        raise ValueError(
            f"the prompt ({len(prompt_ids)} tokens) plus max_new_tokens ({max_new_tokens}) exceed "
            f"the model's context of {context} tokens"
        )

    reference = copy.deepcopy(model) if check else None
    offload(model, device, check=check)
    device.reset_stats()

    new_tokens: list[int] = []
    start = time.perf_counter()
    with torch.no_grad():
        ids = torch.tensor([prompt_ids], dtype=torch.long)
        cache = None
        reference_cache = None
        for step in range(max_new_tokens):
            logits, cache = model(ids, past_key_values=cache, use_cache=True)
            if reference is not None:
                expected, reference_cache = reference(
                    ids, past_key_values=reference_cache, use_cache=True
                )
                _compare_logits(logits, expected, step)
            next_id = int(torch.argmax(logits[0, -1]))
            new_tokens.append(next_id)
            ids = torch.tensor([[next_id]], dtype=torch.long)
    wall_s = time.perf_counter() - start

    layers, modelled = modelled_layers(device.stats(), design)
    modelled["end_to_end"] = end_to_end_decode(
        model.config, design, context=len(prompt_ids) + max_new_tokens
    )
    return GenerationResult(
        text=tokenizer.decode(prompt_ids + new_tokens),
        prompt_tokens=prompt_ids,
        new_tokens=new_tokens,
        check=True if check else None,
        wall_s=wall_s,
        layers=layers,
        modelled=modelled,
        device=device.describe(),
    )


def modelled_layers(stats: list[LayerStats], design: sim.Design) -> tuple[list[dict], dict]:
    """Return the per-layer decode account and the model totals for ``design``.

    Layers measured by a device with a hardware model (the simulator) report what it measured,
    averaged over the decode steps. For the other devices each layer is costed with the
    simulator's timing-only mode for one token. Only the BitLinear layers are counted: the
    embedding, attention over the KV cache, norms and the LM head run on the host and are not
    included in ``tokens_per_s``.
    """
    layers = []
    total_cycles = 0
    total_time = 0.0
    total_energy = 0.0
    for layer in stats:
        if layer.decode_calls:
            cycles = layer.decode_cycles / layer.decode_calls
            time_s = layer.decode_time_s / layer.decode_calls
            energy = layer.decode_energy_j / layer.decode_calls
            bound = layer.bound
        else:
            estimate = sim.estimate_layer(design, layer.out_features, layer.in_features, tokens=1)
            cycles, time_s, energy, bound = (
                estimate.cycles,
                estimate.time_s,
                estimate.energy_j,
                estimate.bound,
            )
        total_cycles += cycles
        total_time += time_s
        total_energy += energy
        layers.append(
            {
                "name": layer.name,
                "shape": [layer.out_features, layer.in_features],
                "cycles": cycles,
                "time_s": time_s,
                "energy_j": energy,
                "bound": bound,
                "calls": layer.calls,
                "wall_s": layer.wall_s,
            }
        )
    modelled = {
        "design": design.to_dict(),
        "cycles_per_token": total_cycles,
        "time_s_per_token": total_time,
        "tokens_per_s": 1.0 / total_time if total_time > 0 else float("inf"),
        "energy_j_per_token": total_energy,
        "scope": "BitLinear layers only; host-side layers are not included",
    }
    return layers, modelled


def end_to_end_decode(config, design: sim.Design, *, context: int) -> dict:
    """Cost one decode token of the whole model on ``design`` with `sim.simulate_model`.

    The checkpoint's configuration becomes a `sim.ModelConfig`. The host-side parts are then
    costed on the board's host processor beside the BitLinear layers: the embedding, attention
    over a KV cache of ``context`` tokens, the norms and the LM head. The design is also checked
    against the board's resources.
    """
    model_config = sim.ModelConfig(
        name="checkpoint",
        family="bitnet",
        hidden=config.hidden_size,
        intermediate=config.intermediate_size,
        layers=config.num_hidden_layers,
        heads=config.num_attention_heads,
        kv_heads=config.num_key_value_heads,
        vocab=config.vocab_size,
        tied_embeddings=config.tie_word_embeddings,
        max_context=config.max_position_embeddings,
        activation="relu2",
        source="the loaded checkpoint's config.json",
    )
    run = sim.simulate_model(design, model_config, phase="decode", context=context)
    return {
        "context": context,
        "host": run.host,
        "tokens_per_s": run.tokens_per_s,
        "accelerator_time_s": run.accelerator_time_s,
        "host_time_s": run.host_time_s,
        "energy_j_per_token": run.energy_j_per_token,
        "fits": run.fits,
        "fit_problems": list(run.to_dict()["fit"].get("problems", [])),
    }


def _compare_logits(actual: torch.Tensor, expected: torch.Tensor, step: int) -> None:
    if torch.equal(actual, expected):
        return
    index = tuple(int(i) for i in torch.nonzero(actual != expected)[0])
    raise MismatchError(
        f"logits differ from the reference at generation step {step}, position {index}: "
        f"{float(actual[index])!r} against {float(expected[index])!r}"
    )
