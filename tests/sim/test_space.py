import itertools
import re

import pytest

import sim
from sim.space import AXES, Space, default_space, parse_axis


def naive_combinations(axes):
    """All field dicts of a space, written out with explicit loops and the pairing rules."""
    combos = []
    for datapath in axes["datapath"]:
        formats = [
            name for name in axes["weight_format"] if sim.WEIGHT_FORMATS[name][0] == datapath
        ]
        for pe, simd, fmt, store, zero_skip in itertools.product(
            axes["pe"], axes["simd"], formats, axes["weight_store"], axes["zero_skip"]
        ):
            fields = {"datapath": datapath, "pe": pe, "simd": simd, "weight_format": fmt}
            fields["weight_store"] = store
            if datapath != "xnor":
                fields["zero_skip"] = zero_skip
            if fields not in combos:
                combos.append(fields)
    return combos


def test_expand_matches_naive_product():
    axes = {
        "datapath": ["ternary", "lut", "xnor"],
        "pe": [2, 4],
        "simd": [6, 12],
        "weight_format": ["2bit", "base3", "lut2", "lut3", "binary"],
        "weight_store": ["stream", "onchip"],
        "zero_skip": [False, True],
    }
    designs, invalid = Space.from_dict(axes).expand("kv260")
    expected = naive_combinations(axes)
    assert invalid == []
    assert len(designs) == len(expected)
    for design, fields in zip(designs, expected, strict=True):
        for name, value in fields.items():
            assert getattr(design, name) == value
    xnor = [design for design in designs if design.datapath == "xnor"]
    assert xnor
    assert all(design.act_bits == 1 and not design.zero_skip for design in xnor)


def test_expand_reports_invalid_designs():
    space = Space.from_dict({"datapath": ["lut"], "simd": [4, 6], "weight_format": ["lut3"]})
    designs, invalid = space.expand("kv260")
    assert [design.simd for design in designs] == [6]
    assert len(invalid) == 1
    fields, message = invalid[0]
    assert fields == {"datapath": "lut", "simd": 4, "weight_format": "lut3"}
    assert "multiple of the group size 3" in message


def test_axes_keep_canonical_order():
    space = Space.from_dict({"clock_mhz": [100], "pe": [4], "datapath": ["ternary"]})
    assert list(space.axes) == ["datapath", "pe", "clock_mhz"]
    assert space.axes["clock_mhz"] == (100.0,)
    assert space.size == 1


def test_range_tables():
    space = Space.from_dict(
        {
            "pe": {"start": 4, "stop": 64, "factor": 2},
            "clock_mhz": {"start": 100, "stop": 130, "step": 10},
            "simd": {"start": 8, "stop": 30, "step": 8},
        }
    )
    assert space.axes["pe"] == (4, 8, 16, 32, 64)
    assert space.axes["clock_mhz"] == (100.0, 110.0, 120.0, 130.0)
    assert space.axes["simd"] == (8, 16, 24)


def test_float_range_does_not_drift():
    space = Space.from_dict({"clock_mhz": {"start": 0.1, "stop": 1.0, "step": 0.1}})
    assert len(space.axes["clock_mhz"]) == 10
    assert space.axes["clock_mhz"][-1] == pytest.approx(1.0)


def test_default_space_per_board():
    kv260 = default_space("kv260")
    assert kv260.axes["weight_store"] == ("stream", "onchip")
    assert kv260.axes["clock_mhz"] == (sim.get_board("kv260").clock_mhz,)
    assert kv260.axes["pe"][0] == 1 and kv260.axes["pe"][-1] == 512
    icebreaker = default_space("icebreaker")
    assert icebreaker.axes["weight_store"] == ("onchip",)
    designs, _ = icebreaker.expand("icebreaker")
    assert designs
    assert all(design.weight_store == "onchip" for design in designs)


def test_with_axes_overrides():
    space = default_space("kv260").with_axes({"pe": [8], "clock_mhz": [200, 250]})
    assert space.axes["pe"] == (8,)
    assert space.axes["clock_mhz"] == (200.0, 250.0)
    assert space.axes["simd"] == default_space("kv260").axes["simd"]


def test_to_dict_round_trips():
    space = default_space("u280")
    assert Space.from_dict(space.to_dict()) == space


@pytest.mark.parametrize(
    ("text", "name", "values"),
    [
        ("pe=8,16,32", "pe", (8, 16, 32)),
        ("clock_mhz=200:300:50", "clock_mhz", (200.0, 250.0, 300.0)),
        ("simd=16:128:*2", "simd", (16, 32, 64, 128)),
        ("zero_skip=true,false", "zero_skip", (True, False)),
        ("acc_bits=auto,24", "acc_bits", (None, 24)),
        ("weight_format = base3", "weight_format", ("base3",)),
    ],
)
def test_parse_axis(text, name, values):
    assert parse_axis(text) == (name, values)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pe", "--axis 'pe' must have the form name=v1,v2,... or name=start:stop:step"),
        ("pee=4", "--axis 'pee=4': unknown axis 'pee'; known axes: " + ", ".join(AXES)),
        ("pe=4,x", "--axis 'pe=4,x': 'x' is not a number"),
        ("pe=1:8", "--axis 'pe=1:8': a range must be start:stop:step or start:stop:*factor"),
        ("zero_skip=maybe", "--axis 'zero_skip=maybe': zero_skip values must be true or false"),
        ("pe=4,4", "--axis 'pe=4,4': axis 'pe' lists 4 twice"),
        ("pe=0,4", "--axis 'pe=0,4': axis 'pe': values must be >= 1, got 0"),
        ("datapath=analog", "axis 'datapath': 'analog' is not one of ternary, xnor, lut"),
        ("pe=8:4:1", "axis 'pe': range stop 4 is below start 8"),
        ("pe=1:8:0", "axis 'pe': range step must be > 0, got 0"),
        ("pe=1:8:*1", "axis 'pe': range factor must be > 1, got 1"),
    ],
)
def test_parse_axis_errors(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_axis(text)


def test_from_dict_errors():
    with pytest.raises(TypeError, match=re.escape("space: axis 'pe' takes integers, got 2.5")):
        Space.from_dict({"pe": [2.5]})
    with pytest.raises(TypeError, match=re.escape("axis 'zero_skip' takes true or false, got 1")):
        Space.from_dict({"zero_skip": [1]})
    with pytest.raises(ValueError, match=re.escape("space: axis 'simd' has no values")):
        Space.from_dict({"simd": []})
    with pytest.raises(ValueError, match="range table needs start, stop and step"):
        Space.from_dict({"pe": {"start": 1, "stop": 4}})
    with pytest.raises(ValueError, match="range has 100001 values, over the limit of 10000"):
        Space.from_dict({"clock_mhz": {"start": 0, "stop": 100, "step": 0.001}})


def test_format_without_datapath_rejected():
    message = (
        "space: axis 'datapath' has 'lut', but axis 'weight_format' (2bit) has no format for "
        "it; add one of lut2, lut3"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        Space.from_dict({"datapath": ["ternary", "lut"], "weight_format": ["2bit"]})
    message = "space: axis 'weight_format' has 'lut2', which no datapath of the space (ternary)"
    with pytest.raises(ValueError, match=re.escape(message)):
        Space.from_dict({"weight_format": ["2bit", "lut2"]})


def test_from_toml(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(
        "# a small space\n"
        "[axes]\n"
        'datapath = ["ternary"]\n'
        "pe = { start = 4, stop = 16, factor = 2 }\n"
        "simd = [32, 64]\n"
        "zero_skip = [false, true]\n"
        "clock_mhz = 250\n",
        encoding="utf-8",
    )
    space = Space.from_toml(path)
    assert space.axes == {
        "datapath": ("ternary",),
        "pe": (4, 8, 16),
        "simd": (32, 64),
        "zero_skip": (False, True),
        "clock_mhz": (250.0,),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[axes]\npe = [4, 8\n", "space file: invalid TOML: "),
        ("[axes]\npe = [4]\nsmid = [8]\n", "space file, line 3: unknown axis 'smid'"),
        ("[axes]\n\npe = [4, 'x']\n", "space file, line 3: axis 'pe' takes integers, got 'x'"),
        ("[axes]\npe = [4]\n[workload]\nx = 1\n", "space file, line 3: unknown key 'workload'"),
        ("pe = [4]\n", "space file, line 1: unknown key 'pe'; a space file has one table"),
        ("", "space file: missing table [axes]"),
        ("axes = 3\n", "space file, line 1: axes must be a table"),
    ],
)
def test_toml_errors_name_key_and_line(text, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        Space.from_toml_text(text)


def test_toml_syntax_error_gives_line():
    with pytest.raises(ValueError, match=r"invalid TOML: .*line 2"):
        Space.from_toml_text("[axes]\npe = = 4\n")


def test_from_toml_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        Space.from_toml(tmp_path / "absent.toml")


def test_expand_rejects_huge_space():
    space = Space.from_dict({"pe": list(range(1, 3001)), "simd": list(range(1, 3001))})
    assert space.size == 9_000_000
    with pytest.raises(ValueError, match="the space has 9,000,000 combinations, more than the"):
        space.expand("kv260")
