"""The UART and AXI-Stream byte layers, and the board builds (bitstream, Xilinx export)."""

import json

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

import sim
from hostlib.cli import main
from rtl import protocol as P
from rtl.bitstream import build_bitstream, export_xilinx
from rtl.frontend import CommandFrontEnd
from rtl.phy import UART, AXIStreamBytes

DIVISOR = 5


def _design():
    return sim.Design.from_spec("pe=4,simd=8,weight_store=onchip", board="icebreaker")


def test_uart_loopback_carries_every_byte():
    m = Module()
    m.submodules.uart = uart = UART(DIVISOR)
    m.d.comb += uart.rx_pin.eq(uart.tx_pin)
    sent = [0x00, 0xFF, P.SYNC, 0x5A, 0x01, 0x80]
    received = []

    async def sender(ctx):
        for byte in sent:
            ctx.set(uart.tx.payload, byte)
            ctx.set(uart.tx.valid, 1)
            await ctx.tick().until(uart.tx.ready)
        ctx.set(uart.tx.valid, 0)

    async def receiver(ctx):
        ctx.set(uart.rx.ready, 1)
        for _ in range(len(sent) * DIVISOR * 12 + 50):
            await ctx.tick()
            if ctx.get(uart.rx.valid):
                received.append(ctx.get(uart.rx.payload))

    simulator = Simulator(m)
    simulator.add_clock(1e-6)
    simulator.add_testbench(sender)
    simulator.add_testbench(receiver)
    simulator.run()
    assert received == sent


def test_uart_rejects_divisor():
    with pytest.raises(ValueError, match="divisor must be an int >= 4 clock cycles per bit, got 2"):
        UART(2)


def test_axi_stream_marks_the_last_byte_of_each_reply():
    adapter = AXIStreamBytes()
    frames = P.encode_frame(0x81, 1, b"\x00\x01\x02") + P.encode_frame(0x86, 2, b"\x00")
    lasts = []

    async def bench(ctx):
        ctx.set(adapter.m_tready, 1)
        for byte in frames:
            ctx.set(adapter.tx.payload, byte)
            ctx.set(adapter.tx.valid, 1)
            lasts.append(ctx.get(adapter.m_tlast))
            await ctx.tick()

    simulator = Simulator(adapter)
    simulator.add_clock(1e-6)
    simulator.add_testbench(bench)
    simulator.run()
    first = len(P.encode_frame(0x81, 1, b"\x00\x01\x02"))
    expected = [0] * len(frames)
    expected[first - 1] = 1
    expected[-1] = 1
    assert lasts == expected


def test_export_xilinx_writes_verilog_script_and_driver(tmp_path):
    result = export_xilinx(CommandFrontEnd(_design(), 8, 16), "kv260", tmp_path)
    assert "module onebit_axis" in (tmp_path / "onebit_axis.v").read_text()
    assert "xck26-sfvc784-2LV-c" in (tmp_path / "onebit_vivado.tcl").read_text()
    description = json.loads((tmp_path / "onebit_pynq.json").read_text())
    assert description["tile"] == [8, 16] and description["built"] is False
    assert result["verilog"] == str(tmp_path / "onebit_axis.v")
    with pytest.raises(ValueError, match="board must be one of kv260, zcu104, u280, got 'x'"):
        export_xilinx(CommandFrontEnd(_design(), 8, 16), "x", tmp_path)


def test_build_rejects_unknown_board(tmp_path, capsys):
    with pytest.raises(ValueError, match="for a bitstream, got 'kv260'"):
        build_bitstream(CommandFrontEnd(_design(), 8, 16), "kv260", tmp_path)
    status = main(
        ["rtl", "build", "--board", "pynq-z2", "--design", "pe=4,simd=8,weight_store=onchip",
         "--layer", "8x16", "--out", str(tmp_path)]
    )  # fmt: skip
    assert status == 2
    assert "bitstreams for icebreaker, ulx3s" in capsys.readouterr().err


def test_cli_build_exports_xilinx(tmp_path, capsys):
    status = main(
        ["rtl", "build", "--board", "kv260", "--design", "pe=4,simd=8,weight_store=onchip",
         "--layer", "8x16", "--out", str(tmp_path), "--json"]
    )  # fmt: skip
    assert status == 0
    result = json.loads(capsys.readouterr().out)
    assert "Vivado is not run here" in result["note"]


@pytest.mark.slow
@pytest.mark.rtl
def test_icebreaker_bitstream_builds(tmp_path):
    result = build_bitstream(CommandFrontEnd(_design(), 8, 16), "icebreaker", tmp_path)
    assert (tmp_path / "onebit.bin").stat().st_size > 0
    used, total = (int(v) for v in result["utilization"]["ICESTORM_LC"].split("/"))
    assert 0 < used <= total
    assert result["fmax_mhz"] >= result["clock_mhz"]


def test_status_request_over_uart_lines():
    # A host-side UART talks to the board's UART and front end over the two serial lines.
    frontend = CommandFrontEnd(_design(), 8, 16, timeout_cycles=4096)
    m = Module()
    m.submodules.host = host = UART(DIVISOR)
    m.submodules.board = board = UART(DIVISOR)
    m.submodules.frontend = frontend
    m.d.comb += [
        board.rx_pin.eq(host.tx_pin),
        host.rx_pin.eq(board.tx_pin),
        frontend.rx.payload.eq(board.rx.payload),
        frontend.rx.valid.eq(board.rx.valid),
        board.rx.ready.eq(frontend.rx.ready),
        board.tx.payload.eq(frontend.tx.payload),
        board.tx.valid.eq(frontend.tx.valid),
        frontend.tx.ready.eq(board.tx.ready),
    ]
    request = P.encode_frame(P.CMD_STATUS, 77)
    reply_bytes = P.HEADER_BYTES + 1 + P.STATUS_BYTES + 2
    received = []

    async def sender(ctx):
        for byte in request:
            ctx.set(host.tx.payload, byte)
            ctx.set(host.tx.valid, 1)
            await ctx.tick().until(host.tx.ready)
        ctx.set(host.tx.valid, 0)

    async def receiver(ctx):
        ctx.set(host.rx.ready, 1)
        for _ in range((len(request) + reply_bytes) * DIVISOR * 12 + 200):
            await ctx.tick()
            if ctx.get(host.rx.valid):
                received.append(ctx.get(host.rx.payload))
            if len(received) == reply_bytes:
                break

    simulator = Simulator(m)
    simulator.add_clock(1e-6)
    simulator.add_testbench(sender)
    simulator.add_testbench(receiver)
    simulator.run()
    (reply,) = P.FrameDecoder().feed(bytes(received))
    assert reply.crc_ok
    assert (reply.cmd, reply.seq) == (P.CMD_STATUS | P.REPLY_FLAG, 77)
    assert reply.payload[0] == P.STATUS_OK
    status = P.BoardStatus.unpack(reply.payload[1:])
    assert (status.tile_n, status.tile_k, status.pe, status.simd) == (8, 16, 4, 8)
