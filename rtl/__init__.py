"""rtl: synthesizable RTL generated with Amaranth from a `sim.Design`, verified with cocotb.

Nothing is generated yet: this package exists so that the dependency order
kernels <- sim <- rtl <- hostlib holds from the start.
"""

__all__: list[str] = []
