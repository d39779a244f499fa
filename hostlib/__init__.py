"""hostlib: loads 1-bit LLMs and runs their layers on a device."""

from hostlib.checkpoint import DEMO, CheckpointError, demo_path, load_model, save_checkpoint
from hostlib.model import BitNetConfig, BitNetForCausalLM, KVCache
from hostlib.tokenizer import CharTokenizer

__all__ = [
    "DEMO",
    "BitNetConfig",
    "BitNetForCausalLM",
    "CharTokenizer",
    "CheckpointError",
    "KVCache",
    "demo_path",
    "load_model",
    "save_checkpoint",
]
