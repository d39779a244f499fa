"""Energy figures of the simulator and the energy of one layer run. All of them are estimates.

The arithmetic and SRAM figures are the 45 nm, 0.9 V table of M. Horowitz, "Computing's energy
problem (and what we can do about it)", ISSCC 2014: an 8-bit integer add costs 0.03 pJ, a
32-bit add 0.1 pJ, and a 64-bit read from an 8 KB SRAM 10 pJ (0.156 pJ per bit). An FPGA spends
several times more on the same operation than an ASIC in that node, so these figures are a lower
bound on the fabric's dynamic energy, useful for comparing designs with each other.

The per-lane figures of the other datapaths are derived from the same table. An ``xnor`` lane
(one XNOR and one bit of popcount) is costed as one bit of the 8-bit add, 0.03 / 8 pJ. A ``lut``
lane adds one looked-up entry (an 8-bit add), and building each table entry takes one 8-bit add.

DRAM energy per bit: Horowitz gives 1.3 to 2.6 nJ per 64-bit DRAM access, 20 to 40 pJ per bit;
the lower end is used for DDR3 and DDR4. For HBM2, 3.9 pJ per bit, the figure of M. O'Connor
et al., "Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth Systems", MICRO 2017.
"""

__all__ = [
    "ACC_ADD_PJ",
    "TABLE_ENTRY_PJ",
    "XNOR_LANE_PJ",
    "DDR_PJ_PER_BIT",
    "HBM2_PJ_PER_BIT",
    "LANE_ADD_PJ",
    "SRAM_PJ_PER_BIT",
    "layer_energy_j",
]

LANE_ADD_PJ = 0.03
"""Energy of one ternary lane operation (add, subtract or skip into the adder tree), 8-bit add."""

XNOR_LANE_PJ = LANE_ADD_PJ / 8
"""Energy of one ``xnor`` lane operation: an XNOR and one input bit of the popcount tree."""

TABLE_ENTRY_PJ = LANE_ADD_PJ
"""Energy of building one nonzero entry of a ``lut`` table, an 8-bit add or negation."""

ACC_ADD_PJ = 0.1
"""Energy of one accumulator update, a 32-bit add."""

SRAM_PJ_PER_BIT = 10.0 / 64
"""Energy of reading one bit from on-chip memory (BRAM or URAM), from the 8 KB SRAM figure."""

DDR_PJ_PER_BIT = 20.0
"""Energy of one bit read from DDR3 or DDR4 memory."""

HBM2_PJ_PER_BIT = 3.9
"""Energy of one bit read from HBM2 memory."""


def layer_energy_j(
    *,
    tokens: int,
    n: int,
    k: int,
    pe: int,
    simd: int,
    act_bits: int,
    lane_ops: int,
    buffer_bytes: int,
    dram_bytes: int,
    dram_pj_per_bit: float,
    static_power_w: float,
    time_s: float,
    datapath: str = "ternary",
    group: int = 1,
) -> float:
    """Estimate the energy of one run of an N x K `mvu` layer over ``tokens`` vectors.

    Parameters
    ----------
    tokens, n, k, pe, simd, act_bits : int
        The run and the design (see `sim.Design`).
    lane_ops : int
        Lane operations that switch. ``ternary`` and ``xnor``: T * N * K, or T times the nonzero
        weights when zero weights are skipped (a skipping lane is clock-gated and spends
        nothing). ``lut``: T * N * K / g lookups, or T times the groups with a nonzero weight.
    buffer_bytes : int
        Bytes read from the on-chip weight memory: each fold's tile once, because the lanes hold
        it for all T vectors.
    dram_bytes : int
        Bytes read from DRAM (0 when the weights are resident on chip).
    dram_pj_per_bit, static_power_w : float
        The board's figures.
    time_s : float
        Modelled duration of the run, which the static power is charged for.
    datapath : {"ternary", "xnor", "lut"}
        Sets the energy of one lane operation.
    group : int
        Weights per table lookup (g) of the ``lut`` datapath; ignored by the others.

    Returns
    -------
    float
        Joules: DRAM reads + on-chip weight and activation reads + lane and accumulator adds +
        static power times time.

    Notes
    -----
    Each row group of PE outputs reads the whole input vector once, so activations cost
    T * K * (N / PE) * act_bits bits of on-chip reads. Each of the T * N outputs takes K / SIMD
    accumulator updates. A ``lut`` fold builds, for each of the T vectors, SIMD / g tables of
    3**g entries that its PE rows share. The 3**g - 1 nonzero entries cost one add each, so the
    run builds T * (N / PE) * (K / g) * (3**g - 1) entries.
    """
    activation_bits = tokens * k * (n // pe) * act_bits
    accumulator_adds = tokens * n * (k // simd)
    lane_pj = XNOR_LANE_PJ if datapath == "xnor" else LANE_ADD_PJ
    table_entries = 0
    if datapath == "lut":
        table_entries = tokens * (n // pe) * (k // group) * (3**group - 1)
    dynamic_pj = (
        dram_bytes * 8 * dram_pj_per_bit
        + (buffer_bytes * 8 + activation_bits) * SRAM_PJ_PER_BIT
        + lane_ops * lane_pj
        + accumulator_adds * ACC_ADD_PJ
        + table_entries * TABLE_ENTRY_PJ
    )
    return dynamic_pj * 1e-12 + static_power_w * time_s
