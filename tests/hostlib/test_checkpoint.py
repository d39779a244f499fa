"""Loading Hugging Face BitNet checkpoints written by hand, and the project's own format."""

import json
import logging
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

import kernels
from hostlib import (
    BitNetConfig,
    BitNetForCausalLM,
    CharTokenizer,
    CheckpointError,
    load_model,
    save_checkpoint,
)
from tests.hostlib import hf_reference as ref

IDS = [3, 17, 0, 36, 5, 5, 21, 9, 30, 2, 11]
# The reference sums in a different order through a dozen float32 norms and quantizers, so the
# logits agree to float32 rounding, not bit for bit.
ATOL = 2e-4
RTOL = 1e-4


@pytest.fixture(scope="module")
def latent():
    return ref.latent_tensors(ref.TINY_CONFIG, seed=1)


def _logits(model, ids=IDS):
    with torch.no_grad():
        return model(torch.tensor([ids]))[0]


def _offline(tmp_path, latent, quantization=ref.AUTOBITLINEAR, config=None, **kwargs):
    config = config or ref.TINY_CONFIG
    convention = "divide" if quantization.get("linear_class") == "bitlinear" else "multiply"
    tensors = ref.offline_tensors(latent, config, convention=convention, **kwargs)
    return tensors, tmp_path / "ckpt"


def _write(directory, tensors, quantization=ref.AUTOBITLINEAR, config=None, shards=1):
    return ref.write_checkpoint(directory, config or ref.TINY_CONFIG, tensors, quantization, shards)


# Loading the three Hugging Face variants


def test_autobitlinear_offline_matches_reference(tmp_path, latent):
    tensors, directory = _offline(tmp_path, latent)
    model = load_model(_write(directory, tensors))
    expected = ref.reference_from_latent(latent, ref.TINY_CONFIG, IDS)
    torch.testing.assert_close(_logits(model), expected, atol=ATOL, rtol=RTOL)


def test_autobitlinear_loads_exact_codes(tmp_path, latent):
    tensors, directory = _offline(tmp_path, latent)
    model = load_model(_write(directory, tensors))
    quantized = ref.quantize(latent, ref.TINY_CONFIG)
    for name, layer in model.bitlinear_layers():
        codes, gamma = quantized[name]
        assert torch.equal(layer.weight, codes), name
        assert layer.convention == "multiply"
        assert float(layer.weight_scale) == float(gamma)
        assert layer.name == name


def test_bitlinear_divides_stored_scale(tmp_path, latent):
    tensors, directory = _offline(tmp_path, latent, ref.BITLINEAR)
    model = load_model(_write(directory, tensors, ref.BITLINEAR))
    for name, layer in model.bitlinear_layers():
        assert layer.convention == "divide", name
    expected = ref.reference_from_latent(latent, ref.TINY_CONFIG, IDS, convention="divide")
    torch.testing.assert_close(_logits(model), expected, atol=ATOL, rtol=RTOL)


def test_conventions_give_same_logits(tmp_path, latent):
    multiply = ref.offline_tensors(latent, ref.TINY_CONFIG, convention="multiply")
    divide = ref.offline_tensors(latent, ref.TINY_CONFIG, convention="divide")
    first = load_model(_write(tmp_path / "a", multiply, ref.AUTOBITLINEAR))
    second = load_model(_write(tmp_path / "b", divide, ref.BITLINEAR))
    torch.testing.assert_close(_logits(first), _logits(second), atol=1e-5, rtol=1e-5)


def test_wrong_convention_changes_logits(tmp_path, latent):
    # 1 / gamma read as gamma: the test above must be able to fail.
    divide = ref.offline_tensors(latent, ref.TINY_CONFIG, convention="divide")
    wrong = load_model(_write(tmp_path / "wrong", divide, ref.AUTOBITLINEAR))
    expected = ref.reference_from_latent(latent, ref.TINY_CONFIG, IDS)
    assert not torch.allclose(_logits(wrong), expected, atol=1e-2)


def test_online_equals_offline(tmp_path, latent):
    online = {name: tensor.clone() for name, tensor in latent.items()}
    first = load_model(_write(tmp_path / "online", online, ref.ONLINE))
    offline = ref.offline_tensors(latent, ref.TINY_CONFIG)
    second = load_model(_write(tmp_path / "offline", offline))
    assert torch.equal(_logits(first), _logits(second))
    for (name, a), (_, b) in zip(first.bitlinear_layers(), second.bitlinear_layers(), strict=True):
        assert torch.equal(a.weight, b.weight), name
        assert torch.equal(a.weight_scale, b.weight_scale), name


def test_unpacked_ternary_offline(tmp_path, latent):
    packed = ref.offline_tensors(latent, ref.TINY_CONFIG)
    unpacked = ref.offline_tensors(latent, ref.TINY_CONFIG, packed=False)
    first = load_model(_write(tmp_path / "packed", packed))
    second = load_model(_write(tmp_path / "unpacked", unpacked))
    assert torch.equal(_logits(first), _logits(second))


def test_bf16_tensors(tmp_path, latent):
    tensors, directory = _offline(tmp_path, latent, float_dtype=torch.bfloat16)
    model = load_model(_write(directory, tensors))
    embedding = model.model.embed_tokens.weight
    assert embedding.dtype == torch.float32
    widened = latent["model.embed_tokens.weight"].to(torch.bfloat16).to(torch.float32)
    assert torch.equal(embedding, widened)
    expected = ref.reference_from_latent(latent, ref.TINY_CONFIG, IDS, float_dtype=torch.bfloat16)
    torch.testing.assert_close(_logits(model), expected, atol=ATOL, rtol=RTOL)


def test_sharded_equals_single(tmp_path, latent):
    tensors = ref.offline_tensors(latent, ref.TINY_CONFIG)
    single = load_model(_write(tmp_path / "single", tensors))
    sharded_dir = _write(tmp_path / "sharded", tensors, shards=3)
    assert len(list(sharded_dir.glob("model-0000?-of-00003.safetensors"))) == 3
    sharded = load_model(sharded_dir)
    assert torch.equal(_logits(single), _logits(sharded))


def test_tied_embeddings(tmp_path):
    config = {**ref.TINY_CONFIG, "tie_word_embeddings": True}
    latent = ref.latent_tensors(config, seed=2)
    assert "lm_head.weight" not in latent
    model = load_model(
        _write(tmp_path / "tied", ref.offline_tensors(latent, config), config=config)
    )
    assert model.lm_head.weight is model.model.embed_tokens.weight
    expected = ref.reference_from_latent(latent, config, IDS)
    torch.testing.assert_close(_logits(model), expected, atol=ATOL, rtol=RTOL)


def test_tied_head_stored_equal_is_accepted(tmp_path):
    config = {**ref.TINY_CONFIG, "tie_word_embeddings": True}
    tensors = ref.offline_tensors(ref.latent_tensors(config, seed=2), config)
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    load_model(_write(tmp_path / "tied", tensors, config=config))


def test_hf_checkpoint_has_no_tokenizer(tmp_path, latent):
    tensors, directory = _offline(tmp_path, latent)
    model = load_model(_write(directory, tensors))
    assert model.tokenizer is None
    assert model.training_metadata is None


def test_missing_mode_uses_hf_default_with_warning(tmp_path, latent, caplog):
    # transformers' BitNetQuantConfig defaults: linear_class bitlinear, quantization_mode offline.
    tensors = ref.offline_tensors(latent, ref.TINY_CONFIG, convention="divide")
    with caplog.at_level(logging.WARNING, logger="hostlib.checkpoint"):
        model = load_model(_write(tmp_path / "c", tensors, {"quant_method": "bitnet"}))
    assert "no linear_class; using the transformers default 'bitlinear'" in caplog.text
    assert "no quantization_mode; using the transformers default 'offline'" in caplog.text
    assert all(layer.convention == "divide" for _, layer in model.bitlinear_layers())


# The project's own format


def _inference_model(seed=0, tie=False):
    config = BitNetConfig.from_dict({**ref.TINY_CONFIG, "tie_word_embeddings": tie})
    trained = BitNetForCausalLM(config, training=True)
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in trained.parameters():
            param.normal_(0.0, 0.3)
    return trained.to_inference()


@pytest.mark.parametrize("tie", [False, True])
def test_save_load_round_trip(tmp_path, tie):
    model = _inference_model(tie=tie)
    tokenizer = CharTokenizer("abcdefghij")
    save_checkpoint(model, tokenizer, tmp_path / "own", training={"steps": 3})
    loaded = load_model(tmp_path / "own")
    assert torch.equal(_logits(loaded), _logits(model))
    assert loaded.tokenizer == tokenizer
    assert loaded.training_metadata == {"steps": 3}
    assert loaded.config == model.config


def test_saved_layout_is_hf(tmp_path):
    model = _inference_model()
    save_checkpoint(model, None, tmp_path / "own")
    values = json.loads((tmp_path / "own" / "config.json").read_text())
    assert values["quantization_config"] == ref.AUTOBITLINEAR
    assert values["onebit"]["tokenizer"] is None
    tensors = load_file(str(tmp_path / "own" / "model.safetensors"))
    for name, layer in model.bitlinear_layers():
        assert torch.equal(tensors[name + ".weight"], ref.pack_hf(layer.weight)), name
        assert tensors[name + ".weight_scale"].shape == (1,)
        assert float(tensors[name + ".weight_scale"][0]) == float(layer.weight_scale)


def test_save_keeps_divide_convention(tmp_path, latent):
    tensors = ref.offline_tensors(latent, ref.TINY_CONFIG, convention="divide")
    model = load_model(_write(tmp_path / "hf", tensors, ref.BITLINEAR))
    save_checkpoint(model, None, tmp_path / "own")
    values = json.loads((tmp_path / "own" / "config.json").read_text())
    assert values["quantization_config"]["linear_class"] == "bitlinear"
    assert torch.equal(_logits(load_model(tmp_path / "own")), _logits(model))


def test_save_training_model_quantizes(tmp_path):
    config = BitNetConfig.from_dict(ref.TINY_CONFIG)
    trained = BitNetForCausalLM(config, training=True)
    save_checkpoint(trained, None, tmp_path / "own")
    assert torch.equal(_logits(load_model(tmp_path / "own")), _logits(trained.to_inference()))


def test_demo_checkpoint_loads():
    model = load_model("demo")
    assert isinstance(model.tokenizer, CharTokenizer)
    assert model.config.max_position_embeddings >= 256
    assert len(model.bitlinear_layers()) == 7 * model.config.num_hidden_layers
    assert load_model(None).config == model.config


def test_save_rejects_full_precision(tmp_path):
    config = BitNetConfig.from_dict(ref.TINY_CONFIG)
    model = BitNetForCausalLM(config, training=True, full_precision=True)
    with pytest.raises(ValueError, match="a full-precision model has no ternary weights"):
        save_checkpoint(model, None, tmp_path / "x")


def test_save_rejects_mixed_conventions(tmp_path):
    model = _inference_model()
    name, layer = model.bitlinear_layers()[0]
    model.set_projection(name, kernels.BitLinear(layer.weight, 2.0, "divide", name=name))
    with pytest.raises(ValueError, match="mix the multiply and divide conventions"):
        save_checkpoint(model, None, tmp_path / "x")


def test_save_rejects_large_tokenizer(tmp_path):
    tokenizer = CharTokenizer("".join(chr(0x100 + i) for i in range(40)))
    with pytest.raises(ValueError, match=r"the tokenizer has 40 tokens, more than .* \(37\)"):
        save_checkpoint(_inference_model(), tokenizer, tmp_path / "x")


def test_save_rejects_wrong_types(tmp_path):
    with pytest.raises(TypeError, match="model must be a BitNetForCausalLM, got Linear"):
        save_checkpoint(torch.nn.Linear(2, 2), None, tmp_path / "x")
    with pytest.raises(TypeError, match="tokenizer must be a CharTokenizer or None, got str"):
        save_checkpoint(_inference_model(), "abc", tmp_path / "x")


# Errors


def _good(tmp_path, latent, quantization=ref.AUTOBITLINEAR):
    convention = "divide" if quantization.get("linear_class") == "bitlinear" else "multiply"
    return ref.offline_tensors(latent, ref.TINY_CONFIG, convention=convention)


def test_error_path_does_not_exist(tmp_path):
    with pytest.raises(CheckpointError, match="is not a checkpoint: no such file or directory"):
        load_model(tmp_path / "absent")


def test_error_path_is_a_file(tmp_path):
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="is not a checkpoint: expected a directory"):
        load_model(tmp_path / "file.bin")


def test_error_no_config(tmp_path):
    with pytest.raises(CheckpointError, match="is not a checkpoint: config.json not found"):
        load_model(tmp_path)


def test_error_no_weights(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({**ref.TINY_CONFIG, "quantization_config": ref.AUTOBITLINEAR})
    )
    with pytest.raises(
        CheckpointError, match="neither model.safetensors nor model.safetensors.index.json found"
    ):
        load_model(tmp_path)


def test_error_bad_path_type():
    with pytest.raises(TypeError, match="checkpoint must be a path or 'demo', got int"):
        load_model(3)


def test_error_invalid_json(tmp_path, latent):
    directory = _write(tmp_path / "c", _good(tmp_path, latent))
    (directory / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config.json: cannot be read as JSON"):
        load_model(directory)


def test_error_config_not_object(tmp_path, latent):
    directory = _write(tmp_path / "c", _good(tmp_path, latent))
    (directory / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="config.json: must hold a JSON object, got list"):
        load_model(directory)


def test_error_missing_config_key(tmp_path, latent):
    config = {k: v for k, v in ref.TINY_CONFIG.items() if k != "hidden_size"}
    directory = _write(tmp_path / "c", _good(tmp_path, latent), config=config)
    with pytest.raises(
        CheckpointError, match="config.json: config is missing the required key.s. hidden_size"
    ):
        load_model(directory)


def test_error_invalid_config_value(tmp_path, latent):
    config = {**ref.TINY_CONFIG, "num_key_value_heads": 3}
    directory = _write(tmp_path / "c", _good(tmp_path, latent), config=config)
    with pytest.raises(
        CheckpointError,
        match=re.escape("num_attention_heads (4) must be a multiple of num_key_value_heads (3)"),
    ):
        load_model(directory)


def test_error_no_quantization_config(tmp_path, latent):
    directory = _write(tmp_path / "c", dict(latent), quantization=None)
    with pytest.raises(CheckpointError, match="config.json: no quantization_config"):
        load_model(directory)


def test_error_unknown_quant_method(tmp_path, latent):
    quantization = {**ref.AUTOBITLINEAR, "quant_method": "gptq"}
    directory = _write(tmp_path / "c", _good(tmp_path, latent), quantization)
    with pytest.raises(
        CheckpointError,
        match="unknown quantization_config.quant_method 'gptq'; only 'bitnet' is supported",
    ):
        load_model(directory)


def test_error_unknown_linear_class(tmp_path, latent):
    quantization = {**ref.AUTOBITLINEAR, "linear_class": "ternarylinear"}
    directory = _write(tmp_path / "c", _good(tmp_path, latent), quantization)
    with pytest.raises(
        CheckpointError,
        match="unknown quantization_config.linear_class 'ternarylinear'; "
        "known: autobitlinear, bitlinear",
    ):
        load_model(directory)


def test_error_unknown_mode(tmp_path, latent):
    quantization = {**ref.AUTOBITLINEAR, "quantization_mode": "lazy"}
    directory = _write(tmp_path / "c", _good(tmp_path, latent), quantization)
    with pytest.raises(
        CheckpointError, match="unknown quantization_config.quantization_mode 'lazy'"
    ):
        load_model(directory)


def test_error_bitlinear_online_contradiction(tmp_path, latent):
    quantization = {**ref.BITLINEAR, "quantization_mode": "online"}
    directory = _write(tmp_path / "c", dict(latent), quantization)
    with pytest.raises(CheckpointError, match="quantization_config contradicts itself"):
        load_model(directory)


def test_error_use_rms_norm(tmp_path, latent):
    quantization = {**ref.AUTOBITLINEAR, "use_rms_norm": True}
    directory = _write(tmp_path / "c", _good(tmp_path, latent), quantization)
    with pytest.raises(CheckpointError, match="use_rms_norm = true .* is not supported"):
        load_model(directory)


def test_error_modules_not_converted(tmp_path, latent):
    quantization = {**ref.AUTOBITLINEAR, "modules_to_not_convert": ["lm_head", "q_proj"]}
    directory = _write(tmp_path / "c", _good(tmp_path, latent), quantization)
    with pytest.raises(
        CheckpointError, match=r"modules_to_not_convert lists \['q_proj'\]; only 'lm_head'"
    ):
        load_model(directory)


def test_lm_head_in_modules_not_converted_is_accepted(tmp_path, latent):
    quantization = {**ref.AUTOBITLINEAR, "modules_to_not_convert": ["lm_head"]}
    load_model(_write(tmp_path / "c", _good(tmp_path, latent), quantization))


def test_error_online_with_packed_weights(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    tensors = {k: v for k, v in tensors.items() if not k.endswith("weight_scale")}
    directory = _write(tmp_path / "c", tensors, ref.ONLINE)
    with pytest.raises(
        CheckpointError,
        match=r"tensor model.layers.0.self_attn.q_proj.weight in model.safetensors has dtype "
        r"torch.uint8, but quantization_mode 'online' needs latent floating-point weights",
    ):
        load_model(directory)


def test_error_online_with_weight_scale(tmp_path, latent):
    tensors = dict(latent)
    tensors["model.layers.0.mlp.up_proj.weight_scale"] = torch.ones(1)
    directory = _write(tmp_path / "c", tensors, ref.ONLINE)
    with pytest.raises(
        CheckpointError,
        match="tensor model.layers.0.mlp.up_proj.weight_scale in model.safetensors "
        "contradicts quantization_mode 'online'",
    ):
        load_model(directory)


def test_error_offline_with_latent_weights(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    tensors["model.layers.1.self_attn.k_proj.weight"] = latent[
        "model.layers.1.self_attn.k_proj.weight"
    ]
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(
        CheckpointError,
        match="tensor model.layers.1.self_attn.k_proj.weight in model.safetensors contains "
        "non-ternary torch.float32 values, but quantization_mode 'offline'",
    ):
        load_model(directory)


@pytest.mark.parametrize(
    "name",
    [
        "model.layers.0.self_attn.q_proj.weight_scale",
        "model.layers.1.mlp.down_proj.weight",
        "model.embed_tokens.weight",
        "model.layers.1.mlp.ffn_sub_norm.weight",
        "lm_head.weight",
    ],
)
def test_error_missing_tensor(tmp_path, latent, name):
    tensors = _good(tmp_path, latent)
    del tensors[name]
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(CheckpointError, match=f"checkpoint is missing tensor {re.escape(name)}"):
        load_model(directory)


def test_error_wrong_packed_shape(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    tensors["model.layers.0.mlp.gate_proj.weight"] = torch.zeros((12, 32), dtype=torch.uint8)
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(
        CheckpointError,
        match=re.escape(
            "tensor model.layers.0.mlp.gate_proj.weight in model.safetensors has packed shape "
            "(12, 32), the config needs (13, 32)"
        ),
    ):
        load_model(directory)


def test_error_wrong_float_shape(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    tensors["model.norm.weight"] = torch.ones(31)
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(
        CheckpointError,
        match=re.escape(
            "tensor model.norm.weight in model.safetensors has shape (31,), the config needs (32,)"
        ),
    ):
        load_model(directory)


def test_error_wrong_unpacked_shape(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    tensors["model.layers.0.self_attn.v_proj.weight"] = torch.zeros((16, 30))
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(
        CheckpointError,
        match=re.escape(
            "has shape (16, 30) and dtype torch.float32; expected packed uint8 (4, 32)"
        ),
    ):
        load_model(directory)


def test_error_integer_float_tensor(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    tensors["model.norm.weight"] = torch.ones(32, dtype=torch.int32)
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(
        CheckpointError, match="model.norm.weight in model.safetensors must be floating point"
    ):
        load_model(directory)


def test_error_nan_float_tensor(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    tensors["model.norm.weight"] = torch.full((32,), float("nan"))
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(
        CheckpointError, match="model.norm.weight in model.safetensors contains NaN"
    ):
        load_model(directory)


def test_error_invalid_packed_code(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    tensors["model.layers.0.self_attn.o_proj.weight"][0, 0] = 0xFF
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(
        CheckpointError,
        match="model.layers.0.self_attn.o_proj.weight in model.safetensors: packed weights hold "
        "the invalid 2-bit code 3",
    ):
        load_model(directory)


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        (torch.zeros(1), "must be positive and finite, got 0.0"),
        (torch.tensor([float("inf")]), "must be positive and finite, got inf"),
        (torch.ones(2), r"must be one floating-point value of shape \(\) or \(1,\)"),
        (torch.ones(1, dtype=torch.int64), "must be one floating-point value"),
    ],
)
def test_error_bad_weight_scale(tmp_path, latent, scale, message):
    tensors = _good(tmp_path, latent)
    tensors["model.layers.1.mlp.up_proj.weight_scale"] = scale
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(
        CheckpointError,
        match=f"tensor model.layers.1.mlp.up_proj.weight_scale in model.safetensors {message}",
    ):
        load_model(directory)


def test_error_unexpected_tensor(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    tensors["model.layers.5.mlp.up_proj.weight"] = torch.zeros(3)
    directory = _write(tmp_path / "c", tensors)
    with pytest.raises(
        CheckpointError,
        match="1 tensor.s. that a BitNet model of this config does not have: "
        "model.layers.5.mlp.up_proj.weight",
    ):
        load_model(directory)


def test_error_tied_head_differs(tmp_path):
    config = {**ref.TINY_CONFIG, "tie_word_embeddings": True}
    tensors = ref.offline_tensors(ref.latent_tensors(config, seed=2), config)
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"] + 1.0
    directory = _write(tmp_path / "c", tensors, config=config)
    with pytest.raises(
        CheckpointError,
        match="lm_head.weight in model.safetensors differs from model.embed_tokens.weight, but "
        "tie_word_embeddings is true",
    ):
        load_model(directory)


def test_error_truncated_file(tmp_path, latent):
    directory = _write(tmp_path / "c", _good(tmp_path, latent))
    path = directory / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(
        CheckpointError,
        match=r"model.safetensors: not a readable safetensors file \(truncated or corrupt\?\)",
    ):
        load_model(directory)


def test_error_corrupt_header(tmp_path, latent):
    directory = _write(tmp_path / "c", _good(tmp_path, latent))
    (directory / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors"):
        load_model(directory)


def test_error_truncated_shard(tmp_path, latent):
    directory = _write(tmp_path / "c", _good(tmp_path, latent), shards=2)
    shard = directory / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-8])
    with pytest.raises(
        CheckpointError, match="model-00002-of-00002.safetensors: not a readable safetensors"
    ):
        load_model(directory)


def test_error_missing_shard(tmp_path, latent):
    directory = _write(tmp_path / "c", _good(tmp_path, latent), shards=2)
    (directory / "model-00001-of-00002.safetensors").unlink()
    with pytest.raises(
        CheckpointError,
        match="model.safetensors.index.json: lists shard model-00001-of-00002.safetensors, "
        "which is not found",
    ):
        load_model(directory)


def test_error_index_names_wrong_shard(tmp_path, latent):
    directory = _write(tmp_path / "c", _good(tmp_path, latent), shards=2)
    index_path = directory / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    first = sorted(index["weight_map"])[0]
    index["weight_map"][first] = "model-00002-of-00002.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="index.json does not list"):
        load_model(directory)


def test_error_index_lists_absent_tensor(tmp_path, latent):
    directory = _write(tmp_path / "c", _good(tmp_path, latent), shards=2)
    index_path = directory / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(
        CheckpointError,
        match="lists tensor model.extra.weight in model-00001-of-00002.safetensors, which does "
        "not hold it",
    ):
        load_model(directory)


def test_error_index_escapes_directory(tmp_path, latent):
    directory = _write(tmp_path / "c", _good(tmp_path, latent), shards=2)
    index_path = directory / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    first = sorted(index["weight_map"])[0]
    index["weight_map"][first] = "../elsewhere.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="which is not a file name in the checkpoint"):
        load_model(directory)


def test_error_tensor_in_two_shards(tmp_path, latent):
    tensors = _good(tmp_path, latent)
    directory = _write(tmp_path / "c", tensors, shards=2)
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    name = next(n for n, f in index["weight_map"].items() if f.startswith("model-00001"))
    extra = directory / "model-00002-of-00002.safetensors"
    part = load_file(str(extra))
    part[name] = tensors[name]
    save_file(part, str(extra))
    with pytest.raises(CheckpointError, match=f"tensor {re.escape(name)} is also stored in"):
        load_model(directory)


def test_error_onebit_version(tmp_path):
    save_checkpoint(_inference_model(), None, tmp_path / "own")
    path = tmp_path / "own" / "config.json"
    values = json.loads(path.read_text())
    values["onebit"]["format_version"] = 7
    path.write_text(json.dumps(values))
    with pytest.raises(CheckpointError, match="onebit.format_version must be 1, got 7"):
        load_model(tmp_path / "own")


def test_error_onebit_tokenizer(tmp_path):
    save_checkpoint(_inference_model(), None, tmp_path / "own")
    path = tmp_path / "own" / "config.json"
    values = json.loads(path.read_text())
    values["onebit"]["tokenizer"] = {"type": "bpe", "vocab": "ab"}
    path.write_text(json.dumps(values))
    with pytest.raises(
        CheckpointError, match="onebit.tokenizer: tokenizer type must be 'char', got 'bpe'"
    ):
        load_model(tmp_path / "own")


def test_error_onebit_tokenizer_too_large(tmp_path):
    save_checkpoint(_inference_model(), None, tmp_path / "own")
    path = tmp_path / "own" / "config.json"
    values = json.loads(path.read_text())
    values["onebit"]["tokenizer"] = {
        "type": "char",
        "vocab": "".join(chr(200 + i) for i in range(40)),
    }
    path.write_text(json.dumps(values))
    with pytest.raises(
        CheckpointError, match="onebit.tokenizer has 40 tokens but vocab_size is 37"
    ):
        load_model(tmp_path / "own")


def test_load_model_catalogue_name_points_to_simulate():
    with pytest.raises(CheckpointError, match="'bitnet-2b-4t' is a model of the simulator's"):
        load_model("bitnet-2b-4t")
