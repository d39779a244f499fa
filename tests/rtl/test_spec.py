import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from rtl import MatrixVectorUnit, UnitSpec


def design_on(board="icebreaker", **fields):
    return sim.Design.from_spec(fields, board)


def test_spec_derived_sizes():
    spec = UnitSpec(design_on(pe=4, simd=16), 32, 64, tokens=3)
    assert spec.row_groups == 8
    assert spec.col_groups == 4
    assert spec.folds == 32
    assert spec.tree_levels == 4
    assert spec.depth == 3 + 4
    assert spec.act_beats == 12
    assert spec.acc_beats == 24
    assert spec.acc_bits == 8 + (64).bit_length()
    # T F + D for on-chip weights, computed here from the definitions.
    assert spec.predicted_cycles() == 3 * 32 + 7


def test_spec_rejects_systolic():
    design = sim.Design.from_spec("array=systolic", "icebreaker")
    with pytest.raises(NotImplementedError, match="Design.array = 'systolic' has no RTL"):
        UnitSpec(design, 32, 32)


def test_spec_rejects_lut():
    with pytest.raises(NotImplementedError, match="Design.datapath = 'lut' has no RTL"):
        UnitSpec(design_on(datapath="lut", pe=2, simd=4), 4, 8)


def test_spec_rejects_streamed_weights():
    design = sim.Design.from_spec("pe=2,simd=4", "kv260")
    with pytest.raises(
        ValueError, match=re.escape("Design.weight_store = 'stream' is not supported by the RTL")
    ):
        UnitSpec(design, 4, 8)


def test_spec_rejects_base3():
    design = design_on(pe=2, simd=4, weight_format="base3")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Design.weight_format = 'base3' is not stored by the RTL's weight memory; for "
            "datapath 'ternary' use one of 2bit, hf, i2_s"
        ),
    ):
        UnitSpec(design, 4, 8)


def test_spec_rejects_pe_not_dividing_n():
    with pytest.raises(ValueError, match=r"Design.pe = 3 must divide the layer's N = 8"):
        UnitSpec(design_on(pe=3, simd=4), 8, 8)


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("tokens", 0, ValueError, "tokens must be >= 1, got 0"),
        ("tokens", 1.5, TypeError, "tokens must be an int, got float 1.5"),
        ("n", True, TypeError, "n must be an int, got bool True"),
    ],
)
def test_spec_rejects_bad_sizes(field, value, error, message):
    sizes = {"n": 4, "k": 8, "tokens": 1, field: value}
    with pytest.raises(error, match=re.escape(message)):
        UnitSpec(design_on(pe=2, simd=4), **sizes)


def test_spec_rejects_non_design():
    with pytest.raises(TypeError, match="design must be a sim.Design, got dict"):
        UnitSpec({"pe": 2}, 4, 8)


def test_unit_validates_before_elaboration():
    # The constructor raises; nothing is elaborated for a design the RTL cannot build.
    with pytest.raises(NotImplementedError, match="Design.datapath = 'lut'"):
        MatrixVectorUnit(design_on(datapath="lut", pe=2, simd=4), 4, 8)


def naive_weight_words(w_q, pe, simd, bits, code):
    """Tile words built bit by bit from the stream format's definition."""
    n, k = w_q.shape
    words = []
    for i in range(n // pe):
        for j in range(k // simd):
            word = 0
            for p in range(pe):
                for lane in range(simd):
                    word |= code(int(w_q[i * pe + p, j * simd + lane])) << (
                        bits * (p * simd + lane)
                    )
            words.append(word)
    return words


def test_pack_weights_ternary_matches_naive():
    rng = np.random.default_rng(1)
    spec = UnitSpec(design_on(pe=2, simd=3), 6, 9)
    w_q = rng.integers(-1, 2, size=(6, 9)).astype(np.int8)
    assert spec.pack_weights(w_q) == naive_weight_words(w_q, 2, 3, 2, lambda w: w + 1)


def test_pack_weights_xnor_matches_naive():
    rng = np.random.default_rng(2)
    spec = UnitSpec(design_on(datapath="xnor", pe=2, simd=4), 4, 8)
    w_q = np.where(rng.random((4, 8)) < 0.5, -1, 1).astype(np.int8)
    assert spec.pack_weights(w_q) == naive_weight_words(w_q, 2, 4, 1, lambda w: int(w > 0))


def test_pack_weights_rejects_bad_codes():
    spec = UnitSpec(design_on(pe=2, simd=4), 4, 8)
    with pytest.raises(ValueError, match=r"weights must hold ternary codes in \{-1, 0, 1\}"):
        spec.pack_weights(np.full((4, 8), 2, dtype=np.int8))
    with pytest.raises(ValueError, match=r"weights must have shape \[4, 8\], got \(8, 4\)"):
        spec.pack_weights(np.zeros((8, 4), dtype=np.int8))


def test_pack_activations_order():
    spec = UnitSpec(design_on(pe=2, simd=2, act_bits=4), 2, 4, tokens=2)
    x_q = np.array([[1, -1, 2, -8], [3, 4, 5, 7]], dtype=np.int8)
    # Column group major: (j=0, t=0), (j=0, t=1), (j=1, t=0), (j=1, t=1); 4-bit lanes.
    assert spec.pack_activations(x_q) == [0xF1, 0x43, 0x82, 0x75]


def test_pack_activations_rejects_out_of_range():
    spec = UnitSpec(design_on(pe=2, simd=2, act_bits=4), 2, 4)
    with pytest.raises(ValueError, match=r"activations must be 4-bit codes in \[-8, 7\]"):
        spec.pack_activations(np.array([[8, 0, 0, 0]], dtype=np.int8))


@settings(max_examples=50, deadline=None)
@given(
    pe=st.integers(1, 4),
    row_groups=st.integers(1, 3),
    tokens=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_unpack_accumulators_inverts_packing(pe, row_groups, tokens, seed):
    spec = UnitSpec(design_on(pe=pe, simd=1), pe * row_groups, 1, tokens=tokens)
    rng = np.random.default_rng(seed)
    acc = rng.integers(-(2**31), 2**31, size=(tokens, spec.n), dtype=np.int64)
    # The acc stream format, written out: beat i T + t, row p at bits 32 p.
    words = []
    for i in range(row_groups):
        for t in range(tokens):
            word = 0
            for p in range(pe):
                word |= (int(acc[t, i * pe + p]) & 0xFFFFFFFF) << (32 * p)
            words.append(word)
    np.testing.assert_array_equal(spec.unpack_accumulators(words), acc.astype(np.int32))


def test_unit_spec_rejects_too_many_tokens():
    design = sim.Design.from_spec("pe=4,simd=8,weight_store=onchip", board="icebreaker")
    with pytest.raises(ValueError, match="tokens must be at most 4096, got 4097"):
        UnitSpec(design, 8, 16, tokens=4097)
