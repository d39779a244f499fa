"""The model catalogue: published 1-bit LLM configurations and the layers of one decode token.

A `ModelConfig` stores the architecture figures of a published checkpoint (hidden size,
intermediate size, layers, heads, KV heads, vocabulary, tied embeddings, context length) and
cites the ``config.json`` they come from in its ``source`` field. `model_layers` expands a
configuration into every step that one decode token runs through, in execution order, as
`Layer` records of two kinds:

- ``"ternary"``: a BitLinear projection that the accelerator runs, given by its shape only
  (N output rows, K inputs), because its bytes and cycles depend on the design (weight format,
  datapath) and are the simulator's business;
- ``"host"``: everything else, costed here in floating-point operations and bytes moved per
  token: the embedding lookup, the norms, rotary embeddings, attention over the KV cache,
  activation functions, residual adds, the BF16 LM head and the sampling step.

Families and what they run per decoder layer:

``bitnet`` and ``demo``
    BitNet b1.58 with sub-layer norms: RMSNorm, q/k/v, rotary, attention, ``attn_sub_norm``,
    o, residual, RMSNorm, gate/up, activation (squared ReLU or SiLU) times up,
    ``ffn_sub_norm``, down, residual. ``demo`` is onebit's own small model of this
    architecture (`hostlib.model.BitNetForCausalLM`).
``llama-1.58``
    A Llama decoder with BitLinear projections and no sub-layer norms.
``matmulfree``
    MatMul-free LM (Zhu et al., 2024, "Scalable MatMul-free Language Modeling"): the MLGRU
    token mixer (input, forget, output-gate and output projections with an element-wise
    recurrence) and a GLU channel mixer. The reference implementation
    (github.com/ridgerchu/matmulfreellm, ``mmfreelm/ops/bitnet.py``) puts an RMSNorm inside
    every BitLinear, so each ternary projection is preceded by a host norm, and its LM head is a
    BitLinear too, so the LM head is ternary here.

Host costs are estimates that count one flop per add, multiply, divide, compare or ``exp``.
Host weights (embedding, norm scales, LM head) are BF16, two bytes a value, as the published
checkpoints store them. The KV cache and the MLGRU recurrent state use ``cache_bytes`` per value
(two by default, BF16).
"""

import dataclasses
from dataclasses import dataclass

__all__ = [
    "FAMILIES",
    "LAYER_KINDS",
    "MODELS",
    "Layer",
    "ModelConfig",
    "get_model",
    "host_bytes_per_token",
    "host_memory_bytes",
    "host_parameters",
    "model_layers",
    "ternary_parameters",
]

FAMILIES = ("bitnet", "llama-1.58", "matmulfree", "demo")
"""Model families, each with its own per-token layer list (see the module docstring)."""

LAYER_KINDS = ("ternary", "host")
"""``ternary``: a projection the accelerator runs. ``host``: a step costed on the host."""

ACTIVATIONS = ("relu2", "silu")
"""Activation of the MLP gate: squared ReLU (BitNet b1.58 2B4T) or SiLU (Llama, 1bitLLM)."""

HOST_WEIGHT_BYTES = 2
"""Bytes per host weight value (BF16): embedding rows, norm scales, the LM head."""

_ATTENTION_FAMILIES = ("bitnet", "llama-1.58", "demo")
_SUBLN_FAMILIES = ("bitnet", "demo")

# Flops per element of the element-wise host steps. Sigmoid and SiLU are x / (1 + exp(-x)) or
# 1 / (1 + exp(-x)): negate, exp, add, divide. Squared ReLU is a max and a multiply. An RMSNorm
# squares and sums each element, then scales it by 1/rms and by its weight.
_SIGMOID_FLOPS = 4
_ACTIVATION_FLOPS = {"relu2": 2, "silu": 4}
_RMSNORM_FLOPS = 4
# Softmax per score: max, subtract, exp, sum, divide.
_SOFTMAX_FLOPS = 5
# Rotary embedding per element: each pair (x1, x2) becomes (x1 c - x2 s, x2 c + x1 s), four
# multiplies and two adds per pair.
_ROTARY_FLOPS = 3


def _check_int(owner: str, field: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{field} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}.{field} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a published 1-bit or ternary LLM checkpoint.

    Attributes
    ----------
    name : str
        Lowercase short name, the key in `MODELS` (``"bitnet-2b-4t"``).
    family : str
        One of `FAMILIES`; selects the per-token layer list of `model_layers`.
    hidden : int
        Width of the residual stream (``hidden_size``).
    intermediate : int
        Width of the MLP or GLU (``intermediate_size``).
    layers : int
        Decoder layers (``num_hidden_layers``).
    heads : int
        Query heads (``num_attention_heads``; ``num_heads`` of the MLGRU).
    kv_heads : int
        Key/value heads (``num_key_value_heads``); fewer than ``heads`` is grouped-query
        attention. Equal to ``heads`` for ``matmulfree``, which has no KV cache.
    vocab : int
        Vocabulary size (``vocab_size``).
    tied_embeddings : bool
        Whether the LM head reuses the embedding matrix (``tie_word_embeddings``).
    max_context : int
        Maximum context length the model was trained for (``max_position_embeddings``).
    activation : str
        MLP gate activation, one of `ACTIVATIONS`.
    source : str
        The published configuration the figures come from.
    head_dim : int
        Derived: ``hidden // heads``.

    Raises
    ------
    TypeError
        If a size is not an int, ``tied_embeddings`` is not a bool, or a text field is not a str.
    ValueError
        If a size is below 1, ``name`` is empty or not lowercase, ``family`` or ``activation`` is
        unknown, the heads do not divide ``hidden`` or each other, the head dimension of an
        attention model is odd (rotary embeddings rotate pairs), or a ``matmulfree`` model has
        ``kv_heads != heads`` or tied embeddings (its LM head is ternary, its embedding is not).
    """

    name: str
    family: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool
    max_context: int
    activation: str
    source: str
    head_dim: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        for field in ("name", "family", "activation", "source"):
            value = getattr(self, field)
            if not isinstance(value, str):
                raise TypeError(f"ModelConfig.{field} must be a str, got {value!r}")
        if not self.name or self.name != self.name.lower():
            raise ValueError(
                f"ModelConfig.name must be a non-empty lowercase str, got {self.name!r}"
            )
        if not self.source:
            raise ValueError(
                f"ModelConfig.source must name the published configuration ({self.name})"
            )
        if self.family not in FAMILIES:
            raise ValueError(
                f"ModelConfig.family must be one of {', '.join(FAMILIES)}, got {self.family!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"ModelConfig.activation must be one of {', '.join(ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )
        for field in (
            "hidden",
            "intermediate",
            "layers",
            "heads",
            "kv_heads",
            "vocab",
            "max_context",
        ):
            _check_int("ModelConfig", field, getattr(self, field), 1)
        if not isinstance(self.tied_embeddings, bool):
            raise TypeError(
                f"ModelConfig.tied_embeddings must be a bool, got {self.tied_embeddings!r}"
            )
        if self.hidden % self.heads:
            raise ValueError(
                f"ModelConfig.hidden ({self.hidden}) must be a multiple of heads ({self.heads})"
            )
        if self.heads % self.kv_heads:
            raise ValueError(
                f"ModelConfig.heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})"
            )
        object.__setattr__(self, "head_dim", self.hidden // self.heads)

        if self.family in _ATTENTION_FAMILIES and self.head_dim % 2:
            raise ValueError(
                f"ModelConfig.head_dim = hidden / heads must be even for rotary embeddings, "
                f"got {self.head_dim} ({self.name})"
            )
        if self.family == "matmulfree":
            if self.kv_heads != self.heads:
                raise ValueError(
                    f"ModelConfig.kv_heads ({self.kv_heads}) must equal heads ({self.heads}) for "
                    f"a matmulfree model, which has no KV cache"
                )
            if self.tied_embeddings:
                raise ValueError(
                    "ModelConfig.tied_embeddings must be False for a matmulfree model: its LM "
                    "head is a ternary BitLinear and its embedding is not"
                )

    @property
    def kv_width(self) -> int:
        """Output width of the k and v projections: ``kv_heads * head_dim``."""
        return self.kv_heads * self.head_dim


@dataclass(frozen=True)
class Layer:
    """One step of a decode token, as `model_layers` lists it.

    Attributes
    ----------
    name : str
        Module path in the style of the checkpoint (``"layers.0.self_attn.q_proj"``).
    kind : str
        ``"ternary"`` (the accelerator runs it) or ``"host"``.
    out_features, in_features : int
        N and K of a matrix layer (weights N x K); 0 for a host step that is not a matrix
        product.
    flops : int
        Host floating-point operations per token (an estimate); 0 for a ternary layer, whose cost
        depends on the design.
    bytes_read : int
        Host bytes read per token: weights and, for attention, the KV cache. 0 for a ternary
        layer, whose weight bytes depend on the design's weight format.
    bytes_written : int
        Host bytes written per token that persist between tokens: the appended keys and values,
        the MLGRU recurrent state.
    description : str
        What the step computes.

    Raises
    ------
    TypeError
        If a count is not an int or ``name``/``description`` is not a str.
    ValueError
        If ``name`` is empty, ``kind`` is unknown, a count is negative, a ternary layer has no
        shape or carries host costs, or a host layer gives only one of its two dimensions.
    """

    name: str
    kind: str
    out_features: int = 0
    in_features: int = 0
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        for field in ("name", "description"):
            value = getattr(self, field)
            if not isinstance(value, str):
                raise TypeError(f"Layer.{field} must be a str, got {value!r}")
        if not self.name:
            raise ValueError("Layer.name must not be empty")
        if self.kind not in LAYER_KINDS:
            raise ValueError(
                f"Layer.kind must be one of {', '.join(LAYER_KINDS)}, got {self.kind!r} "
                f"({self.name})"
            )
        for field in ("out_features", "in_features", "flops", "bytes_read", "bytes_written"):
            _check_int("Layer", field, getattr(self, field), 0)
        if self.kind == "ternary":
            if self.out_features == 0 or self.in_features == 0:
                raise ValueError(
                    f"Layer {self.name!r}: a ternary layer needs out_features and in_features "
                    f">= 1, got {self.out_features} x {self.in_features}"
                )
            if self.flops or self.bytes_read or self.bytes_written:
                raise ValueError(
                    f"Layer {self.name!r}: a ternary layer's cost depends on the design, so "
                    f"flops, bytes_read and bytes_written must be 0, got {self.flops}, "
                    f"{self.bytes_read}, {self.bytes_written}"
                )
        elif (self.out_features == 0) != (self.in_features == 0):
            raise ValueError(
                f"Layer {self.name!r}: a host layer gives both out_features and in_features or "
                f"neither, got {self.out_features} x {self.in_features}"
            )

    @property
    def weights(self) -> int:
        """Weight count of a matrix layer, ``out_features * in_features`` (0 otherwise)."""
        return self.out_features * self.in_features


# The catalogue.


def _mmfree_intermediate(hidden: int) -> int:
    # HGRNBitMLP with intermediate_size null and hidden_ratio 4: int(hidden * 4 * 2 / 3) rounded
    # up to a multiple of 256 (mmfreelm/models/hgrn_bit/modeling_hgrn_bit.py).
    size = hidden * 4 * 2 // 3
    return 256 * ((size + 255) // 256)


# NOTE: the sub-layer norms of the two 1bitLLM models (inner_attn_ln before o_proj, ffn_layernorm
# before down_proj) were read from ports of their modeling_bitnet.py, not from the original file.
_MODEL_LIST = (
    ModelConfig(
        name="bitnet-0.7b",
        family="bitnet",
        hidden=1536,
        intermediate=4096,
        layers=24,
        heads=16,
        kv_heads=16,
        vocab=32002,
        tied_embeddings=True,
        max_context=2048,
        activation="silu",
        source=(
            "huggingface.co/1bitLLM/bitnet_b1_58-large config.json: hidden_size 1536, "
            "intermediate_size 4096, num_hidden_layers 24, num_attention_heads 16, "
            "num_key_value_heads 16, vocab_size 32002, tie_word_embeddings true, "
            "max_position_embeddings 2048, hidden_act silu. Sub-layer norms (inner_attn_ln, "
            "ffn_layernorm) as in the repository's modeling_bitnet.py."
        ),
    ),
    ModelConfig(
        name="bitnet-2b-4t",
        family="bitnet",
        hidden=2560,
        intermediate=6912,
        layers=30,
        heads=20,
        kv_heads=5,
        vocab=128256,
        tied_embeddings=True,
        max_context=4096,
        activation="relu2",
        source=(
            "huggingface.co/microsoft/bitnet-b1.58-2B-4T config.json: hidden_size 2560, "
            "intermediate_size 6912, num_hidden_layers 30, num_attention_heads 20, "
            "num_key_value_heads 5, vocab_size 128256, tie_word_embeddings true, "
            "max_position_embeddings 4096, hidden_act relu2. The model card lists subln "
            "normalization: attn_sub_norm before o_proj, ffn_sub_norm before down_proj."
        ),
    ),
    ModelConfig(
        name="bitnet-3b",
        family="bitnet",
        hidden=3200,
        intermediate=8640,
        layers=26,
        heads=32,
        kv_heads=32,
        vocab=32002,
        tied_embeddings=True,
        max_context=2048,
        activation="silu",
        source=(
            "huggingface.co/1bitLLM/bitnet_b1_58-3B config.json: hidden_size 3200, "
            "intermediate_size 8640, num_hidden_layers 26, num_attention_heads 32, "
            "num_key_value_heads 32, vocab_size 32002, tie_word_embeddings true, "
            "max_position_embeddings 2048, hidden_act silu. Sub-layer norms as bitnet-0.7b."
        ),
    ),
    # NOTE: the config.json of HF1BitLLM/Llama3-8B-1.58-100B-tokens could not be read. The figures
    # are those of Meta-Llama-3-8B, which the model card names as its starting point. They agree
    # with the 3.85 GB model.safetensors of the repository: 6.98e9 ternary weights at 2 bits
    # (1.74 GB) plus an untied BF16 embedding and LM head (2.10 GB).
    ModelConfig(
        name="llama3-8b-1.58",
        family="llama-1.58",
        hidden=4096,
        intermediate=14336,
        layers=32,
        heads=32,
        kv_heads=8,
        vocab=128256,
        tied_embeddings=False,
        max_context=8192,
        activation="silu",
        source=(
            "huggingface.co/HF1BitLLM/Llama3-8B-1.58-100B-tokens, fine-tuned from "
            "Llama-3-8B-Instruct: hidden_size 4096, intermediate_size 14336, "
            "num_hidden_layers 32, num_attention_heads 32, num_key_value_heads 8, "
            "vocab_size 128256, tie_word_embeddings false, max_position_embeddings 8192, "
            "hidden_act silu."
        ),
    ),
    # NOTE: the 370M figures were read from a fine-tune's copy of the ridger/MMfreeLM-370M
    # config.json (its _name_or_path), the 2.7B figures from the ridger/MMfreeLM-2.7B repository.
    ModelConfig(
        name="mmfree-370m",
        family="matmulfree",
        hidden=1024,
        intermediate=_mmfree_intermediate(1024),
        layers=24,
        heads=1,
        kv_heads=1,
        vocab=32000,
        tied_embeddings=False,
        max_context=2048,
        activation="silu",
        source=(
            "huggingface.co/ridger/MMfreeLM-370M config.json (model_type hgrn_bit): "
            "hidden_size 1024, num_hidden_layers 24, num_heads 1, expand_ratio 1, "
            "hidden_ratio 4 with intermediate_size null (so 2816), vocab_size 32000, "
            "tie_word_embeddings false, max_position_embeddings 2048, hidden_act swish, "
            "use_lower_bound true, use_short_conv false."
        ),
    ),
    # NOTE: for 1.3B only the layers (24) and hidden size (2048) are confirmed, by the model zoo
    # table of github.com/ridgerchu/matmulfreellm. The other figures are assumed equal to those
    # of the 370M and 2.7B configurations.
    ModelConfig(
        name="mmfree-1.3b",
        family="matmulfree",
        hidden=2048,
        intermediate=_mmfree_intermediate(2048),
        layers=24,
        heads=1,
        kv_heads=1,
        vocab=32000,
        tied_embeddings=False,
        max_context=2048,
        activation="silu",
        source=(
            "huggingface.co/ridger/MMfreeLM-1.3B (model zoo of github.com/ridgerchu/"
            "matmulfreellm): num_hidden_layers 24, hidden_size 2048; intermediate 5632 from "
            "hidden_ratio 4; vocab_size 32000, num_heads 1 and untied embeddings assumed as "
            "the 370M and 2.7B configurations."
        ),
    ),
    ModelConfig(
        name="mmfree-2.7b",
        family="matmulfree",
        hidden=2560,
        intermediate=_mmfree_intermediate(2560),
        layers=32,
        heads=1,
        kv_heads=1,
        vocab=32000,
        tied_embeddings=False,
        max_context=2048,
        activation="silu",
        source=(
            "huggingface.co/ridger/MMfreeLM-2.7B config.json (model_type hgrn_bit): "
            "hidden_size 2560, num_hidden_layers 32, num_heads 1, expand_ratio 1, "
            "hidden_ratio 4 with intermediate_size null (so 6912), vocab_size 32000, "
            "tie_word_embeddings false, max_position_embeddings 2048, hidden_act swish."
        ),
    ),
    # The figures of hostlib/data/demo/config.json; a test compares the two.
    ModelConfig(
        name="demo",
        family="demo",
        hidden=128,
        intermediate=384,
        layers=4,
        heads=4,
        kv_heads=2,
        vocab=65,
        tied_embeddings=False,
        max_context=256,
        activation="relu2",
        source=(
            "onebit's demo model, a character-level BitNet b1.58 trained on Tiny Shakespeare "
            "(hostlib/data/demo/config.json)."
        ),
    ),
)

MODELS: dict[str, ModelConfig] = {model.name: model for model in _MODEL_LIST}
"""The catalogue, keyed by short lowercase name."""


def get_model(name: str) -> ModelConfig:
    """Look up a catalogue model by name, ignoring case and surrounding spaces.

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If no model has that name; the message lists the valid names.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {name!r}")
    key = name.strip().lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    return MODELS[key]


# Per-token layers.


def _ternary(name: str, out_features: int, in_features: int, description: str) -> Layer:
    return Layer(name, "ternary", out_features, in_features, description=description)


def _rmsnorm(name: str, size: int, description: str) -> Layer:
    return Layer(
        name,
        "host",
        flops=_RMSNORM_FLOPS * size,
        bytes_read=size * HOST_WEIGHT_BYTES,
        description=description,
    )


def _residual(name: str, size: int) -> Layer:
    return Layer(name, "host", flops=size, description="residual add")


def _embedding(name: str, config: ModelConfig) -> Layer:
    return Layer(
        name,
        "host",
        bytes_read=config.hidden * HOST_WEIGHT_BYTES,
        description=f"embedding lookup: one BF16 row of {config.vocab} x {config.hidden}",
    )


def _sample(config: ModelConfig) -> Layer:
    return Layer(
        "sample",
        "host",
        flops=config.vocab,
        description="greedy argmax over the logits (sampling with temperature adds a softmax)",
    )


def _attention_block(
    config: ModelConfig, index: int, context: int, cache_bytes: int
) -> list[Layer]:
    prefix = f"layers.{index}"
    hidden, inner = config.hidden, config.intermediate
    heads, kv_heads, head_dim = config.heads, config.kv_heads, config.head_dim
    subln = config.family in _SUBLN_FAMILIES

    # One token attends to `context` cached positions (itself included) in every query head:
    # q.k scores (2 * head_dim flops each), the 1/sqrt(head_dim) scale, softmax, and the
    # weighted sum of values (2 * head_dim flops each). Query heads sharing a KV head read it
    # once, so the cache traffic is set by kv_heads.
    attention_flops = heads * context * (4 * head_dim + 1 + _SOFTMAX_FLOPS)
    kv_values_per_position = 2 * kv_heads * head_dim
    layers = [
        _rmsnorm(f"{prefix}.input_layernorm", hidden, "RMSNorm before attention"),
        _ternary(f"{prefix}.self_attn.q_proj", hidden, hidden, "query projection"),
        _ternary(f"{prefix}.self_attn.k_proj", config.kv_width, hidden, "key projection"),
        _ternary(f"{prefix}.self_attn.v_proj", config.kv_width, hidden, "value projection"),
        Layer(
            f"{prefix}.self_attn.rotary",
            "host",
            flops=_ROTARY_FLOPS * (heads + kv_heads) * head_dim,
            description="rotary position embedding of the query and key heads",
        ),
        Layer(
            f"{prefix}.self_attn.attention",
            "host",
            flops=attention_flops,
            bytes_read=context * kv_values_per_position * cache_bytes,
            bytes_written=kv_values_per_position * cache_bytes,
            description=(
                f"softmax attention over {context} cached positions: reads the keys and values "
                f"of {kv_heads} KV heads, appends this token's"
            ),
        ),
    ]
    if subln:
        layers.append(
            _rmsnorm(f"{prefix}.self_attn.attn_sub_norm", hidden, "RMSNorm before o_proj")
        )
    layers += [
        _ternary(f"{prefix}.self_attn.o_proj", hidden, hidden, "attention output projection"),
        _residual(f"{prefix}.attn_residual", hidden),
        _rmsnorm(f"{prefix}.post_attention_layernorm", hidden, "RMSNorm before the MLP"),
        _ternary(f"{prefix}.mlp.gate_proj", inner, hidden, "MLP gate projection"),
        _ternary(f"{prefix}.mlp.up_proj", inner, hidden, "MLP up projection"),
        Layer(
            f"{prefix}.mlp.act_fn",
            "host",
            flops=(_ACTIVATION_FLOPS[config.activation] + 1) * inner,
            description=f"{config.activation}(gate) * up",
        ),
    ]
    if subln:
        layers.append(_rmsnorm(f"{prefix}.mlp.ffn_sub_norm", inner, "RMSNorm before down_proj"))
    layers += [
        _ternary(f"{prefix}.mlp.down_proj", hidden, inner, "MLP down projection"),
        _residual(f"{prefix}.mlp_residual", hidden),
    ]
    return layers


def _attention_layers(config: ModelConfig, context: int, cache_bytes: int) -> list[Layer]:
    layers = [_embedding("embed_tokens", config)]
    for index in range(config.layers):
        layers += _attention_block(config, index, context, cache_bytes)
    tied = "tied to the embedding" if config.tied_embeddings else "untied"
    layers += [
        _rmsnorm("norm", config.hidden, "final RMSNorm"),
        Layer(
            "lm_head",
            "host",
            config.vocab,
            config.hidden,
            flops=2 * config.vocab * config.hidden,
            bytes_read=config.vocab * config.hidden * HOST_WEIGHT_BYTES,
            description=f"BF16 LM head ({tied}): logits over the vocabulary",
        ),
        _sample(config),
    ]
    return layers


def _bitlinear(name: str, out_features: int, in_features: int, description: str) -> list[Layer]:
    # The MatMul-free BitLinear normalizes its input with its own RMSNorm before quantizing it.
    return [
        _rmsnorm(f"{name}.norm", in_features, f"RMSNorm inside the {description} BitLinear"),
        _ternary(name, out_features, in_features, description),
    ]


def _matmulfree_block(config: ModelConfig, index: int, cache_bytes: int) -> list[Layer]:
    prefix = f"layers.{index}"
    hidden, inner = config.hidden, config.intermediate

    # MLGRU recurrence per element (mmfreelm/layers/hgrn_bit.py): f = sigmoid(f), lifted by
    # the layer's lower bound (lb + (1 - lb) * f, all but the first layer), c = silu(i) * (1 - f),
    # h = f * h + c. The state h is read and written once per token.
    lower_bound_flops = 3 if index > 0 else 0
    recurrence_flops = _SIGMOID_FLOPS + lower_bound_flops + 1 + _ACTIVATION_FLOPS["silu"] + 1 + 2
    state_bytes = hidden * cache_bytes
    layers = [_rmsnorm(f"{prefix}.attn_norm", hidden, "RMSNorm before the MLGRU")]
    layers += _bitlinear(f"{prefix}.attn.i_proj", hidden, hidden, "MLGRU input (candidate)")
    layers += _bitlinear(f"{prefix}.attn.f_proj", hidden, hidden, "MLGRU forget gate")
    layers.append(
        Layer(
            f"{prefix}.attn.recurrence",
            "host",
            flops=recurrence_flops * hidden,
            bytes_read=state_bytes,
            bytes_written=state_bytes,
            description="MLGRU gates and element-wise recurrence h = f * h + (1 - f) * silu(i)",
        )
    )
    layers += _bitlinear(f"{prefix}.attn.g_proj", hidden, hidden, "MLGRU output gate")
    layers.append(
        Layer(
            f"{prefix}.attn.g_norm",
            "host",
            # RMSNorm of the gate, times swish(h): RMSNorm, then silu and a product.
            flops=(_RMSNORM_FLOPS + _ACTIVATION_FLOPS["silu"] + 1) * hidden,
            bytes_read=hidden * HOST_WEIGHT_BYTES,
            description="RMSNorm of the output gate times swish of the hidden state",
        )
    )
    layers += _bitlinear(f"{prefix}.attn.o_proj", hidden, hidden, "MLGRU output")
    layers += [
        _residual(f"{prefix}.attn_residual", hidden),
        _rmsnorm(f"{prefix}.mlp_norm", hidden, "RMSNorm before the GLU"),
    ]
    # gate_proj contains the gate and the up projection in one matrix of 2 * intermediate rows.
    layers += _bitlinear(f"{prefix}.mlp.gate_proj", 2 * inner, hidden, "GLU gate and up")
    layers.append(
        Layer(
            f"{prefix}.mlp.act_fn",
            "host",
            flops=(_ACTIVATION_FLOPS["silu"] + 1) * inner,
            description="silu(gate) * up",
        )
    )
    layers += _bitlinear(f"{prefix}.mlp.down_proj", hidden, inner, "GLU down")
    layers.append(_residual(f"{prefix}.mlp_residual", hidden))
    return layers


def _matmulfree_layers(config: ModelConfig, cache_bytes: int) -> list[Layer]:
    lower_bounds = config.layers * config.hidden
    layers = [
        _embedding("embeddings", config),
        Layer(
            "lower_bounds",
            "host",
            # softmax over the layer axis, cumulative sum, minus the first row
            flops=(_SOFTMAX_FLOPS + 2) * lower_bounds,
            bytes_read=lower_bounds * HOST_WEIGHT_BYTES,
            description="forget-gate lower bounds of all layers (softmax and cumsum)",
        ),
    ]
    for index in range(config.layers):
        layers += _matmulfree_block(config, index, cache_bytes)
    layers.append(_rmsnorm("norm", config.hidden, "final RMSNorm"))
    layers += _bitlinear("lm_head", config.vocab, config.hidden, "ternary LM head")
    layers.append(_sample(config))
    return layers


def _check_config(config: object) -> None:
    if not isinstance(config, ModelConfig):
        raise TypeError(
            f"config must be a ModelConfig (see get_model), got {type(config).__name__}"
        )


def model_layers(
    config: ModelConfig, context: int | None = None, cache_bytes: int = 2
) -> list[Layer]:
    """List every step of one decode token in execution order.

    Parameters
    ----------
    config : ModelConfig
        The model.
    context : int, optional
        Positions the token attends to, itself included (the KV cache length after this token is
        appended). Defaults to ``config.max_context``, the largest KV cache. It must not exceed
        ``config.max_context`` for attention models. A ``matmulfree`` model's cost does not
        depend on it, so any positive value is accepted there.
    cache_bytes : int
        Bytes per value of the KV cache or the MLGRU recurrent state: 2 for BF16 (the default),
        1 for an 8-bit cache, 4 for float32.

    Returns
    -------
    list of Layer
        Embedding, then each decoder layer's steps, then the final norm, the LM head and the
        sampling step. See the module docstring for each family's list.

    Raises
    ------
    TypeError
        If ``config`` is not a `ModelConfig` or ``context``/``cache_bytes`` is not an int.
    ValueError
        If ``context`` or ``cache_bytes`` is below 1, or ``context`` exceeds the
        ``max_context`` of an attention model.
    """
    context = _check_layer_arguments(config, context, cache_bytes)
    if config.family == "matmulfree":
        return _matmulfree_layers(config, cache_bytes)
    return _attention_layers(config, context, cache_bytes)


def _check_layer_arguments(config: ModelConfig, context: int | None, cache_bytes: int) -> int:
    """Check the arguments of `model_layers` and return the context, None taken as the maximum."""
    _check_config(config)
    if context is None:
        context = config.max_context
    if isinstance(context, bool) or not isinstance(context, int):
        raise TypeError(f"context must be an int, got {context!r}")
    if context < 1:
        raise ValueError(f"context must be >= 1, got {context}")
    if config.family in _ATTENTION_FAMILIES and context > config.max_context:
        raise ValueError(
            f"context ({context}) exceeds the max_context of {config.name} ({config.max_context})"
        )
    if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int):
        raise TypeError(f"cache_bytes must be an int, got {cache_bytes!r}")
    if cache_bytes < 1:
        raise ValueError(f"cache_bytes must be >= 1, got {cache_bytes}")
    return context


def ternary_parameters(config: ModelConfig) -> int:
    """Count the ternary weights of the model: the sum of N * K over its ternary layers.

    Raises
    ------
    TypeError
        If ``config`` is not a `ModelConfig`.
    """
    _check_config(config)
    return sum(layer.weights for layer in model_layers(config, 1) if layer.kind == "ternary")


def host_parameters(config: ModelConfig) -> int:
    """Count the parameters kept on the host: embedding, untied LM head, norm scales.

    A tied LM head is the embedding and counts once. The MatMul-free forget-gate lower bounds
    (``layers x hidden``) count here too.

    Raises
    ------
    TypeError
        If ``config`` is not a `ModelConfig`.
    """
    _check_config(config)
    hidden = config.hidden
    count = config.vocab * hidden + hidden  # embedding and the final norm
    if config.family == "matmulfree":
        # Per layer: attn_norm, g_norm and mlp_norm, the RMSNorm of each BitLinear (i, f, g, o
        # and gate_proj over hidden inputs, down_proj over intermediate inputs), and the lower
        # bound row. The LM head is ternary, but the RMSNorm of its BitLinear is a host weight.
        per_layer = 3 * hidden + 5 * hidden + config.intermediate + hidden
        return count + config.layers * per_layer + hidden
    per_layer = 2 * hidden
    if config.family in _SUBLN_FAMILIES:
        per_layer += hidden + config.intermediate
    count += config.layers * per_layer
    if not config.tied_embeddings:
        count += config.vocab * hidden
    return count


def host_memory_bytes(config: ModelConfig, context: int | None = None, cache_bytes: int = 2) -> int:
    """Return the bytes the host keeps in memory: its BF16 weights and the cache at ``context``.

    The cache is the KV cache of ``context`` positions for attention models, and the MLGRU
    recurrent state (one value per hidden unit and layer) for MatMul-free models. The arguments
    and errors are those of `model_layers`.
    """
    context = _check_layer_arguments(config, context, cache_bytes)
    if config.family == "matmulfree":
        cache = config.layers * config.hidden * cache_bytes
    else:
        cache = config.layers * context * 2 * config.kv_heads * config.head_dim * cache_bytes
    return host_parameters(config) * HOST_WEIGHT_BYTES + cache


def host_bytes_per_token(
    config: ModelConfig, context: int | None = None, cache_bytes: int = 2
) -> int:
    """Sum the host memory traffic of one decode token: bytes read plus bytes written.

    The arguments and errors are those of `model_layers`. The ternary layers' weight bytes are
    not included because they depend on the design's weight format.
    """
    layers = model_layers(config, context, cache_bytes)
    return sum(layer.bytes_read + layer.bytes_written for layer in layers if layer.kind == "host")
