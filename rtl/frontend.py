"""`CommandFrontEnd`: the board protocol (`rtl.protocol`) over a byte stream, in front of an MVU.

The front end holds one weight tile of ``tile_n`` x ``tile_k`` (a `MatrixVectorUnit` with T = 1),
an activation buffer and a result buffer. It parses request frames from the ``rx`` byte stream,
checks their length and CRC, executes them and sends one reply frame on ``tx`` per request.
Larger layers are tiled by the host (`hostlib.board`).

Weights and activations stream into the unit and the buffer while the frame arrives, so a bad
CRC is only known at the end: the write then answers `ERR_CRC` and leaves the written flag
clear, and `CMD_RUN` refuses to run (`ERR_STATE`) until both buffers were written whole.

A frame in progress that receives no byte for ``timeout_cycles`` cycles is dropped with an
`ERR_TRUNCATED` reply, so a lost byte never leaves the parser waiting forever.

Cycle counter: `CMD_RUN` counts the cycles from the rising edge at which the unit accepts the
first activation beat to the one at which it hands over the last accumulator beat, both
included: T F + D, the figure of `sim.estimate_layer` for the tile (see `rtl.mvu`).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl import protocol as P
from rtl.mvu import MatrixVectorUnit
from rtl.spec import OUTPUT_BITS, UnitSpec

__all__ = ["CommandFrontEnd", "crc16_step", "tile_sizes"]


def crc16_step(crc: Value, byte: Value) -> Value:
    """Return the CRC-16/CCITT-FALSE register after one more ``byte`` (combinational).

    The update is linear over GF(2): each new register bit is the XOR of the register and byte
    bits whose unit vectors `protocol.crc16` maps onto it, which keeps the logic flat.
    """
    terms = [[] for _ in range(16)]
    inputs = [crc[i] for i in range(16)] + [byte[i] for i in range(8)]
    for position in range(24):
        reg, data = (1 << position, 0) if position < 16 else (0, 1 << (position - 16))
        out = P.crc16(bytes([data]), reg)
        for bit in range(16):
            if out >> bit & 1:
                terms[bit].append(inputs[position])
    return Cat(*(Cat(*bits).xor() for bits in terms))


def tile_sizes(spec: UnitSpec) -> dict:
    """Return the byte counts of the tile ``spec``: beats, bytes per beat and payload lengths."""
    weight_beat = (spec.pe * spec.simd * spec.weight_bits + 7) // 8
    act_lane_bits = 1 if spec.design.datapath == "xnor" else spec.act_bits
    act_beat = (spec.simd * act_lane_bits + 7) // 8
    acc_beat = spec.pe * OUTPUT_BITS // 8
    sizes = {
        "weight_beats": spec.folds,
        "weight_beat_bytes": weight_beat,
        "act_beats": spec.act_beats,
        "act_beat_bytes": act_beat,
        "acc_beats": spec.acc_beats,
        "acc_beat_bytes": acc_beat,
        "write_weights_len": 1 + spec.folds * weight_beat,
        "write_act_len": spec.act_beats * act_beat,
        "results_len": spec.acc_beats * acc_beat,
    }
    for key in ("write_weights_len", "write_act_len", "results_len"):
        if sizes[key] + 1 > P.MAX_PAYLOAD:
            raise ValueError(
                f"a {spec.n}x{spec.k} tile needs a {key} of {sizes[key]} bytes, over the "
                f"protocol's {P.MAX_PAYLOAD}: choose a smaller tile"
            )
    return sizes


class CommandFrontEnd(wiring.Component):
    """The protocol front end and one ``tile_n`` x ``tile_k`` matrix-vector unit.

    Parameters
    ----------
    design : sim.Design
        The unit's design (see `rtl.UnitSpec`).
    tile_n, tile_k : int
        The weight tile the board holds; PE must divide ``tile_n`` and SIMD ``tile_k``.
    timeout_cycles : int
        Cycles without a byte after which a frame in progress is dropped.
    slots : int
        Weight tiles kept in on-chip memory. `CMD_RUN` copies the selected slot into the unit
        (F cycles, not counted by the cycle counter) unless the unit holds it already.

    Attributes
    ----------
    rx : In(stream.Signature(8))
        Request bytes.
    tx : Out(stream.Signature(8))
        Reply bytes.
    """

    def __init__(
        self, design, tile_n: int, tile_k: int, *, timeout_cycles: int = 1 << 20, slots: int = 1
    ):
        try:
            if isinstance(slots, bool) or not isinstance(slots, int):
                raise TypeError(f"slots must be an int, got {slots!r}")
            if not 1 <= slots <= 255:
                raise ValueError(f"slots must be in [1, 255], got {slots}")
            self._spec = UnitSpec(design, tile_n, tile_k, 1)
            self._sizes = tile_sizes(self._spec)
            if isinstance(timeout_cycles, bool) or not isinstance(timeout_cycles, int):
                raise TypeError(f"timeout_cycles must be an int, got {timeout_cycles!r}")
            if timeout_cycles < 16:
                raise ValueError(f"timeout_cycles must be >= 16, got {timeout_cycles}")
        except Exception:
            self._MustUse__silence = True
            raise
        self.timeout_cycles = timeout_cycles
        self.slots = slots
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8))})

    @property
    def spec(self) -> UnitSpec:
        return self._spec

    @property
    def sizes(self) -> dict:
        return dict(self._sizes)

    def elaborate(self, platform):
        m = Module()
        spec, sizes = self._spec, self._sizes
        m.submodules.mvu = mvu = MatrixVectorUnit(spec.design, spec.n, spec.k, tokens=1)

        wbb, abb = sizes["weight_beat_bytes"], sizes["act_beat_bytes"]
        acc_bytes = sizes["acc_beat_bytes"]
        act_width = len(Value.cast(mvu.act.payload.data))
        weight_width = len(Value.cast(mvu.weights.payload.data))

        m.submodules.act_mem = act_mem = Memory(shape=act_width, depth=sizes["act_beats"], init=[])
        act_w = act_mem.write_port()
        act_r = act_mem.read_port()
        m.submodules.res_mem = res_mem = Memory(
            shape=spec.pe * OUTPUT_BITS, depth=sizes["acc_beats"], init=[]
        )
        res_w = res_mem.write_port()
        res_r = res_mem.read_port()

        # Frame state.
        cmd = Signal(8)
        seq = Signal(8)
        length = Signal(16)
        crc = Signal(16)
        crc_rx = Signal(8)
        err = Signal(8)
        index = Signal(16)  # payload bytes received
        beat_byte = Signal(range(max(wbb, abb) + 1))
        beat = Signal(16)
        shift = Signal(8 * max(wbb, abb))
        idle = Signal(range(self.timeout_cycles + 1))

        slots, folds = self.slots, sizes["weight_beats"]
        m.submodules.slot_mem = slot_mem = Memory(shape=weight_width, depth=slots * folds, init=[])
        slot_w = slot_mem.write_port()
        slot_r = slot_mem.read_port()
        slot = Signal(8)  # the slot byte of the frame
        slot_ok = Signal(slots)  # slots written whole with a correct CRC
        slot_in_unit = Signal(8)
        unit_loaded = Signal()
        copy_left = Signal(range(folds + 1))
        copy_addr = Signal(range(slots * folds + 1))
        w_valid = Signal()
        w_first = Signal()
        w_last = Signal()
        act_ok = Signal()
        results_ok = Signal()
        cycles = Signal(32)
        runs = Signal(32)
        errors = Signal(16)

        # Reply state.
        r_status = Signal(8)
        r_kind = Signal(2)  # 0 none, 1 status, 2 cycles, 3 results
        r_len = Signal(16)  # bytes after the status byte
        r_index = Signal(16)
        r_word = Signal(range(sizes["acc_beats"] + 1))
        r_byte = Signal(range(acc_bytes))
        t_crc = Signal(16)

        # Run state.
        feed_left = Signal(range(sizes["act_beats"] + 1))
        feed_addr = Signal(range(sizes["act_beats"] + 1))
        act_valid = Signal()
        act_first = Signal()
        act_last = Signal()
        counting = Signal()
        res_addr = Signal(range(sizes["acc_beats"] + 1))

        rx, tx = self.rx, self.tx
        byte = rx.payload
        taken = rx.valid & rx.ready
        expected_len = Signal(16)
        m.d.comb += expected_len.eq(0)
        with m.Switch(cmd):
            with m.Case(P.CMD_WRITE_WEIGHTS):
                m.d.comb += expected_len.eq(sizes["write_weights_len"])
            with m.Case(P.CMD_WRITE_ACT):
                m.d.comb += expected_len.eq(sizes["write_act_len"])
            with m.Case(P.CMD_RUN):
                m.d.comb += expected_len.eq(1)
        known = Signal()
        m.d.comb += known.eq(
            Cat(
                *(
                    cmd == c
                    for c in (
                        P.CMD_STATUS,
                        P.CMD_WRITE_WEIGHTS,
                        P.CMD_WRITE_ACT,
                        P.CMD_RUN,
                        P.CMD_READ_RESULTS,
                        P.CMD_RESET,
                    )
                )
            ).any()
        )

        # Status bytes, little-endian as `protocol.BoardStatus`.
        status_bytes = Cat(
            Const(P.PROTOCOL_VERSION, 8),
            Const(1 if spec.design.datapath == "xnor" else 0, 8),
            Const(spec.act_bits, 8),
            Cat(slot_ok[0], act_ok, results_ok, Const(0, 5)),
            Const(spec.pe, 16),
            Const(spec.simd, 16),
            Const(spec.n, 16),
            Const(spec.k, 16),
            cycles,
            runs,
            errors,
            Const(slots, 16),
        )
        assert len(status_bytes) == 8 * P.STATUS_BYTES
        status_array = Array(status_bytes.word_select(i, 8) for i in range(P.STATUS_BYTES))
        cycle_array = Array(cycles.word_select(i, 8) for i in range(4))

        # Default connections.
        m.d.comb += [
            mvu.acc.ready.eq(0),
            mvu.act.valid.eq(act_valid),
            mvu.act.payload.first.eq(act_first),
            mvu.act.payload.last.eq(act_last),
            Value.cast(mvu.act.payload.data).eq(act_r.data),
            act_r.addr.eq(feed_addr),
            res_r.en.eq(1),
            res_w.addr.eq(res_addr),
            res_w.data.eq(Value.cast(mvu.acc.payload.data)),
        ]
        # The bytes of a beat, completed by this byte. The shift register is as wide as the
        # wider beat, so the narrower beat sits at its top.
        word = Cat(shift, byte)[8:]
        word_w = word[8 * (len(word) // 8 - wbb) :]
        word_a = word[8 * (len(word) // 8 - abb) :]

        def start_frame():
            m.d.sync += [err.eq(0), index.eq(0), beat.eq(0), beat_byte.eq(0), idle.eq(0)]

        def reply(status, kind, data_len):
            m.d.sync += [
                r_status.eq(status),
                r_kind.eq(kind),
                r_len.eq(data_len),
                r_index.eq(0),
                r_word.eq(0),
                r_byte.eq(0),
                t_crc.eq(P.CRC_INIT),
            ]
            if isinstance(status, int):
                if status != P.STATUS_OK:
                    m.d.sync += errors.eq(errors + 1)
            else:
                with m.If(status != P.STATUS_OK):
                    m.d.sync += errors.eq(errors + 1)

        def start_run():
            m.d.sync += [
                results_ok.eq(0),
                feed_addr.eq(0),
                feed_left.eq(sizes["act_beats"]),
                act_valid.eq(0),
                counting.eq(0),
                cycles.eq(0),
                res_addr.eq(0),
            ]

        def watch_timeout():
            # A frame that stops arriving is dropped after the timeout, with a reply.
            with m.If(rx.valid):
                m.d.sync += idle.eq(0)
            with m.Elif(idle == self.timeout_cycles - 1):
                reply(P.ERR_TRUNCATED, 0, 0)
                m.d.sync += idle.eq(0)
                m.next = "T_SYNC"
            with m.Else():
                m.d.sync += idle.eq(idle + 1)

        with m.FSM(name="frontend"):
            with m.State("HUNT"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid & (byte == P.SYNC)):
                    start_frame()
                    m.d.sync += [crc.eq(P.CRC_INIT), cmd.eq(0), seq.eq(0)]
                    m.next = "CMD"
            for state, target, store in (
                ("CMD", "SEQ", cmd),
                ("SEQ", "LEN0", seq),
                ("LEN0", "LEN1", length[:8]),
            ):
                with m.State(state):
                    m.d.comb += rx.ready.eq(1)
                    with m.If(rx.valid):
                        m.d.sync += [store.eq(byte), crc.eq(crc16_step(crc, byte))]
                        m.next = target
                    watch_timeout()
            with m.State("LEN1"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    full = Cat(length[:8], byte)
                    m.d.sync += [length[8:].eq(byte), crc.eq(crc16_step(crc, byte))]
                    with m.If(~known):
                        m.d.sync += err.eq(P.ERR_COMMAND)
                    with m.Elif(full != expected_len):
                        m.d.sync += err.eq(P.ERR_LENGTH)
                    with m.If(full == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
                watch_timeout()
            with m.State("PAYLOAD"):
                last_byte = index == length - 1
                pushing = Signal()
                is_weights = (cmd == P.CMD_WRITE_WEIGHTS) & (err == 0)
                is_act = (cmd == P.CMD_WRITE_ACT) & (err == 0)
                data_byte = Mux(cmd == P.CMD_WRITE_WEIGHTS, index != 0, 1)
                beat_done_w = beat_byte == wbb - 1
                beat_done_a = beat_byte == abb - 1
                m.d.comb += pushing.eq(is_weights & data_byte & beat_done_w)
                # A completed weight beat goes to its slot; RUN copies the slot into the unit.
                m.d.comb += [
                    rx.ready.eq(1),
                    slot_w.addr.eq(slot * folds + beat),
                    slot_w.data.eq(word_w[:weight_width]),
                    slot_w.en.eq(taken & pushing),
                    act_w.addr.eq(beat),
                    act_w.data.eq(word_a[:act_width]),
                    act_w.en.eq(taken & is_act & beat_done_a),
                ]
                with m.If(taken):
                    m.d.sync += [
                        crc.eq(crc16_step(crc, byte)),
                        index.eq(index + 1),
                        shift.eq(Cat(shift, byte)[8:]),
                    ]
                    with m.If(index == 0):
                        m.d.sync += slot.eq(byte)
                        with m.If((cmd == P.CMD_WRITE_WEIGHTS) & (err == 0) & (byte < slots)):
                            m.d.sync += [slot_ok.bit_select(byte, 1).eq(0), unit_loaded.eq(0)]
                        with m.If((cmd == P.CMD_WRITE_ACT) & (err == 0)):
                            m.d.sync += act_ok.eq(0)
                        with m.If(
                            (err == 0)
                            & ((cmd == P.CMD_WRITE_WEIGHTS) | (cmd == P.CMD_RUN))
                            & (byte >= slots)
                        ):
                            m.d.sync += err.eq(P.ERR_RANGE)
                    with m.If(data_byte):
                        beat_done = Mux(cmd == P.CMD_WRITE_WEIGHTS, beat_done_w, beat_done_a)
                        with m.If(beat_done):
                            m.d.sync += [beat_byte.eq(0), beat.eq(beat + 1)]
                        with m.Else():
                            m.d.sync += beat_byte.eq(beat_byte + 1)
                    with m.If(last_byte):
                        m.next = "CRC0"
                watch_timeout()
            with m.State("CRC0"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    m.d.sync += crc_rx.eq(byte)
                    m.next = "CRC1"
                watch_timeout()
            with m.State("CRC1"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    with m.If(Cat(crc_rx, byte) != crc):
                        m.d.sync += err.eq(P.ERR_CRC)
                    m.next = "EXEC"
                watch_timeout()
            with m.State("EXEC"):
                with m.If(err != 0):
                    reply(err, 0, 0)
                    m.next = "T_SYNC"
                with m.Else():
                    with m.Switch(cmd):
                        with m.Case(P.CMD_STATUS):
                            reply(P.STATUS_OK, 1, P.STATUS_BYTES)
                            m.next = "T_SYNC"
                        with m.Case(P.CMD_WRITE_WEIGHTS):
                            m.d.sync += slot_ok.bit_select(slot, 1).eq(1)
                            reply(P.STATUS_OK, 0, 0)
                            m.next = "T_SYNC"
                        with m.Case(P.CMD_WRITE_ACT):
                            m.d.sync += act_ok.eq(1)
                            reply(P.STATUS_OK, 0, 0)
                            m.next = "T_SYNC"
                        with m.Case(P.CMD_RESET):
                            m.d.sync += [
                                slot_ok.eq(0),
                                unit_loaded.eq(0),
                                act_ok.eq(0),
                                results_ok.eq(0),
                                cycles.eq(0),
                                runs.eq(0),
                                errors.eq(0),
                            ]
                            reply(P.STATUS_OK, 0, 0)
                            m.next = "T_SYNC"
                        with m.Case(P.CMD_READ_RESULTS):
                            with m.If(results_ok):
                                reply(P.STATUS_OK, 3, sizes["results_len"])
                            with m.Else():
                                reply(P.ERR_STATE, 0, 0)
                            m.next = "T_SYNC"
                        with m.Case(P.CMD_RUN):
                            with m.If(slot_ok.bit_select(slot, 1) & act_ok):
                                start_run()
                                with m.If(unit_loaded & (slot_in_unit == slot)):
                                    m.next = "RUN"
                                with m.Else():
                                    m.d.sync += [
                                        copy_addr.eq(slot * folds),
                                        copy_left.eq(folds),
                                        w_valid.eq(0),
                                    ]
                                    m.next = "COPY"
                            with m.Else():
                                reply(P.ERR_STATE, 0, 0)
                                m.next = "T_SYNC"
            with m.State("COPY"):
                # The slot's beats go into the unit's weight memory, one per cycle.
                advance = ~w_valid | mvu.weights.ready
                m.d.comb += [
                    slot_r.addr.eq(copy_addr),
                    slot_r.en.eq(advance),
                    mvu.weights.valid.eq(w_valid),
                    mvu.weights.payload.data.eq(slot_r.data),
                    mvu.weights.payload.first.eq(w_first),
                    mvu.weights.payload.last.eq(w_last),
                ]
                with m.If(advance):
                    m.d.sync += [
                        w_valid.eq(copy_left != 0),
                        w_first.eq(copy_left == folds),
                        w_last.eq(copy_left == 1),
                    ]
                    with m.If(copy_left != 0):
                        m.d.sync += [copy_addr.eq(copy_addr + 1), copy_left.eq(copy_left - 1)]
                with m.If(w_valid & mvu.weights.ready & w_last):
                    m.d.sync += [unit_loaded.eq(1), slot_in_unit.eq(slot), w_valid.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                # Feed: the buffer's read port runs one beat ahead of the valid register and
                # both hold while the unit stalls.
                advance = ~act_valid | mvu.act.ready
                m.d.comb += [act_r.en.eq(advance), mvu.acc.ready.eq(1)]
                with m.If(advance):
                    m.d.sync += [
                        act_valid.eq(feed_left != 0),
                        act_first.eq(feed_addr == 0),
                        act_last.eq(feed_left == 1),
                    ]
                    with m.If(feed_left != 0):
                        m.d.sync += [feed_addr.eq(feed_addr + 1), feed_left.eq(feed_left - 1)]
                first_accept = act_valid & mvu.act.ready & act_first
                with m.If(first_accept):
                    m.d.sync += counting.eq(1)
                with m.If(counting | first_accept):
                    m.d.sync += cycles.eq(cycles + 1)
                m.d.comb += res_w.en.eq(mvu.acc.valid)
                with m.If(mvu.acc.valid):
                    m.d.sync += res_addr.eq(res_addr + 1)
                    with m.If(mvu.acc.payload.last):
                        m.d.sync += [results_ok.eq(1), runs.eq(runs + 1), counting.eq(0)]
                        reply(P.STATUS_OK, 2, 4)
                        m.next = "T_SYNC"

            # Reply: SYNC, CMD | 0x80, SEQ, LEN, status, data, CRC.
            def send(value, target, count_crc=True):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(value)]
                with m.If(tx.ready):
                    if count_crc:
                        m.d.sync += t_crc.eq(crc16_step(t_crc, value))
                    m.next = target

            reply_len = Signal(16)
            m.d.comb += reply_len.eq(r_len + 1)
            with m.State("T_SYNC"):
                send(P.SYNC, "T_CMD", count_crc=False)
            with m.State("T_CMD"):
                send(cmd | P.REPLY_FLAG, "T_SEQ")
            with m.State("T_SEQ"):
                send(seq, "T_LEN0")
            with m.State("T_LEN0"):
                send(reply_len[:8], "T_LEN1")
            with m.State("T_LEN1"):
                send(reply_len[8:], "T_STATUS")
            with m.State("T_STATUS"):
                m.d.comb += res_r.addr.eq(0)
                send(r_status, "T_DATA")
                with m.If(r_len == 0):
                    send(r_status, "T_CRC0")
            with m.State("T_DATA"):
                value = Signal(8)
                word_end = r_byte == acc_bytes - 1
                with m.Switch(r_kind):
                    with m.Case(1):
                        m.d.comb += value.eq(status_array[r_index[:5]])
                    with m.Case(2):
                        m.d.comb += value.eq(cycle_array[r_index[:2]])
                    with m.Default():
                        m.d.comb += value.eq(res_r.data.word_select(r_byte, 8))
                advance_word = tx.ready & word_end
                m.d.comb += res_r.addr.eq(Mux(advance_word, r_word + 1, r_word))
                with m.If(r_index == r_len - 1):
                    send(value, "T_CRC0")
                with m.Else():
                    send(value, "T_DATA")
                with m.If(tx.ready):
                    m.d.sync += r_index.eq(r_index + 1)
                    with m.If(word_end):
                        m.d.sync += [r_byte.eq(0), r_word.eq(r_word + 1)]
                    with m.Else():
                        m.d.sync += r_byte.eq(r_byte + 1)
            with m.State("T_CRC0"):
                send(t_crc[:8], "T_CRC1", count_crc=False)
            with m.State("T_CRC1"):
                send(t_crc[8:], "HUNT", count_crc=False)
        return m
