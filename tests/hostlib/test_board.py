"""BoardDevice on the virtual board: tiling, cycle counts, faults, and its error paths."""

import json

import numpy as np
import pytest
import torch

import sim
from hostlib.board import BoardDevice, BoardError, default_tile, open_virtual_board
from hostlib.devices import make_device
from hostlib.transports import FaultyTransport, PipeTransport, TransportError

TILE = (8, 16)
SLOTS = 4  # fewer than the 9 tiles of the tiled test, so tiles are evicted and written again


def _design(spec="pe=4,simd=8,weight_store=onchip"):
    return sim.Design.from_spec(spec, board="kv260")


def _reference(x: torch.Tensor, w: torch.Tensor) -> np.ndarray:
    # Plain integer matrix product, independent of kernels/ and rtl/.
    return x.numpy().astype(np.int64) @ w.numpy().astype(np.int64).T


@pytest.fixture(scope="module")
def device():
    board = open_virtual_board(_design(), tile=TILE, timeout_cycles=256, slots=SLOTS)
    yield board
    board.close()


@pytest.mark.rtl
def test_tiled_layer_is_exact_and_counts_cycles(device):
    rng = torch.Generator().manual_seed(5)
    # 20 x 40 needs 3 x 3 tiles of 8 x 16, the last ones zero-padded.
    w = torch.randint(-1, 2, (20, 40), generator=rng, dtype=torch.int8)
    handle = device.upload("layer", w)
    device.reset_stats()
    for tokens in (1, 3):
        x = torch.randint(-128, 128, (tokens, 40), generator=rng, dtype=torch.int8)
        acc = device.run(handle, x)
        assert acc.dtype == torch.int32
        assert acc.numpy().tolist() == _reference(x, w).tolist()
    (layer,) = [entry for entry in device.measured_layers() if entry["name"] == "layer"]
    tile_cycles = sim.estimate_layer(_design(), *TILE).cycles
    assert layer["tiles"] == 9
    assert layer["board_cycles_per_token"] == 9 * tile_cycles
    assert layer["predicted_tiles"] == 9 * tile_cycles


@pytest.mark.rtl
def test_faults_are_recovered_without_wrong_results():
    faults = {}

    def wrap(transport):
        faults["transport"] = FaultyTransport(
            transport, drop=0.002, corrupt=0.002, duplicate=0.002, delay=0.05, seed=7
        )
        return faults["transport"]

    board = open_virtual_board(
        _design(),
        tile=TILE,
        timeout_cycles=256,
        slots=SLOTS,
        transport_wrapper=wrap,
        timeout_s=0.5,
        retries=8,
    )
    try:
        rng = torch.Generator().manual_seed(6)
        w = torch.randint(-1, 2, (16, 32), generator=rng, dtype=torch.int8)
        handle = board.upload("layer", w)
        for _ in range(6):
            x = torch.randint(-128, 128, (2, 32), generator=rng, dtype=torch.int8)
            assert board.run(handle, x).numpy().tolist() == _reference(x, w).tolist()
        injected = faults["transport"].injected
        assert injected["drop"] and injected["corrupt"] and injected["duplicate"]
        assert board.retried > 0
    finally:
        board.close()


@pytest.mark.rtl
def test_board_that_stops_answering_gives_a_clear_error():
    with pytest.raises(BoardError, match="board request 'status' failed after 2 attempts"):
        open_virtual_board(
            _design(),
            tile=TILE,
            timeout_cycles=256,
            slots=SLOTS,
            transport_wrapper=lambda t: FaultyTransport(t, drop=1.0),
            timeout_s=0.2,
            retries=1,
        )


@pytest.mark.rtl
def test_dead_board_process_gives_a_clear_error(device):
    board = open_virtual_board(_design(), tile=TILE, timeout_cycles=256, slots=SLOTS)
    board.transport._process.kill()
    board.transport._process.wait()
    with pytest.raises(TransportError, match="exited with code"):
        board.status()
    board.close()


@pytest.mark.rtl
def test_board_built_for_another_design_is_refused(device):
    command = device.transport.command
    with pytest.raises(BoardError, match="the board reports pe = 4, the design needs 8"):
        BoardDevice(PipeTransport(command), _design("pe=8,simd=8,weight_store=onchip"))


def test_faulty_transport_rejects_rates():
    with pytest.raises(ValueError, match="drop must be a probability in \\[0, 1\\], got 1.5"):
        FaultyTransport(None, drop=1.5)
    with pytest.raises(ValueError, match="drop \\+ corrupt \\+ duplicate must be at most 1"):
        FaultyTransport(None, drop=0.6, corrupt=0.6)


def test_default_tile_is_a_multiple_of_pe_and_simd():
    assert default_tile(_design("pe=16,simd=64,weight_store=onchip")) == (64, 128)
    assert default_tile(_design("pe=12,simd=48,weight_store=onchip")) == (72, 144)


def test_make_device_board_errors():
    design = _design()
    with pytest.raises(TransportError, match="cannot open serial port '/nonexistent/tty'"):
        make_device("serial:/nonexistent/tty", design)
    with pytest.raises(ValueError, match="device 'serial:PORT' needs a port"):
        make_device("serial:", design)
    with pytest.raises(NotImplementedError, match="the pynq transport needs the pynq package"):
        make_device("pynq", design)
    with pytest.raises(ValueError, match="weight_store = 'stream' is not supported by the RTL"):
        make_device("rtl", _design("pe=4,simd=8,weight_store=stream"))


@pytest.mark.rtl
def test_onebit_run_on_rtl_gives_the_reference_tokens(capsys):
    from hostlib.cli import main

    common = ["run", "--design", "pe=8,simd=16,weight_store=onchip", "--max-new-tokens", "3"]
    assert main([*common, "--device", "reference", "--json"]) == 0
    reference = json.loads(capsys.readouterr().out)
    assert main([*common, "--device", "rtl", "--check", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["check"] is True
    assert result["tokens"] == reference["tokens"]
    layers = result["device"]["layers"]
    assert len(layers) == 28
    for layer in layers:
        assert layer["board_cycles_per_token"] == layer["predicted_tiles"]
    assert main([*common, "--device", "rtl"]) == 0
    assert "cycles per decode token counted by the board" in capsys.readouterr().out
