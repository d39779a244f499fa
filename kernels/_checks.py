"""Input checks shared by the kernels: each raises with the value and the rule it broke."""

import numpy as np
import torch

_TERNARY_NAME = "ternary codes in {-1, 0, 1}"


def require_tensor(value, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def require_dtype(value: torch.Tensor, name: str, dtypes: tuple[torch.dtype, ...]) -> None:
    if value.dtype not in dtypes:
        allowed = ", ".join(str(d) for d in dtypes)
        raise TypeError(f"{name} must have dtype {allowed}, got {value.dtype}")


def require_finite(value: torch.Tensor, name: str) -> None:
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = value[~torch.isfinite(value)].flatten()[0].item()
        raise ValueError(f"{name} must be finite, found {bad}")


def require_nonempty(value: torch.Tensor, name: str) -> None:
    if value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")


def require_ternary(value: torch.Tensor, name: str) -> None:
    bad = (value != 0) & (value != 1) & (value != -1)
    if bool(bad.any()):
        index = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(
            f"{name} must hold {_TERNARY_NAME}, found {value[index].item()} at index {index}"
        )


def require_ternary_array(value: np.ndarray, name: str) -> None:
    bad = (value != 0) & (value != 1) & (value != -1)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must hold {_TERNARY_NAME}, found {value[index]} at index {index}")
