"""The cocotb bench of the protocol front end (rtl/protocol_bench.py) on Verilator."""

import pytest

import sim
from rtl.frontend import CommandFrontEnd
from rtl.protocol_bench import run_protocol_bench


@pytest.mark.rtl
def test_protocol_cocotb_bench(tmp_path):
    design = sim.Design.from_spec("pe=4,simd=8,weight_store=onchip", board="kv260")
    frontend = CommandFrontEnd(design, 8, 16, timeout_cycles=512, slots=2)
    tests, failed = run_protocol_bench(frontend, tmp_path)
    assert tests == 4
    assert failed == 0, (tmp_path / "sim.log").read_text()[-4000:]
