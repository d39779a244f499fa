"""The byte protocol between a host and a board: frames, commands, status codes and the CRC.

Both ends use these definitions: the RTL command front end (`rtl.frontend`) and the host's
`hostlib.board.BoardDevice`. The byte layouts are tabulated in docs/protocol.md.

A frame, request or reply, is

    SYNC  CMD  SEQ  LEN_LO  LEN_HI  PAYLOAD[LEN]  CRC_LO  CRC_HI

with the CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final
XOR) of the bytes CMD .. the last payload byte. A reply's CMD is the request's command with
bit 7 set (`REPLY_FLAG`), and its SEQ echoes the request's. The first payload byte of a reply
is a status code (`STATUS_OK` or an error code). The rest of the payload depends on the command.
"""

import binascii
import struct
from dataclasses import dataclass

__all__ = [
    "CMD_NAMES",
    "CMD_READ_RESULTS",
    "CMD_RESET",
    "CMD_RUN",
    "CMD_STATUS",
    "CMD_WRITE_ACT",
    "CMD_WRITE_WEIGHTS",
    "CRC_INIT",
    "CRC_POLY",
    "ERR_COMMAND",
    "ERR_CRC",
    "ERR_LENGTH",
    "ERR_RANGE",
    "ERR_STATE",
    "ERR_TRUNCATED",
    "HEADER_BYTES",
    "MAX_PAYLOAD",
    "PROTOCOL_VERSION",
    "REPLY_FLAG",
    "STATUS_BYTES",
    "STATUS_NAMES",
    "STATUS_OK",
    "SYNC",
    "BoardStatus",
    "Frame",
    "FrameDecoder",
    "crc16",
    "encode_frame",
]

PROTOCOL_VERSION = 1
"""Reported in the status reply; bumped on any change of a byte layout."""

SYNC = 0xA5
"""First byte of every frame."""

REPLY_FLAG = 0x80
"""Set in the CMD byte of a reply."""

HEADER_BYTES = 5
"""SYNC, CMD, SEQ and the two length bytes."""

MAX_PAYLOAD = 0xFFFF
"""The largest payload the 16-bit length field can state."""

CRC_POLY = 0x1021
CRC_INIT = 0xFFFF

CMD_STATUS = 0x01
CMD_WRITE_WEIGHTS = 0x02
CMD_WRITE_ACT = 0x03
CMD_RUN = 0x04
CMD_READ_RESULTS = 0x05
CMD_RESET = 0x06

CMD_NAMES = {
    CMD_STATUS: "status",
    CMD_WRITE_WEIGHTS: "write weights",
    CMD_WRITE_ACT: "write activations",
    CMD_RUN: "run",
    CMD_READ_RESULTS: "read results",
    CMD_RESET: "reset",
}

STATUS_OK = 0x00
ERR_CRC = 0x01
ERR_COMMAND = 0x02
ERR_LENGTH = 0x03
ERR_RANGE = 0x04
ERR_STATE = 0x05
ERR_TRUNCATED = 0x06

STATUS_NAMES = {
    STATUS_OK: "ok",
    ERR_CRC: "CRC mismatch",
    ERR_COMMAND: "unknown command",
    ERR_LENGTH: "payload length wrong for the command",
    ERR_RANGE: "weight slot out of range (at least the board's slot count)",
    ERR_STATE: "command out of order (run before its slot and the activations were written, "
    "or read before a run)",
    ERR_TRUNCATED: "frame truncated (the board timed out waiting for its next byte)",
}

STATUS_BYTES = 24
"""Bytes after the status code in the reply to `CMD_STATUS`; layout in `BoardStatus`."""

_STATUS_FORMAT = "<BBBBHHHHIIHH"


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data``, continuing from ``crc``.

    The check value of ``b"123456789"`` is 0x29B1 (the catalogue value of this CRC).
    `binascii.crc_hqx` computes exactly this CRC (polynomial 0x1021, MSB first) from a given
    initial value, in C.
    """
    return binascii.crc_hqx(bytes(data), crc)


def encode_frame(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """Return the bytes of one frame.

    Raises
    ------
    ValueError
        If ``cmd`` or ``seq`` is not a byte, or the payload is longer than `MAX_PAYLOAD`.
    """
    for name, value in (("cmd", cmd), ("seq", seq)):
        if not 0 <= value <= 0xFF:
            raise ValueError(f"{name} must be a byte in [0, 255], got {value}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a payload holds at most {MAX_PAYLOAD} bytes, got {len(payload)}")
    body = bytes([cmd, seq]) + struct.pack("<H", len(payload)) + bytes(payload)
    return bytes([SYNC]) + body + struct.pack("<H", crc16(body))


@dataclass(frozen=True)
class Frame:
    """A decoded frame; ``crc_ok`` is False when the received CRC differs from the computed."""

    cmd: int
    seq: int
    payload: bytes
    crc_ok: bool


class FrameDecoder:
    """Split a byte stream into frames; bytes before a SYNC byte are skipped and counted.

    Feed bytes with `feed`; it returns the frames completed so far. A frame whose CRC fails is
    returned with ``crc_ok=False``, and decoding goes on after it.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while True:
            start = self._buffer.find(SYNC)
            if start < 0:
                self.skipped += len(self._buffer)
                self._buffer.clear()
                return frames
            if start:
                self.skipped += start
                del self._buffer[:start]
            if len(self._buffer) < HEADER_BYTES:
                return frames
            length = self._buffer[3] | (self._buffer[4] << 8)
            total = HEADER_BYTES + length + 2
            if len(self._buffer) < total:
                return frames
            body = bytes(self._buffer[1 : HEADER_BYTES + length])
            received = self._buffer[total - 2] | (self._buffer[total - 1] << 8)
            frames.append(Frame(body[0], body[1], body[4:], crc16(body) == received))
            del self._buffer[:total]

    def pending(self) -> int:
        """Return the number of buffered bytes of an incomplete frame."""
        return len(self._buffer)


@dataclass(frozen=True)
class BoardStatus:
    """The reply to `CMD_STATUS`: what the board is and what it did.

    ``flags`` bit 0: weight slot 0 written, bit 1: activations written, bit 2: results valid.
    ``datapath`` is 0 for ``ternary`` and 1 for ``xnor``.
    """

    version: int
    datapath: int
    act_bits: int
    flags: int
    pe: int
    simd: int
    tile_n: int
    tile_k: int
    last_cycles: int
    runs: int
    errors: int
    slots: int

    @classmethod
    def unpack(cls, data: bytes) -> "BoardStatus":
        """Decode the `STATUS_BYTES` bytes after the status code.

        Raises
        ------
        ValueError
            If ``data`` does not hold exactly `STATUS_BYTES` bytes.
        """
        if len(data) != STATUS_BYTES:
            raise ValueError(f"a status reply holds {STATUS_BYTES} bytes, got {len(data)}")
        return cls(*struct.unpack(_STATUS_FORMAT, data))

    def pack(self) -> bytes:
        return struct.pack(
            _STATUS_FORMAT,
            self.version,
            self.datapath,
            self.act_bits,
            self.flags,
            self.pe,
            self.simd,
            self.tile_n,
            self.tile_k,
            self.last_cycles,
            self.runs,
            self.errors,
            self.slots,
        )
