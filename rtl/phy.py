"""Byte-stream physical layers for the front end: a UART, and an AXI-Stream adapter.

`UART` turns a serial line (8 data bits, no parity, one stop bit, LSB first) into the 8-bit
``rx`` and ``tx`` streams that `rtl.frontend.CommandFrontEnd` speaks. `AXIStreamBytes` exposes
the same byte streams as AXI4-Stream ports (TDATA, TVALID, TREADY, TLAST) for a Zynq DMA; it
raises TLAST on the last byte of each reply frame, so one DMA receive transfer is one reply.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl import protocol as P

__all__ = ["UART", "AXIStreamBytes"]


class UART(wiring.Component):
    """A UART of ``divisor`` clock cycles per bit.

    Attributes
    ----------
    rx_pin : In(1)
        The serial input (idle high).
    tx_pin : Out(1)
        The serial output (idle high).
    rx : Out(stream.Signature(8))
        Received bytes; a byte the consumer has not taken when the next arrives is lost
        (the protocol's CRC catches it).
    tx : In(stream.Signature(8))
        Bytes to send.

    Raises
    ------
    ValueError
        If ``divisor`` is below 4.
    """

    def __init__(self, divisor: int) -> None:
        if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 4:
            self._MustUse__silence = True
            raise ValueError(f"divisor must be an int >= 4 clock cycles per bit, got {divisor!r}")
        self.divisor = divisor
        super().__init__(
            {
                "rx_pin": In(1, init=1),
                "tx_pin": Out(1, init=1),
                "rx": Out(stream.Signature(8)),
                "tx": In(stream.Signature(8)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        d = self.divisor

        # Receiver: two flip-flops against metastability, then sample mid-bit.
        sync1 = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx_pin), line.eq(sync1)]
        r_count = Signal(range(d * 3 // 2 + 1))
        r_bits = Signal(range(9))
        r_shift = Signal(8)
        with m.If(self.rx.ready):
            m.d.sync += self.rx.valid.eq(0)
        with m.FSM(name="uart_rx"):
            with m.State("IDLE"):
                with m.If(~line):
                    # Wait a bit and a half to land in the middle of data bit 0.
                    m.d.sync += [r_count.eq(d * 3 // 2 - 1), r_bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(r_count == 0):
                    m.d.sync += [r_shift.eq((line << 7) | (r_shift >> 1)), r_count.eq(d - 1)]
                    m.d.sync += r_bits.eq(r_bits + 1)
                    with m.If(r_bits == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += r_count.eq(r_count - 1)
            with m.State("STOP"):
                with m.If(r_count == 0):
                    with m.If(line):
                        m.d.sync += [self.rx.payload.eq(r_shift), self.rx.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += r_count.eq(r_count - 1)

        # Transmitter: start bit, 8 data bits LSB first, stop bit.
        t_count = Signal(range(d))
        t_shift = Signal(10)
        t_bits = Signal(range(11))
        m.d.comb += self.tx.ready.eq(t_bits == 0)
        with m.If(self.tx.valid & self.tx.ready):
            m.d.sync += [
                t_shift.eq((1 << 9) | (self.tx.payload << 1)),
                t_bits.eq(10),
                t_count.eq(0),
            ]
        with m.Elif(t_bits != 0):
            with m.If(t_count == 0):
                m.d.sync += [
                    self.tx_pin.eq(t_shift[0]),
                    t_shift.eq(t_shift >> 1),
                    t_count.eq(d - 1),
                ]
            with m.Else():
                m.d.sync += t_count.eq(t_count - 1)
                with m.If(t_count == 1):
                    m.d.sync += t_bits.eq(t_bits - 1)
        return m


class AXIStreamBytes(wiring.Component):
    """AXI4-Stream ports around the front end's byte streams, for a Zynq AXI DMA.

    The slave side (``s_tdata`` ...) carries requests into ``rx``; the master side carries
    ``tx`` out, with ``m_tlast`` on the final CRC byte of each reply, found by following the
    reply's length field.
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "s_tdata": In(8),
                "s_tvalid": In(1),
                "s_tready": Out(1),
                "m_tdata": Out(8),
                "m_tvalid": Out(1),
                "m_tready": In(1),
                "m_tlast": Out(1),
                "rx": Out(stream.Signature(8)),
                "tx": In(stream.Signature(8)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.rx.payload.eq(self.s_tdata),
            self.rx.valid.eq(self.s_tvalid),
            self.s_tready.eq(self.rx.ready),
            self.m_tdata.eq(self.tx.payload),
            self.m_tvalid.eq(self.tx.valid),
            self.tx.ready.eq(self.m_tready),
        ]
        # Count the bytes of each reply frame: header, then LEN payload bytes, then the CRC.
        position = Signal(16)
        length = Signal(16)
        total = Signal(17)
        m.d.comb += total.eq(P.HEADER_BYTES + length + 2)
        m.d.comb += self.m_tlast.eq((position >= P.HEADER_BYTES) & (position == total - 1))
        with m.If(self.tx.valid & self.m_tready):
            m.d.sync += position.eq(position + 1)
            with m.If(position == 3):
                m.d.sync += length[:8].eq(self.tx.payload)
            with m.If(position == 4):
                m.d.sync += length[8:].eq(self.tx.payload)
            with m.If(self.m_tlast):
                m.d.sync += [position.eq(0), length.eq(0)]
        return m
