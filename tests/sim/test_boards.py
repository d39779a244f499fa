import dataclasses
import math
import re

import pytest

import sim

EXPECTED = ("pynq-z2", "kv260", "zcu104", "u280", "u55c", "icebreaker", "ulx3s")


def test_catalogue_has_expected_boards():
    for name in EXPECTED:
        assert name in sim.BOARDS
    for key, board in sim.BOARDS.items():
        assert board.name == key
        assert key == key.lower()


def test_onchip_bytes_match_block_counts():
    # Counted independently here: BRAM36 36 Kib, URAM288 288 Kib, ECP5 EBR 18 Kib, iCE40 EBR
    # 4 Kib, iCE40 SPRAM 256 Kib.
    for board in sim.BOARDS.values():
        kib = 36 * board.bram36 + 288 * board.uram + 18 * board.bram18
        kib += 4 * board.bram4 + 256 * board.spram
        assert board.onchip_bytes == kib * 1024 // 8, board.name


def test_every_board_cites_a_document():
    for board in sim.BOARDS.values():
        assert re.search(r"\b(DS|UG)\d{3,4}\b|FPGA-DS-020\d\d", board.source), board.name


def test_lattice_boards_cite_their_data_sheets():
    assert "FPGA-DS-02008" in sim.BOARDS["icebreaker"].source
    assert "FPGA-DS-02012" in sim.BOARDS["ulx3s"].source


def test_icebreaker_memories():
    board = sim.BOARDS["icebreaker"]
    assert (board.lut, board.ff, board.dsp) == (5280, 5280, 8)
    assert (board.bram4, board.spram) == (30, 4)
    assert board.onchip_bytes == 120 * 1024 // 8 + 128 * 1024
    assert (board.dram_bytes, board.dram_bytes_per_s) == (0, 0)
    assert board.has_dram is False
    assert board.lut_inputs == 4


def test_ulx3s_memories():
    board = sim.BOARDS["ulx3s"]
    assert (board.lut, board.dsp, board.bram18) == (83_640, 156, 208)
    assert board.onchip_bytes == 3744 * 1024 // 8
    assert board.dram_bytes == 32 * 2**20
    # 16-bit SDR SDRAM at 100 MHz.
    assert board.dram_bytes_per_s == 2 * 100_000_000
    assert board.has_dram is True


def test_get_board_ignores_case():
    assert sim.get_board("KV260") is sim.BOARDS["kv260"]
    assert sim.get_board(" u280 ") is sim.BOARDS["u280"]


def test_get_board_unknown_lists_names():
    message = f"unknown board 'vcu118'; known boards: {', '.join(sim.BOARDS)}"
    with pytest.raises(ValueError, match=re.escape(message)):
        sim.get_board("vcu118")


def test_get_board_rejects_non_str():
    with pytest.raises(TypeError, match="board name must be a str, got int"):
        sim.get_board(260)


def test_board_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        sim.BOARDS["kv260"].lut = 1


def test_board_to_dict_is_complete():
    board = sim.BOARDS["kv260"]
    assert board.to_dict()["dram_bytes_per_s"] == board.dram_bytes_per_s
    assert set(board.to_dict()) == {f.name for f in dataclasses.fields(sim.Board)}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lut", -1, "Board.lut must be an int >= 0, got -1"),
        ("dsp", 1.5, "Board.dsp must be an int >= 0, got 1.5"),
        ("dram_bytes_per_s", 0, "Board.dram_bytes_per_s must be an int > 0 when Board.dram_"),
        ("dram_bytes_per_s", -1, "Board.dram_bytes_per_s must be an int >= 0, got -1"),
        ("bram18", -2, "Board.bram18 must be an int >= 0, got -2"),
        ("lut_inputs", 5, "Board.lut_inputs must be 4 or 6, got 5"),
        ("static_power_w", -1.0, "Board.static_power_w must be a finite number >= 0, got -1.0"),
        ("clock_mhz", 0.0, "Board.clock_mhz must be > 0, got 0.0"),
        ("dram_burst_bytes", 0, "Board.dram_burst_bytes must be > 0 when Board.dram_bytes is"),
        ("dram_burst_bytes", -64, "Board.dram_burst_bytes must be an int >= 0, got -64"),
        ("dram_latency_ns", 1.5, "Board.dram_latency_ns must be an int >= 0, got 1.5"),
        ("static_power_w", math.inf, "Board.static_power_w must be a finite number >= 0, got inf"),
        ("dram_pj_per_bit", math.nan, "Board.dram_pj_per_bit must be a finite number >= 0"),
        ("clock_mhz", math.inf, "Board.clock_mhz must be a finite number >= 0, got inf"),
        ("name", "KV260 ", "Board.name must be a non-empty lowercase str"),
        ("name", None, "Board.name must be a non-empty lowercase str"),
    ],
)
def test_board_validation(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        dataclasses.replace(sim.BOARDS["kv260"], **{field: value})


def test_board_without_dram_has_no_bandwidth():
    message = "Board.dram_bytes_per_s must be 0 on a board without DRAM (dram_bytes = 0), got 5"
    with pytest.raises(ValueError, match=re.escape(message)):
        dataclasses.replace(sim.BOARDS["icebreaker"], dram_bytes_per_s=5)


@pytest.mark.parametrize("field", ["dram_burst_bytes", "dram_latency_ns"])
def test_board_without_dram_has_no_burst_or_latency(field):
    message = f"Board.{field} must be 0 on a board without DRAM (dram_bytes = 0), got 8"
    with pytest.raises(ValueError, match=re.escape(message)):
        dataclasses.replace(sim.BOARDS["icebreaker"], **{field: 8})


def test_dram_bursts_follow_memory_standard():
    # Bus width times burst length: DDR3/DDR4 BL8 on a 16- or 64-bit bus, HBM2 BL4 on a 64-bit
    # pseudo channel, SDR SDRAM BL8 on a 16-bit bus.
    expected = {"pynq-z2": 16, "kv260": 64, "zcu104": 64, "u280": 32, "u55c": 32, "ulx3s": 16}
    for name, burst in expected.items():
        assert sim.BOARDS[name].dram_burst_bytes == burst, name
        assert 10 <= sim.BOARDS[name].dram_latency_ns <= 1000, name
    assert sim.BOARDS["icebreaker"].dram_burst_bytes == 0
    assert sim.BOARDS["icebreaker"].dram_latency_ns == 0
