"""Design spaces: the values each `Design` field takes in an exploration.

A `Space` maps each swept field (an axis) to its values; the designs are the cartesian product
of the axes, with two pairing rules that keep every combination meaningful:

- a weight format serves one datapath (`sim.WEIGHT_FORMATS`), so each datapath is combined only
  with the formats of the ``weight_format`` axis that serve it;
- the ``xnor`` datapath takes 1-bit activations and has no zero weights, so the ``act_bits``
  and ``zero_skip`` axes do not apply to it (it is built with ``act_bits=1``, no zero skipping).

A field without an axis takes the `Design` default. A combination that `Design` still rejects
(for example ``lut3`` with a SIMD that is not a multiple of 3) is reported as invalid by
`Space.expand`, with the message.

Spaces come from a dict (`Space.from_dict`), a TOML file (`Space.from_toml`), command-line
items such as ``pe=8,16,32`` or ``clock_mhz=200:300:50`` (`parse_axis`), or a board's default
(`default_space`). In a TOML file the axes sit in an ``[axes]`` table, each a list of values or
a range table::

    [axes]
    datapath = ["ternary", "lut"]
    pe = { start = 4, stop = 64, factor = 2 }       # 4, 8, 16, 32, 64
    simd = [32, 64, 128]
    clock_mhz = { start = 200, stop = 300, step = 50 }
"""

import itertools
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sim.boards import Board, get_board
from sim.design import DATAPATHS, WEIGHT_FORMATS, WEIGHT_STORES, Design

__all__ = ["AXES", "Space", "default_space", "parse_axis"]

AXES = (
    "datapath",
    "pe",
    "simd",
    "act_bits",
    "acc_bits",
    "weight_format",
    "weight_store",
    "zero_skip",
    "clock_mhz",
)
"""The `Design` fields a space can sweep, in the order designs are enumerated."""

_INT_AXES = ("pe", "simd", "act_bits", "acc_bits")
_CHOICES = {
    "datapath": DATAPATHS,
    "weight_format": tuple(WEIGHT_FORMATS),
    "weight_store": WEIGHT_STORES,
}
# Ranges expand to at most this many values, so that a typo such as step = 0.001 fails fast.
_MAX_RANGE_VALUES = 10_000

MAX_SPACE_SIZE = 5_000_000
"""Most combinations a space may hold; a store of that many designs takes about 3 GB."""


@dataclass(frozen=True)
class Space:
    """A design space: for each swept `Design` field, the tuple of values it takes.

    Build it with `from_dict`, `from_toml` or `default_space`, which check every value.

    Attributes
    ----------
    axes : dict of str to tuple
        Field name (one of `AXES`) to its values, in `AXES` order. Fields left out take the
        `Design` default.
    """

    axes: dict

    @classmethod
    def from_dict(cls, mapping: dict, *, source: str = "space") -> "Space":
        """Build a space from ``{field: values}``; values are a list, a range table or a scalar.

        Parameters
        ----------
        mapping : dict
            Axis name to a list of values, a single value, or a range table ``{start, stop,
            step}`` (arithmetic, ``stop`` included when reached) or ``{start, stop, factor}``
            (geometric).
        source : str
            How the space is named in error messages (a file name, ``--axis``).

        Raises
        ------
        TypeError
            If ``mapping`` is not a dict or a value has the wrong type; the message names the
            axis.
        ValueError
            If an axis is unknown, empty, repeats a value, has a value outside its choices, or a
            datapath has no weight format on the ``weight_format`` axis.
        """
        if not isinstance(mapping, dict):
            raise TypeError(f"{source}: axes must be a table of name = values, got {mapping!r}")
        axes = {}
        for name, raw in mapping.items():
            if name not in AXES:
                raise ValueError(f"{source}: unknown axis {name!r}; known axes: {', '.join(AXES)}")
            axes[name] = _axis_values(name, raw, source)
        ordered = {name: axes[name] for name in AXES if name in axes}
        _check_pairings(ordered, source)
        return cls(axes=ordered)

    @classmethod
    def from_toml(cls, path: "str | Path") -> "Space":
        """Read a space from a TOML file with an ``[axes]`` table (see the module docstring).

        Raises
        ------
        OSError
            If the file cannot be read.
        ValueError, TypeError
            If the file is not valid TOML (the message gives the line and column), has a key
            other than ``axes``, or an axis is invalid (the message names the key and its line).
        """
        path = Path(path)
        return cls.from_toml_text(path.read_text(encoding="utf-8"), source=f"space file {path}")

    @classmethod
    def from_toml_text(cls, text: str, *, source: str = "space file") -> "Space":
        """Parse a space from TOML text; see `from_toml`."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{source}: invalid TOML: {error}") from None
        for key in document:
            if key != "axes":
                raise ValueError(
                    f"{source}{_line_of(text, key)}: unknown key {key!r}; a space file has one "
                    "table, [axes]"
                )
        if "axes" not in document:
            raise ValueError(f"{source}: missing table [axes] (for example: [axes] pe = [8, 16])")
        axes = document["axes"]
        if not isinstance(axes, dict):
            raise TypeError(f"{source}{_line_of(text, 'axes')}: axes must be a table, [axes]")
        try:
            return cls.from_dict(axes, source=source)
        except (TypeError, ValueError) as error:
            # Name the line of the offending key, which tomllib does not keep.
            message = str(error)
            for name in axes:
                if f"axis {name!r}" in message:
                    where = _line_of(text, name)
                    message = message.replace(f"{source}:", f"{source}{where}:", 1)
                    break
            raise type(error)(message) from None

    def with_axes(self, overrides: dict) -> "Space":
        """Return a copy in which the axes of ``overrides`` replace or add to these axes."""
        merged = dict(self.axes)
        merged.update(overrides)
        return Space.from_dict(merged)

    @property
    def size(self) -> int:
        """The number of combinations before the pairing rules: the product of the axis sizes."""
        return math.prod(len(values) for values in self.axes.values())

    def expand(self, board: "str | Board") -> tuple[list[Design], list[tuple[dict, str]]]:
        """Enumerate the designs of the space on ``board``.

        Returns
        -------
        designs : list of Design
            Every valid combination, in a fixed order (datapath, then the other axes in `AXES`
            order, the last axis varying fastest).
        invalid : list of (dict, str)
            The combinations that `Design` rejects, each with its fields and the message.
        """
        if self.size > MAX_SPACE_SIZE:
            raise ValueError(
                f"the space has {self.size:,} combinations, more than the limit of "
                f"{MAX_SPACE_SIZE:,}; use fewer values on some axes"
            )
        if isinstance(board, str):
            board = get_board(board)
        designs, invalid = [], []
        for datapath in self.axes.get("datapath", (None,)):
            for fields in self._combinations(datapath):
                try:
                    designs.append(Design(board=board, **fields))
                except ValueError as error:
                    invalid.append((fields, str(error)))
        return designs, invalid

    def _combinations(self, datapath):
        effective = datapath or "ternary"
        names = [name for name in AXES if name != "datapath"]
        choices = []
        for name in names:
            values = self.axes.get(name, (None,))
            if name == "weight_format" and name in self.axes:
                values = tuple(v for v in values if WEIGHT_FORMATS[v][0] == effective)
            if effective == "xnor" and name in ("act_bits", "zero_skip"):
                values = (None,)
            choices.append(values)
        for combination in itertools.product(*choices):
            fields = {} if datapath is None else {"datapath": datapath}
            for name, value in zip(names, combination, strict=True):
                if value is not None:
                    fields[name] = value
            yield fields

    def to_dict(self) -> dict:
        """Return the axes as a JSON-ready dict of lists."""
        return {name: list(values) for name, values in self.axes.items()}


def default_space(board: "str | Board") -> Space:
    """Return the default space of ``board``: the designs worth a first look there.

    Both datapaths that run ternary weights (``ternary`` with the ``2bit`` and ``base3``
    formats, ``lut`` with ``lut2``); PE and SIMD at every power of two from 1 to 512; zero
    skipping off and on; weights streamed from DRAM and kept on chip (on chip only on a board
    without DRAM); the board's typical clock.

    Notes
    -----
    The clock is not swept because the analytical model has no timing closure: a faster clock
    would always win. ``lut3`` is left out because its group of 3 weights needs a SIMD that is a
    multiple of 3, and such a SIMD divides no layer of the catalogue's power-of-two-heavy models.
    ``xnor`` is left out because every model of the catalogue has ternary weights.
    """
    if isinstance(board, str):
        board = get_board(board)
    powers = tuple(2**exponent for exponent in range(10))
    stores = ("stream", "onchip") if board.has_dram else ("onchip",)
    return Space.from_dict(
        {
            "datapath": ("ternary", "lut"),
            "pe": powers,
            "simd": powers,
            "weight_format": ("2bit", "base3", "lut2"),
            "weight_store": stores,
            "zero_skip": (False, True),
            "clock_mhz": (float(board.clock_mhz),),
        },
        source=f"default space of {board.name}",
    )


def parse_axis(text: str) -> tuple[str, tuple]:
    """Parse one command-line axis, ``name=v1,v2,...`` or ``name=start:stop:step``.

    A range ``start:stop:step`` is arithmetic; ``start:stop:*factor`` is geometric; both include
    ``stop`` when it is reached. Values of ``zero_skip`` are true/false; ``acc_bits`` also takes
    ``auto``.

    Raises
    ------
    ValueError
        If the item is not ``name=values`` or a value does not parse; the message quotes the
        item.
    """
    name, sep, values = text.partition("=")
    name, values = name.strip(), values.strip()
    if not sep or not name or not values:
        raise ValueError(
            f"--axis {text!r} must have the form name=v1,v2,... or name=start:stop:step"
        )
    source = f"--axis {text!r}"
    if name not in AXES:
        raise ValueError(f"{source}: unknown axis {name!r}; known axes: {', '.join(AXES)}")
    if ":" in values:
        parts = values.split(":")
        if len(parts) != 3:
            raise ValueError(f"{source}: a range must be start:stop:step or start:stop:*factor")
        start, stop, step = (part.strip() for part in parts)
        key = "factor" if step.startswith("*") else "step"
        raw = {
            "start": _parse_number(start, source),
            "stop": _parse_number(stop, source),
            key: _parse_number(step.lstrip("*"), source),
        }
    else:
        raw = [_parse_item(name, item.strip(), source) for item in values.split(",")]
    return name, _axis_values(name, raw, source)


def _parse_number(text: str, source: str):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{source}: {text!r} is not a number") from None


def _parse_item(name: str, text: str, source: str):
    if name in _CHOICES:
        return text
    if name == "zero_skip":
        word = text.lower()
        if word in ("true", "yes", "on", "1"):
            return True
        if word in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"{source}: zero_skip values must be true or false, got {text!r}")
    if name == "acc_bits" and text.lower() == "auto":
        return None
    return _parse_number(text, source)


def _axis_values(name: str, raw, source: str) -> tuple:
    if isinstance(raw, dict):
        values = _range_values(name, raw, source)
    elif isinstance(raw, list | tuple):
        values = tuple(raw)
    else:
        values = (raw,)
    if not values:
        raise ValueError(f"{source}: axis {name!r} has no values; give at least one")
    checked = tuple(_check_value(name, value, source) for value in values)
    seen = set()
    for value in checked:
        if value in seen:
            raise ValueError(f"{source}: axis {name!r} lists {value!r} twice")
        seen.add(value)
    return checked


def _range_values(name: str, table: dict, source: str) -> tuple:
    keys = set(table)
    if keys not in ({"start", "stop", "step"}, {"start", "stop", "factor"}):
        raise ValueError(
            f"{source}: axis {name!r}: a range table needs start, stop and step (or start, stop "
            f"and factor), got keys {', '.join(sorted(keys))}"
        )
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{source}: axis {name!r}: range {key} must be a number, got {value!r}")
    start, stop = table["start"], table["stop"]
    if stop < start:
        raise ValueError(f"{source}: axis {name!r}: range stop {stop} is below start {start}")
    values = []
    if "step" in table:
        step = table["step"]
        if not step > 0:
            raise ValueError(f"{source}: axis {name!r}: range step must be > 0, got {step}")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        if count > _MAX_RANGE_VALUES:
            raise ValueError(
                f"{source}: axis {name!r}: the range has {count} values, over the limit of "
                f"{_MAX_RANGE_VALUES}"
            )
        # Index times step, not repeated addition, so float ranges do not drift.
        values = [start + index * step for index in range(count)]
    else:
        factor = table["factor"]
        if not factor > 1:
            raise ValueError(f"{source}: axis {name!r}: range factor must be > 1, got {factor}")
        if not start > 0:
            raise ValueError(
                f"{source}: axis {name!r}: a geometric range needs start > 0, got {start}"
            )
        value = start
        while value <= stop * (1 + 1e-12) and len(values) <= _MAX_RANGE_VALUES:
            values.append(value)
            value = value * factor
    return tuple(values)


def _check_value(name: str, value, source: str):
    where = f"{source}: axis {name!r}"
    if name in _CHOICES:
        if not isinstance(value, str):
            raise TypeError(f"{where} takes strings, got {value!r}")
        if value not in _CHOICES[name]:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(_CHOICES[name])}")
        return value
    if name == "zero_skip":
        if not isinstance(value, bool):
            raise TypeError(f"{where} takes true or false, got {value!r}")
        return value
    if name == "acc_bits" and value is None:
        return None
    if name in _INT_AXES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{where} takes integers, got {value!r}")
        if value < 1:
            raise ValueError(f"{where}: values must be >= 1, got {value}")
        return value
    # clock_mhz
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where} takes numbers, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{where}: values must be positive, got {value}")
    return float(value)


def _check_pairings(axes: dict, source: str) -> None:
    if "weight_format" not in axes:
        return
    formats = axes["weight_format"]
    datapaths = axes.get("datapath", ("ternary",))
    for datapath in datapaths:
        if not any(WEIGHT_FORMATS[name][0] == datapath for name in formats):
            served = [name for name, entry in WEIGHT_FORMATS.items() if entry[0] == datapath]
            raise ValueError(
                f"{source}: axis 'datapath' has {datapath!r}, but axis 'weight_format' "
                f"({', '.join(formats)}) has no format for it; add one of {', '.join(served)}"
            )
    unused = [name for name in formats if WEIGHT_FORMATS[name][0] not in datapaths]
    if unused:
        raise ValueError(
            f"{source}: axis 'weight_format' has {', '.join(map(repr, unused))}, which no "
            f"datapath of the space ({', '.join(datapaths)}) reads"
        )


def _line_of(text: str, key: str) -> str:
    pattern = re.compile(rf"^\s*(\[\s*)?{re.escape(key)}\s*(=|\])")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return f", line {number}"
    return ""
