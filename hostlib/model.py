"""The BitNet b1.58 decoder as Hugging Face `transformers` defines `BitNetForCausalLM`.

The structure and the module names follow `transformers.models.bitnet.modeling_bitnet`, so that
a Hugging Face state dict maps key for key onto this model. It is a Llama-style pre-norm decoder
with rotary position embeddings and grouped-query attention. Each attention block applies an
RMSNorm (``attn_sub_norm``) to the attention output before ``o_proj``, and each MLP applies one
(``ffn_sub_norm``) to relu(gate)^2 * up before ``down_proj``. No layer has a bias. The LM head
stays in full precision, as in `transformers`.

The seven projections of each layer come in three kinds. Inference uses `kernels.BitLinear`
(ternary codes and a weight scale). Quantization-aware training uses `kernels.BitLinearTrain`
(latent weights and the straight-through estimator). A full-precision baseline of the same
architecture uses plain `torch.nn.Linear`. All floating point is float32.
"""

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

import kernels

__all__ = ["BitNetConfig", "BitNetForCausalLM", "KVCache"]

_PROJECTIONS = (
    ("self_attn", "q_proj"),
    ("self_attn", "k_proj"),
    ("self_attn", "v_proj"),
    ("self_attn", "o_proj"),
    ("mlp", "gate_proj"),
    ("mlp", "up_proj"),
    ("mlp", "down_proj"),
)
"""The BitLinear projections of one decoder layer, in the order the forward pass runs them."""

_REQUIRED_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
)


@dataclass(frozen=True)
class BitNetConfig:
    """Architecture of a BitNet b1.58 decoder, with the field names of Hugging Face's config.

    The defaults of the optional fields are those of `transformers.BitNetConfig`, except
    ``num_key_value_heads``, which defaults to ``num_attention_heads`` (plain multi-head
    attention) as `transformers` does when the key is ``None``.

    Raises
    ------
    TypeError
        If an integer field is not an int or a float field is not a number.
    ValueError
        If a size is not positive, the heads do not divide the hidden size or each other, the
        head dimension is odd (rotary embeddings rotate pairs), or ``hidden_act`` is not
        ``"relu2"``.
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None = None
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    tie_word_embeddings: bool = False
    hidden_act: str = "relu2"

    def __post_init__(self) -> None:
        if self.num_key_value_heads is None:
            object.__setattr__(self, "num_key_value_heads", self.num_attention_heads)
        for name in (*_REQUIRED_KEYS, "num_key_value_heads", "max_position_embeddings"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for name in ("rms_norm_eps", "rope_theta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if not isinstance(self.tie_word_embeddings, bool):
            raise TypeError(f"tie_word_embeddings must be a bool, got {self.tie_word_embeddings!r}")
        if self.hidden_act != "relu2":
            raise ValueError(
                f"hidden_act must be 'relu2' (squared ReLU, as BitNet b1.58 uses), "
                f"got {self.hidden_act!r}"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(
                f"head_dim = hidden_size / num_attention_heads must be even for rotary "
                f"embeddings, got {self.head_dim}"
            )

    @property
    def head_dim(self) -> int:
        """Width of one attention head: hidden_size / num_attention_heads."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, values: dict) -> "BitNetConfig":
        """Build a config from a Hugging Face ``config.json`` dictionary.

        Keys that do not describe the architecture (``bos_token_id``, ``torch_dtype``,
        ``quantization_config``, ...) are ignored. Keys that would change the architecture into
        one this model does not implement are rejected.

        Raises
        ------
        TypeError
            If ``values`` is not a dict.
        ValueError
            If a required key is missing, ``model_type`` is not ``"bitnet"``, ``head_dim``
            disagrees with hidden_size / num_attention_heads, ``attention_bias`` is true,
            ``rope_scaling`` is set, or a field is invalid (see the class).
        """
        if not isinstance(values, dict):
            raise TypeError(f"config must be a dict, got {type(values).__name__}")
        missing = [key for key in _REQUIRED_KEYS if key not in values]
        if missing:
            raise ValueError(f"config is missing the required key(s) {', '.join(missing)}")
        model_type = values.get("model_type", "bitnet")
        if model_type != "bitnet":
            raise ValueError(f"model_type must be 'bitnet', got {model_type!r}")
        if values.get("attention_bias", False):
            raise ValueError("attention_bias must be false: BitNet b1.58 layers have no bias")
        if values.get("rope_scaling") is not None:
            raise ValueError(
                f"rope_scaling is not supported, got {values['rope_scaling']!r}; "
                "only the default rotary embedding is implemented"
            )
        names = {field.name for field in dataclasses.fields(cls)}
        config = cls(**{key: value for key, value in values.items() if key in names})
        head_dim = values.get("head_dim")
        if head_dim is not None and head_dim != config.head_dim:
            raise ValueError(
                f"head_dim ({head_dim}) must equal hidden_size / num_attention_heads "
                f"({config.head_dim}), because attn_sub_norm normalizes hidden_size features"
            )
        return config

    def to_dict(self) -> dict:
        """Return the Hugging Face ``config.json`` dictionary of this architecture."""
        values = dataclasses.asdict(self)
        values["head_dim"] = self.head_dim
        values["model_type"] = "bitnet"
        values["architectures"] = ["BitNetForCausalLM"]
        return values


class KVCache:
    """Keys and values of the tokens seen so far, one pair of tensors per decoder layer.

    ``keys[i]`` and ``values[i]`` are ``[batch, num_key_value_heads, length, head_dim]``, with
    the rotary embedding already applied to the keys. A forward pass appends to the cache in
    place.
    """

    def __init__(self, num_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers

    @property
    def length(self) -> int:
        """Number of tokens held (0 for an empty cache)."""
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def update(
        self, layer: int, key: torch.Tensor, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new keys and values of ``layer``; return all of them."""
        if self.keys[layer] is not None:
            key = torch.cat([self.keys[layer], key], dim=2)
            value = torch.cat([self.values[layer], value], dim=2)
        self.keys[layer] = key
        self.values[layer] = value
        return key, value


class RMSNorm(nn.Module):
    """Root-mean-square normalization with a learned gain and no bias (Zhang and Sennrich, 2019).

    y = x / sqrt(mean(x^2) + eps) * weight, computed in float32.
    """

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.pow(2).mean(dim=-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


class RotaryEmbedding(nn.Module):
    """Rotary position embeddings (Su et al., RoFormer), in the half-split layout of Llama.

    Frequency i of a head of width d is theta^(-2i/d); feature j < d/2 is rotated together with
    feature j + d/2, as `transformers`' ``rotate_half`` does.
    """

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        # Not persistent: Hugging Face state dicts do not hold it either.
        self.register_buffer("inv_freq", 1.0 / (theta**exponents), persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return cos and sin ``[seq, head_dim]`` for the integer ``positions`` ``[seq]``."""
        angles = positions.to(torch.float32)[:, None] * self.inv_freq[None, :]
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def _make_projection(in_features: int, out_features: int, kind: str) -> nn.Module:
    if kind == "inference":
        # Placeholder codes and scale; `hostlib.load_model` or `to_inference` installs real ones.
        weight = torch.zeros((out_features, in_features), dtype=torch.int8)
        return kernels.BitLinear(weight, 1.0, convention="multiply")
    if kind == "train":
        return kernels.BitLinearTrain(in_features, out_features)
    return nn.Linear(in_features, out_features, bias=False)


class Attention(nn.Module):
    """Grouped-query self-attention with ``attn_sub_norm`` before the output projection."""

    def __init__(self, config: BitNetConfig, layer_index: int, kind: str) -> None:
        super().__init__()
        self.layer_index = layer_index
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        hidden = config.hidden_size
        kv_width = config.num_key_value_heads * config.head_dim
        self.q_proj = _make_projection(hidden, hidden, kind)
        self.k_proj = _make_projection(hidden, kv_width, kind)
        self.v_proj = _make_projection(hidden, kv_width, kind)
        self.o_proj = _make_projection(hidden, hidden, kind)
        self.attn_sub_norm = RMSNorm(hidden, config.rms_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache | None,
    ) -> torch.Tensor:
        batch, seq, hidden = x.shape
        # [batch, seq, heads * head_dim] -> [batch, heads, seq, head_dim]
        q = self.q_proj(x).view(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = _rotate(q, cos, sin)
        k = _rotate(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer_index, k, v)

        # Query head h reads key/value head h // group, as `transformers`' repeat_kv arranges.
        group = self.num_heads // self.num_kv_heads
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)

        # Query i sits at position past + i and sees keys 0 .. past + i.
        past = k.shape[2] - seq
        query_positions = torch.arange(past, past + seq)[:, None]
        key_positions = torch.arange(k.shape[2])[None, :]
        visible = key_positions <= query_positions

        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~visible, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        out = torch.matmul(weights, v)
        # [batch, heads, seq, head_dim] -> [batch, seq, hidden]
        out = out.transpose(1, 2).reshape(batch, seq, hidden)
        return self.o_proj(self.attn_sub_norm(out))


class MLP(nn.Module):
    """Gated MLP: down_proj(ffn_sub_norm(relu(gate_proj(x))^2 * up_proj(x)))."""

    def __init__(self, config: BitNetConfig, kind: str) -> None:
        super().__init__()
        hidden, inner = config.hidden_size, config.intermediate_size
        self.gate_proj = _make_projection(hidden, inner, kind)
        self.up_proj = _make_projection(hidden, inner, kind)
        self.down_proj = _make_projection(inner, hidden, kind)
        self.ffn_sub_norm = RMSNorm(inner, config.rms_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.relu(self.gate_proj(x)).square()
        return self.down_proj(self.ffn_sub_norm(gate * self.up_proj(x)))


class DecoderLayer(nn.Module):
    """Pre-norm decoder layer: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: BitNetConfig, layer_index: int, kind: str) -> None:
        super().__init__()
        self.self_attn = Attention(config, layer_index, kind)
        self.mlp = MLP(config, kind)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class BitNetModel(nn.Module):
    """Token embedding, the decoder layers and the final norm (``model.`` in the state dict)."""

    def __init__(self, config: BitNetConfig, kind: str) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            DecoderLayer(config, index, kind) for index in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config.head_dim, config.rope_theta)


class BitNetForCausalLM(nn.Module):
    """BitNet b1.58 causal language model.

    Parameters
    ----------
    config : BitNetConfig
        The architecture.
    training : bool
        False (the default) builds the inference model, whose projections are
        `kernels.BitLinear` layers holding placeholder zero codes until `hostlib.load_model` or
        `to_inference` installs real ones. True builds `kernels.BitLinearTrain` projections for
        quantization-aware training.
    full_precision : bool
        With ``training=True``, build plain `torch.nn.Linear` projections instead: the same
        architecture without quantization, as a baseline.

    Raises
    ------
    TypeError
        If ``config`` is not a `BitNetConfig`.
    ValueError
        If ``full_precision`` is set without ``training``.
    """

    def __init__(
        self, config: BitNetConfig, training: bool = False, full_precision: bool = False
    ) -> None:
        super().__init__()
        if not isinstance(config, BitNetConfig):
            raise TypeError(f"config must be a BitNetConfig, got {type(config).__name__}")
        if full_precision and not training:
            raise ValueError("full_precision=True needs training=True: inference is ternary")
        if not training:
            kind = "inference"
        else:
            kind = "full" if full_precision else "train"
        self.config = config
        self.kind = kind
        self.tokenizer = None
        self.model = BitNetModel(config, kind)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        for name, module in self.bitlinear_layers():
            module.name = name
        if kind == "inference":
            # Nothing of an inference model is trained, so no forward pass builds a graph.
            self.requires_grad_(False)

    def projections(self) -> list[tuple[str, nn.Module]]:
        """Return (name, module) of every projection, in execution order, whatever its kind."""
        found = []
        for index, layer in enumerate(self.model.layers):
            for block, name in _PROJECTIONS:
                found.append(
                    (f"model.layers.{index}.{block}.{name}", getattr(getattr(layer, block), name))
                )
        return found

    def bitlinear_layers(self) -> list[tuple[str, kernels.BitLinear]]:
        """Return (name, layer) of every `kernels.BitLinear`, in the order the forward pass runs.

        Subclasses of `kernels.BitLinear` (such as offloaded layers) count; the list is empty
        for a training or full-precision model.
        """
        return [
            (name, module)
            for name, module in self.projections()
            if isinstance(module, kernels.BitLinear)
        ]

    def forward(
        self,
        input_ids: torch.Tensor,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, KVCache]:
        """Compute the logits of every position.

        Parameters
        ----------
        input_ids : torch.Tensor
            Integer token ids ``[batch, seq]``.
        past_key_values : KVCache or None
            The cache of the tokens before ``input_ids``; it is extended in place.
        use_cache : bool
            Return the cache as well; a new one is started when ``past_key_values`` is None.

        Returns
        -------
        torch.Tensor or (torch.Tensor, KVCache)
            float32 logits ``[batch, seq, vocab_size]``, and the cache when ``use_cache``.

        Raises
        ------
        TypeError
            If ``input_ids`` is not an integer tensor.
        ValueError
            If ``input_ids`` is not 2-D and non-empty, holds an id outside the vocabulary, or
            the cached plus new tokens exceed ``max_position_embeddings``.
        """
        self._check_input_ids(input_ids)
        if use_cache and past_key_values is None:
            past_key_values = KVCache(self.config.num_hidden_layers)
        past = 0 if past_key_values is None else past_key_values.length
        seq = input_ids.shape[1]
        if past + seq > self.config.max_position_embeddings:
            raise ValueError(
                f"{past} cached plus {seq} new tokens exceed max_position_embeddings "
                f"({self.config.max_position_embeddings})"
            )

        cos, sin = self.model.rotary_emb(torch.arange(past, past + seq))
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, past_key_values)
        logits = self.lm_head(self.model.norm(x))
        if use_cache:
            return logits, past_key_values
        return logits

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Extend ``input_ids`` ``[batch, seq]`` by greedy decoding with the KV cache.

        Each step takes the arg max of the last logits (the lowest id on a tie), so the result
        is deterministic. Returns ``[batch, seq + max_new_tokens]``.

        Raises
        ------
        TypeError
            If ``max_new_tokens`` is not an int.
        ValueError
            If ``max_new_tokens`` is negative, or as `forward`.
        """
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
            raise TypeError(f"max_new_tokens must be an int, got {max_new_tokens!r}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be non-negative, got {max_new_tokens}")
        self._check_input_ids(input_ids)
        total = input_ids.shape[1] + max_new_tokens
        if total > self.config.max_position_embeddings:
            raise ValueError(
                f"{input_ids.shape[1]} prompt tokens plus max_new_tokens ({max_new_tokens}) "
                f"exceed max_position_embeddings ({self.config.max_position_embeddings})"
            )
        ids = input_ids
        step_ids = input_ids
        cache = None
        for _ in range(max_new_tokens):
            logits, cache = self(step_ids, past_key_values=cache, use_cache=True)
            step_ids = torch.argmax(logits[:, -1, :], dim=-1, keepdim=True)
            ids = torch.cat([ids, step_ids], dim=1)
        return ids

    @torch.no_grad()
    def to_inference(self) -> "BitNetForCausalLM":
        """Quantize a quantization-aware training model into a new inference model.

        Each `kernels.BitLinearTrain` becomes a `kernels.BitLinear` with its absmean codes and
        gamma (multiply convention); embeddings, norms and the LM head are copied.

        Raises
        ------
        ValueError
            If this model is not a quantization-aware training model.
        """
        if self.kind != "train":
            raise ValueError(
                f"to_inference needs a model built with training=True and full_precision=False, "
                f"this one is a {self.kind!r} model"
            )
        result = BitNetForCausalLM(self.config)
        own = {name: tensor for name, tensor in self.state_dict().items()}
        for name, module in self.projections():
            del own[f"{name}.weight"]
            layer = module.to_inference()
            layer.name = name
            result.set_projection(name, layer)
        outcome = result.load_state_dict(own, strict=False)
        if outcome.unexpected_keys:
            raise ValueError(f"to_inference left tensors unused: {outcome.unexpected_keys}")
        result.tokenizer = self.tokenizer
        return result

    def set_projection(self, name: str, layer: nn.Module) -> None:
        """Replace the projection ``name`` (a dotted path from `projections`) with ``layer``.

        Raises
        ------
        ValueError
            If ``name`` is not a projection of this model or ``layer`` has other dimensions.
        """
        current = dict(self.projections()).get(name)
        if current is None:
            raise ValueError(f"{name!r} is not a projection of this model")
        if (layer.in_features, layer.out_features) != (current.in_features, current.out_features):
            raise ValueError(
                f"projection {name} is {current.out_features} x {current.in_features}, "
                f"the new layer is {layer.out_features} x {layer.in_features}"
            )
        parent_name, _, child_name = name.rpartition(".")
        setattr(self.get_submodule(parent_name), child_name, layer)

    def _check_input_ids(self, input_ids: torch.Tensor) -> None:
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
            raise TypeError(f"input_ids must be an integer tensor, got dtype {input_ids.dtype}")
        if input_ids.dim() != 2 or input_ids.numel() == 0:
            raise ValueError(
                f"input_ids must be a non-empty 2-D tensor [batch, seq], "
                f"got shape {tuple(input_ids.shape)}"
            )
        bad = (input_ids < 0) | (input_ids >= self.config.vocab_size)
        if bool(bad.any()):
            index = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(
                f"input_ids holds {int(input_ids[index])} at {index}, outside the vocabulary "
                f"0 .. {self.config.vocab_size - 1}"
            )
