"""The board protocol: frames and CRC on the host side, and the RTL front end under Verilator.

The RTL tests drive the virtual board (`rtl.virtual`) with raw bytes, so every reply checked
here was produced by the generated front end and matrix-vector unit.
"""

import random

import numpy as np
import pytest

import sim
from hostlib.transports import PipeTransport
from rtl import protocol as P
from rtl.frontend import CommandFrontEnd, tile_sizes
from rtl.spec import UnitSpec

TILE_N, TILE_K, TIMEOUT = 8, 16, 256


def bitwise_crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, one bit at a time from its definition (independent of rtl/)."""
    crc = 0xFFFF
    for byte in data:
        for bit in range(7, -1, -1):
            top = (crc >> 15) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFF
            if top:
                crc ^= 0x1021
    return crc


def test_crc16_matches_bitwise_definition():
    assert P.crc16(b"123456789") == 0x29B1
    rng = random.Random(1)
    for length in (0, 1, 7, 64, 300):
        data = bytes(rng.randrange(256) for _ in range(length))
        assert P.crc16(data) == bitwise_crc16(data)


def test_frame_round_trip_and_garbage():
    frame = P.encode_frame(P.CMD_RUN, 9, b"\x00")
    assert frame[0] == P.SYNC
    assert frame[1] == P.CMD_RUN
    assert frame[2] == 9
    assert frame[3:5] == b"\x01\x00"
    decoder = P.FrameDecoder()
    frames = decoder.feed(b"\x00\x13" + frame[:4])
    assert frames == []
    assert decoder.skipped == 2
    (decoded,) = decoder.feed(frame[4:])
    assert decoded == P.Frame(P.CMD_RUN, 9, b"\x00", True)
    bad = bytearray(frame)
    bad[5] ^= 0x40
    (corrupt,) = P.FrameDecoder().feed(bytes(bad))
    assert not corrupt.crc_ok


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0x100, 0, b""), "cmd must be a byte in \\[0, 255\\], got 256"),
        ((1, -1, b""), "seq must be a byte in \\[0, 255\\], got -1"),
        ((1, 0, bytes(P.MAX_PAYLOAD + 1)), "a payload holds at most 65535 bytes, got 65536"),
    ],
)
def test_encode_frame_rejects(args, message):
    with pytest.raises(ValueError, match=message):
        P.encode_frame(*args)


def test_status_unpack_rejects_length():
    with pytest.raises(ValueError, match="a status reply holds 24 bytes, got 3"):
        P.BoardStatus.unpack(b"abc")


def _design():
    return sim.Design.from_spec("pe=4,simd=8,weight_store=onchip", board="kv260")


def test_frontend_rejects_parameters():
    with pytest.raises(ValueError, match="timeout_cycles must be >= 16, got 2"):
        CommandFrontEnd(_design(), TILE_N, TILE_K, timeout_cycles=2)
    with pytest.raises(TypeError, match="timeout_cycles must be an int"):
        CommandFrontEnd(_design(), TILE_N, TILE_K, timeout_cycles=1.5)
    with pytest.raises(ValueError, match="slots must be in \\[1, 255\\], got 0"):
        CommandFrontEnd(_design(), TILE_N, TILE_K, slots=0)
    with pytest.raises(TypeError, match="slots must be an int, got '2'"):
        CommandFrontEnd(_design(), TILE_N, TILE_K, slots="2")
    big = sim.Design.from_spec("pe=4,simd=8,weight_store=onchip", board="kv260")
    with pytest.raises(ValueError, match="choose a smaller tile"):
        tile_sizes(UnitSpec(big, 512, 1024))


@pytest.fixture(scope="module")
def board():
    from rtl.virtual import build_virtual_board

    frontend = CommandFrontEnd(_design(), TILE_N, TILE_K, timeout_cycles=TIMEOUT)
    build = build_virtual_board(frontend)
    transport = PipeTransport(build.command())
    yield transport, frontend
    transport.close()


def _exchange(transport, data: bytes, replies: int = 1, timeout: float = 5.0) -> list[P.Frame]:
    transport.write(data)
    decoder = P.FrameDecoder()
    frames: list[P.Frame] = []
    for _ in range(int(timeout / 0.05)):
        frames += decoder.feed(transport.read(0.05))
        if len(frames) >= replies:
            break
    assert len(frames) == replies, f"expected {replies} replies, got {frames}"
    assert all(frame.crc_ok for frame in frames)
    return frames


def _payloads(frontend, w, x):
    spec, sizes = frontend.spec, frontend.sizes
    weights = b"".join(
        v.to_bytes(sizes["weight_beat_bytes"], "little") for v in spec.pack_weights(w)
    )
    act = b"".join(v.to_bytes(sizes["act_beat_bytes"], "little") for v in spec.pack_activations(x))
    return b"\x00" + weights, act


@pytest.mark.rtl
def test_status_reports_the_tile(board):
    transport, _ = board
    (reply,) = _exchange(transport, P.encode_frame(P.CMD_RESET, 1))
    assert reply == P.Frame(P.CMD_RESET | P.REPLY_FLAG, 1, b"\x00", True)
    (reply,) = _exchange(transport, P.encode_frame(P.CMD_STATUS, 2))
    assert reply.payload[0] == P.STATUS_OK
    status = P.BoardStatus.unpack(reply.payload[1:])
    assert (status.version, status.pe, status.simd) == (P.PROTOCOL_VERSION, 4, 8)
    assert (status.tile_n, status.tile_k, status.act_bits, status.flags) == (8, 16, 8, 0)


@pytest.mark.rtl
def test_back_to_back_commands_compute_the_tile(board):
    transport, frontend = board
    rng = np.random.default_rng(3)
    w = rng.integers(-1, 2, (TILE_N, TILE_K))
    x = rng.integers(-128, 128, (1, TILE_K))
    weights, act = _payloads(frontend, w, x)
    # Four requests in one write: the board answers each in order.
    data = b"".join(
        P.encode_frame(cmd, seq, payload)
        for cmd, seq, payload in (
            (P.CMD_WRITE_WEIGHTS, 10, weights),
            (P.CMD_WRITE_ACT, 11, act),
            (P.CMD_RUN, 12, b"\x00"),
            (P.CMD_READ_RESULTS, 13, b""),
        )
    )
    replies = _exchange(transport, data, replies=4)
    assert [r.seq for r in replies] == [10, 11, 12, 13]
    assert all(r.payload[0] == P.STATUS_OK for r in replies)
    cycles = int.from_bytes(replies[2].payload[1:], "little")
    assert cycles == sim.estimate_layer(_design(), TILE_N, TILE_K).cycles
    acc = np.frombuffer(replies[3].payload[1:], dtype="<i4")
    expected = (x.astype(np.int64) @ w.T.astype(np.int64))[0]
    assert acc.tolist() == expected.tolist()


@pytest.mark.rtl
def test_corrupt_write_is_refused_and_not_used(board):
    transport, frontend = board
    rng = np.random.default_rng(4)
    w = rng.integers(-1, 2, (TILE_N, TILE_K))
    x = rng.integers(-128, 128, (1, TILE_K))
    weights, act = _payloads(frontend, w, x)
    _exchange(transport, P.encode_frame(P.CMD_WRITE_ACT, 20, act))
    frame = bytearray(P.encode_frame(P.CMD_WRITE_WEIGHTS, 21, weights))
    frame[10] ^= 0x01
    (reply,) = _exchange(transport, bytes(frame))
    assert (reply.seq, reply.payload) == (21, bytes([P.ERR_CRC]))
    (reply,) = _exchange(transport, P.encode_frame(P.CMD_RUN, 22, b"\x00"))
    assert reply.payload == bytes([P.ERR_STATE])


@pytest.mark.rtl
def test_truncated_frame_times_out_then_board_answers(board):
    transport, frontend = board
    weights, _ = _payloads(frontend, np.zeros((TILE_N, TILE_K), int), np.zeros((1, TILE_K), int))
    frame = P.encode_frame(P.CMD_WRITE_WEIGHTS, 30, weights)
    (reply,) = _exchange(transport, frame[: len(frame) // 2])
    assert (reply.cmd, reply.seq, reply.payload) == (
        P.CMD_WRITE_WEIGHTS | P.REPLY_FLAG,
        30,
        bytes([P.ERR_TRUNCATED]),
    )
    (reply,) = _exchange(transport, b"\x00\x11" + P.encode_frame(P.CMD_STATUS, 31))
    assert reply.seq == 31
    assert reply.payload[0] == P.STATUS_OK


@pytest.mark.rtl
@pytest.mark.parametrize(
    ("cmd", "payload", "status"),
    [
        (P.CMD_RUN, b"\x01", P.ERR_RANGE),
        (P.CMD_WRITE_WEIGHTS, None, P.ERR_RANGE),
        (0x7E, b"", P.ERR_COMMAND),
        (P.CMD_WRITE_ACT, b"\x00" * 3, P.ERR_LENGTH),
        (P.CMD_STATUS, b"\x00", P.ERR_LENGTH),
    ],
)
def test_bad_requests_get_error_replies(board, cmd, payload, status):
    transport, frontend = board
    if payload is None:  # a whole weight tile for slot 3, which does not exist
        payload = b"\x03" + bytes(frontend.sizes["write_weights_len"] - 1)
    (reply,) = _exchange(transport, P.encode_frame(cmd, 40, payload))
    assert (reply.cmd, reply.seq, reply.payload) == (cmd | P.REPLY_FLAG, 40, bytes([status]))


@pytest.mark.rtl
def test_read_before_run_is_refused(board):
    transport, _ = board
    _exchange(transport, P.encode_frame(P.CMD_RESET, 50))
    (reply,) = _exchange(transport, P.encode_frame(P.CMD_READ_RESULTS, 51))
    assert reply.payload == bytes([P.ERR_STATE])
