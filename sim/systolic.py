"""One GEMM on a ``systolic`` array, stepped fold by fold with SCALE-Sim 3.0's timing model.

Convention
----------
SCALE-Sim's GEMM topology: an M x K input matrix X times a K x N weight matrix W gives the
M x N output. A layer of N outputs and K inputs with weights ``w_q[N, K]`` runs a batch of M
tokens as ``X @ w_q.T``.

Mapping
-------
A dataflow keeps one operand in the R x C array of processing elements and streams the other
through it. Each maps two GEMM dimensions onto the array, S_R along its R rows and S_C along
its C columns, and streams the third, T, in time. These are the mappings of SCALE-Sim 3.0
(``scalesim/compute/systolic_compute_{ws,os,is}.py``, where the GEMM input is an M x K ifmap
operand matrix and the weights a K x N filter operand matrix):

======== ============ ===== ===== =====
dataflow stationary    S_R   S_C   T
======== ============ ===== ===== =====
``ws``   weights       K     N     M
``os``   outputs       M     N     K
``is``   inputs        K     M     N
======== ============ ===== ===== =====

The array runs F = ceil(S_R / R) ceil(S_C / C) folds, column folds outer and row folds
inner as SCALE-Sim orders them. Each fold is padded to a full R x C array, so every fold takes
the same tau cycles:

- ``ws`` and ``is``: tau = 2R + C + T - 2. R cycles shift the stationary tile in, T + C - 1
  stream the operand across the C columns, and R - 1 cycles of skew let the last row's sums out.
- ``os``: tau = R + C + T - 2. SCALE-Sim 3.0's code has no tile to preload: T + C - 1 cycles
  stream both operands in, plus R - 1 of skew. SCALE-Sim's analytical model (Samajdar et al.,
  "A Systematic Methodology for Characterizing Scalability of DNN Accelerators using
  SCALE-Sim", ISPASS 2020) uses 2R + C + T - 2 for every dataflow, R cycles per fold more. This
  module follows the code, so its cycles equal the numbers SCALE-Sim reports.

Cycles are counted as SCALE-Sim's COMPUTE_REPORT column "Total Cycles" counts them. SCALE-Sim
gives each cycle one row of its demand matrices, F tau rows numbered from 0. It reports the
number of the row in which the last output is written, so F tau - 1 cycles when nothing stalls,
plus the stall cycles.

Memory
------
With a DRAM bandwidth of B words per cycle, the operands reach the array through a
double-buffered SRAM: while fold f computes from one half, the operands of fold f + 1 load into
the other, which is free once fold f - 1 has finished. Fold f needs the words of its
stationary tile and of its streamed operand, r_f c_f + r_f T for ``ws`` and ``is`` and
r_f T + c_f T for ``os`` (r_f x c_f is the used part of the array), and loads them in
L_f = ceil(words_f / B) cycles. Nothing is reused between folds. Fold 0 loads before the array
starts, in `GemmRun.prefetch_cycles`, which the cycles leave out as SCALE-Sim's "Total Cycles"
leave out its prefetch. A fold whose operands have not arrived when the previous fold ends
stalls the array. The outputs drain to a separate buffer and are not modelled. This is a
simpler memory model than SCALE-Sim's: its stall counts are compared, not matched.

`estimate_gemm` gives the closed form

    cycles = max(F tau, L_1 + ... + L_(F-1) + tau) - 1,

a lower bound of `simulate_gemm`'s cycles that equals them when no fold stalls (every L_f <=
tau) and when the loads of folds 1 .. F-1 are all the same length.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from sim.config import JIT_OPTIONS
from sim.design import DATAFLOWS, Design
from sim.timing import MAX_STEPPED_FOLDS

__all__ = ["GemmRun", "estimate_gemm", "simulate_gemm", "warm_up"]

_MAX_ACC_BITS = 32
_MAX_CYCLES = 2**62


@dataclass(frozen=True)
class GemmRun:
    """The outcome of one GEMM on a systolic array: outputs (when data was given) and timing.

    Attributes
    ----------
    dataflow : {"ws", "os", "is"}
        The design's dataflow.
    m, n, k : int
        GEMM sizes: an M x K input times K x N weights.
    out : numpy.ndarray or None
        int32 ``[M, N]`` outputs; ``None`` when no data was given.
    cycles : int
        Cycles in the convention of SCALE-Sim's "Total Cycles": ``compute_cycles +
        stall_cycles``.
    compute_cycles : int
        Cycles without stalls, F tau - 1.
    stall_cycles : int
        Cycles the array waits for operands from DRAM (0 without a bandwidth).
    prefetch_cycles : int
        Cycles to load fold 0's operands before the array starts; not part of ``cycles``.
    folds : int
        Folds F = ``row_folds * col_folds``.
    row_folds, col_folds : int
        ceil(S_R / R) and ceil(S_C / C).
    fold_cycles : int
        Cycles tau of one fold.
    dram_words : int
        Operand words read from DRAM over the run, fold 0 included (0 without a bandwidth).
    utilization : float
        M N K multiply-accumulates over ``rows * cols * cycles`` (SCALE-Sim's "Overall Util %"
        divided by 100); ``cycles`` is taken as at least 1.
    time_s : float
        ``cycles`` at the design's clock.
    """

    dataflow: str
    m: int
    n: int
    k: int
    out: np.ndarray | None = field(repr=False)
    cycles: int
    compute_cycles: int
    stall_cycles: int
    prefetch_cycles: int
    folds: int
    row_folds: int
    col_folds: int
    fold_cycles: int
    dram_words: int
    utilization: float
    time_s: float


def _fold_model(dataflow: str, rows: int, cols: int, m: int, n: int, k: int):
    """Return ``(S_R, S_C, T, tau)`` for a GEMM, the plain formulas of the module docstring."""
    if dataflow == "ws":
        spatial_rows, spatial_cols, temporal = k, n, m
    elif dataflow == "os":
        spatial_rows, spatial_cols, temporal = m, n, k
    else:
        spatial_rows, spatial_cols, temporal = k, m, n
    # The os fold has no stationary tile to shift in, so it is R cycles shorter (SCALE-Sim 3.0).
    preload = 0 if dataflow == "os" else rows
    tau = preload + rows + cols + temporal - 2
    return spatial_rows, spatial_cols, temporal, tau


_DATAFLOW_CODES = {name: code for code, name in enumerate(DATAFLOWS)}


@njit(**JIT_OPTIONS)
def _fold_words(dataflow, used_rows, used_cols, temporal):
    """Return the operand words one fold loads from DRAM (see the module docstring)."""
    if dataflow == 1:  # os: an M-tile of inputs and an N-tile of weights, both T long
        return used_rows * temporal + used_cols * temporal
    # ws and is: the stationary R x C tile and the T-long streamed operand of its rows
    return used_rows * used_cols + used_rows * temporal


@njit(**JIT_OPTIONS)
def _schedule(dataflow, rows, cols, spatial_rows, spatial_cols, temporal, tau, bandwidth):
    """Step the double-buffered fold schedule; return (end, prefetch, dram_words).

    ``end`` is the cycle at which the last fold finishes, counted from the start of fold 0;
    ``bandwidth`` <= 0 means operands are always on chip.
    """
    row_folds = (spatial_rows + rows - 1) // rows
    col_folds = (spatial_cols + cols - 1) // cols
    previous_end = 0  # compute end of fold f - 1
    older_end = 0  # compute end of fold f - 2, when its SRAM half becomes free
    load_end = 0
    prefetch = 0
    words_total = 0
    f = 0
    for fc in range(col_folds):
        used_cols = min(cols, spatial_cols - fc * cols)
        for fr in range(row_folds):
            used_rows = min(rows, spatial_rows - fr * rows)
            load = 0
            if bandwidth > 0.0:
                words = _fold_words(dataflow, used_rows, used_cols, temporal)
                words_total += words
                load = int(math.ceil(words / bandwidth))
            if f == 0:
                prefetch = load
                start = 0
            else:
                load_start = load_end if load_end > older_end else older_end
                load_end = load_start + load
                start = previous_end if previous_end > load_end else load_end
            older_end = previous_end
            previous_end = start + tau
            f += 1
    return previous_end, prefetch, words_total


# Loop-order rules of `_gemm_folds`. Both orders of a dataflow give the same int32 sums, so the
# rules change only the speed. They are the crossovers of best-of-3 timings on a 2-core AMD EPYC
# with AVX-512, for 1024 x 1024 operands on arrays of 8 x 8 to 128 x 128.
_WS_STREAM_MIN_M_PER_COL = 4
"""``ws`` streams M innermost when M >= this times ``cols``, else runs `_fold_rows`."""
_OS_DOT_MIN_M_PER_COL = 0.5
"""``os`` sums each output's dot product when M >= this times ``cols``, else runs `_fold_rows`."""
_TRANSPOSE_BLOCK = 16


@njit(**JIT_OPTIONS)
def _transpose(a):
    """Return a C-contiguous copy of ``a.T``, copied in square blocks that stay in cache."""
    size_0, size_1 = a.shape
    out = np.empty((size_1, size_0), dtype=a.dtype)
    for i0 in range(0, size_0, _TRANSPOSE_BLOCK):
        i1 = min(i0 + _TRANSPOSE_BLOCK, size_0)
        for j0 in range(0, size_1, _TRANSPOSE_BLOCK):
            j1 = min(j0 + _TRANSPOSE_BLOCK, size_1)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    out[j, i] = a[i, j]
    return out


# The fold bodies below index every innermost array from 0 on a 1-D row or slice. Numba cannot
# prove that a loop index starting at a variable such as k0 is non-negative, so it would add
# negative-index wraparound to each access, and LLVM would then not vectorize the loop.


@njit(**JIT_OPTIONS)
def _fold_rows(x, w, out, m0, m1, k0, k1, n0, n1):
    """Add x[m0:m1, k0:k1] @ w[k0:k1, n0:n1] into ``out``, one output row slice at a time.

    For each m and k, the slice out[m, n0:n1] gains x[m, k] w[k, n0:n1]: the vector loop runs
    along N, over whole rows for ``is`` (whose streamed dimension is N) and over the fold's
    columns for ``ws`` and ``os``.
    """
    width = n1 - n0
    for m in range(m0, m1):
        row = out[m, n0:n1]
        for k in range(k0, k1):
            activation = np.int32(x[m, k])
            weights = w[k, n0:n1]
            for t in range(width):
                row[t] += activation * np.int32(weights[t])


@njit(**JIT_OPTIONS)
def _fold_ws_streamed(x_t, w, out_t, k0, k1, n0, n1):
    """Add a ``ws`` fold into the transposed output ``out_t`` [N, M], M innermost.

    PE (k, n) keeps the weight w[k, n] while the M activations x[:, k], a row of ``x_t``,
    stream past it, and it adds, subtracts or skips each into out[:, n], a row of ``out_t``.
    """
    m_size = x_t.shape[1]
    for n in range(n0, n1):
        column = out_t[n]
        for k in range(k0, k1):
            weight = w[k, n]
            activations = x_t[k]
            # The caller has checked that the weights are in {-1, 0, 1}.
            if weight == 1:
                for t in range(m_size):
                    column[t] += np.int32(activations[t])
            elif weight == -1:
                for t in range(m_size):
                    column[t] -= np.int32(activations[t])


@njit(**JIT_OPTIONS)
def _fold_os_dot(x, w_t, out, m0, m1, n0, n1):
    """Write an ``os`` fold's outputs out[m0:m1, n0:n1], each a K-long dot product.

    PE (m, n) sums x[m, :] w[:, n] in a local int32 as K streams past it. Because ``w_t`` is w
    transposed, both operands are contiguous rows. The fold covers all of K, so its sums are the
    final outputs.
    """
    k_size = x.shape[1]
    for m in range(m0, m1):
        activations = x[m]
        for n in range(n0, n1):
            weights = w_t[n]
            partial = np.int32(0)
            for t in range(k_size):
                partial += np.int32(activations[t]) * np.int32(weights[t])
            out[m, n] = partial


@njit(**JIT_OPTIONS)
def _gemm_folds(x, w, dataflow, rows, cols):
    """Return out = x @ w as int32, accumulated fold by fold in the dataflow's fold order.

    ``x`` is ``[M, K]`` int8 and ``w`` is ``[K, N]`` int8 ternary codes, both C-contiguous.
    Column folds run outer and row folds inner, as `_schedule` steps them, and fold (fc, fr)
    covers the M, K and N ranges of its tile: the streamed dimension in full, the two mapped
    ones cut to R and C. Inside a fold the loop order is the faster one of two for the GEMM's
    shape (see `_WS_STREAM_MIN_M_PER_COL` and `_OS_DOT_MIN_M_PER_COL`). The caller has checked
    that K * 2**(act_bits - 1) fits int32, so every partial sum is exact in int32.
    """
    m_size, k_size = x.shape
    n_size = w.shape[1]
    if dataflow == 0:
        spatial_rows, spatial_cols = k_size, n_size
    elif dataflow == 1:
        spatial_rows, spatial_cols = m_size, n_size
    else:
        spatial_rows, spatial_cols = k_size, m_size
    ws_streamed = dataflow == 0 and m_size >= _WS_STREAM_MIN_M_PER_COL * cols
    os_dot = dataflow == 1 and m_size >= _OS_DOT_MIN_M_PER_COL * cols

    # The streamed ws order accumulates into a transposed out, and the os dot products read a
    # transposed w. An order that does not need a transposed array gets an empty one.
    if ws_streamed:
        x_t = _transpose(x)
        out = np.zeros((n_size, m_size), dtype=np.int32)
    else:
        x_t = np.empty((0, 0), dtype=np.int8)
        out = np.zeros((m_size, n_size), dtype=np.int32)
    w_t = _transpose(w) if os_dot else np.empty((0, 0), dtype=np.int8)

    for c0 in range(0, spatial_cols, cols):
        c1 = min(c0 + cols, spatial_cols)
        for r0 in range(0, spatial_rows, rows):
            r1 = min(r0 + rows, spatial_rows)
            if ws_streamed:
                _fold_ws_streamed(x_t, w, out, r0, r1, c0, c1)
            elif dataflow == 0:
                _fold_rows(x, w, out, 0, m_size, r0, r1, c0, c1)
            elif os_dot:
                _fold_os_dot(x, w_t, out, r0, r1, c0, c1)
            elif dataflow == 1:
                _fold_rows(x, w, out, r0, r1, 0, k_size, c0, c1)
            else:
                _fold_rows(x, w, out, c0, c1, r0, r1, 0, n_size)
    if ws_streamed:
        return _transpose(out)
    return out


def _check_gemm(design, m, n, k, bandwidth):
    if not isinstance(design, Design):
        raise TypeError(f"design must be a sim.Design, got {type(design).__name__}")
    if design.array != "systolic":
        raise ValueError(
            f"GEMMs run on Design.array = 'systolic', got {design.array!r}: "
            "set array=systolic with rows, cols and dataflow"
        )
    if design.datapath != "ternary":
        raise NotImplementedError(
            f"Design.datapath {design.datapath!r} on a systolic array is not implemented; "
            "implemented: ternary"
        )

    for name, value in (("m", m), ("n", n), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"GEMM {name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"GEMM {name} must be >= 1, got {value}")

    needed = design.min_accumulator_bits(int(k))
    width = design.accumulator_bits(int(k))
    if needed > _MAX_ACC_BITS:
        raise ValueError(
            f"K = {k} needs a {needed}-bit accumulator at act_bits = {design.act_bits}; "
            f"the maximum is {_MAX_ACC_BITS}"
        )
    if width < needed:
        raise ValueError(
            f"Design.acc_bits = {width} can overflow for K = {k} at act_bits = "
            f"{design.act_bits}: a dot product needs {needed} bits (act_bits + K.bit_length())"
        )

    # The engine counts cycles in int64, so a run whose cycles could pass 2**62 is rejected
    # here, where Python's integers cannot overflow.
    spatial_rows, spatial_cols, temporal, tau = _fold_model(
        design.dataflow, design.rows, design.cols, int(m), int(n), int(k)
    )
    folds = -(-spatial_rows // design.rows) * -(-spatial_cols // design.cols)
    if folds * tau >= _MAX_CYCLES:
        raise ValueError(
            f"GEMM {m} x {n} x {k} takes about {folds * tau:.3e} cycles on a "
            f"{design.rows} x {design.cols} array, beyond the simulator's limit of 2**62"
        )

    if bandwidth is None:
        return 0.0
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, int | float):
        raise TypeError(
            f"bandwidth_words_per_cycle must be a number or None, got "
            f"{type(bandwidth).__name__} {bandwidth!r}"
        )
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth_words_per_cycle must be positive and finite, got {bandwidth}")
    words = folds * (design.rows * design.cols + (design.rows + design.cols) * temporal)
    if words / bandwidth + folds * tau >= _MAX_CYCLES:
        raise ValueError(
            f"bandwidth_words_per_cycle = {bandwidth} makes GEMM {m} x {n} x {k} wait about "
            f"{words / bandwidth:.3e} cycles for DRAM, beyond the simulator's limit of 2**62"
        )
    return float(bandwidth)


def _check_operands(design, m, n, k, x_q, w_q):
    if (x_q is None) != (w_q is None):
        raise ValueError("x_q and w_q must be given together, or neither for timing only")
    for name, array, shape in (("x_q", x_q, (m, k)), ("w_q", w_q, (k, n))):
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"{name} must be a numpy.ndarray, got {type(array).__name__} "
                "(convert a torch tensor with .numpy())"
            )
        if array.dtype != np.int8:
            raise TypeError(f"{name} must have dtype int8, got {array.dtype}")
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {list(shape)}, got {list(array.shape)}")
    bad = (w_q != 0) & (w_q != 1) & (w_q != -1)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"w_q must hold ternary codes in {{-1, 0, 1}}, found {w_q[index]} at index {index}"
        )
    # int8 holds every 8-bit code; narrower activations need a range check.
    if design.act_bits < 8:
        high = 2 ** (design.act_bits - 1) - 1
        low_value, high_value = int(x_q.min()), int(x_q.max())
        if low_value < -high - 1 or high_value > high:
            raise ValueError(
                f"x_q must hold {design.act_bits}-bit codes in [{-high - 1}, {high}], found "
                f"values in [{low_value}, {high_value}]"
            )


def _make_run(design, m, n, k, out, end, prefetch, dram_words):
    spatial_rows, spatial_cols, _, tau = _fold_model(
        design.dataflow, design.rows, design.cols, m, n, k
    )
    row_folds = -(-spatial_rows // design.rows)
    col_folds = -(-spatial_cols // design.cols)
    folds = row_folds * col_folds
    cycles = int(end) - 1
    return GemmRun(
        dataflow=design.dataflow,
        m=m,
        n=n,
        k=k,
        out=out,
        cycles=cycles,
        compute_cycles=folds * tau - 1,
        stall_cycles=int(end) - folds * tau,
        prefetch_cycles=int(prefetch),
        folds=folds,
        row_folds=row_folds,
        col_folds=col_folds,
        fold_cycles=tau,
        dram_words=int(dram_words),
        utilization=m * n * k / (design.rows * design.cols * max(cycles, 1)),
        time_s=cycles / design.clock_hz,
    )


def simulate_gemm(
    design: Design,
    m: int,
    n: int,
    k: int,
    x_q: np.ndarray | None = None,
    w_q: np.ndarray | None = None,
    bandwidth_words_per_cycle: float | None = None,
) -> GemmRun:
    """Run an M x K by K x N GEMM on the design's systolic array, fold by fold.

    The engine steps the double-buffered fold schedule of the module docstring and, when data
    is given, computes the outputs tile by tile in the same fold order.

    Parameters
    ----------
    design : Design
        A ``systolic`` design with the ``ternary`` datapath; ``rows``, ``cols`` and
        ``dataflow`` set the array.
    m, n, k : int
        GEMM sizes in SCALE-Sim's convention: an M x K input times K x N weights.
    x_q : numpy.ndarray or None
        int8 activation codes ``[M, K]`` within the design's ``act_bits`` range.
    w_q : numpy.ndarray or None
        int8 ternary weight codes ``[K, N]`` in {-1, 0, 1}; a layer's ``[N, K]`` weights
        transposed. Give both ``x_q`` and ``w_q``, or neither for timing only.
    bandwidth_words_per_cycle : float or None
        DRAM bandwidth into the operand SRAM, in words per cycle. ``None`` keeps every operand
        on chip, so nothing stalls (SCALE-Sim's bandwidth-estimation mode, ``CALC``).

    Returns
    -------
    GemmRun
        ``out`` is int32 ``[M, N]``, equal to ``kernels.ternary_matmul(x_q, w_q.T)``, or
        ``None`` for timing only.

    Raises
    ------
    TypeError
        If ``design`` is not a `Design`, a size is not an int, the bandwidth is not a number,
        or ``x_q`` or ``w_q`` is not an int8 numpy array.
    ValueError
        If the design is not systolic, a size is below 1, the accumulator can overflow for K,
        the bandwidth is not positive and finite, only one of ``x_q`` and ``w_q`` is given,
        their shapes do not match M, N and K, ``w_q`` is not ternary, or ``x_q`` holds codes
        outside ``act_bits``.
    NotImplementedError
        If the design's datapath is not ``ternary``.
    """
    bandwidth = _check_gemm(design, m, n, k, bandwidth_words_per_cycle)
    m, n, k = int(m), int(n), int(k)
    spatial_rows, spatial_cols, _, _ = _fold_model(
        design.dataflow, design.rows, design.cols, m, n, k
    )
    folds = -(-spatial_rows // design.rows) * -(-spatial_cols // design.cols)
    if folds > MAX_STEPPED_FOLDS:
        raise ValueError(
            f"GEMM {m} x {n} x {k} has {folds} folds on a {design.rows} x {design.cols} array, "
            f"more than the {MAX_STEPPED_FOLDS} that simulate_gemm steps one by one; use a "
            "larger array or estimate_gemm"
        )
    code = _DATAFLOW_CODES[design.dataflow]
    out = None
    if x_q is not None or w_q is not None:
        _check_operands(design, m, n, k, x_q, w_q)
        out = _gemm_folds(
            np.ascontiguousarray(x_q), np.ascontiguousarray(w_q), code, design.rows, design.cols
        )
    spatial_rows, spatial_cols, temporal, tau = _fold_model(
        design.dataflow, design.rows, design.cols, m, n, k
    )
    end, prefetch, dram_words = _schedule(
        code, design.rows, design.cols, spatial_rows, spatial_cols, temporal, tau, bandwidth
    )
    return _make_run(design, m, n, k, out, end, prefetch, dram_words)


def estimate_gemm(
    design: Design, m: int, n: int, k: int, bandwidth_words_per_cycle: float | None = None
) -> GemmRun:
    """Model an M x K by K x N GEMM on the design's systolic array in closed form.

    The cycles are max(F tau, L_1 + ... + L_(F-1) + tau) - 1 (see the module docstring): equal
    to `simulate_gemm`'s when no fold stalls or all loads after fold 0 take equally long, and a
    lower bound otherwise. The loads are summed over the at most four distinct fold shapes.

    Parameters
    ----------
    design, m, n, k, bandwidth_words_per_cycle
        As for `simulate_gemm`.

    Returns
    -------
    GemmRun
        With ``out=None``.

    Raises
    ------
    TypeError, ValueError, NotImplementedError
        As for `simulate_gemm`, for the design, sizes and bandwidth.
    """
    bandwidth = _check_gemm(design, m, n, k, bandwidth_words_per_cycle)
    m, n, k = int(m), int(n), int(k)
    rows, cols = design.rows, design.cols
    spatial_rows, spatial_cols, temporal, tau = _fold_model(design.dataflow, rows, cols, m, n, k)
    row_folds = -(-spatial_rows // rows)
    col_folds = -(-spatial_cols // cols)
    folds = row_folds * col_folds
    end = folds * tau
    prefetch = 0
    dram_words = 0
    if bandwidth > 0.0:
        code = _DATAFLOW_CODES[design.dataflow]
        # Fold shapes: full or remainder along each side, with how many folds have each.
        row_shapes = _side_shapes(spatial_rows, rows)
        col_shapes = _side_shapes(spatial_cols, cols)
        loads = 0
        for used_rows, row_count in row_shapes:
            for used_cols, col_count in col_shapes:
                words = int(_fold_words(code, used_rows, used_cols, temporal))
                count = row_count * col_count
                dram_words += words * count
                loads += math.ceil(words / bandwidth) * count
        # Fold 0 is the top-left fold, full-sized along each side unless that side has a
        # single, partial fold.
        first_words = int(
            _fold_words(code, min(rows, spatial_rows), min(cols, spatial_cols), temporal)
        )
        prefetch = math.ceil(first_words / bandwidth)
        end = max(end, loads - prefetch + tau)
    return _make_run(design, m, n, k, None, end, prefetch, dram_words)


def _side_shapes(size: int, tile: int) -> list[tuple[int, int]]:
    full, remainder = divmod(size, tile)
    shapes = [(tile, full)] if full else []
    if remainder:
        shapes.append((remainder, 1))
    return shapes


def warm_up() -> None:
    """Compile (or load from the cache) the systolic engine's kernels."""
    one = np.zeros((1, 1), dtype=np.int8)
    for code in range(len(DATAFLOWS)):
        _gemm_folds(one, one, code, 1, 1)
        _schedule(code, 1, 1, 1, 1, 1, 1, 1.0)
