"""`Design`: the one validated description of an accelerator that every part of onebit reads.

Implemented so far: the ``ternary`` datapath on an ``mvu`` array (layers) and on a ``systolic``
array (single GEMMs, `sim.simulate_gemm`); the ``xnor`` and ``lut`` datapaths on an ``mvu``
array. `Design.check_fits` checks a design against the resources of its board.
"""

import dataclasses
import math
from dataclasses import dataclass

from sim.boards import Board, get_board

__all__ = ["ARRAYS", "DATAPATHS", "WEIGHT_FORMATS", "WEIGHT_STORES", "Design"]

DATAPATHS = ("ternary", "xnor", "lut")
"""Datapath names of the design language."""

ARRAYS = ("mvu", "systolic")
"""Array names of the design language."""

_IMPLEMENTED_DATAPATHS = ("ternary", "xnor", "lut")
_IMPLEMENTED_ARRAYS = ("mvu", "systolic")

DATAFLOWS = ("ws", "os", "is")
"""Systolic dataflows: weight, output or input stationary (SCALE-Sim's names)."""

# Parallelism taken when the spec leaves it out: an MVU of 16 rows by 64 lanes, or a 32 x 32
# weight-stationary array (the size of SCALE-Sim 3.0's example configuration).
_MVU_DEFAULTS = {"pe": 16, "simd": 64}
_SYSTOLIC_DEFAULTS = {"rows": 32, "cols": 32, "dataflow": "ws"}

WEIGHT_STORES = ("stream", "onchip")
"""``stream``: weights read from DRAM on every run; ``onchip``: resident in BRAM and URAM."""

WEIGHT_FORMATS = {
    # name: (datapath it encodes weights for, weights per code, bits per code)
    "2bit": ("ternary", 1, 2),
    "hf": ("ternary", 1, 2),
    "i2_s": ("ternary", 1, 2),
    "base3": ("ternary", 5, 8),
    "binary": ("xnor", 1, 1),
    "lut2": ("lut", 2, 4),
    "lut3": ("lut", 3, 5),
}
"""Weight formats: the datapath each one serves and the size of one code (weights, bits).

``2bit``, ``hf`` (the Hugging Face BitNet layout) and ``i2_s`` (bitnet.cpp) all spend two bits
per ternary weight; ``base3`` packs five trits per byte (3**5 = 243 <= 256), 1.6 bits per weight.
``binary`` spends one bit per ±1 weight. ``lut2`` and ``lut3`` store a group of g = 2 or 3
ternary weights as one index into the 3**g-entry table of the ``lut`` datapath: 4 bits for the
9 entries of g = 2 (bitnet.cpp TL1's 4-bit index per weight pair), 5 bits for the 27 entries of
g = 3 (TL2's 4-bit index and sign bit), 1.67 bits per weight. The host lays a layer out tile by
tile in DRAM, and each tile of PE x SIMD weights is padded to whole bytes. Per-tensor scales
stay on the host and are not counted.
"""

_DEFAULT_FORMATS = {"ternary": "2bit", "xnor": "binary", "lut": "lut2"}
_DEFAULT_ACT_BITS = {"ternary": 8, "xnor": 1, "lut": 8}

_MAX_ACC_BITS = 32
_MAX_CLOCK_MHZ = 10_000


def _require_int(name: str, value, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Design.{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"Design.{name} must be {bound}, got {value}")


def _require_choice(name: str, value, choices) -> None:
    if not isinstance(value, str):
        raise TypeError(f"Design.{name} must be a str, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise ValueError(f"Design.{name} must be one of {', '.join(choices)}; got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Design:
    """An accelerator design: datapath, array, parallelism, number formats, memory and board.

    Parameters
    ----------
    datapath : {"ternary", "xnor", "lut"}
        ``ternary`` lanes add, subtract or skip an activation per weight. ``xnor`` lanes take
        ±1 weights and ±1 activations and count agreements (XNOR and popcount). ``lut`` lanes
        look up the dot product of a group of g ternary weights with g activations in a table of
        its 3**g possible values, built once per activation group (T-MAC, bitnet.cpp TL1/TL2).
    array : {"mvu", "systolic"}
        ``mvu``: a matrix-vector unit of PE output rows by SIMD input lanes (FINN-style folding).
        ``systolic``: a rows x cols array of processing elements that runs one GEMM with the
        given dataflow (see `sim.simulate_gemm`).
    pe, simd : int or None
        MVU only: output rows and input lanes computed per cycle; each must divide the layer's
        N and K. ``None`` takes 16 and 64 for an MVU; a systolic design must leave them out.
    rows, cols : int or None
        Systolic only: the height R and width C of the array. ``None`` takes 32 x 32 for a
        systolic array; an MVU design must leave them out.
    dataflow : {"ws", "os", "is"} or None
        Systolic only: which operand stays in the processing elements (weights, outputs or
        inputs). ``None`` takes ``"ws"`` for a systolic array; an MVU design must leave it out.
    act_bits : int or None
        Activation width: 2 to 8 for ``ternary`` and ``lut`` (8 for BitNet b1.58), 1 for
        ``xnor`` (codes -1 and +1). ``None`` takes 1 for ``xnor`` and 8 otherwise.
    acc_bits : int or None
        Accumulator width, ``act_bits + 1`` to 32. ``None`` sizes it per layer to the smallest
        width that cannot overflow (see `accumulator_bits`).
    weight_store : {"stream", "onchip"} or None
        Where the weights live while the accelerator runs. ``None`` takes ``stream`` on a board
        with DRAM and ``onchip`` on a board without (the iCEBreaker), where ``stream`` is
        rejected.
    weight_format : {"2bit", "hf", "i2_s", "base3", "binary", "lut2", "lut3"} or None
        How the weights are packed in memory; it sets the bytes per weight and must suit the
        datapath (see `WEIGHT_FORMATS`). ``None`` takes ``2bit`` for ``ternary``, ``binary`` for
        ``xnor`` and ``lut2`` for ``lut``. With ``lut``, SIMD must be a multiple of the group
        size g.
    zero_skip : bool
        Whether lanes with a zero weight (``lut``: a group of zero weights) are clock-gated. The
        MVU schedule is fixed, so skipping saves lane energy but no cycles. Not allowed with
        ``xnor``, whose weights have no zeros.
    clock_mhz : float or None
        Target clock; ``None`` takes the board's typical clock.
    board : Board
        The target board, from `sim.BOARDS` or `sim.get_board`.

    Raises
    ------
    TypeError
        If a field has the wrong type.
    ValueError
        If a field has a disallowed value or two fields contradict each other.
    NotImplementedError
        If a known but unimplemented datapath or array is requested.
    """

    datapath: str = "ternary"
    array: str = "mvu"
    pe: int | None = None
    simd: int | None = None
    rows: int | None = None
    cols: int | None = None
    dataflow: str | None = None
    act_bits: int | None = None
    acc_bits: int | None = None
    weight_store: str | None = None
    weight_format: str | None = None
    zero_skip: bool = False
    clock_mhz: float | None = None
    board: Board

    def __post_init__(self) -> None:
        if not isinstance(self.board, Board):
            raise TypeError(
                f"Design.board must be a sim.Board, got {type(self.board).__name__} "
                f"{self.board!r}; look a board up with sim.get_board(name)"
            )
        _require_choice("datapath", self.datapath, DATAPATHS)
        if self.datapath not in _IMPLEMENTED_DATAPATHS:
            raise NotImplementedError(
                f"Design.datapath {self.datapath!r} is not implemented yet; "
                f"implemented: {', '.join(_IMPLEMENTED_DATAPATHS)}"
            )
        _require_choice("array", self.array, ARRAYS)
        if self.array not in _IMPLEMENTED_ARRAYS:
            raise NotImplementedError(
                f"Design.array {self.array!r} is not implemented yet; "
                f"implemented: {', '.join(_IMPLEMENTED_ARRAYS)}"
            )
        self._resolve_parallelism()
        self._check_number_formats()
        if self.weight_store is None:
            object.__setattr__(self, "weight_store", "stream" if self.board.has_dram else "onchip")
        _require_choice("weight_store", self.weight_store, WEIGHT_STORES)
        if self.weight_store == "stream" and not self.board.has_dram:
            raise ValueError(
                f"Design.weight_store = 'stream' needs DRAM, but board {self.board.name!r} has "
                "none: use weight_store=onchip, so that the weights stay in on-chip memory"
            )
        if not isinstance(self.zero_skip, bool):
            raise TypeError(
                f"Design.zero_skip must be a bool, got {type(self.zero_skip).__name__} "
                f"{self.zero_skip!r}"
            )
        if self.zero_skip and self.datapath == "xnor":
            raise ValueError(
                "Design.zero_skip = True does not apply to Design.datapath = 'xnor': binary "
                "weights are ±1 and have no zeros to skip"
            )
        if self.clock_mhz is None:
            object.__setattr__(self, "clock_mhz", float(self.board.clock_mhz))
        clock = self.clock_mhz
        if isinstance(clock, bool) or not isinstance(clock, int | float):
            raise TypeError(
                f"Design.clock_mhz must be a number, got {type(clock).__name__} {clock!r}"
            )
        if not (math.isfinite(clock) and clock > 0):
            raise ValueError(f"Design.clock_mhz must be positive and finite, got {clock}")
        if clock > _MAX_CLOCK_MHZ:
            raise ValueError(
                f"Design.clock_mhz must be at most {_MAX_CLOCK_MHZ} MHz, got {clock}; "
                "no FPGA fabric clocks faster"
            )
        object.__setattr__(self, "clock_mhz", float(clock))
        if self.clock_hz < 1:
            raise ValueError(f"Design.clock_mhz must be at least 1 Hz, got {clock} MHz")

    def _check_number_formats(self) -> None:
        # act_bits and weight_format default per datapath: 1-bit activations and binary
        # weights for xnor, 8-bit activations and a ternary format otherwise.
        if self.act_bits is None:
            object.__setattr__(self, "act_bits", _DEFAULT_ACT_BITS[self.datapath])
        if self.weight_format is None:
            object.__setattr__(self, "weight_format", _DEFAULT_FORMATS[self.datapath])
        if self.datapath == "xnor":
            _require_int("act_bits", self.act_bits, 1)
            if self.act_bits != 1:
                raise ValueError(
                    f"Design.act_bits = {self.act_bits} does not fit Design.datapath = 'xnor', "
                    "which takes 1-bit (±1) activations: set act_bits=1"
                )
        else:
            _require_int("act_bits", self.act_bits, 2, 8)
        if self.acc_bits is not None:
            _require_int("acc_bits", self.acc_bits, self.act_bits + 1, _MAX_ACC_BITS)
        _require_choice("weight_format", self.weight_format, tuple(WEIGHT_FORMATS))
        format_datapath = WEIGHT_FORMATS[self.weight_format][0]
        if format_datapath != self.datapath:
            raise ValueError(
                f"Design.weight_format {self.weight_format!r} holds {format_datapath} weights, "
                f"but Design.datapath is {self.datapath!r}"
            )
        group = self.group_size
        if self.datapath == "lut" and self.array == "mvu" and self.simd % group:
            raise ValueError(
                f"Design.simd = {self.simd} must be a multiple of the group size {group} of "
                f"Design.weight_format = {self.weight_format!r}, so that no weight group "
                "straddles two folds"
            )

    def _resolve_parallelism(self) -> None:
        # Each array reads its own fields: pe and simd size an MVU, rows, cols and dataflow a
        # systolic array. A field of the other array is rejected, not ignored, so that a spec
        # never describes hardware that would not be simulated.
        if self.array == "systolic":
            used, unused = _SYSTOLIC_DEFAULTS, _MVU_DEFAULTS
        else:
            used, unused = _MVU_DEFAULTS, _SYSTOLIC_DEFAULTS
        for name in unused:
            value = getattr(self, name)
            if value is not None:
                raise ValueError(
                    f"Design.{name} = {value!r} does not apply to Design.array = "
                    f"{self.array!r}, which is set by {_join_names(used)}; remove {name}"
                )
        for name, default in used.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if self.array == "systolic":
            _require_int("rows", self.rows, 1)
            _require_int("cols", self.cols, 1)
            _require_choice("dataflow", self.dataflow, DATAFLOWS)
        else:
            _require_int("pe", self.pe, 1)
            _require_int("simd", self.simd, 1)

    @property
    def clock_hz(self) -> int:
        """The clock in whole hertz, so cycle arithmetic stays in integers."""
        return round(self.clock_mhz * 1e6)

    @property
    def weights_per_byte(self) -> float:
        """Weights that one byte of the weight format holds (4.8 for ``lut3``)."""
        _, weights, bits = WEIGHT_FORMATS[self.weight_format]
        ratio = 8 * weights / bits
        return int(ratio) if ratio == int(ratio) else ratio

    @property
    def group_size(self) -> int:
        """Weights per code of the weight format: g of the ``lut`` formats, 5 for base3, else 1."""
        return WEIGHT_FORMATS[self.weight_format][1]

    @property
    def tile_bytes(self) -> int:
        """Bytes of one fold's weight tile (PE x SIMD weights, padded to whole bytes)."""
        _, weights, bits = WEIGHT_FORMATS[self.weight_format]
        codes = -(-(self.pe * self.simd) // weights)
        return -(-(codes * bits) // 8)

    def weight_bytes(self, n: int, k: int) -> int:
        """Return the bytes that an N x K layer's weights take in memory, tile by tile."""
        return (n // self.pe) * (k // self.simd) * self.tile_bytes

    def accumulator_bits(self, k: int) -> int:
        """Return the accumulator width for a dot product of length K.

        That is ``acc_bits`` when set, else the smallest width that cannot overflow, see
        `min_accumulator_bits`.
        """
        if self.acc_bits is not None:
            return self.acc_bits
        return self.min_accumulator_bits(k)

    def min_accumulator_bits(self, k: int) -> int:
        """Return the smallest signed accumulator width that holds any length-K dot product.

        Notes
        -----
        With activations in [-2**(a-1), 2**(a-1) - 1] and weights in {-1, 0, 1}, the sum lies in
        [-K 2**(a-1), K 2**(a-1)]; the upper end is reached by weights of -1 against activations
        of -2**(a-1). A signed b-bit register holds it when K 2**(a-1) <= 2**(b-1) - 1, that is
        2**(b-a) > K, so b = a + floor(log2 K) + 1 = a + K.bit_length(). For a = 8 and K = 4 this
        is 11 bits, because 4 * 128 = 512 does not fit in 10.
        """
        return self.act_bits + int(k).bit_length()

    def check_layer(self, n: int, k: int, *, capacity: bool = True) -> None:
        """Check that this design can run an N x K layer (N outputs, K inputs) as it is.

        With ``capacity=False`` the on-chip capacity is not checked, so that a whole model can
        be costed first and its fit judged over all layers at once (see `check_fits`).

        Raises
        ------
        TypeError
            If ``n`` or ``k`` is not an int.
        ValueError
            If ``pe`` does not divide N or ``simd`` does not divide K (no padding is done); if
            the accumulator is too narrow for K; if the weights are kept on chip and exceed the
            board's on-chip bytes.
        NotImplementedError
            If the design is a systolic array: it runs GEMMs through `sim.simulate_gemm`.
        """
        if self.array == "systolic":
            raise NotImplementedError(
                "Design.array 'systolic' runs single GEMMs through sim.simulate_gemm; "
                "layers and models run on Design.array 'mvu' only"
            )
        for name, value in (("n", n), ("k", k)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"layer {name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"layer {name} must be >= 1, got {value}")
        if n % self.pe:
            raise ValueError(
                f"Design.pe = {self.pe} must divide the layer's N = {n} output rows "
                "(layers are not padded)"
            )
        if k % self.simd:
            raise ValueError(
                f"Design.simd = {self.simd} must divide the layer's K = {k} inputs "
                "(layers are not padded)"
            )
        needed = self.min_accumulator_bits(k)
        width = self.accumulator_bits(k)
        if width < needed:
            raise ValueError(
                f"Design.acc_bits = {width} can overflow for K = {k} at act_bits = "
                f"{self.act_bits}: a dot product needs {needed} bits (act_bits + K.bit_length())"
            )
        if needed > _MAX_ACC_BITS:
            raise ValueError(
                f"K = {k} needs a {needed}-bit accumulator at act_bits = {self.act_bits}; "
                f"the maximum is {_MAX_ACC_BITS}"
            )
        if capacity and self.weight_store == "onchip":
            size = self.weight_bytes(n, k)
            if size > self.board.onchip_bytes:
                raise ValueError(
                    f"Design.weight_store = 'onchip': the {n} x {k} layer needs {size} bytes in "
                    f"format {self.weight_format!r}, over the {self.board.onchip_bytes} on-chip "
                    f"bytes of board {self.board.name!r} by {size - self.board.onchip_bytes}"
                )

    def check_fits(self, layers=(), *, tokens: int = 1) -> "FitReport":  # noqa: F821
        """Check that the design fits its board, with the weights of ``layers`` if on chip.

        Parameters
        ----------
        layers : ModelConfig, iterable of Layer or of (N, K) pairs
            The ternary layers the design holds; see `sim.resources.fit_report`.
        tokens : int
            Vectors per run, which size the activation buffer and the accumulators.

        Returns
        -------
        FitReport
            The resources needed and the board's capacity, when everything fits.

        Raises
        ------
        ValueError
            If a resource (LUT, FF, DSP or on-chip memory) is over the board's capacity; the
            message names the resource, the need, the capacity and the excess.
        """
        from sim.resources import fit_report

        report = fit_report(self, layers, tokens=tokens)
        report.raise_if_not_fits()
        return report

    def to_dict(self) -> dict:
        """Return the design as a JSON-ready dict, with the board by its short name."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["board"] = self.board.name
        return fields

    def to_spec(self) -> str:
        """Return the design as a ``key=value,...`` spec that `from_spec` parses back.

        The board is not part of the spec; pass it to `from_spec` separately.
        """
        fields = self.to_dict()
        del fields["board"]
        # The other array's fields are None and are left out: from_spec rejects them.
        for name in (*_MVU_DEFAULTS, *_SYSTOLIC_DEFAULTS):
            if fields[name] is None:
                del fields[name]
        return ",".join(f"{key}={_format_value(value)}" for key, value in fields.items())

    @classmethod
    def from_spec(cls, spec: "str | dict | None", board: "str | Board") -> "Design":
        """Build a design from a ``key=value,...`` string or a dict, on ``board``.

        Parameters
        ----------
        spec : str, dict or None
            For example ``"pe=16,simd=64,weight_store=onchip"``. Keys are the field names of
            `Design` except ``board``; omitted keys take the defaults. ``acc_bits=auto`` (or
            ``none``) derives the accumulator width; booleans are true/false, yes/no, on/off or
            1/0. Dict values that are strings are parsed the same way; other values are taken
            as they are. ``None`` or an empty string gives the default design.
        board : str or Board
            A board, or its short name in `sim.BOARDS`.

        Raises
        ------
        TypeError
            If ``spec`` or ``board`` has the wrong type, or a value has the wrong type.
        ValueError
            If an item is not ``key=value``, a key is unknown or repeated, a value does not
            parse, or the resulting design is invalid.
        NotImplementedError
            If the spec asks for an unimplemented datapath or array.
        """
        if isinstance(board, str):
            board = get_board(board)
        elif not isinstance(board, Board):
            raise TypeError(
                f"board must be a board name or a sim.Board, got {type(board).__name__}"
            )
        if spec is None:
            items = {}
        elif isinstance(spec, str):
            items = _split_spec(spec)
        elif isinstance(spec, dict):
            items = dict(spec)
        else:
            raise TypeError(
                f"design spec must be a 'key=value,...' str, a dict or None, "
                f"got {type(spec).__name__}"
            )
        fields = {}
        for key, value in items.items():
            if not isinstance(key, str):
                raise TypeError(f"design spec keys must be str, got {type(key).__name__} {key!r}")
            if key == "board":
                raise ValueError(
                    "design spec key 'board' is not allowed: pass the board as the board argument"
                )
            if key not in _SPEC_PARSERS:
                raise ValueError(
                    f"unknown design spec key {key!r}; known keys: {', '.join(_SPEC_PARSERS)}"
                )
            fields[key] = _SPEC_PARSERS[key](key, value) if isinstance(value, str) else value
        return cls(board=board, **fields)


def _join_names(names) -> str:
    *head, last = names
    return f"{', '.join(head)} and {last}" if head else last


def _split_spec(spec: str) -> dict[str, str]:
    items: dict[str, str] = {}
    if not spec.strip():
        return items
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ValueError(f"design spec item {item.strip()!r} must have the form key=value")
        if key in items:
            raise ValueError(f"design spec key {key!r} is given twice")
        items[key] = value
    return items


def _parse_str(key: str, value: str) -> str:
    return value.strip()


def _parse_int(key: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"design spec key {key!r} must be an integer, got {value!r}") from None


def _parse_acc_bits(key: str, value: str) -> int | None:
    if value.strip().lower() in ("auto", "none"):
        return None
    return _parse_int(key, value)


def _parse_float(key: str, value: str) -> float:
    try:
        return float(value.strip())
    except ValueError:
        raise ValueError(f"design spec key {key!r} must be a number, got {value!r}") from None


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _parse_bool(key: str, value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(
        f"design spec key {key!r} must be a boolean ({'/'.join(_TRUE)} or {'/'.join(_FALSE)}), "
        f"got {value!r}"
    )


def _format_value(value) -> str:
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_SPEC_PARSERS = {
    "datapath": _parse_str,
    "array": _parse_str,
    "pe": _parse_int,
    "simd": _parse_int,
    "rows": _parse_int,
    "cols": _parse_int,
    "dataflow": _parse_str,
    "act_bits": _parse_int,
    "acc_bits": _parse_acc_bits,
    "weight_store": _parse_str,
    "weight_format": _parse_str,
    "zero_skip": _parse_bool,
    "clock_mhz": _parse_float,
}
