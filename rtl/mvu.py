"""`MatrixVectorUnit`: the PE x SIMD matrix-vector unit of a ``ternary`` or ``xnor`` design.

The unit holds one N x K layer's weights in a memory that Yosys infers as block RAM, loaded
tile by tile through the ``weights`` stream, and multiplies runs of T vectors from the ``act``
stream, returning int32 accumulators on the ``acc`` stream (formats in `rtl.spec`).

Schedule: the folds of sim's model (`sim.timing`), row group i outer, column group j inner, the
T vectors of a run innermost, one fold issued per cycle. Row group 0 takes each ``act`` beat as
it arrives and writes it to an activation buffer, from which the other row groups read it.

Pipeline, one register per stage, the stages of `sim.pipeline_depth`:

    stage 1        weight memory read (and the activation buffer read or the input register)
    stage 2        lanes: ternary selects +x, -x or 0; xnor computes XNOR(a, w)
    stage 3 .. 2+L adder (popcount) tree, one level per stage, L = ceil(log2 SIMD)
    stage 3+L      accumulator add; after the last column group the sum goes to ``acc``

so a fold issued in cycle c has its result in the accumulator register in cycle c + D. The
output register is the accumulator stage of the last column group, and the whole pipeline
advances only when that register is empty or accepted (a global stall), so results are never
dropped under backpressure.

Timing contract (checked against `sim.estimate_layer` by the cocotb bench): count the cycles
from the rising edge at which the first ``act`` beat of a run is accepted to the rising edge at
which its last ``acc`` beat is accepted, both included. With ``act`` valid on every cycle of
the run's first row group and ``acc`` ready throughout, that count is T F + D, sim's cycles for
``weight_store="onchip"``. Idle input cycles in row group 0 and backpressure add one cycle each.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.spec import OUTPUT_BITS, UnitSpec

__all__ = ["MatrixVectorUnit", "frame_layout"]


def frame_layout(data_shape) -> data.StructLayout:
    """Return the payload layout ``{data, first, last}`` of a framed stream."""
    return data.StructLayout({"data": data_shape, "first": 1, "last": 1})


class MatrixVectorUnit(wiring.Component):
    """The matrix-vector unit of one layer, generated from a `sim.Design`.

    Parameters
    ----------
    design : sim.Design
        The design; see `rtl.UnitSpec` for what the RTL accepts.
    n, k : int
        The layer's output rows and inputs.
    tokens : int
        Vectors per run, T.

    Attributes
    ----------
    weights : In(stream.Signature(frame_layout(unsigned(PE SIMD b))))
        Weight tiles, loaded while the unit is idle (``ready`` is low during a run). A beat with
        ``first`` writes tile 0, and each further beat writes the next tile.
    act : In(stream.Signature(frame_layout(...)))
        Activation beats, column group major (see `rtl.spec`).
    acc : Out(stream.Signature(frame_layout(ArrayLayout(signed(32), PE))))
        Accumulators, one beat per row group and vector; ``first`` and ``last`` frame a run.
    busy : Out(1)
        High while a run is in the pipeline.
    framing_error : Out(1)
        Sticky: set when a ``first`` or ``last`` flag on ``weights`` or ``act`` disagrees with
        the beat's position, or a weight beat goes past tile F - 1 (that beat is dropped).

    Raises
    ------
    TypeError, ValueError, NotImplementedError
        From `rtl.UnitSpec`, before anything is elaborated.
    """

    def __init__(self, design, n: int, k: int, tokens: int = 1) -> None:
        try:
            self._spec = UnitSpec(design, n, k, tokens)
        except Exception:
            # A rejected unit is never elaborated; spare the caller Amaranth's unused warning.
            self._MustUse__silence = True
            raise
        spec = self._spec
        if spec.design.datapath == "xnor":
            act_shape = unsigned(spec.simd)
        else:
            act_shape = data.ArrayLayout(signed(spec.act_bits), spec.simd)
        super().__init__(
            {
                "weights": In(
                    stream.Signature(frame_layout(unsigned(spec.pe * spec.simd * spec.weight_bits)))
                ),
                "act": In(stream.Signature(frame_layout(act_shape))),
                "acc": Out(
                    stream.Signature(frame_layout(data.ArrayLayout(signed(OUTPUT_BITS), spec.pe)))
                ),
                "busy": Out(1),
                "framing_error": Out(1),
            }
        )

    @property
    def spec(self) -> UnitSpec:
        """The validated parameters of the unit."""
        return self._spec

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        pe, simd, tokens = spec.pe, spec.simd, spec.tokens
        rows, cols = spec.row_groups, spec.col_groups
        act_width = spec.simd * (1 if spec.design.datapath == "xnor" else spec.act_bits)

        # Memories: the weight tiles, and the activations of a run when a second row group
        # needs them again.
        m.submodules.weight_mem = weight_mem = Memory(
            shape=unsigned(pe * simd * spec.weight_bits), depth=spec.folds, init=[]
        )
        w_write = weight_mem.write_port()
        w_read = weight_mem.read_port()
        if rows > 1:
            m.submodules.act_mem = act_mem = Memory(
                shape=unsigned(act_width), depth=spec.act_beats, init=[]
            )
            a_write = act_mem.write_port()
            a_read = act_mem.read_port()

        # Issue counters: row group i, column group j, vector t; the weight and activation
        # buffer addresses are kept as counters so that no multiplier is needed.
        i = Signal(range(rows), name="row_group")
        j = Signal(range(cols), name="col_group")
        t = Signal(range(tokens), name="token")
        w_addr = Signal(range(spec.folds), name="w_addr")
        a_addr = Signal(range(spec.act_beats), name="a_addr")
        load_addr = Signal(range(spec.folds + 1), name="load_addr")

        tag_layout = data.StructLayout(
            {
                "valid": 1,
                "first_col": 1,
                "last_col": 1,
                "token": range(tokens),
                "first_out": 1,
                "last_out": 1,
            }
        )
        # tags[s] travels with the data of stage s + 1; the accumulator stage reads tags[-1].
        tags = [Signal(tag_layout, name=f"tag_s{stage + 1}") for stage in range(spec.depth - 1)]

        advance = Signal(name="advance")
        pipeline_busy = Signal(name="pipeline_busy")
        do_load = Signal(name="do_load")
        do_accept = Signal(name="do_accept")
        do_issue = Signal(name="do_issue")
        from_input = Signal(name="s1_from_input")
        x_in = Signal(act_width, name="s1_x_in", reset_less=True)
        x_s1 = Signal(act_width, name="s1_x")

        # Handshakes and control.
        m.d.comb += [
            advance.eq(~self.acc.valid | self.acc.ready),
            pipeline_busy.eq(
                (i != 0)
                | (j != 0)
                | (t != 0)
                | Cat(*(tag.valid for tag in tags)).any()
                | self.acc.valid
            ),
            self.busy.eq(pipeline_busy),
            self.weights.ready.eq(~pipeline_busy),
            do_load.eq(self.weights.valid & self.weights.ready),
            # Weight beats win over the start of a run, so that no tile is read while written.
            self.act.ready.eq(advance & (i == 0) & (pipeline_busy | ~self.weights.valid)),
            do_accept.eq(self.act.valid & self.act.ready),
            do_issue.eq(do_accept | (advance & (i != 0))),
        ]

        # Weight loading.
        load_target = Signal(range(spec.folds + 1), name="load_target")
        m.d.comb += [
            load_target.eq(Mux(self.weights.payload.first, 0, load_addr)),
            w_write.addr.eq(load_target),
            w_write.data.eq(self.weights.payload.data),
            w_write.en.eq(do_load & (load_target < spec.folds)),
        ]
        with m.If(do_load):
            m.d.sync += load_addr.eq(load_target + 1)
            bad_position = self.weights.payload.last != (load_target == spec.folds - 1)
            with m.If(bad_position | (load_target >= spec.folds)):
                m.d.sync += self.framing_error.eq(1)

        # Issue: the counters walk (i, j, t) with t innermost; the buffers read one fold ahead
        # of stage 1, and their enables follow the stall so their outputs hold.
        last_token = t == tokens - 1
        last_col = j == cols - 1
        last_row = i == rows - 1
        m.d.comb += [
            w_read.addr.eq(w_addr),
            w_read.en.eq(advance),
        ]
        if rows > 1:
            m.d.comb += [
                a_write.addr.eq(a_addr),
                a_write.data.eq(Value.cast(self.act.payload.data)),
                a_write.en.eq(do_accept),
                a_read.addr.eq(a_addr),
                a_read.en.eq(advance),
            ]
        with m.If(do_accept):
            first_beat = (j == 0) & (t == 0)
            with m.If(
                (self.act.payload.first != first_beat)
                | (self.act.payload.last != (last_col & last_token))
            ):
                m.d.sync += self.framing_error.eq(1)
        with m.If(do_issue):
            m.d.sync += t.eq(Mux(last_token, 0, t + 1))
            with m.If(last_token):
                m.d.sync += j.eq(Mux(last_col, 0, j + 1))
                with m.If(last_col):
                    m.d.sync += i.eq(Mux(last_row, 0, i + 1))
                m.d.sync += w_addr.eq(Mux(last_col & last_row, 0, w_addr + 1))
            m.d.sync += a_addr.eq(Mux(last_col & last_token, 0, a_addr + 1))

        # Stage 1: the tag and the activations enter with the weight read.
        with m.If(advance):
            m.d.sync += [
                tags[0].valid.eq(do_issue),
                tags[0].first_col.eq(j == 0),
                tags[0].last_col.eq(last_col),
                tags[0].token.eq(t),
                tags[0].first_out.eq((i == 0) & (t == 0)),
                tags[0].last_out.eq(last_row & last_token),
                from_input.eq(i == 0),
                x_in.eq(Value.cast(self.act.payload.data)),
            ]
            for stage in range(1, len(tags)):
                m.d.sync += tags[stage].eq(tags[stage - 1])
        if rows > 1:
            m.d.comb += x_s1.eq(Mux(from_input, x_in, a_read.data))
        else:
            m.d.comb += x_s1.eq(x_in)

        # Stages 2 .. 2+L: lanes and the adder tree of each PE row.
        partials = [self._row_partial(m, p, w_read.data, x_s1, advance) for p in range(pe)]

        # Stage 3+L: accumulators, T per PE row; the last column group's sum goes out instead.
        tag = tags[-1]
        with m.If(advance):
            m.d.sync += self.acc.valid.eq(tag.valid & tag.last_col)
        with m.If(advance & tag.valid & tag.last_col):
            m.d.sync += [
                self.acc.payload.first.eq(tag.first_out),
                self.acc.payload.last.eq(tag.last_out),
            ]
        for p, partial in enumerate(partials):
            acc_regs = [
                Signal(signed(spec.acc_bits), name=f"acc_t{v}_p{p}", reset_less=True)
                for v in range(tokens)
            ]
            acc_now = acc_regs[0] if tokens == 1 else Array(acc_regs)[tag.token]
            acc_next = Signal(signed(spec.acc_bits), name=f"acc_next_p{p}")
            # No truncation happens here: check_layer sized acc_bits for any length-K sum.
            m.d.comb += acc_next.eq(Mux(tag.first_col, 0, acc_now) + partial)
            with m.If(advance & tag.valid):
                with m.If(tag.last_col):
                    m.d.sync += self.acc.payload.data[p].eq(acc_next)
                with m.Else():
                    for v, reg in enumerate(acc_regs):
                        with m.If(tag.token == v):
                            m.d.sync += reg.eq(acc_next)

        return m

    def _row_partial(self, m, p, weights, x, advance):
        """Build the lanes and adder tree of PE row ``p``; return its registered partial sum."""
        spec = self._spec
        simd = spec.simd
        levels = []
        lanes = []
        if spec.design.datapath == "xnor":
            for lane in range(simd):
                bit = Signal(name=f"lane_p{p}_l{lane}", reset_less=True)
                w_bit = weights[p * simd + lane]
                with m.If(advance):
                    m.d.sync += bit.eq(~(w_bit ^ x[lane]))
                lanes.append(bit)
        else:
            a = spec.act_bits
            for lane in range(simd):
                value = Signal(signed(a + 1), name=f"lane_p{p}_l{lane}", reset_less=True)
                code = weights[2 * (p * simd + lane) : 2 * (p * simd + lane) + 2]
                x_lane = x[a * lane : a * (lane + 1)].as_signed()
                # Code w + 1: 2 is +1 (add), 0 is -1 (subtract), 1 is 0 (skip).
                selected = Mux(code == 2, x_lane, Mux(code == 0, -x_lane, Const(0, signed(a + 1))))
                with m.If(advance):
                    m.d.sync += value.eq(selected)
                lanes.append(value)
        levels.append(lanes)

        # One register level per tree level; an odd value out passes to the next level.
        for level in range(1, spec.tree_levels + 1):
            below = levels[-1]
            width = below[0].shape().width + 1
            shape = unsigned(width) if spec.design.datapath == "xnor" else signed(width)
            above = []
            for index in range(0, len(below), 2):
                node = Signal(shape, name=f"tree_p{p}_v{level}_{index // 2}", reset_less=True)
                pair = below[index] + below[index + 1] if index + 1 < len(below) else below[index]
                with m.If(advance):
                    m.d.sync += node.eq(pair)
                above.append(node)
            levels.append(above)
        (total,) = levels[-1]

        if spec.design.datapath == "xnor":
            # Bipolar dot product of SIMD lanes: 2 popcount(XNOR) - SIMD.
            count = Signal(signed(len(total) + 1), name=f"popcount_p{p}")
            partial = Signal(signed(len(total) + 2), name=f"partial_p{p}")
            m.d.comb += [count.eq(total), partial.eq(count * 2 - simd)]
            return partial
        return total
