"""`BoardDevice`: BitLinear layers run on a board, or on the RTL as a virtual board.

The host speaks the protocol of `rtl.protocol` over a `hostlib.transports.Transport`. A board
computes one ``tile_n`` x ``tile_k`` weight tile at a time and keeps ``slots`` tiles on chip,
both given in its status reply. The host cuts each layer into tiles, zero-padded at the edges,
and adds the partial accumulators of a row of tiles. Zero weights and zero activations add
nothing, so the sums are exact. Tiles go into slots, the least recently used one giving way
when all are taken.

Reliability: every request waits at most ``timeout_s`` for its reply. A reply that is missing,
fails its CRC, carries another sequence number or reports an error is answered by sending the
request again (every command is idempotent), up to ``retries`` times; then `BoardError` says
which command failed and why. A result is used only from a reply whose CRC, sequence number,
status and length are all correct.
"""

import logging
import time
from collections import OrderedDict

import numpy as np
import torch

import sim
from hostlib.devices import Device, LayerStats
from hostlib.transports import PipeTransport, Transport, TransportError
from rtl import protocol as P
from rtl.spec import UnitSpec

__all__ = ["BoardDevice", "BoardError", "default_tile", "open_virtual_board"]

logger = logging.getLogger(__name__)

_DATAPATH_CODES = {"ternary": 0, "xnor": 1}


class BoardError(RuntimeError):
    """The board sent no valid reply after every retry, or it was built for another design."""


class _BuffersLost(Exception):
    """The board refused a run because its weight or activation buffer is not written."""


def default_tile(design: "sim.Design") -> tuple[int, int]:
    """Return the tile ``(tile_n, tile_k)`` of a virtual board: about 64 x 128, PE and SIMD
    multiples, so that one weight write stays far below the 64 KiB frame limit."""
    pe, simd = design.pe, design.simd
    return pe * max(1, -(-64 // pe)), simd * max(1, -(-128 // simd))


class BoardDevice(Device):
    """A board reached through ``transport``, running the integer core of every layer.

    Parameters
    ----------
    transport : hostlib.transports.Transport
        The byte channel; the device closes it in `close`.
    design : sim.Design
        The design the board was built from; its PE, SIMD, datapath and activation width must
        match the board's status reply.
    timeout_s : float
        Seconds to wait for each reply.
    retries : int
        Extra attempts per request after a missing or bad reply.
    name : str
        The device name used in messages and `describe`.

    Raises
    ------
    BoardError
        If the board sends no valid reply to the status request, or was built for another
        design.
    """

    def __init__(
        self,
        transport: Transport,
        design: "sim.Design",
        *,
        timeout_s: float = 2.0,
        retries: int = 4,
        name: str = "board",
    ) -> None:
        super().__init__()
        self.name = name
        self.transport = transport
        self.design = design
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self._seq = 0
        self._decoder = P.FrameDecoder()
        self._tiles: list[list[list[bytes]]] = []
        # Which tile each weight slot of the board holds, least recently used first.
        self._slots: OrderedDict[tuple[int, int, int], int] = OrderedDict()
        self.retried = 0
        self.board_cycles: list[dict] = []
        try:
            status = self.status()
        except (BoardError, TransportError):
            transport.close()
            raise
        self._check_board(status)
        self.board_status = status
        self.unit = UnitSpec(design, status.tile_n, status.tile_k, 1)
        self._act_fast = design.datapath == "ternary" and design.act_bits == 8

    def _check_board(self, status: P.BoardStatus) -> None:
        design = self.design
        expected = {
            "version": P.PROTOCOL_VERSION,
            "datapath": _DATAPATH_CODES.get(design.datapath, -1),
            "pe": design.pe,
            "simd": design.simd,
            "act_bits": design.act_bits,
        }
        for key, value in expected.items():
            if getattr(status, key) != value:
                self.transport.close()
                raise BoardError(
                    f"the board reports {key} = {getattr(status, key)}, the design needs "
                    f"{value}: load the bitstream built for this design"
                )

    # -- protocol -------------------------------------------------------------------------

    def request(self, cmd: int, payload: bytes = b"", reply_len: int = 0) -> bytes:
        """Send one request and return its reply's data (after the status byte).

        Raises
        ------
        BoardError
            After ``retries`` further attempts that got no reply, a corrupt one, an error
            status or a reply of the wrong length.
        """
        name = P.CMD_NAMES.get(cmd, f"0x{cmd:02x}")
        problem = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                logger.debug("%s: attempt %d after %s", name, attempt + 1, problem)
            self._seq = (self._seq + 1) & 0xFF
            seq = self._seq
            self.transport.discard_input()
            self._decoder = P.FrameDecoder()
            self.transport.write(P.encode_frame(cmd, seq, payload))
            frame = self._await(cmd, seq)
            if frame is None:
                problem = f"no reply within {self.timeout_s:g} s"
                continue
            if frame.cmd != cmd | P.REPLY_FLAG:
                problem = f"a reply to command 0x{frame.cmd & 0x7F:02x}"
                continue
            status = frame.payload[0] if frame.payload else None
            if status == P.ERR_STATE and cmd == P.CMD_RUN:
                # The board lost a buffer (a garbled request can clear it): the caller
                # writes both again rather than repeating the run.
                raise _BuffersLost()
            if status != P.STATUS_OK:
                problem = f"error reply: {P.STATUS_NAMES.get(status, status)}"
                continue
            data = frame.payload[1:]
            if len(data) != reply_len:
                problem = f"reply of {len(data)} bytes, expected {reply_len}"
                continue
            return data
        raise BoardError(
            f"board request '{name}' failed after {self.retries + 1} attempts; last problem: "
            f"{problem}. The board stopped answering correctly: check the connection and the "
            "bitstream"
        )

    def _batch(self, requests: list[tuple[int, bytes, int]]) -> list[bytes] | None:
        """Send ``requests`` (command, payload, reply length) back to back and return their
        replies' data, or None if any reply is missing, corrupt or not OK.

        The board executes requests in order, so one write and one wait replace a round trip
        per request. The caller falls back to `request`, which retries one at a time.
        """
        seqs = []
        frames = []
        for cmd, payload, _ in requests:
            self._seq = (self._seq + 1) & 0xFF
            seqs.append(self._seq)
            frames.append(P.encode_frame(cmd, self._seq, payload))
        self.transport.discard_input()
        self._decoder = P.FrameDecoder()
        self.transport.write(b"".join(frames))
        replies: dict[int, P.Frame] = {}
        deadline = time.monotonic() + self.timeout_s
        while len(replies) < len(seqs):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            for frame in self._decoder.feed(self.transport.read(min(left, 0.05))):
                if frame.crc_ok and frame.seq in seqs:
                    replies[frame.seq] = frame
        data = []
        for (cmd, _, reply_len), seq in zip(requests, seqs, strict=True):
            frame = replies[seq]
            if frame.cmd != cmd | P.REPLY_FLAG or frame.payload[:1] != bytes([P.STATUS_OK]):
                return None
            if len(frame.payload) != 1 + reply_len:
                return None
            data.append(frame.payload[1:])
        return data

    def _await(self, cmd: int, seq: int) -> P.Frame | None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            for frame in self._decoder.feed(self.transport.read(min(left, 0.05))):
                # Stale, duplicated or corrupt frames are skipped; only this attempt's counts.
                if frame.crc_ok and frame.seq == seq:
                    return frame

    def status(self) -> P.BoardStatus:
        """Return the board's status reply."""
        return P.BoardStatus.unpack(self.request(P.CMD_STATUS, reply_len=P.STATUS_BYTES))

    def reset_board(self) -> None:
        """Clear the board's buffers and counters."""
        self.request(P.CMD_RESET)
        self._slots.clear()

    # -- Device ---------------------------------------------------------------------------

    def _upload(self, handle: int, name: str, w_q: torch.Tensor) -> None:
        unit = self.unit
        n, k = w_q.shape
        rows, cols = -(-n // unit.n), -(-k // unit.k)
        padded = np.zeros((rows * unit.n, cols * unit.k), dtype=np.int8)
        padded[:n, :k] = w_q.numpy()
        beat_bytes = (unit.pe * unit.simd * unit.weight_bits + 7) // 8
        tiles = []
        for r in range(rows):
            row = []
            for c in range(cols):
                block = padded[r * unit.n : (r + 1) * unit.n, c * unit.k : (c + 1) * unit.k]
                words = unit.pack_weights(block)
                row.append(b"".join(w.to_bytes(beat_bytes, "little") for w in words))
            tiles.append(row)
        self._tiles.append(tiles)
        self.board_cycles.append({"name": name, "cycles": 0, "decode_cycles": 0, "runs": 0})

    def _pack_act(self, x: np.ndarray) -> bytes:
        if self._act_fast:
            # 8-bit lanes, lane l at bits 8 l of a beat: the int8 codes in order, little-endian.
            return x.astype(np.int8).tobytes()
        unit = self.unit
        beat_bytes = (unit.simd * (1 if unit.design.datapath == "xnor" else unit.act_bits) + 7) // 8
        words = unit.pack_activations(x.reshape(1, -1))
        return b"".join(w.to_bytes(beat_bytes, "little") for w in words)

    def _run(self, handle: int, x_2d: torch.Tensor, stats: LayerStats) -> torch.Tensor:
        unit = self.unit
        tiles = self._tiles[handle]
        tokens, k = x_2d.shape
        n = stats.out_features
        cols = len(tiles[0])
        x = np.zeros((tokens, cols * unit.k), dtype=np.int8)
        x[:, :k] = x_2d.numpy()
        acc = np.zeros((tokens, len(tiles) * unit.n), dtype=np.int64)
        cycles = 0
        for r, row in enumerate(tiles):
            for c, tile in enumerate(row):
                for t in range(tokens):
                    act = self._pack_act(x[t, c * unit.k : (c + 1) * unit.k])
                    key = (handle, r, c)
                    replies = None
                    if key in self._slots:
                        replies = self._batch(
                            [
                                (P.CMD_WRITE_ACT, act, 0),
                                (P.CMD_RUN, bytes([self._slots[key]]), 4),
                                (P.CMD_READ_RESULTS, b"", unit.n * 4),
                            ]
                        )
                    if replies is None:
                        # First use of the tile, or a batch that failed: one request at a time.
                        replies = [b"", self._run_tile(key, tile, act)]
                        replies.append(self.request(P.CMD_READ_RESULTS, reply_len=unit.n * 4))
                    else:
                        self._slots.move_to_end(key)
                    cycles += int.from_bytes(replies[1], "little")
                    acc[t, r * unit.n : (r + 1) * unit.n] += np.frombuffer(replies[2], dtype="<i4")
        record = self.board_cycles[handle]
        record["cycles"] += cycles
        record["runs"] += 1
        if tokens == 1:
            record["decode_cycles"] += cycles
            record["decode_calls"] = record.get("decode_calls", 0) + 1
        return torch.from_numpy(acc[:, :n].astype(np.int32))

    def _slot_for(self, key: tuple[int, int, int], tile: bytes) -> int:
        """Return the weight slot that holds tile ``key``, writing it into a free or the least
        recently used slot first."""
        if key in self._slots:
            self._slots.move_to_end(key)
            return self._slots[key]
        if len(self._slots) < self.board_status.slots:
            slot = len(self._slots)
        else:
            _, slot = self._slots.popitem(last=False)
        self.request(P.CMD_WRITE_WEIGHTS, bytes([slot]) + tile)
        self._slots[key] = slot
        return slot

    def _run_tile(self, key: tuple[int, int, int], tile: bytes, act: bytes) -> bytes:
        """Write the tile (unless a slot holds it) and the activations, run; return the run
        reply's data (the board's cycles, 4 bytes)."""
        for _ in range(self.retries + 1):
            slot = self._slot_for(key, tile)
            self.request(P.CMD_WRITE_ACT, act)
            try:
                return self.request(P.CMD_RUN, bytes([slot]), reply_len=4)
            except _BuffersLost:
                self.retried += 1
                self._slots.pop(key, None)
        raise BoardError(
            f"the board rejected the run after {self.retries + 1} fresh writes of the weights and "
            "activations: it keeps losing its buffers; check the connection"
        )

    def reset_stats(self) -> None:
        super().reset_stats()
        for record in self.board_cycles:
            record.update(cycles=0, decode_cycles=0, runs=0, decode_calls=0)

    def measured_layers(self) -> list[dict]:
        """Return each layer's cycles counted by the board per decode token, next to sim's.

        ``predicted_tiles`` is `sim.estimate_layer` summed over the layer's tiles (what the
        board should count); ``predicted_layer`` is sim's figure for the whole layer held on
        chip at once, which a board with room for it would reach.
        """
        unit = self.unit
        tile_cycles = sim.estimate_layer(self.design, unit.n, unit.k, tokens=1).cycles
        layers = []
        for record, stats in zip(self.board_cycles, self._stats, strict=True):
            calls = record.get("decode_calls", 0)
            tiles = len(self._tiles[len(layers)]) * len(self._tiles[len(layers)][0])
            whole = sim.estimate_layer(
                self.design, stats.out_features, stats.in_features, tokens=1
            ).cycles
            layers.append(
                {
                    "name": record["name"],
                    "shape": [stats.out_features, stats.in_features],
                    "tiles": tiles,
                    "board_cycles_per_token": record["decode_cycles"] / calls if calls else None,
                    "predicted_tiles": tiles * tile_cycles,
                    "predicted_layer": whole,
                }
            )
        return layers

    def describe(self) -> dict:
        return {
            "name": self.name,
            "design": self.design.to_dict(),
            "tile": [self.unit.n, self.unit.k],
            **self.transport.describe(),
            "retried_requests": self.retried,
            "layers": self.measured_layers(),
        }

    def close(self) -> None:
        self.transport.close()


def open_virtual_board(
    design: "sim.Design",
    *,
    tile: tuple[int, int] | None = None,
    timeout_cycles: int = 4096,
    slots: int = 128,
    transport_wrapper=None,
    **options,
) -> BoardDevice:
    """Build (or reuse) the virtual board of ``design`` and return a `BoardDevice` on it.

    ``transport_wrapper``, if given, wraps the pipe transport (for example in a
    `hostlib.transports.FaultyTransport`). Other keyword arguments go to `BoardDevice`.

    Raises
    ------
    ValueError, NotImplementedError
        If the design has no RTL (see `rtl.UnitSpec`).
    RuntimeError
        If the Verilator build fails.
    """
    from rtl.frontend import CommandFrontEnd
    from rtl.virtual import build_virtual_board

    tile_n, tile_k = tile or default_tile(design)
    frontend = CommandFrontEnd(design, tile_n, tile_k, timeout_cycles=timeout_cycles, slots=slots)
    build = build_virtual_board(frontend)
    transport = PipeTransport(build.command())
    if transport_wrapper is not None:
        transport = transport_wrapper(transport)
    options.setdefault("name", "rtl")
    return BoardDevice(transport, design, **options)
