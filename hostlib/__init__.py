"""hostlib: loads 1-bit LLMs, offloads their BitLinear layers to a device, and the CLI."""

from hostlib.checkpoint import DEMO, CheckpointError, demo_path, load_model, save_checkpoint
from hostlib.devices import (
    DEVICE_NAMES,
    Device,
    LayerStats,
    ReferenceDevice,
    SimDevice,
    make_device,
)
from hostlib.model import BitNetConfig, BitNetForCausalLM, KVCache
from hostlib.offload import MismatchError, OffloadedBitLinear, offload
from hostlib.runner import GenerationResult, generate_on_device
from hostlib.tokenizer import CharTokenizer

__all__ = [
    "DEMO",
    "DEVICE_NAMES",
    "BitNetConfig",
    "BitNetForCausalLM",
    "CharTokenizer",
    "CheckpointError",
    "Device",
    "GenerationResult",
    "KVCache",
    "LayerStats",
    "MismatchError",
    "OffloadedBitLinear",
    "ReferenceDevice",
    "SimDevice",
    "demo_path",
    "generate_on_device",
    "load_model",
    "make_device",
    "offload",
    "save_checkpoint",
]
