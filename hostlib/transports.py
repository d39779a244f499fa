"""Byte transports between the host and a board: a serial port, PYNQ, the virtual board, faults.

A transport moves raw bytes; framing, CRCs and retries are `hostlib.board.BoardDevice`'s job.
`Transport.read` waits at most ``timeout`` seconds and returns what arrived (possibly nothing),
so no caller ever blocks forever.
"""

import os
import random
import select
import subprocess
import time
from abc import ABC, abstractmethod

__all__ = [
    "FaultyTransport",
    "PipeTransport",
    "PynqTransport",
    "SerialTransport",
    "Transport",
    "TransportError",
]


class TransportError(RuntimeError):
    """The transport itself failed: the port cannot be opened, or the board process died."""


class Transport(ABC):
    """A bidirectional byte channel to a board."""

    name = "transport"

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send ``data`` whole."""

    @abstractmethod
    def read(self, timeout: float) -> bytes:
        """Return the bytes available within ``timeout`` seconds; b"" if none arrived."""

    def discard_input(self) -> None:
        """Drop every byte already received and not yet read."""
        while self.read(0.0):
            pass

    def describe(self) -> dict:
        return {"transport": self.name}

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the channel."""


class PipeTransport(Transport):
    """A board program started as a subprocess, spoken to over its stdin and stdout.

    Raises
    ------
    TransportError
        From `write` and `read` once the process has exited, with its exit code.
    """

    name = "pipe"

    def __init__(self, command: list[str]) -> None:
        self.command = list(command)
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )

    def _check_alive(self) -> None:
        code = self._process.poll()
        if code is not None:
            raise TransportError(
                f"the board process {self.command[0]} exited with code {code}, so it cannot reply"
            )

    def write(self, data: bytes) -> None:
        self._check_alive()
        try:
            self._process.stdin.write(data)
        except (BrokenPipeError, OSError) as error:
            raise TransportError(f"writing to the board process failed: {error}") from None

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._process.stdout], [], [], max(timeout, 0.0))
        if not ready:
            self._check_alive()
            return b""
        data = os.read(self._process.stdout.fileno(), 1 << 16)
        if not data:
            self._process.wait(timeout=1.0)
            self._check_alive()
        return data

    def describe(self) -> dict:
        return {"transport": self.name, "command": self.command}

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process.stdout.close()


class SerialTransport(Transport):
    """A board on a serial port (a UART bridge), through pyserial.

    Raises
    ------
    TransportError
        If the port cannot be opened; the message names the port and pyserial's reason.
    """

    name = "serial"

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        import serial

        self.port = port
        self.baudrate = baudrate
        try:
            self._serial = serial.Serial(port, baudrate=baudrate, timeout=0)
        except (serial.SerialException, OSError, ValueError) as error:
            raise TransportError(f"cannot open serial port {port!r}: {error}") from None

    def write(self, data: bytes) -> None:
        self._serial.write(data)
        self._serial.flush()

    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            waiting = self._serial.in_waiting
            if waiting:
                return self._serial.read(waiting)
            if time.monotonic() >= deadline:
                return b""
            time.sleep(0.001)

    def describe(self) -> dict:
        return {"transport": self.name, "port": self.port, "baudrate": self.baudrate}

    def close(self) -> None:
        self._serial.close()


class PynqTransport(Transport):
    """A Zynq board under PYNQ: the byte stream over AXI DMA of an overlay.

    The overlay must hold the front end behind the AXI-Stream adapter and a DMA named ``dma``
    (docs/boards.md). This transport has not been run here: no Zynq board is attached.

    Raises
    ------
    NotImplementedError
        If the ``pynq`` package is missing (it exists only on a PYNQ board image).
    """

    name = "pynq"

    def __init__(self, bitfile: str = "onebit.bit", buffer_bytes: int = 1 << 16) -> None:
        try:
            import pynq
        except ImportError:
            raise NotImplementedError(
                "the pynq transport needs the pynq package, which runs on a Zynq board's PYNQ "
                "image and is not installed here; use 'rtl' for the virtual board or "
                "'serial:PORT' for a UART board"
            ) from None
        self._overlay = pynq.Overlay(bitfile)
        self._dma = self._overlay.dma
        self._send = pynq.allocate(shape=(buffer_bytes,), dtype="u1")
        self._receive = pynq.allocate(shape=(buffer_bytes,), dtype="u1")
        self.bitfile = bitfile

    def write(self, data: bytes) -> None:
        self._send[: len(data)] = list(data)
        self._dma.sendchannel.transfer(self._send, nbytes=len(data))
        self._dma.sendchannel.wait()

    def read(self, timeout: float) -> bytes:
        # The adapter ends each reply with TLAST, so one receive transfer is one reply.
        # NOTE: never run on a board; the S2MM length register offset (0x58) is from the AXI
        # DMA register map and is read through a private PYNQ attribute.
        self._dma.recvchannel.transfer(self._receive)
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._dma.recvchannel.idle:
            if time.monotonic() >= deadline:
                return b""
            time.sleep(0.0005)
        length = int(self._dma.recvchannel._mmio.read(0x58))  # S2MM_LENGTH register
        return bytes(self._receive[:length])

    def describe(self) -> dict:
        return {"transport": self.name, "bitfile": self.bitfile}


class FaultyTransport(Transport):
    """Wrap ``inner`` and drop, corrupt, duplicate or delay bytes in both directions.

    Each byte independently meets at most one fault, with the given probabilities; ``delay``
    is the probability that a write pauses ``delay_s`` seconds at a random point.

    Raises
    ------
    ValueError
        If a probability is outside [0, 1] or they sum to more than 1.
    """

    def __init__(
        self,
        inner: Transport,
        *,
        drop: float = 0.0,
        corrupt: float = 0.0,
        duplicate: float = 0.0,
        delay: float = 0.0,
        delay_s: float = 0.01,
        seed: int = 0,
    ) -> None:
        rates = {"drop": drop, "corrupt": corrupt, "duplicate": duplicate, "delay": delay}
        for key, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{key} must be a probability in [0, 1], got {value}")
        if drop + corrupt + duplicate > 1.0:
            raise ValueError(
                f"drop + corrupt + duplicate must be at most 1, got {drop + corrupt + duplicate}"
            )
        self.inner = inner
        self.rates = rates
        self.delay_s = delay_s
        self.name = f"faulty {inner.name}"
        self._rng = random.Random(seed)
        self.injected = {"drop": 0, "corrupt": 0, "duplicate": 0, "delay": 0}

    def _mangle(self, data: bytes) -> bytes:
        out = bytearray()
        drop, corrupt, duplicate = (self.rates[k] for k in ("drop", "corrupt", "duplicate"))
        for byte in data:
            draw = self._rng.random()
            if draw < drop:
                self.injected["drop"] += 1
            elif draw < drop + corrupt:
                self.injected["corrupt"] += 1
                out.append(byte ^ (1 << self._rng.randrange(8)))
            elif draw < drop + corrupt + duplicate:
                self.injected["duplicate"] += 1
                out += bytes([byte, byte])
            else:
                out.append(byte)
        return bytes(out)

    def write(self, data: bytes) -> None:
        data = self._mangle(data)
        if data and self._rng.random() < self.rates["delay"]:
            self.injected["delay"] += 1
            cut = self._rng.randrange(len(data))
            self.inner.write(data[:cut])
            time.sleep(self.delay_s)
            data = data[cut:]
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        return self._mangle(self.inner.read(timeout))

    def describe(self) -> dict:
        return {**self.inner.describe(), "faults": dict(self.rates), "injected": self.injected}

    def close(self) -> None:
        self.inner.close()
