"""Load and save BitNet b1.58 checkpoints in the Hugging Face layout.

A checkpoint is a directory with ``config.json`` and the weights in safetensors, either one
``model.safetensors`` or shards ``model-0000X-of-0000Y.safetensors`` listed by
``model.safetensors.index.json``. ``config.json["quantization_config"]`` describes how the seven
projections of each decoder layer are stored, with the keys of `transformers`'
``BitNetQuantConfig`` (``quant_method: "bitnet"``):

=================  =================  ======================================================
linear_class       quantization_mode  tensors of each projection
=================  =================  ======================================================
``autobitlinear``  ``offline``        ``weight`` packed uint8 (or unpacked ternary codes) and
                                      ``weight_scale`` = gamma: the output is multiplied by it
``autobitlinear``  ``online``         ``weight`` latent floats, quantized here with absmean;
                                      no ``weight_scale``
``bitlinear``      ``offline``        ``weight`` packed uint8 and ``weight_scale`` = 1 / gamma:
                                      the output is divided by it
=================  =================  ======================================================

The packed layout is the one `kernels.pack_weights` writes as ``"hf"``. Embeddings, norms and the
LM head are floating point (bf16 and float16 are widened to float32).

The project's own checkpoints are the ``autobitlinear`` / ``offline`` case plus an ``onebit``
section in ``config.json`` with the tokenizer and the training metadata, so one loader reads both.
"""

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

import kernels
import sim
from hostlib.model import BitNetConfig, BitNetForCausalLM
from hostlib.tokenizer import CharTokenizer

__all__ = ["DEMO", "CheckpointError", "demo_path", "load_model", "save_checkpoint"]

logger = logging.getLogger(__name__)

DEMO = "demo"
"""Name of the built-in demo checkpoint, shipped as package data in ``hostlib/data/demo``."""

CONFIG_FILE = "config.json"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
FORMAT_VERSION = 1
"""Version of the ``onebit`` section of ``config.json`` that this module writes and reads."""

_LINEAR_CLASSES = ("autobitlinear", "bitlinear")
_MODES = ("offline", "online")
# `transformers`' BitNetQuantConfig defaults, applied (with a warning) when a key is absent.
_HF_DEFAULT_LINEAR_CLASS = "bitlinear"
_HF_DEFAULT_MODE = "offline"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, corrupt, or inconsistent files."""


@dataclass(frozen=True)
class _Scheme:
    linear_class: str
    mode: str

    @property
    def convention(self) -> str:
        return "divide" if self.linear_class == "bitlinear" else "multiply"


def demo_path() -> Path:
    """Return the directory of the built-in demo checkpoint."""
    return Path(str(resources.files("hostlib") / "data" / "demo"))


def load_model(path_or_name: str | os.PathLike | None = DEMO) -> BitNetForCausalLM:
    """Load a BitNet b1.58 checkpoint into an inference `BitNetForCausalLM`.

    Parameters
    ----------
    path_or_name : str, path-like or None
        A checkpoint directory, or ``"demo"`` (or None) for the built-in demo model.

    Returns
    -------
    BitNetForCausalLM
        In evaluation mode. ``model.tokenizer`` is the checkpoint's `CharTokenizer`, or None when
        the checkpoint has none (Hugging Face checkpoints). ``model.training_metadata`` is the
        ``onebit.training`` section of ``config.json``, or None.

    Raises
    ------
    CheckpointError
        If the path is not a checkpoint directory, a file is unreadable, truncated or corrupt, a
        config key is missing or invalid, the quantization scheme is unknown or contradicts the
        tensors, or a tensor is missing, unexpected or of the wrong shape or dtype. The message
        names the file, key or tensor.
    """
    directory = _resolve(path_or_name)
    config_path = directory / CONFIG_FILE
    values = _read_json(config_path)
    try:
        config = BitNetConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{config_path}: {error}") from None
    scheme = _read_scheme(values, config_path)
    tokenizer, training = _read_onebit_section(values, config, config_path)
    tensors = _TensorSource(directory)

    model = BitNetForCausalLM(config)
    used = set()
    floats = {}
    for name, param in model.named_parameters(remove_duplicate=True):
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        floats[name] = tensors.float_tensor(name, tuple(param.shape))
        used.add(name)
    if config.tie_word_embeddings and "lm_head.weight" in tensors.names:
        _check_tied_head(tensors, floats["model.embed_tokens.weight"])
        used.add("lm_head.weight")
    with torch.no_grad():
        for name, param in model.named_parameters(remove_duplicate=True):
            if name in floats:
                param.copy_(floats[name])

    for name, module in model.projections():
        shape = (module.out_features, module.in_features)
        codes, scale, convention = _read_projection(tensors, name, shape, scheme)
        model.set_projection(name, kernels.BitLinear(codes, scale, convention, name=name))
        used.add(f"{name}.weight")
        if scheme.mode == "offline":
            used.add(f"{name}.weight_scale")

    unexpected = sorted(tensors.names - used)
    if unexpected:
        listed = ", ".join(unexpected[:5]) + (" ..." if len(unexpected) > 5 else "")
        raise CheckpointError(
            f"{directory}: {len(unexpected)} tensor(s) that a BitNet model of this config does "
            f"not have: {listed}"
        )
    model.tokenizer = tokenizer
    model.training_metadata = training
    model.eval()
    logger.info(
        "loaded %s: %d layers, hidden %d, vocab %d, %s/%s",
        directory,
        config.num_hidden_layers,
        config.hidden_size,
        config.vocab_size,
        scheme.linear_class,
        scheme.mode,
    )
    return model


def save_checkpoint(
    model: BitNetForCausalLM,
    tokenizer: CharTokenizer | None,
    path: str | os.PathLike,
    *,
    training: dict | None = None,
) -> Path:
    """Write ``model`` as a packed checkpoint that `load_model` reads back exactly.

    The projections are packed in the ``"hf"`` layout. When every projection uses the multiply
    convention the checkpoint is ``autobitlinear``/``offline``, when every one divides it is
    ``bitlinear``/``offline``, so the stored scales are written unchanged. Float tensors are
    written as float32.

    Parameters
    ----------
    model : BitNetForCausalLM
        An inference model, or a quantization-aware training model (quantized here with
        `BitNetForCausalLM.to_inference`).
    tokenizer : CharTokenizer or None
        Stored in ``config.json["onebit"]["tokenizer"]``.
    path : str or path-like
        The checkpoint directory, created if needed; existing files are replaced.
    training : dict or None
        JSON-serializable training metadata, stored in ``config.json["onebit"]["training"]``.

    Returns
    -------
    Path
        The checkpoint directory.

    Raises
    ------
    TypeError
        If ``model`` is not a `BitNetForCausalLM` or ``tokenizer`` not a `CharTokenizer`.
    ValueError
        If ``model`` is a full-precision model, a projection is not a `kernels.BitLinear`, the
        projections mix conventions, or the tokenizer has more tokens than the model.
    """
    if not isinstance(model, BitNetForCausalLM):
        raise TypeError(f"model must be a BitNetForCausalLM, got {type(model).__name__}")
    if tokenizer is not None and not isinstance(tokenizer, CharTokenizer):
        raise TypeError(
            f"tokenizer must be a CharTokenizer or None, got {type(tokenizer).__name__}"
        )
    if model.kind == "full":
        raise ValueError("a full-precision model has no ternary weights to save in this format")
    if model.kind == "train":
        model = model.to_inference()
    if tokenizer is not None and tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} tokens, more than the model's vocab_size "
            f"({model.config.vocab_size})"
        )

    tensors = {}
    conventions = set()
    for name, module in model.projections():
        if type(module) is not kernels.BitLinear:
            raise ValueError(
                f"projection {name} is a {type(module).__name__}, not a kernels.BitLinear; save "
                "the model before offloading it"
            )
        conventions.add(module.convention)
        tensors[f"{name}.weight"] = kernels.pack_weights(module.weight, "hf")
        tensors[f"{name}.weight_scale"] = module.weight_scale.reshape(1).clone()
    if len(conventions) > 1:
        raise ValueError("the projections mix the multiply and divide conventions")
    linear_class = "bitlinear" if conventions == {"divide"} else "autobitlinear"
    for name, param in model.named_parameters(remove_duplicate=True):
        if name == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        tensors[name] = param.detach().to(torch.float32).contiguous().clone()

    values = model.config.to_dict()
    values["torch_dtype"] = "float32"
    values["quantization_config"] = {
        "quant_method": "bitnet",
        "linear_class": linear_class,
        "quantization_mode": "offline",
    }
    values["onebit"] = {
        "format_version": FORMAT_VERSION,
        "tokenizer": None if tokenizer is None else tokenizer.to_dict(),
        "training": training,
    }
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / SINGLE_FILE), metadata={"format": "pt"})
    (directory / CONFIG_FILE).write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    logger.info("saved checkpoint %s (%s, offline)", directory, linear_class)
    return directory


def _resolve(path_or_name) -> Path:
    if path_or_name is None or path_or_name == DEMO:
        directory = demo_path()
    elif isinstance(path_or_name, str | os.PathLike):
        directory = Path(path_or_name)
    else:
        raise TypeError(f"checkpoint must be a path or {DEMO!r}, got {type(path_or_name).__name__}")
    if not directory.exists():
        if isinstance(path_or_name, str) and path_or_name.lower() in sim.MODELS:
            raise CheckpointError(
                f"{path_or_name!r} is a model of the simulator's catalogue, for 'onebit simulate' "
                "and 'onebit explore', not a checkpoint; 'onebit run' needs 'demo' or a "
                "checkpoint directory (config.json and model.safetensors in the Hugging Face "
                "BitNet layout, for example a download of microsoft/bitnet-b1.58-2B-4T)"
            )
        raise CheckpointError(f"{directory} is not a checkpoint: no such file or directory")
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory} is not a checkpoint: expected a directory holding {CONFIG_FILE}"
        )
    if not (directory / CONFIG_FILE).is_file():
        raise CheckpointError(f"{directory} is not a checkpoint: {CONFIG_FILE} not found")
    return directory


def _read_json(path: Path) -> dict:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: cannot be read as JSON: {error}") from None
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: must hold a JSON object, got {type(values).__name__}")
    return values


def _read_scheme(values: dict, config_path: Path) -> _Scheme:
    quant = values.get("quantization_config")
    if quant is None:
        raise CheckpointError(
            f"{config_path}: no quantization_config; a BitNet b1.58 checkpoint needs "
            '{"quant_method": "bitnet", "linear_class": ..., "quantization_mode": ...}. For latent '
            'float weights, add linear_class "autobitlinear" and quantization_mode "online"'
        )
    if not isinstance(quant, dict):
        raise CheckpointError(
            f"{config_path}: quantization_config must be an object, got {quant!r}"
        )
    method = quant.get("quant_method")
    if method != "bitnet":
        raise CheckpointError(
            f"{config_path}: unknown quantization_config.quant_method {method!r}; "
            "only 'bitnet' is supported"
        )
    linear_class = _read_choice(
        quant, "linear_class", _LINEAR_CLASSES, _HF_DEFAULT_LINEAR_CLASS, config_path
    )
    mode = _read_choice(quant, "quantization_mode", _MODES, _HF_DEFAULT_MODE, config_path)
    if linear_class == "bitlinear" and mode == "online":
        raise CheckpointError(
            f"{config_path}: quantization_config contradicts itself: linear_class 'bitlinear' "
            "holds packed weights, but quantization_mode 'online' means latent float weights; "
            "latent weights need linear_class 'autobitlinear'"
        )
    if quant.get("use_rms_norm", False):
        raise CheckpointError(
            f"{config_path}: quantization_config.use_rms_norm = true (a norm inside each "
            "BitLinear) is not supported"
        )
    skipped = [m for m in quant.get("modules_to_not_convert") or [] if m != "lm_head"]
    if skipped:
        raise CheckpointError(
            f"{config_path}: quantization_config.modules_to_not_convert lists {skipped}; only "
            "'lm_head' may stay in full precision"
        )
    return _Scheme(linear_class, mode)


def _read_choice(
    quant: dict, key: str, choices: tuple[str, ...], default: str, config_path: Path
) -> str:
    if key not in quant:
        logger.warning(
            "%s: quantization_config has no %s; using the transformers default %r",
            config_path,
            key,
            default,
        )
        return default
    value = quant[key]
    if value not in choices:
        raise CheckpointError(
            f"{config_path}: unknown quantization_config.{key} {value!r}; "
            f"known: {', '.join(choices)}"
        )
    return value


def _read_onebit_section(
    values: dict, config: BitNetConfig, config_path: Path
) -> tuple[CharTokenizer | None, dict | None]:
    section = values.get("onebit")
    if section is None:
        return None, None
    if not isinstance(section, dict):
        raise CheckpointError(f"{config_path}: onebit must be an object, got {section!r}")
    version = section.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: onebit.format_version must be {FORMAT_VERSION}, got {version!r}"
        )
    tokenizer = None
    if section.get("tokenizer") is not None:
        try:
            tokenizer = CharTokenizer.from_dict(section["tokenizer"])
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{config_path}: onebit.tokenizer: {error}") from None
        if tokenizer.vocab_size > config.vocab_size:
            raise CheckpointError(
                f"{config_path}: onebit.tokenizer has {tokenizer.vocab_size} tokens but "
                f"vocab_size is {config.vocab_size}"
            )
    training = section.get("training")
    if training is not None and not isinstance(training, dict):
        raise CheckpointError(f"{config_path}: onebit.training must be an object, got {training!r}")
    return tokenizer, training


class _TensorSource:
    """The tensors of a checkpoint directory, single-file or sharded, with the file of each."""

    def __init__(self, directory: Path) -> None:
        self.files: dict[str, Path] = {}
        self._tensors: dict[str, torch.Tensor] = {}
        single = directory / SINGLE_FILE
        index = directory / INDEX_FILE
        if single.is_file():
            self._read_file(single, None)
        elif index.is_file():
            self._read_sharded(directory, index)
        else:
            raise CheckpointError(
                f"{directory} is not a checkpoint: neither {SINGLE_FILE} nor {INDEX_FILE} found"
            )
        self.names = set(self._tensors)

    def _read_sharded(self, directory: Path, index: Path) -> None:
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index}: weight_map must be a non-empty object")
        by_file: dict[str, set[str]] = {}
        for tensor, file_name in weight_map.items():
            if not isinstance(file_name, str) or Path(file_name).name != file_name:
                raise CheckpointError(
                    f"{index}: tensor {tensor} maps to {file_name!r}, which is not a file name "
                    "in the checkpoint directory"
                )
            by_file.setdefault(file_name, set()).add(tensor)
        for file_name, listed in sorted(by_file.items()):
            shard = directory / file_name
            if not shard.is_file():
                raise CheckpointError(f"{index}: lists shard {file_name}, which is not found")
            self._read_file(shard, listed)
            missing = sorted(listed - {n for n, f in self.files.items() if f == shard})
            if missing:
                raise CheckpointError(
                    f"{index}: lists tensor {missing[0]} in {file_name}, which does not hold it"
                )

    def _read_file(self, path: Path, listed: set[str] | None) -> None:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for name in handle.keys():
                    if name in self._tensors:
                        raise CheckpointError(
                            f"{path}: tensor {name} is also stored in {self.files[name].name}"
                        )
                    if listed is not None and name not in listed:
                        raise CheckpointError(
                            f"{path}: contains tensor {name}, which {INDEX_FILE} does not list"
                        )
                    self._tensors[name] = handle.get_tensor(name)
                    self.files[name] = path
        except (SafetensorError, OSError) as error:
            raise CheckpointError(
                f"{path}: not a readable safetensors file (truncated or corrupt?): {error}"
            ) from None

    def raw(self, name: str) -> torch.Tensor:
        if name not in self._tensors:
            raise CheckpointError(f"checkpoint is missing tensor {name}")
        return self._tensors[name]

    def where(self, name: str) -> str:
        return f"tensor {name} in {self.files[name].name}"

    def float_tensor(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        tensor = self.raw(name)
        if not tensor.is_floating_point():
            raise CheckpointError(
                f"{self.where(name)} must be floating point, got dtype {tensor.dtype}"
            )
        if tuple(tensor.shape) != shape:
            raise CheckpointError(
                f"{self.where(name)} has shape {tuple(tensor.shape)}, the config needs {shape}"
            )
        tensor = tensor.to(torch.float32)
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{self.where(name)} contains NaN or infinity")
        return tensor


def _check_tied_head(tensors: _TensorSource, embedding: torch.Tensor) -> None:
    head = tensors.float_tensor("lm_head.weight", tuple(embedding.shape))
    if not torch.equal(head, embedding):
        raise CheckpointError(
            f"{tensors.where('lm_head.weight')} differs from model.embed_tokens.weight, but "
            "tie_word_embeddings is true"
        )


def _read_projection(
    tensors: _TensorSource, name: str, shape: tuple[int, int], scheme: _Scheme
) -> tuple[torch.Tensor, torch.Tensor, str]:
    weight_name = f"{name}.weight"
    scale_name = f"{name}.weight_scale"
    weight = tensors.raw(weight_name)
    packed = kernels.packed_shape(shape, "hf")

    if scheme.mode == "online":
        if scale_name in tensors.names:
            raise CheckpointError(
                f"{tensors.where(scale_name)} contradicts quantization_mode 'online', where the "
                "scale is computed from latent weights; a stored scale means 'offline'"
            )
        if not weight.is_floating_point():
            raise CheckpointError(
                f"{tensors.where(weight_name)} has dtype {weight.dtype}, but quantization_mode "
                "'online' needs latent floating-point weights; packed uint8 weights need "
                "'offline'"
            )
        latent = tensors.float_tensor(weight_name, shape)
        codes, gamma = kernels.quantize_weights(latent)
        return codes, gamma, "multiply"

    if weight.dtype == torch.uint8:
        if tuple(weight.shape) != packed:
            raise CheckpointError(
                f"{tensors.where(weight_name)} has packed shape {tuple(weight.shape)}, the config "
                f"needs {packed} (four rows of {shape} per byte)"
            )
        try:
            codes = kernels.unpack_weights(weight, "hf", shape)
        except ValueError as error:
            raise CheckpointError(f"{tensors.where(weight_name)}: {error}") from None
    elif tuple(weight.shape) == shape:
        # Unpacked codes: `transformers`' AutoBitLinear accepts them too when offline.
        ternary = (weight == 0) | (weight == 1) | (weight == -1)
        if not bool(ternary.all()):
            raise CheckpointError(
                f"{tensors.where(weight_name)} contains non-ternary {weight.dtype} values, but "
                "quantization_mode 'offline' needs packed uint8 or ternary codes; latent "
                "weights need quantization_mode 'online'"
            )
        codes = weight.to(torch.int8)
    else:
        raise CheckpointError(
            f"{tensors.where(weight_name)} has shape {tuple(weight.shape)} and dtype "
            f"{weight.dtype}; expected packed uint8 {packed} or ternary codes {shape}"
        )

    if scale_name not in tensors.names:
        raise CheckpointError(
            f"checkpoint is missing tensor {scale_name}, which quantization_mode 'offline' needs"
        )
    scale = tensors.raw(scale_name)
    if not scale.is_floating_point() or scale.numel() != 1 or scale.dim() > 1:
        raise CheckpointError(
            f"{tensors.where(scale_name)} must be one floating-point value of shape () or (1,), "
            f"got dtype {scale.dtype} and shape {tuple(scale.shape)}"
        )
    scale = scale.to(torch.float32).reshape(())
    if not bool(torch.isfinite(scale)) or float(scale) <= 0.0:
        raise CheckpointError(
            f"{tensors.where(scale_name)} must be positive and finite, got {float(scale)}"
        )
    return codes, scale, scheme.convention
