"""cocotb bench of the protocol front end (`onebit_board`), run by `run_protocol_bench`.

The tests send raw request bytes on ``rx``, with random idle cycles, and decode the ``tx``
bytes, under random backpressure: a corrupt frame, a truncated frame, back-to-back commands
and out-of-range slots. Expected accumulators come from a plain integer product.
"""

import json
import os
import random
from pathlib import Path

import numpy as np

from rtl import protocol as P

__all__ = ["run_protocol_bench"]

CONFIG_VARIABLE = "ONEBIT_PROTOCOL_BENCH"


def run_protocol_bench(frontend, build_dir) -> tuple[int, int]:
    """Build ``frontend`` with Verilator under cocotb and run this bench; return (tests, failed).

    Raises
    ------
    RuntimeError
        If the simulator build fails.
    """
    from cocotb_tools.runner import get_results, get_runner

    from rtl import config
    from rtl.virtual import BOARD_TOP, _verilator_bin, board_verilog

    os.environ["PATH"] = _verilator_bin() + os.pathsep + os.environ.get("PATH", "")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{BOARD_TOP}.v"
    source.write_text(board_verilog(frontend), encoding="utf-8")
    spec = frontend.spec
    settings = {
        "tile_n": spec.n,
        "tile_k": spec.k,
        "pe": spec.pe,
        "simd": spec.simd,
        "slots": frontend.slots,
        "timeout_cycles": frontend.timeout_cycles,
        "sizes": frontend.sizes,
        "predicted_cycles": spec.predicted_cycles(),
    }
    rng = np.random.default_rng(11)
    w = rng.integers(-1, 2, (spec.n, spec.k))
    x = rng.integers(-128, 128, (1, spec.k))
    sizes = frontend.sizes
    settings["weights"] = b"".join(
        v.to_bytes(sizes["weight_beat_bytes"], "little") for v in spec.pack_weights(w)
    ).hex()
    settings["act"] = b"".join(
        v.to_bytes(sizes["act_beat_bytes"], "little") for v in spec.pack_activations(x)
    ).hex()
    settings["expected"] = (x.astype(np.int64) @ w.T.astype(np.int64))[0].tolist()
    config_path = build_dir / "bench.json"
    config_path.write_text(json.dumps(settings), encoding="utf-8")

    runner = get_runner("verilator")
    saved_makeflags = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    try:
        runner.build(
            sources=[source],
            hdl_toplevel=BOARD_TOP,
            build_dir=build_dir,
            build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"],
            always=True,
            log_file=build_dir / "build.log",
        )
    except (RuntimeError, SystemExit) as error:
        raise RuntimeError(f"the protocol bench build failed ({error}); see {build_dir}") from None
    finally:
        if saved_makeflags is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_makeflags
    results = build_dir / "results.xml"
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        runner.test(
            test_module="rtl.protocol_bench",
            hdl_toplevel=BOARD_TOP,
            build_dir=build_dir,
            test_dir=build_dir,
            extra_env={
                CONFIG_VARIABLE: str(config_path),
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [config.REPO_ROOT, os.environ.get("PYTHONPATH")])
                ),
            },
            results_xml=str(results),
            log_file=build_dir / "sim.log",
        )
    except (RuntimeError, SystemExit):
        pass
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    if not results.exists():
        return 0, 1
    return get_results(results)


try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is a declared dependency
    cocotb = None

if cocotb is not None and CONFIG_VARIABLE in os.environ:
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge

    _CONFIG = json.loads(Path(os.environ[CONFIG_VARIABLE]).read_text(encoding="utf-8"))

    class _Link:
        """Drives ``rx`` from a byte queue and collects ``tx`` bytes, with random stalls."""

        def __init__(self, dut, seed: int) -> None:
            self.dut = dut
            self.rng = random.Random(seed)
            self.outgoing: list[int] = []
            self.received = bytearray()
            self.cycle = 0
            dut.rx__valid.value = 0
            dut.tx__ready.value = 0

        async def run(self) -> None:
            dut = self.dut
            while True:
                offer = bool(self.outgoing) and self.rng.random() >= 0.2
                dut.rx__valid.value = int(offer)
                if offer:
                    dut.rx__payload.value = self.outgoing[0]
                take = self.rng.random() >= 0.2
                dut.tx__ready.value = int(take)
                await ReadOnly()
                if offer and int(dut.rx__ready.value):
                    self.outgoing.pop(0)
                if take and int(dut.tx__valid.value):
                    self.received.append(int(dut.tx__payload.value))
                await RisingEdge(dut.clk)
                self.cycle += 1

        async def exchange(self, data: bytes, replies: int, limit: int = 200000) -> list:
            self.outgoing += list(data)
            decoder = P.FrameDecoder()
            frames = []
            for _ in range(limit):
                await RisingEdge(self.dut.clk)
                if self.received:
                    frames += decoder.feed(bytes(self.received))
                    self.received.clear()
                if len(frames) >= replies:
                    return frames
            raise AssertionError(f"expected {replies} replies within {limit} cycles, got {frames}")

    async def _start(dut, seed: int) -> _Link:
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        link = _Link(dut, seed)
        for _ in range(3):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        cocotb.start_soon(link.run())
        return link

    def _status(frame) -> int:
        assert frame.crc_ok, "reply CRC mismatch"
        return frame.payload[0]

    @cocotb.test()
    async def back_to_back_commands(dut):
        """Four requests in one burst: replies in order, exact accumulators, sim's cycles."""
        link = await _start(dut, 1)
        weights = bytes.fromhex(_CONFIG["weights"])
        act = bytes.fromhex(_CONFIG["act"])
        burst = b"".join(
            [
                P.encode_frame(P.CMD_WRITE_WEIGHTS, 1, b"\x00" + weights),
                P.encode_frame(P.CMD_WRITE_ACT, 2, act),
                P.encode_frame(P.CMD_RUN, 3, b"\x00"),
                P.encode_frame(P.CMD_READ_RESULTS, 4),
            ]
        )
        replies = await link.exchange(burst, 4)
        assert [r.seq for r in replies] == [1, 2, 3, 4]
        assert [_status(r) for r in replies] == [P.STATUS_OK] * 4
        # Backpressure on tx does not stall the unit's run, so the count is sim's.
        assert int.from_bytes(replies[2].payload[1:], "little") == _CONFIG["predicted_cycles"]
        acc = np.frombuffer(replies[3].payload[1:], dtype="<i4").tolist()
        assert acc == _CONFIG["expected"]

    @cocotb.test()
    async def corrupt_frame(dut):
        """A flipped payload bit: CRC error, and the run is refused until a clean write."""
        link = await _start(dut, 2)
        frame = bytearray(P.encode_frame(P.CMD_WRITE_ACT, 7, bytes.fromhex(_CONFIG["act"])))
        frame[6] ^= 0x10
        (reply,) = await link.exchange(bytes(frame), 1)
        assert (reply.seq, _status(reply)) == (7, P.ERR_CRC)
        (reply,) = await link.exchange(P.encode_frame(P.CMD_RUN, 8, b"\x00"), 1)
        assert _status(reply) == P.ERR_STATE

    @cocotb.test()
    async def truncated_frame(dut):
        """Half a frame, then silence: a truncation reply, then normal service."""
        link = await _start(dut, 3)
        frame = P.encode_frame(P.CMD_WRITE_ACT, 9, bytes.fromhex(_CONFIG["act"]))
        (reply,) = await link.exchange(frame[: len(frame) // 2], 1)
        assert (reply.seq, _status(reply)) == (9, P.ERR_TRUNCATED)
        (reply,) = await link.exchange(P.encode_frame(P.CMD_STATUS, 10), 1)
        assert _status(reply) == P.STATUS_OK
        status = P.BoardStatus.unpack(reply.payload[1:])
        assert (status.tile_n, status.tile_k) == (_CONFIG["tile_n"], _CONFIG["tile_k"])

    @cocotb.test()
    async def out_of_range_slot(dut):
        """Slots at and past the slot count are rejected for writes and runs."""
        link = await _start(dut, 4)
        slots = _CONFIG["slots"]
        weights = bytes.fromhex(_CONFIG["weights"])
        (reply,) = await link.exchange(
            P.encode_frame(P.CMD_WRITE_WEIGHTS, 11, bytes([slots]) + weights), 1
        )
        assert _status(reply) == P.ERR_RANGE
        (reply,) = await link.exchange(P.encode_frame(P.CMD_RUN, 12, b"\xff"), 1)
        assert _status(reply) == P.ERR_RANGE
