"""The board catalogue: the FPGA resources and memory system of each target board.

Every figure cites its document in the board's ``source`` field. Resource counts (LUT, FF, DSP,
memory blocks) are the device table of the data sheet named there; DRAM figures are the board's
memory interface (bus width times transfer rate). On-chip bytes are derived from the block
counts, parity bits included, because a weight memory as wide as the block uses every bit:

- AMD: 36 Kib per BRAM36 and 288 Kib per URAM288;
- Lattice ECP5: 18 Kib per sysMEM EBR block (``bram18``);
- Lattice iCE40 UltraPlus: 4 Kib per EBR block (``bram4``) and 256 Kib per SPRAM block
  (``spram``).

A board without external memory (the iCEBreaker) has ``dram_bytes = 0`` and
``dram_bytes_per_s = 0``: only designs that keep the weights on chip can run on it, and
`sim.Design` rejects ``weight_store="stream"`` there.

The DRAM burst (`Board.dram_burst_bytes`) is the bus width times the burst length of the memory
standard: BL8 for DDR3 and DDR4, BL4 for an HBM2 pseudo channel.

Four kinds of figure are not data-sheet values and are marked as estimates: the typical clock
(a clock that designs of this kind close timing at on the device), the static power, the DRAM
energy per bit (see `sim.energy` for the sources of the energy figures) and the DRAM read
latency (the DRAM's own CAS and activate times plus an allowance for the controller and
interconnect; no measurement on these boards was available).
"""

import dataclasses
import math
from dataclasses import dataclass

from sim import energy

__all__ = ["BLOCK_BYTES", "BOARDS", "Board", "get_board"]

BLOCK_BYTES = {
    "bram36": 36 * 1024 // 8,
    "uram": 288 * 1024 // 8,
    "bram18": 18 * 1024 // 8,
    "bram4": 4 * 1024 // 8,
    "spram": 256 * 1024 // 8,
}
"""Bytes of one on-chip memory block of each kind, by the `Board` field that counts them."""

_GIB = 2**30
_MIB = 2**20


def _onchip_bytes(bram36: int = 0, uram: int = 0, bram18: int = 0, bram4: int = 0, spram: int = 0):
    counts = {"bram36": bram36, "uram": uram, "bram18": bram18, "bram4": bram4, "spram": spram}
    return sum(count * BLOCK_BYTES[kind] for kind, count in counts.items())


@dataclass(frozen=True)
class Board:
    """An FPGA board as the simulator sees it.

    Attributes
    ----------
    name : str
        Lowercase short name, the key in `BOARDS` (``"kv260"``).
    title : str
        The product name.
    family : str
        Device family: ``"zynq-7000"``, ``"zynq-ultrascale+"``, ``"alveo"``, ``"ecp5"``,
        ``"ice40"``.
    lut, ff, dsp, bram36, uram : int
        Look-up tables, flip-flops, DSP slices (or hard multipliers), 36 Kb block RAMs, 288 Kb
        UltraRAMs.
    onchip_bytes : int
        Capacity of all on-chip memory blocks in bytes.
    dram_bytes_per_s : int
        Peak bandwidth of the memory the weights stream from (DDR, SDRAM or HBM), bytes per
        second; 0 when the board has none.
    dram_bytes : int
        Capacity of that memory in bytes; 0 when the board has none.
    clock_mhz : float
        Typical fabric clock of an accelerator on this device (an estimate).
    static_power_w : float
        Static power of the device in watts (an estimate).
    dram_pj_per_bit : float
        Energy of one bit read from DRAM in picojoules (an estimate).
    source : str
        The documents the figures come from.
    bram18 : int
        18 Kb block RAMs (Lattice ECP5 sysMEM EBR).
    bram4 : int
        4 Kb block RAMs (Lattice iCE40 EBR).
    spram : int
        256 Kb single-port RAMs (Lattice iCE40 UltraPlus SPRAM).
    lut_inputs : int
        Inputs of one LUT: 6 on AMD devices, 4 on Lattice devices. The resource model uses it to
        size multiplexers.
    dram_burst_bytes : int
        Bytes of one DRAM burst, the smallest unit a read transfers: the data bus width times
        the burst length. A weight tile costs every burst it overlaps. 0 without DRAM.
    dram_latency_ns : int
        Nanoseconds from a read request of the fabric to the first data returned (an
        estimate). 0 without DRAM.
    """

    name: str
    title: str
    family: str
    lut: int
    ff: int
    dsp: int
    bram36: int
    uram: int
    onchip_bytes: int
    dram_bytes_per_s: int
    dram_bytes: int
    clock_mhz: float
    static_power_w: float
    dram_pj_per_bit: float
    source: str
    bram18: int = 0
    bram4: int = 0
    spram: int = 0
    lut_inputs: int = 6
    dram_burst_bytes: int = 0
    dram_latency_ns: int = 0

    def __post_init__(self) -> None:
        # get_board looks boards up by lowercase name, so any other name could never be found.
        if (
            not isinstance(self.name, str)
            or not self.name
            or self.name != self.name.strip().lower()
        ):
            raise ValueError(
                f"Board.name must be a non-empty lowercase str without surrounding spaces, "
                f"got {self.name!r}"
            )
        counts = ("lut", "ff", "dsp", "bram36", "uram", "bram18", "bram4", "spram")
        dram = ("dram_bytes", "dram_burst_bytes", "dram_latency_ns")
        for field in (*counts, "onchip_bytes", *dram):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Board.{field} must be an int >= 0, got {value!r}")
        if self.lut_inputs not in (4, 6):
            raise ValueError(f"Board.lut_inputs must be 4 or 6, got {self.lut_inputs!r}")
        # The timing model divides by the bandwidth of streamed weights, so a board with DRAM
        # needs a positive bandwidth; a board without DRAM has none, and streaming is rejected.
        bandwidth = self.dram_bytes_per_s
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, int) or bandwidth < 0:
            raise ValueError(f"Board.dram_bytes_per_s must be an int >= 0, got {bandwidth!r}")
        if self.dram_bytes > 0 and bandwidth == 0:
            raise ValueError(
                f"Board.dram_bytes_per_s must be an int > 0 when Board.dram_bytes is "
                f"{self.dram_bytes}, got {bandwidth!r}"
            )
        if self.dram_bytes == 0 and bandwidth > 0:
            raise ValueError(
                f"Board.dram_bytes_per_s must be 0 on a board without DRAM (dram_bytes = 0), "
                f"got {bandwidth!r}"
            )
        if self.dram_bytes > 0 and self.dram_burst_bytes == 0:
            raise ValueError(
                f"Board.dram_burst_bytes must be > 0 when Board.dram_bytes is {self.dram_bytes}, "
                "got 0"
            )
        for field in ("dram_burst_bytes", "dram_latency_ns"):
            if self.dram_bytes == 0 and getattr(self, field) > 0:
                raise ValueError(
                    f"Board.{field} must be 0 on a board without DRAM (dram_bytes = 0), "
                    f"got {getattr(self, field)!r}"
                )
        for field in ("clock_mhz", "static_power_w", "dram_pj_per_bit"):
            value = getattr(self, field)
            number = not isinstance(value, bool) and isinstance(value, int | float)
            if not (number and math.isfinite(value) and value >= 0):
                raise ValueError(f"Board.{field} must be a finite number >= 0, got {value!r}")
        if not self.clock_mhz > 0:
            raise ValueError(f"Board.clock_mhz must be > 0, got {self.clock_mhz!r}")

    @property
    def has_dram(self) -> bool:
        """Whether the board has external memory that weights can stream from."""
        return self.dram_bytes > 0

    def to_dict(self) -> dict:
        """Return the board as a JSON-ready dict."""
        return dataclasses.asdict(self)


_CATALOGUE = (
    Board(
        name="pynq-z2",
        title="TUL PYNQ-Z2 (Zynq-7000 XC7Z020)",
        family="zynq-7000",
        lut=53_200,
        ff=106_400,
        dsp=220,
        bram36=140,
        uram=0,
        onchip_bytes=_onchip_bytes(140, 0),
        # 512 MB DDR3, 16-bit bus at 1050 Mb/s per pin: 16 / 8 * 1.05e9 = 2.1 GB/s.
        dram_bytes_per_s=2_100_000_000,
        dram_bytes=512 * 2**20,
        # DDR3 bursts are 8 transfers (BL8, the PYNQ-Z2 base design's PCW_UIPARAM_DDR_BL) of the
        # 16-bit bus: 16 bytes. The latency is an estimate: CL 7 at 525 MHz (13.3 ns) and tRCD
        # 13.1 ns in the DRAM, the rest in the PS memory controller and interconnect.
        dram_burst_bytes=16,
        dram_latency_ns=200,
        clock_mhz=100.0,
        static_power_w=0.2,
        dram_pj_per_bit=energy.DDR_PJ_PER_BIT,
        source=(
            "AMD DS190 (Zynq-7000 SoC Data Sheet: Overview), XC7Z020 column; "
            "TUL PYNQ-Z2 board reference manual (DDR3 memory)"
        ),
    ),
    Board(
        name="kv260",
        title="AMD Kria KV260 Vision AI Starter Kit (K26 SOM, XCK26)",
        family="zynq-ultrascale+",
        lut=117_120,
        ff=234_240,
        dsp=1_248,
        bram36=144,
        uram=64,
        onchip_bytes=_onchip_bytes(144, 64),
        # 4 GB DDR4, 64-bit bus at 2400 Mb/s per pin: 8 * 2.4e9 = 19.2 GB/s.
        dram_bytes_per_s=19_200_000_000,
        dram_bytes=4 * _GIB,
        # DDR4 bursts are 8 transfers (BL8) of the 64-bit bus: 64 bytes. The latency is an
        # estimate: CL 16 and tRCD 16 of DDR4-2400 (13.3 ns each) in the DRAM, the rest in the
        # PS memory controller and the HP port.
        dram_burst_bytes=64,
        dram_latency_ns=180,
        clock_mhz=300.0,
        static_power_w=1.5,
        dram_pj_per_bit=energy.DDR_PJ_PER_BIT,
        source="AMD DS987 (Kria K26 SOM Data Sheet): XCK26 resources and DDR4 memory",
    ),
    Board(
        name="zcu104",
        title="AMD Zynq UltraScale+ MPSoC ZCU104 (XCZU7EV)",
        family="zynq-ultrascale+",
        lut=230_400,
        ff=460_800,
        dsp=1_728,
        bram36=312,
        uram=96,
        onchip_bytes=_onchip_bytes(312, 96),
        # 2 GB DDR4 on the processing system, 64-bit bus at 2400 Mb/s per pin: 19.2 GB/s.
        # NOTE: the transfer rate is the DDR4-2400 grade the board is built around; a board
        # design that clocks the memory lower streams proportionally slower.
        dram_bytes_per_s=19_200_000_000,
        dram_bytes=2 * _GIB,
        # DDR4 bursts are 8 transfers (BL8) of the 64-bit bus: 64 bytes. The latency is an
        # estimate: CL 16 and tRCD 16 of DDR4-2400 (13.3 ns each) in the DRAM, the rest in the
        # PS memory controller and the HP port.
        dram_burst_bytes=64,
        dram_latency_ns=180,
        clock_mhz=300.0,
        static_power_w=2.0,
        dram_pj_per_bit=energy.DDR_PJ_PER_BIT,
        source=(
            "AMD DS891 (Zynq UltraScale+ MPSoC Data Sheet: Overview), ZU7EV column; "
            "AMD UG1267 (ZCU104 Evaluation Board User Guide), PS DDR4 memory"
        ),
    ),
    Board(
        name="u280",
        title="AMD Alveo U280 Data Center Accelerator Card",
        family="alveo",
        lut=1_303_680,
        ff=2_607_360,
        dsp=9_024,
        bram36=2_016,
        uram=960,
        onchip_bytes=_onchip_bytes(2_016, 960),
        # 8 GB HBM2: 32 pseudo channels of 14.375 GB/s, 460 GB/s in all (the card's 32 GB of
        # DDR4 at 38 GB/s is not used for weights).
        dram_bytes_per_s=460_000_000_000,
        dram_bytes=8 * _GIB,
        # HBM2 pseudo channels are 64 bits wide with bursts of 4 transfers (BL4): 32 bytes.
        # The latency is an estimate for a read through the HBM controller's AXI port.
        dram_burst_bytes=32,
        dram_latency_ns=120,
        clock_mhz=300.0,
        static_power_w=20.0,
        dram_pj_per_bit=energy.HBM2_PJ_PER_BIT,
        source=(
            "AMD DS963 (Alveo U280 Data Center Accelerator Cards Data Sheet); "
            "AMD UG1393 (Vitis Application Acceleration Development), HBM configuration"
        ),
    ),
    Board(
        name="u55c",
        title="AMD Alveo U55C Data Center Accelerator Card",
        family="alveo",
        lut=1_303_680,
        ff=2_607_360,
        dsp=9_024,
        bram36=2_016,
        uram=960,
        onchip_bytes=_onchip_bytes(2_016, 960),
        # 16 GB HBM2: 32 pseudo channels of 14.375 GB/s, 460 GB/s in all.
        dram_bytes_per_s=460_000_000_000,
        dram_bytes=16 * _GIB,
        # HBM2 pseudo channels are 64 bits wide with bursts of 4 transfers (BL4): 32 bytes.
        # The latency is an estimate for a read through the HBM controller's AXI port.
        dram_burst_bytes=32,
        dram_latency_ns=120,
        clock_mhz=300.0,
        static_power_w=20.0,
        dram_pj_per_bit=energy.HBM2_PJ_PER_BIT,
        source=(
            "AMD DS978 (Alveo U55C Data Center Accelerator Cards Data Sheet); "
            "AMD UG1393 (Vitis Application Acceleration Development), HBM configuration"
        ),
    ),
    Board(
        name="icebreaker",
        title="1BitSquared iCEBreaker (Lattice iCE40UP5K)",
        family="ice40",
        lut=5_280,
        # Every iCE40 logic cell pairs one 4-input LUT with one flip-flop.
        ff=5_280,
        # Eight SB_MAC16 blocks (16 x 16 multiply-accumulate).
        dsp=8,
        bram36=0,
        uram=0,
        bram4=30,
        spram=4,
        # 30 EBR blocks of 4 Kb (120 Kb) and 4 SPRAM blocks of 256 Kb (128 KB).
        onchip_bytes=_onchip_bytes(bram4=30, spram=4),
        # No DRAM: the board carries only a 16 MB SPI flash for the bitstream, so weights must
        # be resident on chip.
        dram_bytes_per_s=0,
        dram_bytes=0,
        clock_mhz=24.0,
        static_power_w=0.001,
        dram_pj_per_bit=0.0,
        lut_inputs=4,
        source=(
            "Lattice FPGA-DS-02008 (iCE40 UltraPlus Family Data Sheet), iCE40UP5K column: "
            "5280 LUTs, 120 Kb EBR, 1024 Kb SPRAM, 8 DSP blocks; iCEBreaker board: no DRAM"
        ),
    ),
    Board(
        name="ulx3s",
        title="Radiona ULX3S (Lattice ECP5 LFE5U-85F)",
        family="ecp5",
        # 84K LUT4s in the data sheet's table; 83,640 is the exact count that nextpnr-ecp5
        # reports for the device. Each slice pairs two LUT4s with two flip-flops.
        lut=83_640,
        ff=83_640,
        # 156 sysDSP 18 x 18 multipliers.
        dsp=156,
        bram36=0,
        uram=0,
        bram18=208,
        # 208 sysMEM EBR blocks of 18 Kb (3744 Kb).
        onchip_bytes=_onchip_bytes(bram18=208),
        # 32 MB SDR SDRAM on a 16-bit bus; at the 100 MHz that ULX3S designs commonly clock it,
        # 2 bytes * 100e6 = 200 MB/s.
        # NOTE: the SDRAM chips fitted are rated for 133 to 166 MHz; a controller that closes
        # timing there streams proportionally faster.
        dram_bytes_per_s=200_000_000,
        dram_bytes=32 * _MIB,
        # SDRAM bursts are programmable (1, 2, 4, 8 or a full page); 8 transfers of the 16-bit
        # bus give 16 bytes. The latency is an estimate: tRCD 15 to 18 ns and CAS latency 3 at
        # 100 MHz (30 ns) in the SDRAM, and a few controller cycles.
        # NOTE: LiteDRAM's SDR controller reads single transfers (2 bytes); with it, bursts are
        # smaller than modelled here.
        dram_burst_bytes=16,
        dram_latency_ns=70,
        clock_mhz=100.0,
        static_power_w=0.1,
        dram_pj_per_bit=energy.DDR_PJ_PER_BIT,
        lut_inputs=4,
        source=(
            "Lattice FPGA-DS-02012 (ECP5 and ECP5-5G Family Data Sheet), LFE5U-85 column: "
            "84K LUTs, 208 EBR blocks of 18 Kb, 156 18 x 18 multipliers; ULX3S schematic: "
            "32 MB SDRAM, 16-bit bus"
        ),
    ),
)
# NOTE: the typical clocks and static powers above are estimates, not data-sheet values; the
# static power should be calibrated with the vendor power estimator or a measurement per design.

BOARDS: dict[str, Board] = {board.name: board for board in _CATALOGUE}
"""The board catalogue, keyed by lowercase short name."""


def get_board(name: str) -> Board:
    """Look up a board of `BOARDS` by its short name, ignoring case.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If no board has that name; the message lists the known names.
    """
    if not isinstance(name, str):
        raise TypeError(f"board name must be a str, got {type(name).__name__}")
    board = BOARDS.get(name.strip().lower())
    if board is None:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return board
