"""rtl: synthesizable RTL generated with Amaranth from a `sim.Design`, verified with cocotb.

`MatrixVectorUnit` is the PE x SIMD matrix-vector unit of a ``ternary`` or ``xnor`` design for
one N x K layer, with its weights in on-chip memory; `UnitSpec` validates a design for it and
packs the stream words. `Requantizer` turns its int32 accumulators into int8 codes for the next
layer. `generate` writes the Verilog, `verify` runs the cocotb bench (`rtl.bench`) on Verilator
or Icarus, and `synthesize` runs Yosys and nextpnr.
"""

from rtl.generate import TOP_NAME, describe_ports, generate, unit_verilog
from rtl.mvu import MatrixVectorUnit, frame_layout
from rtl.requant import Requantizer, requantize_parameters, requantize_reference
from rtl.spec import OUTPUT_BITS, RTL_DATAPATHS, RTL_WEIGHT_FORMATS, UnitSpec
from rtl.verify import SIMULATORS, VerifyResult, simulator_missing, verify

__all__ = [
    "OUTPUT_BITS",
    "RTL_DATAPATHS",
    "RTL_WEIGHT_FORMATS",
    "SIMULATORS",
    "TOP_NAME",
    "MatrixVectorUnit",
    "Requantizer",
    "UnitSpec",
    "VerifyResult",
    "describe_ports",
    "frame_layout",
    "generate",
    "requantize_parameters",
    "requantize_reference",
    "simulator_missing",
    "unit_verilog",
    "verify",
]
