import dataclasses
import json
import re

import pytest

import sim
from sim.resources import CONTROL_FF, CONTROL_LUT, mux_luts, tree_bits


def naive_tree_bits(inputs, width):
    """Build the adder tree level by level: pairs of values become one value a bit wider."""
    total, values, level = 0, inputs, 0
    while values > 1:
        level += 1
        values = (values + 1) // 2
        total += values * (width + level)
    return total


@pytest.mark.parametrize("inputs", [1, 2, 3, 5, 8, 64, 100, 256])
@pytest.mark.parametrize("width", [1, 9])
def test_tree_bits_matches_naive(inputs, width):
    assert int(tree_bits(inputs, width)) == naive_tree_bits(inputs, width)


def test_mux_luts():
    # A LUT6 holds a 4:1 mux, a LUT4 a 2:1 mux.
    assert int(mux_luts(4, 6)) == 1
    assert int(mux_luts(9, 6)) == 3
    assert int(mux_luts(27, 6)) == 9
    assert int(mux_luts(9, 4)) == 8


def design_on(board="kv260", **fields):
    return sim.Design.from_spec(fields, board)


def test_ternary_logic_by_hand():
    design = design_on(pe=4, simd=8)
    need = sim.design_resources(design, [(16, 64)])
    # a = 8, accumulator for K = 64: 8 + 7 = 15 bits. Lanes 8 * 9, tree 4 * 10 + 2 * 11 + 1 * 12.
    row = 8 * 9 + (4 * 10 + 2 * 11 + 12) + 15
    assert need.lut == 4 * row + CONTROL_LUT
    assert need.ff == 4 * row + CONTROL_FF
    assert need.dsp == 0


def test_xnor_logic_by_hand():
    design = design_on(datapath="xnor", pe=2, simd=4)
    need = sim.design_resources(design, [(2, 8)])
    # Lanes 4 XNORs, popcount tree 2 * 2 + 1 * 3, accumulator 1 + 4 = 5 bits.
    row = 4 + 7 + 5
    assert need.lut == 2 * row + CONTROL_LUT


def test_lut_logic_by_hand():
    design = design_on(datapath="lut", pe=2, simd=4)
    need = sim.design_resources(design, [(2, 4)])
    # g = 2, 2 groups, entries 8 + 2 = 10 bits wide, 9:1 mux = 3 LUT6 per bit.
    lookup = 2 * 10 * 3
    tree = 1 * 11
    acc = 8 + 3
    tables = 2 * 8 * 10
    assert need.lut == 2 * (lookup + tree + acc) + tables + CONTROL_LUT
    assert need.ff == 2 * (2 * 10 + tree + acc) + tables + CONTROL_FF


def test_memory_onchip_and_stream():
    layers = [(64, 128), (128, 64), (32, 128)]
    onchip = design_on(pe=16, simd=32, weight_store="onchip")
    need = sim.design_resources(onchip, layers)
    weights = sum(n * k // 4 for n, k in layers)
    assert need.weight_bytes == weights
    assert need.dram_bytes == 0
    assert need.buffer_bytes == 128  # the longest K, 8-bit
    assert need.onchip_bytes == weights + 128
    stream = design_on(pe=16, simd=32)
    need = sim.design_resources(stream, layers, tokens=4)
    assert need.weight_bytes == 2 * 16 * 32 // 4
    assert need.dram_bytes == weights
    # Four vectors of 128 bytes, and four partial sums per PE row of 8 + 8 = 16 bits (K = 128).
    assert need.buffer_bytes == 4 * 128 + 4 * 16 * 16 // 8


def test_model_layers_count_only_ternary():
    config = sim.get_model("demo")
    design = design_on(pe=16, simd=64, weight_store="onchip")
    need = sim.design_resources(design, config)
    weights = sum(layer.weights for layer in sim.model_layers(config, 1) if layer.kind == "ternary")
    assert need.weight_bytes == weights // 4


@pytest.mark.parametrize(
    ("board", "fields", "layers", "label", "capacity"),
    [
        ("icebreaker", {"pe": 16, "simd": 64}, [(16, 64)], "LUTs", 5280),
        ("icebreaker", {"pe": 4, "simd": 16}, [(1024, 1024)], "on-chip bytes", 146432),
        ("ulx3s", {"pe": 4, "simd": 16}, [(16384, 16384)], "DRAM bytes", 32 * 2**20),
    ],
)
def test_check_fits_rejects(board, fields, layers, label, capacity):
    design = design_on(board, **fields)
    report = sim.fit_report(design, layers)
    assert not report.fits
    name = {"LUTs": "lut", "on-chip bytes": "onchip_bytes", "DRAM bytes": "dram_bytes"}[label]
    need = getattr(report.need, name)
    message = (
        f"design does not fit board {board!r}: {label}: needs {need}, the board has {capacity} "
        f"(over by {need - capacity})"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        design.check_fits(layers)


def test_check_fits_lists_every_excess():
    design = design_on("icebreaker", pe=16, simd=64)
    with pytest.raises(ValueError, match="LUTs: needs .*; FFs: needs .*; on-chip bytes: needs"):
        design.check_fits([(4096, 4096)])


def test_check_fits_returns_report():
    design = design_on("kv260", pe=16, simd=64)
    report = design.check_fits(sim.get_model("bitnet-2b-4t"))
    assert report.fits
    assert report.capacity["lut"] == sim.BOARDS["kv260"].lut
    assert 0 < report.utilization["lut"] < 1
    assert json.loads(json.dumps(report.to_dict()))["fits"] is True


def test_utilization_without_capacity():
    board = dataclasses.replace(sim.BOARDS["kv260"], dsp=0)
    report = sim.fit_report(sim.Design(board=board), [(16, 64)])
    assert report.utilization["dsp"] == 0.0


def test_resources_errors():
    design = design_on(pe=4, simd=8)
    with pytest.raises(TypeError, match="layers must be a ModelConfig or an iterable"):
        sim.design_resources(design, 5)
    with pytest.raises(TypeError, match=re.escape("a layer must be a sim.Layer or an (N, K) pair")):
        sim.design_resources(design, [(1, 2, 3)])
    with pytest.raises(TypeError, match="layer K must be an int, got 2.0"):
        sim.design_resources(design, [(1, 2.0)])
    with pytest.raises(ValueError, match=re.escape("layer N must be >= 1, got 0 in (0, 8)")):
        sim.design_resources(design, [(0, 8)])
    with pytest.raises(ValueError, match="tokens must be >= 1, got 0"):
        sim.design_resources(design, [], tokens=0)
    with pytest.raises(TypeError, match="design must be a sim.Design, got str"):
        sim.design_resources("kv260")
    systolic = sim.Design.from_spec("array=systolic", "kv260")
    with pytest.raises(NotImplementedError, match="the resource model covers Design.array"):
        sim.design_resources(systolic)
