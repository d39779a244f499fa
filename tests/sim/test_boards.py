import dataclasses
import re

import pytest

import sim

EXPECTED = ("pynq-z2", "kv260", "zcu104", "u280", "u55c")


def test_catalogue_has_expected_boards():
    for name in EXPECTED:
        assert name in sim.BOARDS
    for key, board in sim.BOARDS.items():
        assert board.name == key
        assert key == key.lower()


def test_onchip_bytes_match_block_counts():
    # 36 Kib per BRAM36 and 288 Kib per URAM288, counted independently here.
    for board in sim.BOARDS.values():
        assert board.onchip_bytes == board.bram36 * 4608 + board.uram * 36864


def test_every_board_cites_a_document():
    for board in sim.BOARDS.values():
        assert re.search(r"\b(DS|UG)\d{3,4}\b", board.source), board.name


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
        ("dram_bytes_per_s", 0, "Board.dram_bytes_per_s must be an int > 0, got 0"),
        ("static_power_w", -1.0, "Board.static_power_w must be a number >= 0, got -1.0"),
        ("clock_mhz", 0.0, "Board.clock_mhz must be > 0, got 0.0"),
    ],
)
def test_board_validation(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        dataclasses.replace(sim.BOARDS["kv260"], **{field: value})
