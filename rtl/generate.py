"""Verilog generation: a unit's Verilog, its parameters as JSON and a description of its ports."""

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from rtl.mvu import MatrixVectorUnit

__all__ = ["TOP_NAME", "describe_ports", "generate", "unit_verilog"]

TOP_NAME = "onebit_mvu"
"""Module name of the generated top level."""


def unit_verilog(unit: MatrixVectorUnit) -> str:
    """Return the Verilog of ``unit`` with the top-level module `TOP_NAME`."""
    if not isinstance(unit, MatrixVectorUnit):
        raise TypeError(f"unit must be an rtl.MatrixVectorUnit, got {type(unit).__name__}")
    return verilog.convert(unit, name=TOP_NAME, emit_src=False)


def describe_ports(unit: MatrixVectorUnit) -> list[dict]:
    """Return the unit's Verilog ports: name, direction, width and the payload fields.

    Clock ``clk`` and synchronous active-high reset ``rst`` come first. A stream's payload port
    lists its struct fields with their bit offsets, so a host can build payload words.
    """
    ports = [
        {"name": "clk", "direction": "input", "width": 1, "role": "clock, rising edge"},
        {"name": "rst", "direction": "input", "width": 1, "role": "synchronous reset, active high"},
    ]
    for path, member, _ in unit.signature.flatten(unit):
        name = "__".join(str(part) for part in path)
        # In() members are inputs of the component, Out() members its outputs.
        direction = "input" if member.flow == wiring.In else "output"
        entry = {"name": name, "direction": direction, "width": Shape.cast(member.shape).width}
        if isinstance(member.shape, data.StructLayout):
            entry["fields"] = _layout_fields(member.shape)
        ports.append(entry)
    return ports


def _layout_fields(layout: data.StructLayout) -> list[dict]:
    fields = []
    for name, field in layout:
        entry = {"name": name, "offset": field.offset, "width": field.width}
        if isinstance(field.shape, data.ArrayLayout):
            element = field.shape.elem_shape
            entry["elements"] = field.shape.length
            entry["element_width"] = element.width
            entry["element_signed"] = element.signed
        fields.append(entry)
    return fields


def generate(design, n: int, k: int, out_dir, *, tokens: int = 1) -> dict:
    """Write a unit's Verilog, parameters and ports to ``out_dir``; return what was written.

    Parameters
    ----------
    design : sim.Design
        The design; it is validated (see `rtl.UnitSpec`) before anything is elaborated.
    n, k : int
        The layer's output rows and inputs.
    out_dir : str or Path
        Created if missing; ``onebit_mvu.v``, ``design.json`` and ``ports.json`` are written.
    tokens : int
        Vectors per run, T.

    Returns
    -------
    dict
        ``verilog``, ``design``, ``ports``: the paths written; ``unit``: the unit's parameters
        and derived sizes (`rtl.UnitSpec.to_dict`).
    """
    unit = MatrixVectorUnit(design, n, k, tokens=tokens)
    text = unit_verilog(unit)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "verilog": out / f"{TOP_NAME}.v",
        "design": out / "design.json",
        "ports": out / "ports.json",
    }
    paths["verilog"].write_text(text, encoding="utf-8")
    paths["design"].write_text(json.dumps(unit.spec.to_dict(), indent=2) + "\n", encoding="utf-8")
    ports = {"top": TOP_NAME, "ports": describe_ports(unit)}
    paths["ports"].write_text(json.dumps(ports, indent=2) + "\n", encoding="utf-8")
    return {**{key: str(path) for key, path in paths.items()}, "unit": unit.spec.to_dict()}
