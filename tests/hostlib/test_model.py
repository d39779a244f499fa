"""The BitNet b1.58 model: configuration, structure, forward pass, KV cache and generation."""

import re

import pytest
import torch
from torch import nn

import kernels
from hostlib import BitNetConfig, BitNetForCausalLM, KVCache
from tests.hostlib import hf_reference as ref

IDS = [4, 0, 36, 12, 12, 7, 19, 2, 33]


def _config(**overrides) -> BitNetConfig:
    return BitNetConfig.from_dict({**ref.TINY_CONFIG, **overrides})


def _random_inference_model(config: BitNetConfig, seed: int = 0) -> BitNetForCausalLM:
    """An inference model with random ternary projections and random float tensors."""
    model = BitNetForCausalLM(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(1.0 + 0.3 * torch.randn(param.shape, generator=generator))
        for index, (name, layer) in enumerate(model.projections()):
            shape = (layer.out_features, layer.in_features)
            codes = torch.randint(-1, 2, shape, generator=generator, dtype=torch.int8)
            convention = "divide" if index % 2 else "multiply"
            scale = 0.02 + 0.01 * index
            model.set_projection(name, kernels.BitLinear(codes, scale, convention, name=name))
    return model


def _reference(model: BitNetForCausalLM, ids: list[int]) -> torch.Tensor:
    floats = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    projections = {
        name: (layer.weight, float(layer.weight_scale), layer.convention)
        for name, layer in model.bitlinear_layers()
    }
    return ref.reference_logits(model.config.to_dict(), floats, projections, ids)


# Configuration


def test_config_from_dict_ignores_other_keys():
    config = _config()
    assert config.hidden_size == 32
    assert config.head_dim == 8
    assert config.num_key_value_heads == 2


def test_config_round_trip():
    config = _config(tie_word_embeddings=True)
    values = config.to_dict()
    assert values["model_type"] == "bitnet"
    assert values["head_dim"] == 8
    assert BitNetConfig.from_dict(values) == config


def test_config_kv_heads_default_to_heads():
    values = {k: v for k, v in ref.TINY_CONFIG.items() if k != "num_key_value_heads"}
    assert BitNetConfig.from_dict(values).num_key_value_heads == 4


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"hidden_size": 0}, ValueError, "hidden_size must be positive, got 0"),
        ({"vocab_size": 3.0}, TypeError, "vocab_size must be an int, got 3.0"),
        ({"num_hidden_layers": True}, TypeError, "num_hidden_layers must be an int, got True"),
        ({"rms_norm_eps": 0.0}, ValueError, "rms_norm_eps must be positive and finite, got 0.0"),
        ({"rope_theta": "big"}, TypeError, "rope_theta must be a number, got 'big'"),
        ({"tie_word_embeddings": 1}, TypeError, "tie_word_embeddings must be a bool, got 1"),
        ({"hidden_act": "silu"}, ValueError, "hidden_act must be 'relu2' .*, got 'silu'"),
        (
            {"hidden_size": 30},
            ValueError,
            re.escape("hidden_size (30) must be a multiple of num_attention_heads (4)"),
        ),
        (
            {"num_key_value_heads": 3},
            ValueError,
            re.escape("num_attention_heads (4) must be a multiple of num_key_value_heads (3)"),
        ),
        (
            {"hidden_size": 12},
            ValueError,
            "head_dim = hidden_size / num_attention_heads must be even .*, got 3",
        ),
        ({"model_type": "llama"}, ValueError, "model_type must be 'bitnet', got 'llama'"),
        ({"attention_bias": True}, ValueError, "attention_bias must be false"),
        ({"rope_scaling": {"type": "yarn"}}, ValueError, "rope_scaling is not supported"),
        (
            {"head_dim": 16},
            ValueError,
            re.escape("head_dim (16) must equal hidden_size / num_attention_heads (8)"),
        ),
    ],
)
def test_config_rejects(overrides, error, message):
    with pytest.raises(error, match=message):
        _config(**overrides)


def test_config_missing_keys():
    with pytest.raises(
        ValueError, match="config is missing the required key.s. vocab_size, num_hidden_layers"
    ):
        BitNetConfig.from_dict({"hidden_size": 8, "intermediate_size": 8, "num_attention_heads": 2})


def test_config_from_dict_rejects_non_dict():
    with pytest.raises(TypeError, match="config must be a dict, got list"):
        BitNetConfig.from_dict([1])


# Structure


def test_state_dict_keys_match_hugging_face():
    model = BitNetForCausalLM(_config())
    keys = set(model.state_dict())
    expected = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    for layer in range(2):
        p = f"model.layers.{layer}."
        expected |= {
            p + "input_layernorm.weight",
            p + "post_attention_layernorm.weight",
            p + "self_attn.attn_sub_norm.weight",
            p + "mlp.ffn_sub_norm.weight",
        }
        for name in ref.PROJECTIONS:
            expected |= {p + name + ".weight", p + name + ".weight_scale"}
    assert keys == expected


def test_training_state_dict_has_latent_weights_only():
    model = BitNetForCausalLM(_config(), training=True)
    assert "model.layers.0.self_attn.q_proj.weight" in model.state_dict()
    assert not any(key.endswith("weight_scale") for key in model.state_dict())


def test_projection_kinds():
    inference = BitNetForCausalLM(_config())
    training = BitNetForCausalLM(_config(), training=True)
    full = BitNetForCausalLM(_config(), training=True, full_precision=True)
    assert all(type(m) is kernels.BitLinear for _, m in inference.projections())
    assert all(type(m) is kernels.BitLinearTrain for _, m in training.projections())
    assert all(type(m) is nn.Linear for _, m in full.projections())
    assert training.bitlinear_layers() == []


def test_projection_shapes():
    model = BitNetForCausalLM(_config())
    shapes = ref.projection_shapes(ref.TINY_CONFIG)
    for name, layer in model.projections():
        suffix = name.split(".", 3)[3]
        assert (layer.out_features, layer.in_features) == shapes[suffix], name


def test_bitlinear_layers_in_execution_order():
    model = BitNetForCausalLM(_config())
    names = [name for name, _ in model.bitlinear_layers()]
    expected = [f"model.layers.{i}.{p}" for i in range(2) for p in ref.PROJECTIONS]
    assert names == expected
    for name, layer in model.bitlinear_layers():
        assert layer.name == name


def test_no_biases():
    model = BitNetForCausalLM(_config(), training=True)
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())


def test_tied_embeddings_share_weight():
    model = BitNetForCausalLM(_config(tie_word_embeddings=True), training=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_full_precision_needs_training():
    with pytest.raises(ValueError, match="full_precision=True needs training=True"):
        BitNetForCausalLM(_config(), full_precision=True)


def test_model_rejects_config_type():
    with pytest.raises(TypeError, match="config must be a BitNetConfig, got dict"):
        BitNetForCausalLM(dict(ref.TINY_CONFIG))


def test_set_projection_checks():
    model = BitNetForCausalLM(_config())
    with pytest.raises(ValueError, match="'model.layers.9.mlp.up_proj' is not a projection"):
        model.set_projection("model.layers.9.mlp.up_proj", nn.Linear(32, 50))
    with pytest.raises(
        ValueError, match="projection model.layers.0.mlp.up_proj is 50 x 32, the new layer is 3 x 2"
    ):
        model.set_projection("model.layers.0.mlp.up_proj", nn.Linear(2, 3))


# Forward pass


@pytest.mark.parametrize("tie", [False, True])
def test_forward_matches_reference(tie):
    model = _random_inference_model(_config(tie_word_embeddings=tie), seed=3)
    with torch.no_grad():
        logits = model(torch.tensor([IDS]))
    assert logits.shape == (1, len(IDS), 37)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits[0], _reference(model, IDS), atol=2e-4, rtol=1e-4)


def test_forward_batch_rows_independent():
    model = _random_inference_model(_config(), seed=4)
    other = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    with torch.no_grad():
        batch = model(torch.tensor([IDS, other]))
        first = model(torch.tensor([IDS]))
        second = model(torch.tensor([other]))
    torch.testing.assert_close(batch[0], first[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch[1], second[0], atol=1e-5, rtol=1e-5)


def test_forward_is_causal():
    model = _random_inference_model(_config(), seed=5)
    changed = IDS[:5] + [30, 31, 32, 33]
    with torch.no_grad():
        a = model(torch.tensor([IDS]))
        b = model(torch.tensor([changed]))
    assert torch.equal(a[0, :5], b[0, :5])
    assert not torch.equal(a[0, 5:], b[0, 5:])


def test_training_model_close_to_inference():
    # The fake-quantized training forward and the integer inference forward compute the same
    # quantized values in different orders.
    config = _config()
    trained = BitNetForCausalLM(config, training=True)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in trained.parameters():
            param.normal_(0.0, 0.3)
        expected = trained(torch.tensor([IDS]))
        inference = trained.to_inference()
        logits = inference(torch.tensor([IDS]))
    torch.testing.assert_close(logits, expected, atol=1e-3, rtol=1e-3)


def test_to_inference_rejects_other_kinds():
    with pytest.raises(ValueError, match="this one is a 'inference' model"):
        BitNetForCausalLM(_config()).to_inference()
    with pytest.raises(ValueError, match="this one is a 'full' model"):
        BitNetForCausalLM(_config(), training=True, full_precision=True).to_inference()


def test_inference_builds_no_graph():
    model = _random_inference_model(_config())
    assert not model(torch.tensor([IDS])).requires_grad


@pytest.mark.parametrize(
    ("ids", "error", "message"),
    [
        ([[1.0, 2.0]], TypeError, "input_ids must be an integer tensor, got dtype torch.float32"),
        ([1, 2], ValueError, re.escape("input_ids must be a non-empty 2-D tensor [batch, seq]")),
        ([[1, 37]], ValueError, re.escape("input_ids holds 37 at (0, 1), outside the vocabulary")),
        ([[-1]], ValueError, "input_ids holds -1 at"),
    ],
)
def test_forward_rejects_bad_ids(ids, error, message):
    model = BitNetForCausalLM(_config())
    with pytest.raises(error, match=message):
        model(torch.tensor(ids))


def test_forward_rejects_list():
    with pytest.raises(TypeError, match="input_ids must be a torch.Tensor, got list"):
        BitNetForCausalLM(_config())([[1, 2]])


def test_forward_rejects_too_long():
    model = BitNetForCausalLM(_config(max_position_embeddings=8))
    with pytest.raises(
        ValueError, match=re.escape("0 cached plus 9 new tokens exceed max_position_embeddings (8)")
    ):
        model(torch.tensor([IDS]))


# KV cache and generation


def test_cache_equals_full_recompute():
    model = _random_inference_model(_config(), seed=6)
    ids = torch.tensor([IDS])
    with torch.no_grad():
        full = model(ids)
        first, cache = model(ids[:, :4], use_cache=True)
        assert isinstance(cache, KVCache)
        assert cache.length == 4
        pieces = [first]
        for t in range(4, len(IDS)):
            step, cache = model(ids[:, t : t + 1], past_key_values=cache, use_cache=True)
            pieces.append(step)
    assert cache.length == len(IDS)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


def test_cache_rejects_overflow():
    model = _random_inference_model(_config(max_position_embeddings=10))
    with torch.no_grad():
        _, cache = model(torch.tensor([IDS]), use_cache=True)
        with pytest.raises(ValueError, match="9 cached plus 2 new tokens exceed"):
            model(torch.tensor([[1, 2]]), past_key_values=cache, use_cache=True)


def _greedy_without_cache(model, ids, steps):
    ids = list(ids)
    for _ in range(steps):
        with torch.no_grad():
            logits = model(torch.tensor([ids]))
        ids.append(int(torch.argmax(logits[0, -1])))
    return ids


def test_generate_equals_recompute():
    model = _random_inference_model(_config(), seed=7)
    generated = model.generate(torch.tensor([IDS[:3]]), 20)
    assert generated.shape == (1, 23)
    assert generated[0].tolist() == _greedy_without_cache(model, IDS[:3], 20)


def test_generate_is_deterministic():
    model = _random_inference_model(_config(), seed=8)
    prompt = torch.tensor([IDS[:4], IDS[4:8]])
    assert torch.equal(model.generate(prompt, 10), model.generate(prompt, 10))


def test_generate_zero_tokens():
    model = _random_inference_model(_config())
    prompt = torch.tensor([IDS])
    assert torch.equal(model.generate(prompt, 0), prompt)


@pytest.mark.parametrize(
    ("steps", "error", "message"),
    [
        (-1, ValueError, "max_new_tokens must be non-negative, got -1"),
        (2.0, TypeError, "max_new_tokens must be an int, got 2.0"),
        (
            60,
            ValueError,
            re.escape(
                "9 prompt tokens plus max_new_tokens (60) exceed max_position_embeddings (64)"
            ),
        ),
    ],
)
def test_generate_rejects(steps, error, message):
    model = BitNetForCausalLM(_config())
    with pytest.raises(error, match=message):
        model.generate(torch.tensor([IDS]), steps)
