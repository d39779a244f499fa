"""Devices that run the integer core of BitLinear layers, and their per-layer statistics.

A device is used in two steps: `Device.upload` takes a layer's ternary codes once and returns a
handle, then `Device.run` computes the int32 accumulators of int8 activation codes for that
handle as often as the model calls the layer. Every device returns exactly the integers of
`kernels.ternary_matmul`; they differ in what else they report. The simulator device (`sim`) adds
the modelled cycles, time and energy of the accelerator described by a `sim.Design`; boards and
the RTL follow the same interface.
"""

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import numpy as np
import torch

import kernels
import sim

__all__ = [
    "DEVICE_NAMES",
    "Device",
    "LayerStats",
    "ReferenceDevice",
    "SimDevice",
    "make_device",
]

logger = logging.getLogger(__name__)

DEVICE_NAMES = ("reference", "sim", "rtl", "serial:PORT", "pynq")
"""Names `make_device` accepts: ``rtl`` is the virtual board (`hostlib.board`), ``serial:PORT``
a board on a serial port, ``pynq`` a Zynq board under PYNQ."""


@dataclass
class LayerStats:
    """Per-layer figures a device measured or modelled, summed over every call to the layer.

    ``cycles``, ``modelled_time_s`` and ``energy_j`` are None on devices that model no hardware.
    ``decode_*`` fields cover only the calls with one token (decode steps).
    """

    name: str
    out_features: int
    in_features: int
    calls: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    cycles: int | None = None
    modelled_time_s: float | None = None
    energy_j: float | None = None
    bound: str | None = None
    decode_calls: int = 0
    decode_cycles: int | None = None
    decode_time_s: float | None = None
    decode_energy_j: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Device(ABC):
    """A target for the integer core of BitLinear layers."""

    name: str = "device"

    def __init__(self) -> None:
        self._stats: list[LayerStats] = []

    def upload(self, name: str, w_q: torch.Tensor) -> int:
        """Upload the int8 ternary codes ``[N, K]`` of layer ``name`` and return its handle."""
        if not isinstance(w_q, torch.Tensor) or w_q.dtype != torch.int8 or w_q.dim() != 2:
            raise TypeError(f"layer {name!r}: weights must be a 2-D int8 tensor of ternary codes")
        outside = (w_q < -1) | (w_q > 1)
        if bool(outside.any()):
            row, col = (int(i) for i in torch.nonzero(outside)[0])
            raise ValueError(
                f"layer {name!r}: weights must be ternary codes in {{-1, 0, 1}}, found "
                f"{int(w_q[row, col])} at ({row}, {col})"
            )
        handle = len(self._stats)
        self._upload(handle, name, w_q)
        self._stats.append(LayerStats(name, int(w_q.shape[0]), int(w_q.shape[1])))
        return handle

    def run(self, handle: int, x_q: torch.Tensor) -> torch.Tensor:
        """Return layer ``handle``'s int32 accumulators ``[..., N]`` for int8 ``x_q [..., K]``."""
        stats = self._stats[handle]
        if x_q.dtype != torch.int8 or x_q.shape[-1] != stats.in_features:
            raise ValueError(
                f"layer {stats.name!r}: activations must be int8 [..., {stats.in_features}], "
                f"got {x_q.dtype} {tuple(x_q.shape)}"
            )
        lead_shape = x_q.shape[:-1]
        # [..., K] -> [T, K]: every leading position is one token vector.
        x_2d = x_q.reshape(-1, stats.in_features)
        start = time.perf_counter()
        acc = self._run(handle, x_2d, stats)
        stats.wall_s += time.perf_counter() - start
        stats.calls += 1
        stats.tokens += x_2d.shape[0]
        return acc.reshape(*lead_shape, stats.out_features)

    def stats(self) -> list[LayerStats]:
        """Return the per-layer statistics, in upload order."""
        return list(self._stats)

    def reset_stats(self) -> None:
        """Zero the counters of every layer, keeping the uploaded weights."""
        self._stats = [LayerStats(s.name, s.out_features, s.in_features) for s in self._stats]

    def describe(self) -> dict:
        """Return a JSON-ready description of the device."""
        return {"name": self.name}

    def close(self) -> None:  # noqa: B027 (optional hook, most devices hold nothing)
        """Release what the device holds; the reference and sim devices hold nothing."""

    @abstractmethod
    def _upload(self, handle: int, name: str, w_q: torch.Tensor) -> None: ...

    @abstractmethod
    def _run(self, handle: int, x_2d: torch.Tensor, stats: LayerStats) -> torch.Tensor: ...


class ReferenceDevice(Device):
    """The PyTorch reference: `kernels.ternary_matmul`, no hardware model."""

    name = "reference"

    def __init__(self) -> None:
        super().__init__()
        self._weights: list[torch.Tensor] = []

    def _upload(self, handle: int, name: str, w_q: torch.Tensor) -> None:
        self._weights.append(w_q.contiguous())

    def _run(self, handle: int, x_2d: torch.Tensor, stats: LayerStats) -> torch.Tensor:
        return kernels.ternary_matmul(x_2d, self._weights[handle])


class SimDevice(Device):
    """The cycle-approximate simulator of the accelerator ``design`` (a `sim.Design`).

    Its accumulators are computed by the simulator's engine fold by fold, and each call adds the
    modelled cycles, time and energy to the layer's statistics.
    """

    name = "sim"

    def __init__(self, design: "sim.Design") -> None:
        super().__init__()
        self.design = design
        self._programs: list = []

    def _upload(self, handle: int, name: str, w_q: torch.Tensor) -> None:
        self._programs.append(sim.prepare_layer(self.design, w_q.numpy(), name=name))

    def _run(self, handle: int, x_2d: torch.Tensor, stats: LayerStats) -> torch.Tensor:
        result = sim.run_layer(self._programs[handle], np.ascontiguousarray(x_2d.numpy()))
        stats.cycles = (stats.cycles or 0) + int(result.cycles)
        stats.modelled_time_s = (stats.modelled_time_s or 0.0) + float(result.time_s)
        stats.energy_j = (stats.energy_j or 0.0) + float(result.energy_j)
        if x_2d.shape[0] == 1 or stats.bound is None:
            stats.bound = result.bound
        if x_2d.shape[0] == 1:
            stats.decode_calls += 1
            stats.decode_cycles = (stats.decode_cycles or 0) + int(result.cycles)
            stats.decode_time_s = (stats.decode_time_s or 0.0) + float(result.time_s)
            stats.decode_energy_j = (stats.decode_energy_j or 0.0) + float(result.energy_j)
        return torch.from_numpy(result.acc)

    def describe(self) -> dict:
        return {"name": self.name, "design": self.design.to_dict()}


def make_device(spec: str, design: "sim.Design | None" = None) -> Device:
    """Create the device named ``spec`` (one of `DEVICE_NAMES`).

    Raises
    ------
    ValueError
        If ``spec`` names no device, or a device other than ``reference`` is asked for without
        a design, or the design has no RTL (``rtl``).
    hostlib.transports.TransportError
        If the serial port cannot be opened.
    hostlib.board.BoardError
        If the board does not answer or is built for another design.
    NotImplementedError
        For ``pynq`` where the pynq package is missing.
    """
    if spec == "reference":
        return ReferenceDevice()
    if spec == "sim":
        if design is None:
            raise ValueError("the sim device needs a design (a sim.Design)")
        return SimDevice(design)
    if spec in ("rtl", "pynq") or spec.startswith("serial:"):
        if design is None:
            raise ValueError(f"device {spec!r} needs a design (a sim.Design)")
        from hostlib import board, transports

        if spec == "rtl":
            return board.open_virtual_board(design)
        if spec == "pynq":
            return board.BoardDevice(transports.PynqTransport(), design, name="pynq")
        port = spec.partition(":")[2]
        if not port:
            raise ValueError("device 'serial:PORT' needs a port, for example serial:/dev/ttyUSB0")
        return board.BoardDevice(transports.SerialTransport(port), design, name=spec)
    raise ValueError(f"unknown device {spec!r}; choose one of: {', '.join(DEVICE_NAMES)}")
