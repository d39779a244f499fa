import dataclasses
import json
import re

import pytest

import sim

KV260 = sim.BOARDS["kv260"]


def make(**fields):
    return sim.Design(board=KV260, **fields)


def test_defaults():
    design = sim.Design.from_spec(None, "kv260")
    assert (design.datapath, design.array) == ("ternary", "mvu")
    assert (design.pe, design.simd, design.act_bits, design.acc_bits) == (16, 64, 8, None)
    assert (design.weight_store, design.weight_format) == ("stream", "2bit")
    assert design.zero_skip is False
    assert design.clock_mhz == KV260.clock_mhz
    assert design.board is KV260


def test_design_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make().pe = 8


def test_from_spec_string():
    design = sim.Design.from_spec(
        "pe=8, simd=32,weight_store=onchip,zero_skip=yes,clock_mhz=250,acc_bits=24", "u280"
    )
    assert (design.pe, design.simd, design.weight_store) == (8, 32, "onchip")
    assert design.zero_skip is True
    assert design.clock_mhz == 250.0
    assert design.acc_bits == 24
    assert design.board is sim.BOARDS["u280"]


def test_from_spec_dict_and_board_object():
    design = sim.Design.from_spec({"pe": 4, "simd": "16", "acc_bits": "auto"}, KV260)
    assert (design.pe, design.simd, design.acc_bits) == (4, 16, None)


def test_from_spec_empty_string_is_default():
    assert sim.Design.from_spec("", "kv260") == sim.Design.from_spec(None, "kv260")


def test_spec_round_trip():
    design = sim.Design.from_spec("pe=8,simd=16,zero_skip=true,weight_format=base3", "kv260")
    assert sim.Design.from_spec(design.to_spec(), "kv260") == design


def test_to_dict_is_json_ready():
    fields = json.loads(json.dumps(make(pe=4).to_dict()))
    assert fields["board"] == "kv260"
    assert fields["pe"] == 4
    assert fields["acc_bits"] is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pe=16,pe=8", "design spec key 'pe' is given twice"),
        ("pes=16", "unknown design spec key 'pes'; known keys: datapath, array, pe, simd"),
        ("pe", "design spec item 'pe' must have the form key=value"),
        ("pe=16,,simd=4", "design spec item '' must have the form key=value"),
        ("pe=", "design spec item 'pe=' must have the form key=value"),
        ("pe=x", "design spec key 'pe' must be an integer, got 'x'"),
        ("clock_mhz=fast", "design spec key 'clock_mhz' must be a number, got 'fast'"),
        ("zero_skip=maybe", "design spec key 'zero_skip' must be a boolean"),
        ("board=u280", "design spec key 'board' is not allowed: pass the board as the board"),
    ],
)
def test_from_spec_errors(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.Design.from_spec(spec, "kv260")


def test_from_spec_rejects_bad_types():
    with pytest.raises(TypeError, match="design spec must be a 'key=value,...' str, a dict"):
        sim.Design.from_spec(["pe=16"], "kv260")
    with pytest.raises(TypeError, match="board must be a board name or a sim.Board, got int"):
        sim.Design.from_spec(None, 3)
    with pytest.raises(TypeError, match="design spec keys must be str, got int 1"):
        sim.Design.from_spec({1: 2}, "kv260")
    with pytest.raises(ValueError, match="unknown board 'nope'"):
        sim.Design.from_spec(None, "nope")


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"datapath": "float"}, ValueError, "Design.datapath must be one of ternary, xnor, lut"),
        ({"datapath": 1}, TypeError, "Design.datapath must be a str, got int 1"),
        ({"array": "mesh"}, ValueError, "Design.array must be one of mvu, systolic; got 'mesh'"),
        ({"pe": 0}, ValueError, "Design.pe must be >= 1, got 0"),
        ({"pe": 2.0}, TypeError, "Design.pe must be an int, got float 2.0"),
        ({"simd": True}, TypeError, "Design.simd must be an int, got bool True"),
        ({"act_bits": 9}, ValueError, "Design.act_bits must be between 2 and 8, got 9"),
        ({"acc_bits": 8}, ValueError, "Design.acc_bits must be between 9 and 32, got 8"),
        ({"acc_bits": 33}, ValueError, "Design.acc_bits must be between 9 and 32, got 33"),
        ({"weight_store": "dram"}, ValueError, "Design.weight_store must be one of stream"),
        ({"weight_format": "int4"}, ValueError, "Design.weight_format must be one of 2bit"),
        ({"zero_skip": 1}, TypeError, "Design.zero_skip must be a bool, got int 1"),
        ({"clock_mhz": "fast"}, TypeError, "Design.clock_mhz must be a number, got str"),
        ({"clock_mhz": -5.0}, ValueError, "Design.clock_mhz must be positive and finite"),
        ({"clock_mhz": float("inf")}, ValueError, "Design.clock_mhz must be positive and"),
        ({"clock_mhz": 1e-9}, ValueError, "Design.clock_mhz must be at least 1 Hz"),
    ],
)
def test_design_validation(fields, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make(**fields)


def test_contradictory_format_names_both_fields():
    message = "Design.weight_format 'binary' holds xnor weights, but Design.datapath is 'ternary'"
    with pytest.raises(ValueError, match=re.escape(message)):
        make(weight_format="binary")


def test_datapath_defaults():
    xnor = make(datapath="xnor")
    assert (xnor.act_bits, xnor.weight_format) == (1, "binary")
    lut = make(datapath="lut")
    assert (lut.act_bits, lut.weight_format) == (8, "lut2")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"datapath": "xnor", "act_bits": 8},
            "Design.act_bits = 8 does not fit Design.datapath = 'xnor', which takes 1-bit (±1) "
            "activations: set act_bits=1",
        ),
        (
            {"datapath": "xnor", "zero_skip": True},
            "Design.zero_skip = True does not apply to Design.datapath = 'xnor': binary weights "
            "are ±1 and have no zeros to skip",
        ),
        (
            {"datapath": "lut", "weight_format": "lut3", "simd": 64},
            "Design.simd = 64 must be a multiple of the group size 3 of Design.weight_format = "
            "'lut3', so that no weight group straddles two folds",
        ),
        (
            {"datapath": "lut", "weight_format": "2bit"},
            "Design.weight_format '2bit' holds ternary weights, but Design.datapath is 'lut'",
        ),
        (
            {"datapath": "xnor", "weight_format": "lut2"},
            "Design.weight_format 'lut2' holds lut weights, but Design.datapath is 'xnor'",
        ),
        ({"act_bits": 1}, "Design.act_bits must be between 2 and 8, got 1"),
    ],
)
def test_datapath_rules(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make(**fields)


def test_stream_rejected_without_dram():
    icebreaker = sim.BOARDS["icebreaker"]
    message = (
        "Design.weight_store = 'stream' needs DRAM, but board 'icebreaker' has none: use "
        "weight_store=onchip, so that the weights stay in on-chip memory"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.Design(board=icebreaker, weight_store="stream")
    assert sim.Design(board=icebreaker).weight_store == "onchip"
    assert make().weight_store == "stream"


def test_board_must_be_board():
    with pytest.raises(TypeError, match="Design.board must be a sim.Board, got str 'kv260'"):
        sim.Design(board="kv260")


def test_check_layer_accepts_fitting_layer():
    make(pe=16, simd=64).check_layer(384, 128)


@pytest.mark.parametrize(
    ("fields", "n", "k", "message"),
    [
        ({"pe": 16}, 40, 128, "Design.pe = 16 must divide the layer's N = 40 output rows"),
        ({"simd": 64}, 32, 96, "Design.simd = 64 must divide the layer's K = 96 inputs"),
        ({"pe": 1, "simd": 1}, 1, 2**24, "K = 16777216 needs a 33-bit accumulator at act_bits = 8"),
    ],
)
def test_check_layer_errors(fields, n, k, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make(**fields).check_layer(n, k)


def test_check_layer_bad_sizes():
    with pytest.raises(TypeError, match="layer n must be an int, got float"):
        make().check_layer(16.0, 64)
    with pytest.raises(ValueError, match="layer k must be >= 1, got 0"):
        make().check_layer(16, 0)


@pytest.mark.parametrize("k", [1, 3, 4, 5, 64, 127, 128, 129, 4096, 6912])
def test_min_accumulator_bits_is_tight(k):
    # Independent check: the extreme sum is k * 128 (weights -1 against activations -128).
    extreme = k * 128
    bits = make().min_accumulator_bits(k)
    assert extreme <= 2 ** (bits - 1) - 1
    assert extreme > 2 ** (bits - 2) - 1


def test_check_layer_accumulator_too_narrow():
    design = make(pe=1, simd=1, acc_bits=10)
    design.check_layer(1, 3)  # 3 * 128 = 384 fits in 10 bits
    message = "Design.acc_bits = 10 can overflow for K = 4 at act_bits = 8: a dot product needs 11"
    with pytest.raises(ValueError, match=re.escape(message)):
        design.check_layer(1, 4)


def test_check_layer_onchip_capacity():
    # Kept on chip in 2-bit codes, a layer needs N * K / 4 bytes.
    onchip = KV260.onchip_bytes
    design = make(pe=16, simd=64, weight_store="onchip")
    design.check_layer(1024, 2048)
    n, k = 4096, 4096
    size = n * k // 4
    message = (
        f"Design.weight_store = 'onchip': the {n} x {k} layer needs {size} bytes in format "
        f"'2bit', over the {onchip} on-chip bytes of board 'kv260' by {size - onchip}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        design.check_layer(n, k)
    make(pe=16, simd=64).check_layer(n, k)  # streamed weights need no on-chip room


@pytest.mark.parametrize(
    ("weight_format", "pe", "simd", "tile_bytes"),
    [
        ("2bit", 16, 64, 256),
        ("hf", 16, 64, 256),
        ("i2_s", 4, 4, 4),
        ("base3", 16, 64, 205),
        ("binary", 16, 64, 128),
        ("binary", 1, 3, 1),
        # 512 pairs at 4 bits; 8 * 22 = 176 triples at 5 bits is 880 bits.
        ("lut2", 16, 64, 256),
        ("lut3", 8, 66, 110),
    ],
)
def test_tile_bytes_per_format(weight_format, pe, simd, tile_bytes):
    datapath = {"binary": "xnor", "lut2": "lut", "lut3": "lut"}.get(weight_format, "ternary")
    design = make(pe=pe, simd=simd, weight_format=weight_format, datapath=datapath)
    assert design.tile_bytes == tile_bytes
    assert design.weight_bytes(4 * pe, 2 * simd) == 8 * tile_bytes


def test_design_rejects_clock_beyond_fabric():
    with pytest.raises(ValueError, match="Design.clock_mhz must be at most 10000 MHz, got 1e"):
        sim.Design.from_spec("clock_mhz=1e308", board="kv260")
