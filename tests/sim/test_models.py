"""Tests of the model catalogue and the per-token layer lists of `sim.models`.

The expected figures below are copied from the published configurations (the Hugging Face
``config.json`` of each checkpoint, see each entry's ``source``), not from the code under test.
"""

import dataclasses
import json
import re
from pathlib import Path

import pytest

import sim
from sim.models import (
    MODELS,
    Layer,
    ModelConfig,
    get_model,
    host_bytes_per_token,
    host_parameters,
    model_layers,
    ternary_parameters,
)

_REPOSITORY = Path(__file__).resolve().parents[2]
_DEMO_CONFIG = _REPOSITORY / "hostlib" / "data" / "demo" / "config.json"

# name: (hidden, intermediate, layers, heads, kv_heads, vocab, tied, max_context)
PUBLISHED = {
    "bitnet-0.7b": (1536, 4096, 24, 16, 16, 32002, True, 2048),
    "bitnet-2b-4t": (2560, 6912, 30, 20, 5, 128256, True, 4096),
    "bitnet-3b": (3200, 8640, 26, 32, 32, 32002, True, 2048),
    "llama3-8b-1.58": (4096, 14336, 32, 32, 8, 128256, False, 8192),
    "mmfree-370m": (1024, 2816, 24, 1, 1, 32000, False, 2048),
    "mmfree-1.3b": (2048, 5632, 24, 1, 1, 32000, False, 2048),
    "mmfree-2.7b": (2560, 6912, 32, 1, 1, 32000, False, 2048),
    "demo": (128, 384, 4, 4, 2, 65, False, 256),
}

# Nominal parameter counts the models are published under. The names round: the 3B checkpoint
# has 3.32e9 parameters and the 0.7B one 0.73e9, hence the 12 % tolerance.
NOMINAL = {
    "bitnet-0.7b": 0.7e9,
    "bitnet-2b-4t": 2.4e9,
    "bitnet-3b": 3.0e9,
    "llama3-8b-1.58": 8.0e9,
    "mmfree-370m": 0.37e9,
    "mmfree-1.3b": 1.3e9,
    "mmfree-2.7b": 2.7e9,
}
NOMINAL_TOLERANCE = 0.12

ATTENTION_MODELS = ["bitnet-0.7b", "bitnet-2b-4t", "bitnet-3b", "llama3-8b-1.58", "demo"]
MATMULFREE_MODELS = ["mmfree-370m", "mmfree-1.3b", "mmfree-2.7b"]


def _by_name(layers):
    return {layer.name: layer for layer in layers}


def _config(**changes):
    values = {
        "name": "test",
        "family": "bitnet",
        "hidden": 64,
        "intermediate": 128,
        "layers": 2,
        "heads": 4,
        "kv_heads": 2,
        "vocab": 100,
        "tied_embeddings": False,
        "max_context": 32,
        "activation": "relu2",
        "source": "a test configuration",
    }
    values.update(changes)
    return ModelConfig(**values)


# The catalogue


def test_catalogue_names():
    assert list(MODELS) == list(PUBLISHED)


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_figures(name):
    model = MODELS[name]
    hidden, intermediate, layers, heads, kv_heads, vocab, tied, max_context = PUBLISHED[name]
    assert model.name == name
    assert model.hidden == hidden
    assert model.intermediate == intermediate
    assert model.layers == layers
    assert model.heads == heads
    assert model.kv_heads == kv_heads
    assert model.vocab == vocab
    assert model.tied_embeddings is tied
    assert model.max_context == max_context
    assert model.head_dim == hidden // heads
    assert model.source


@pytest.mark.parametrize("name", MATMULFREE_MODELS)
def test_mmfree_intermediate_rule(name):
    # HGRNBitMLP: int(hidden * hidden_ratio * 2 / 3) rounded up to a multiple of 256.
    hidden = PUBLISHED[name][0]
    size = int(hidden * 4 * 2 / 3)
    assert MODELS[name].intermediate == 256 * -(-size // 256)


def test_families():
    assert {name: model.family for name, model in MODELS.items()} == {
        "bitnet-0.7b": "bitnet",
        "bitnet-2b-4t": "bitnet",
        "bitnet-3b": "bitnet",
        "llama3-8b-1.58": "llama-1.58",
        "mmfree-370m": "matmulfree",
        "mmfree-1.3b": "matmulfree",
        "mmfree-2.7b": "matmulfree",
        "demo": "demo",
    }


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MODELS["demo"].hidden = 1


def test_get_model():
    assert get_model("bitnet-2b-4t") is MODELS["bitnet-2b-4t"]
    assert get_model(" BitNet-2B-4T ") is MODELS["bitnet-2b-4t"]


def test_get_model_unknown_name():
    message = (
        "unknown model 'bitnet-9b'; valid names: bitnet-0.7b, bitnet-2b-4t, bitnet-3b, "
        "llama3-8b-1.58, mmfree-370m, mmfree-1.3b, mmfree-2.7b, demo"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        get_model("bitnet-9b")


def test_get_model_wrong_type():
    with pytest.raises(TypeError, match=re.escape("model name must be a str, got 3")):
        get_model(3)


def test_demo_matches_shipped_config():
    if not _DEMO_CONFIG.exists():
        pytest.skip(f"{_DEMO_CONFIG.relative_to(_REPOSITORY)} is not shipped yet")
    shipped = json.loads(_DEMO_CONFIG.read_text())
    demo = MODELS["demo"]
    assert demo.vocab == shipped["vocab_size"]
    assert demo.hidden == shipped["hidden_size"]
    assert demo.intermediate == shipped["intermediate_size"]
    assert demo.layers == shipped["num_hidden_layers"]
    assert demo.heads == shipped["num_attention_heads"]
    assert demo.kv_heads == shipped.get("num_key_value_heads", shipped["num_attention_heads"])
    assert demo.max_context == shipped["max_position_embeddings"]
    assert demo.tied_embeddings == shipped.get("tie_word_embeddings", False)
    assert demo.activation == shipped.get("hidden_act", "relu2")


# Layer shapes


@pytest.mark.parametrize("name", ATTENTION_MODELS)
def test_attention_projection_shapes(name):
    hidden, inner, layers, heads, kv_heads, vocab, _, _ = PUBLISHED[name]
    kv_width = kv_heads * (hidden // heads)
    found = _by_name(model_layers(MODELS[name], 1))
    expected = {
        "q_proj": (hidden, hidden),
        "k_proj": (kv_width, hidden),
        "v_proj": (kv_width, hidden),
        "o_proj": (hidden, hidden),
    }
    for index in (0, layers - 1):
        for projection, shape in expected.items():
            layer = found[f"layers.{index}.self_attn.{projection}"]
            assert layer.kind == "ternary"
            assert (layer.out_features, layer.in_features) == shape
        for projection, shape in {
            "gate_proj": (inner, hidden),
            "up_proj": (inner, hidden),
            "down_proj": (hidden, inner),
        }.items():
            layer = found[f"layers.{index}.mlp.{projection}"]
            assert layer.kind == "ternary"
            assert (layer.out_features, layer.in_features) == shape
    assert f"layers.{layers}.self_attn.q_proj" not in found
    assert found["lm_head"].kind == "host"
    assert (found["lm_head"].out_features, found["lm_head"].in_features) == (vocab, hidden)


def test_bitnet_2b_4t_shapes():
    # Written out for the flagship model: GQA with 5 KV heads of 128.
    found = _by_name(model_layers(MODELS["bitnet-2b-4t"], 1))
    assert found["layers.0.self_attn.q_proj"].out_features == 2560
    assert found["layers.0.self_attn.q_proj"].in_features == 2560
    assert found["layers.0.self_attn.k_proj"].out_features == 640
    assert found["layers.0.self_attn.k_proj"].in_features == 2560
    assert found["layers.0.self_attn.v_proj"].out_features == 640
    assert found["layers.29.mlp.down_proj"].out_features == 2560
    assert found["layers.29.mlp.down_proj"].in_features == 6912
    assert found["lm_head"].out_features == 128256


@pytest.mark.parametrize(
    ("name", "kv_width"),
    [("bitnet-2b-4t", 640), ("llama3-8b-1.58", 1024), ("demo", 64), ("bitnet-3b", 3200)],
)
def test_gqa_kv_shapes(name, kv_width):
    found = _by_name(model_layers(MODELS[name], 1))
    assert MODELS[name].kv_width == kv_width
    assert found["layers.0.self_attn.k_proj"].out_features == kv_width
    assert found["layers.0.self_attn.v_proj"].out_features == kv_width


@pytest.mark.parametrize("name", MATMULFREE_MODELS)
def test_matmulfree_projection_shapes(name):
    hidden, inner, layers, _, _, vocab, _, _ = PUBLISHED[name]
    found = _by_name(model_layers(MODELS[name]))
    for index in (0, layers - 1):
        for projection in ("i_proj", "f_proj", "g_proj", "o_proj"):
            layer = found[f"layers.{index}.attn.{projection}"]
            assert layer.kind == "ternary"
            assert (layer.out_features, layer.in_features) == (hidden, hidden)
            norm = found[f"layers.{index}.attn.{projection}.norm"]
            assert norm.kind == "host"
            assert norm.bytes_read == 2 * hidden
        gate = found[f"layers.{index}.mlp.gate_proj"]
        assert (gate.out_features, gate.in_features) == (2 * inner, hidden)
        down = found[f"layers.{index}.mlp.down_proj"]
        assert (down.out_features, down.in_features) == (hidden, inner)
    assert found["lm_head"].kind == "ternary"
    assert (found["lm_head"].out_features, found["lm_head"].in_features) == (vocab, hidden)
    assert not any("self_attn" in layer_name for layer_name in found)


def test_mmfree_1_3b_shapes():
    found = _by_name(model_layers(MODELS["mmfree-1.3b"]))
    gate = found["layers.23.mlp.gate_proj"]
    assert (gate.out_features, gate.in_features) == (11264, 2048)
    down = found["layers.23.mlp.down_proj"]
    assert (down.out_features, down.in_features) == (2048, 5632)


# Execution order


def test_bitnet_block_order():
    names = [layer.name for layer in model_layers(MODELS["bitnet-2b-4t"], 8)]
    block = [name.removeprefix("layers.0.") for name in names if name.startswith("layers.0.")]
    assert names[0] == "embed_tokens"
    assert block == [
        "input_layernorm",
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.rotary",
        "self_attn.attention",
        "self_attn.attn_sub_norm",
        "self_attn.o_proj",
        "attn_residual",
        "post_attention_layernorm",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.act_fn",
        "mlp.ffn_sub_norm",
        "mlp.down_proj",
        "mlp_residual",
    ]
    assert names[-3:] == ["norm", "lm_head", "sample"]
    assert len(names) == 1 + 30 * 16 + 3


def test_llama_block_has_no_sub_norms():
    names = [layer.name for layer in model_layers(MODELS["llama3-8b-1.58"], 8)]
    block = [name.removeprefix("layers.0.") for name in names if name.startswith("layers.0.")]
    assert "self_attn.attn_sub_norm" not in block
    assert "mlp.ffn_sub_norm" not in block
    assert len(block) == 14
    assert len(names) == 1 + 32 * 14 + 3


def test_matmulfree_block_order():
    names = [layer.name for layer in model_layers(MODELS["mmfree-370m"])]
    block = [name.removeprefix("layers.1.") for name in names if name.startswith("layers.1.")]
    assert names[:2] == ["embeddings", "lower_bounds"]
    assert block == [
        "attn_norm",
        "attn.i_proj.norm",
        "attn.i_proj",
        "attn.f_proj.norm",
        "attn.f_proj",
        "attn.recurrence",
        "attn.g_proj.norm",
        "attn.g_proj",
        "attn.g_norm",
        "attn.o_proj.norm",
        "attn.o_proj",
        "attn_residual",
        "mlp_norm",
        "mlp.gate_proj.norm",
        "mlp.gate_proj",
        "mlp.act_fn",
        "mlp.down_proj.norm",
        "mlp.down_proj",
        "mlp_residual",
    ]
    assert names[-4:] == ["norm", "lm_head.norm", "lm_head", "sample"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_layer_names_unique(name):
    names = [layer.name for layer in model_layers(MODELS[name], 1)]
    assert len(names) == len(set(names))


# Parameter counts


@pytest.mark.parametrize("name", PUBLISHED)
def test_ternary_parameters_exact(name):
    hidden, inner, layers, heads, kv_heads, vocab, _, _ = PUBLISHED[name]
    if name in MATMULFREE_MODELS:
        # i, f, g, o (hidden x hidden), gate+up (2 inner x hidden), down, and the LM head.
        expected = layers * (4 * hidden * hidden + 3 * inner * hidden) + vocab * hidden
    else:
        kv_width = kv_heads * (hidden // heads)
        expected = layers * (2 * hidden * hidden + 2 * kv_width * hidden + 3 * inner * hidden)
    assert ternary_parameters(MODELS[name]) == expected


@pytest.mark.parametrize("name", PUBLISHED)
def test_host_parameters_exact(name):
    hidden, inner, layers, _, _, vocab, tied, _ = PUBLISHED[name]
    if name in MATMULFREE_MODELS:
        # embedding; per layer 3 block norms, 6 BitLinear norms (one over inner), lower bounds;
        # final norm and the LM head's BitLinear norm
        norms = layers * (3 * hidden + 5 * hidden + inner + hidden) + 2 * hidden
        expected = vocab * hidden + norms
    else:
        sub_norms = hidden + inner if MODELS[name].family in ("bitnet", "demo") else 0
        expected = vocab * hidden * (1 if tied else 2) + layers * (2 * hidden + sub_norms) + hidden
    assert host_parameters(MODELS[name]) == expected


@pytest.mark.parametrize("name", NOMINAL)
def test_parameters_near_published_count(name):
    model = MODELS[name]
    total = ternary_parameters(model) + host_parameters(model)
    assert total == pytest.approx(NOMINAL[name], rel=NOMINAL_TOLERANCE)


def test_bitnet_2b_4t_parameter_total():
    # 2.41e9 with the 128256 x 2560 embedding, 2.08e9 ternary.
    model = MODELS["bitnet-2b-4t"]
    assert ternary_parameters(model) == pytest.approx(2.084e9, rel=1e-3)
    assert ternary_parameters(model) + host_parameters(model) == pytest.approx(2.413e9, rel=1e-3)


def test_tied_and_untied_lm_head():
    tied = MODELS["bitnet-2b-4t"]
    untied = dataclasses.replace(tied, tied_embeddings=False)
    assert host_parameters(untied) - host_parameters(tied) == 128256 * 2560
    assert ternary_parameters(untied) == ternary_parameters(tied)
    # A tied head is still read in full for every token.
    tied_head = _by_name(model_layers(tied, 1))["lm_head"]
    untied_head = _by_name(model_layers(untied, 1))["lm_head"]
    assert tied_head.bytes_read == untied_head.bytes_read == 128256 * 2560 * 2
    assert tied_head.flops == 2 * 128256 * 2560
    assert "tied to the embedding" in tied_head.description
    assert "untied" in untied_head.description


# Host costs


@pytest.mark.parametrize("context", [1, 17, 4096])
@pytest.mark.parametrize("cache_bytes", [1, 2])
def test_attention_cost(context, cache_bytes):
    found = _by_name(model_layers(MODELS["bitnet-2b-4t"], context, cache_bytes))
    attention = found["layers.3.self_attn.attention"]
    assert attention.kind == "host"
    # 5 KV heads of 128, keys and values, `context` positions
    assert attention.bytes_read == context * 2 * 5 * 128 * cache_bytes
    assert attention.bytes_written == 2 * 5 * 128 * cache_bytes
    # 20 query heads: q.k and weights.v at 2 * 128 flops each, scale, 5 for softmax
    assert attention.flops == 20 * context * (4 * 128 + 6)


def test_default_context_is_max_context():
    model = MODELS["demo"]
    assert model_layers(model) == model_layers(model, 256)


def test_host_bytes_per_token_bitnet():
    hidden, inner, layers, vocab, context = 2560, 6912, 30, 128256, 1024
    norms = layers * (2 * hidden + hidden + inner) + hidden
    kv_cache = layers * (context + 1) * 2 * 640 * 2
    expected = hidden * 2 + norms * 2 + kv_cache + vocab * hidden * 2
    assert host_bytes_per_token(MODELS["bitnet-2b-4t"], context) == expected


def test_host_memory_bytes_bitnet():
    hidden, inner, layers, vocab, context = 2560, 6912, 30, 128256, 1024
    # Tied embedding, final norm, and per layer two block norms and the two sub-layer norms.
    parameters = vocab * hidden + hidden + layers * (2 * hidden + hidden + inner)
    kv_cache = layers * context * 2 * 640 * 2
    expected = parameters * 2 + kv_cache
    assert sim.host_memory_bytes(MODELS["bitnet-2b-4t"], context) == expected


def test_host_memory_bytes_matmulfree_state():
    model = MODELS["mmfree-370m"]
    state = 24 * 1024 * 2
    expected = sim.host_parameters(model) * 2 + state
    assert sim.host_memory_bytes(model, 1) == sim.host_memory_bytes(model, 10_000) == expected


def test_host_memory_bytes_rejects_long_context():
    with pytest.raises(ValueError, match="context"):
        sim.host_memory_bytes(MODELS["bitnet-2b-4t"], 10**6)


def test_host_bytes_per_token_matmulfree():
    hidden, inner, layers, vocab = 1024, 2816, 24, 32000
    # embedding row, lower bounds, norm scales, the recurrent state read and written
    norm_scales = layers * (3 * hidden + 5 * hidden + inner) + 2 * hidden
    state = layers * 2 * hidden * 2
    expected = hidden * 2 + layers * hidden * 2 + norm_scales * 2 + state
    model = MODELS["mmfree-370m"]
    assert host_bytes_per_token(model) == expected
    # No KV cache: the cost does not depend on the context, which may exceed max_context.
    assert host_bytes_per_token(model, 1) == host_bytes_per_token(model, 100_000) == expected
    assert vocab * hidden == _by_name(model_layers(model))["lm_head"].weights


def test_ternary_layers_carry_no_host_cost():
    for layer in model_layers(MODELS["bitnet-0.7b"], 1):
        if layer.kind == "ternary":
            assert (layer.flops, layer.bytes_read, layer.bytes_written) == (0, 0, 0)


# Bad input


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"name": 5}, TypeError, "ModelConfig.name must be a str, got 5"),
        ({"source": None}, TypeError, "ModelConfig.source must be a str, got None"),
        ({"name": ""}, ValueError, "ModelConfig.name must be a non-empty lowercase str, got ''"),
        (
            {"name": "Demo"},
            ValueError,
            "ModelConfig.name must be a non-empty lowercase str, got 'Demo'",
        ),
        (
            {"source": ""},
            ValueError,
            "ModelConfig.source must name the published configuration (test)",
        ),
        (
            {"family": "gpt"},
            ValueError,
            "ModelConfig.family must be one of bitnet, llama-1.58, matmulfree, demo, got 'gpt'",
        ),
        (
            {"activation": "gelu"},
            ValueError,
            "ModelConfig.activation must be one of relu2, silu, got 'gelu'",
        ),
        ({"hidden": 64.0}, TypeError, "ModelConfig.hidden must be an int, got 64.0"),
        ({"layers": True}, TypeError, "ModelConfig.layers must be an int, got True"),
        ({"vocab": 0}, ValueError, "ModelConfig.vocab must be >= 1, got 0"),
        ({"max_context": -1}, ValueError, "ModelConfig.max_context must be >= 1, got -1"),
        (
            {"tied_embeddings": 1},
            TypeError,
            "ModelConfig.tied_embeddings must be a bool, got 1",
        ),
        (
            {"heads": 5, "kv_heads": 5},
            ValueError,
            "ModelConfig.hidden (64) must be a multiple of heads (5)",
        ),
        ({"kv_heads": 3}, ValueError, "ModelConfig.heads (4) must be a multiple of kv_heads (3)"),
        (
            {"hidden": 60, "heads": 4},
            ValueError,
            "ModelConfig.head_dim = hidden / heads must be even for rotary embeddings, "
            "got 15 (test)",
        ),
        (
            {"family": "matmulfree", "heads": 1, "kv_heads": 1, "tied_embeddings": True},
            ValueError,
            "ModelConfig.tied_embeddings must be False for a matmulfree model: its LM head is a "
            "ternary BitLinear and its embedding is not",
        ),
        (
            {"family": "matmulfree", "heads": 4, "kv_heads": 2},
            ValueError,
            "ModelConfig.kv_heads (2) must equal heads (4) for a matmulfree model, which has no "
            "KV cache",
        ),
    ],
)
def test_model_config_errors(changes, error, message):
    with pytest.raises(error, match=re.escape(message)):
        _config(**changes)


def test_matmulfree_allows_odd_head_dim():
    model = _config(family="matmulfree", hidden=60, heads=4, kv_heads=4)
    assert model.head_dim == 15


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (("", "host"), ValueError, "Layer.name must not be empty"),
        ((3, "host"), TypeError, "Layer.name must be a str, got 3"),
        (
            ("x", "host", 0, 0, 0, 0, 0, None),
            TypeError,
            "Layer.description must be a str, got None",
        ),
        (("x", "dsp"), ValueError, "Layer.kind must be one of ternary, host, got 'dsp' (x)"),
        (("x", "host", -1, 4), ValueError, "Layer.out_features must be >= 0, got -1"),
        (("x", "host", 0, 0, 1.5), TypeError, "Layer.flops must be an int, got 1.5"),
        (("x", "host", 0, 0, 0, -2), ValueError, "Layer.bytes_read must be >= 0, got -2"),
        (
            ("x", "ternary", 4, 0),
            ValueError,
            "Layer 'x': a ternary layer needs out_features and in_features >= 1, got 4 x 0",
        ),
        (
            ("x", "ternary", 4, 4, 32),
            ValueError,
            "Layer 'x': a ternary layer's cost depends on the design, so flops, bytes_read and "
            "bytes_written must be 0, got 32, 0, 0",
        ),
        (
            ("x", "host", 0, 4),
            ValueError,
            "Layer 'x': a host layer gives both out_features and in_features or neither, got 0 x 4",
        ),
    ],
)
def test_layer_errors(arguments, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Layer(*arguments)


def test_layer_weights():
    assert Layer("p", "ternary", 3, 5).weights == 15
    assert Layer("n", "host", flops=8).weights == 0


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"context": 0}, ValueError, "context must be >= 1, got 0"),
        ({"context": 2.0}, TypeError, "context must be an int, got 2.0"),
        ({"context": 257}, ValueError, "context (257) exceeds the max_context of demo (256)"),
        ({"cache_bytes": 0}, ValueError, "cache_bytes must be >= 1, got 0"),
        ({"cache_bytes": "2"}, TypeError, "cache_bytes must be an int, got '2'"),
    ],
)
def test_model_layers_errors(arguments, error, message):
    with pytest.raises(error, match=re.escape(message)):
        model_layers(MODELS["demo"], **arguments)
    with pytest.raises(error, match=re.escape(message)):
        host_bytes_per_token(MODELS["demo"], **arguments)


@pytest.mark.parametrize(
    "function", [model_layers, ternary_parameters, host_parameters, host_bytes_per_token]
)
def test_functions_reject_model_name(function):
    message = "config must be a ModelConfig (see get_model), got str"
    with pytest.raises(TypeError, match=re.escape(message)):
        function("demo")
