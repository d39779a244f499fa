"""Offloading: swap every BitLinear of a model for one whose integer core runs on a device."""

import torch
from torch import nn

import kernels
from hostlib.devices import Device

__all__ = ["MismatchError", "OffloadedBitLinear", "offload"]


class MismatchError(RuntimeError):
    """A device returned accumulators or logits that differ from the PyTorch reference."""


class OffloadedBitLinear(kernels.BitLinear):
    """A `kernels.BitLinear` whose integer core runs on ``device``.

    With ``check=True`` every call also computes the reference accumulators with
    `kernels.ternary_matmul` and raises `MismatchError` on the first difference.
    """

    def __init__(self, layer: kernels.BitLinear, device: Device, check: bool = False) -> None:
        super().__init__(layer.weight, layer.weight_scale, layer.convention, layer.name)
        self.device = device
        self.check = check
        self.handle = device.upload(layer.name, self.weight)

    def integer_core(self, x_q: torch.Tensor) -> torch.Tensor:
        acc = self.device.run(self.handle, x_q)
        if self.check:
            expected = kernels.ternary_matmul(x_q, self.weight)
            if not torch.equal(acc, expected):
                index = tuple(int(i) for i in torch.nonzero(acc != expected)[0])
                raise MismatchError(
                    f"layer {self.name!r} on device {self.device.name!r}: accumulator {index} is "
                    f"{int(acc[index])}, the reference computes {int(expected[index])}"
                )
        return acc


def offload(model: nn.Module, device: Device, *, check: bool = False) -> nn.Module:
    """Replace every `kernels.BitLinear` in ``model`` with one that runs on ``device``.

    The weights are uploaded once, here, in the order of ``model.named_modules()``. The model is
    changed in place and returned. Layers already offloaded are moved to the new device.

    Raises
    ------
    ValueError
        If ``model`` holds no BitLinear layer.
    """
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, kernels.BitLinear)
    ]
    if not targets:
        raise ValueError(f"{type(model).__name__} holds no kernels.BitLinear layer to offload")
    for name, module in targets:
        if not module.name:
            module.name = name
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child_name, OffloadedBitLinear(module, device, check=check))
    return model
