"""Test helpers: Hugging Face BitNet checkpoints written by hand and a plain forward pass.

Nothing here uses `hostlib`. The packer and the forward pass are written independently of the
code under test, in the most direct form: loops over rows, positions and heads.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

import kernels

PROJECTIONS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)

TINY_CONFIG = {
    "architectures": ["BitNetForCausalLM"],
    "model_type": "bitnet",
    "vocab_size": 37,
    "hidden_size": 32,
    # 50 is not a multiple of 4, so the packed gate and up projections carry padding rows.
    "intermediate_size": 50,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "hidden_act": "relu2",
    "bos_token_id": 1,
    "torch_dtype": "bfloat16",
}


def projection_shapes(config: dict) -> dict[str, tuple[int, int]]:
    """Return {projection suffix: (out_features, in_features)}."""
    hidden = config["hidden_size"]
    inner = config["intermediate_size"]
    kv = config["num_key_value_heads"] * hidden // config["num_attention_heads"]
    return {
        "self_attn.q_proj": (hidden, hidden),
        "self_attn.k_proj": (kv, hidden),
        "self_attn.v_proj": (kv, hidden),
        "self_attn.o_proj": (hidden, hidden),
        "mlp.gate_proj": (inner, hidden),
        "mlp.up_proj": (inner, hidden),
        "mlp.down_proj": (hidden, inner),
    }


def latent_tensors(config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random float32 weights for every tensor of a BitNet model (projections latent)."""
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape, std=0.1):
        return torch.randn(shape, generator=generator) * std

    def gain(size):
        # Gains away from 1 so that a norm loaded wrongly (or not at all) shows in the logits.
        return 1.0 + normal(size, std=0.2)

    hidden = config["hidden_size"]
    tensors = {"model.embed_tokens.weight": normal(config["vocab_size"], hidden, std=1.0)}
    for layer in range(config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        for name, shape in projection_shapes(config).items():
            tensors[prefix + name + ".weight"] = normal(*shape)
        tensors[prefix + "input_layernorm.weight"] = gain(hidden)
        tensors[prefix + "post_attention_layernorm.weight"] = gain(hidden)
        tensors[prefix + "self_attn.attn_sub_norm.weight"] = gain(hidden)
        tensors[prefix + "mlp.ffn_sub_norm.weight"] = gain(config["intermediate_size"])
    tensors["model.norm.weight"] = gain(hidden)
    if not config["tie_word_embeddings"]:
        tensors["lm_head.weight"] = normal(config["vocab_size"], hidden)
    return tensors


def pack_hf(codes: torch.Tensor) -> torch.Tensor:
    """Pack ternary codes [M, K] row by row: row m goes to byte row m % R, bit pair m // R."""
    rows, cols = codes.shape
    packed_rows = (rows + 3) // 4
    packed = torch.zeros((packed_rows, cols), dtype=torch.uint8)
    for m in range(rows):
        two_bit = (codes[m].to(torch.int16) + 1).to(torch.uint8)
        packed[m % packed_rows] |= two_bit << (2 * (m // packed_rows))
    return packed


def quantize(latent: dict[str, torch.Tensor], config: dict):
    """Return {projection name: (codes int8, gamma float32)} of every latent projection."""
    result = {}
    for layer in range(config["num_hidden_layers"]):
        for name in PROJECTIONS:
            full = f"model.layers.{layer}.{name}"
            result[full] = kernels.quantize_weights(latent[full + ".weight"])
    return result


def offline_tensors(
    latent: dict[str, torch.Tensor],
    config: dict,
    *,
    convention: str = "multiply",
    float_dtype: torch.dtype = torch.float32,
    packed: bool = True,
) -> dict[str, torch.Tensor]:
    """Tensors of an offline checkpoint: packed codes and weight_scale, other floats as given.

    ``convention="multiply"`` stores gamma (autobitlinear), ``"divide"`` stores 1 / gamma
    (bitlinear). The scale is stored in ``float_dtype`` with shape (1,), as `transformers` does.
    """
    tensors = {}
    quantized = quantize(latent, config)
    for name, tensor in latent.items():
        module = name.removesuffix(".weight")
        if module in quantized:
            codes, gamma = quantized[module]
            tensors[name] = pack_hf(codes) if packed else codes.to(float_dtype)
            scale = gamma if convention == "multiply" else 1.0 / gamma
            tensors[module + ".weight_scale"] = scale.reshape(1).to(float_dtype)
        else:
            tensors[name] = tensor.to(float_dtype)
    return tensors


def write_checkpoint(
    directory: Path,
    config: dict,
    tensors: dict[str, torch.Tensor],
    quantization: dict | None,
    shards: int = 1,
) -> Path:
    """Write config.json and the tensors, in one file or in ``shards`` files with an index."""
    directory.mkdir(parents=True, exist_ok=True)
    values = dict(config)
    if quantization is not None:
        values["quantization_config"] = quantization
    (directory / "config.json").write_text(json.dumps(values, indent=2))
    if shards == 1:
        save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
        return directory
    names = sorted(tensors)
    weight_map = {}
    for shard in range(shards):
        file_name = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: tensors[name] for name in names[shard::shards]}
        save_file(part, str(directory / file_name), metadata={"format": "pt"})
        weight_map.update({name: file_name for name in part})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return directory


AUTOBITLINEAR = {
    "quant_method": "bitnet",
    "linear_class": "autobitlinear",
    "quantization_mode": "offline",
}
BITLINEAR = {"quant_method": "bitnet", "linear_class": "bitlinear", "quantization_mode": "offline"}
ONLINE = {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"}


def _rms_norm(x: torch.Tensor, gain: torch.Tensor, eps: float) -> torch.Tensor:
    return gain * x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps)


def _bitlinear(x: torch.Tensor, codes: torch.Tensor, scale: float, convention: str):
    # Per-token absmax to int8, exact integer dot products, then the stored scale.
    out = torch.empty(x.shape[0], codes.shape[0])
    for t in range(x.shape[0]):
        row = x[t]
        s = torch.tensor(127.0) / row.abs().max().clamp(min=1e-5)
        q = torch.clamp(torch.round(row * s), -128, 127)
        acc = (codes.to(torch.float64) @ q.to(torch.float64)).to(torch.float32)
        out[t] = acc / s * scale if convention == "multiply" else acc / (s * scale)
    return out


def reference_logits(
    config: dict,
    floats: dict[str, torch.Tensor],
    projections: dict[str, tuple[torch.Tensor, float, str]],
    ids: list[int],
) -> torch.Tensor:
    """Logits [seq, vocab] of one sequence, computed position by position and head by head.

    ``floats`` contains the float tensors (float32), ``projections`` maps each projection name to
    (ternary codes, stored scale, convention).
    """
    eps = config["rms_norm_eps"]
    heads = config["num_attention_heads"]
    kv_heads = config["num_key_value_heads"]
    head_dim = config["hidden_size"] // heads
    theta = config["rope_theta"]
    seq = len(ids)

    def rope(vector, position):
        # Feature j pairs with j + head_dim / 2, angle position * theta^(-2j / head_dim).
        out = vector.clone()
        half = head_dim // 2
        for j in range(half):
            angle = position * theta ** (-2.0 * j / head_dim)
            c, s = torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle))
            out[j] = vector[j] * c - vector[j + half] * s
            out[j + half] = vector[j + half] * c + vector[j] * s
        return out

    x = floats["model.embed_tokens.weight"][ids].clone()
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."

        def proj(name, value, p=p):
            codes, scale, convention = projections[p + name]
            return _bitlinear(value, codes, scale, convention)

        h = _rms_norm(x, floats[p + "input_layernorm.weight"], eps)
        q = proj("self_attn.q_proj", h)
        k = proj("self_attn.k_proj", h)
        v = proj("self_attn.v_proj", h)
        attn = torch.zeros(seq, heads * head_dim)
        for head in range(heads):
            kv = head // (heads // kv_heads)
            qs = [rope(q[t, head * head_dim : (head + 1) * head_dim], t) for t in range(seq)]
            ks = [rope(k[t, kv * head_dim : (kv + 1) * head_dim], t) for t in range(seq)]
            vs = [v[t, kv * head_dim : (kv + 1) * head_dim] for t in range(seq)]
            for t in range(seq):
                scores = torch.stack([qs[t] @ ks[u] for u in range(t + 1)]) / head_dim**0.5
                weights = torch.softmax(scores, dim=0)
                attn[t, head * head_dim : (head + 1) * head_dim] = sum(
                    weights[u] * vs[u] for u in range(t + 1)
                )
        attn = _rms_norm(attn, floats[p + "self_attn.attn_sub_norm.weight"], eps)
        x = x + proj("self_attn.o_proj", attn)

        h = _rms_norm(x, floats[p + "post_attention_layernorm.weight"], eps)
        gate = torch.relu(proj("mlp.gate_proj", h)) ** 2
        inner = _rms_norm(gate * proj("mlp.up_proj", h), floats[p + "mlp.ffn_sub_norm.weight"], eps)
        x = x + proj("mlp.down_proj", inner)

    x = _rms_norm(x, floats["model.norm.weight"], eps)
    head = floats.get("lm_head.weight", floats["model.embed_tokens.weight"])
    return x @ head.t()


def reference_from_latent(latent, config, ids, *, convention="multiply", float_dtype=None):
    """Reference logits of the offline checkpoint that `offline_tensors` builds from ``latent``."""
    floats = {}
    for name, tensor in latent.items():
        value = tensor if float_dtype is None else tensor.to(float_dtype)
        floats[name] = value.to(torch.float32)
    projections = {}
    for name, (codes, gamma) in quantize(latent, config).items():
        scale = gamma if convention == "multiply" else 1.0 / gamma
        if float_dtype is not None:
            scale = scale.to(float_dtype)
        projections[name] = (codes, float(scale.to(torch.float32)), convention)
    return reference_logits(config, floats, projections, ids)
