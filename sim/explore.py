"""Design-space exploration: sweep a `Space` for a model and a board, keep what fits, find the
Pareto front.

`explore` enumerates the designs of a space, evaluates each one with the vectorized analytical
model (`sim.evaluate_model`) on a `Workload` (one decode token at a context, and a prefill of N
prompt tokens), and stores every result in a `sim.store.ResultStore` keyed by `design_key`.
Designs already in the store are not evaluated again, so a sweep that was interrupted, even by
SIGKILL, resumes where it stopped.

A design is feasible when it runs every layer (PE and SIMD divide every N and K, see
`sim.Design.check_layer`) and its resources, the larger need of decode and prefill, are within
the board's capacity (`sim.fit_report`). Each infeasible design records the constraints it
fails. The objectives of the Pareto front are in `OBJECTIVES`: decode tokens/s (higher is
better), decode energy per token, prefill latency and LUTs (lower is better).

Evaluation runs in chunks on an executor (`sim.executors`): in this process, in local worker
processes, or on a Dask cluster. Results do not depend on the executor, because each chunk is
evaluated by the same function and the final table is read back from the store in the order of
the space.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim import analytical
from sim.analytical import DesignTable, evaluate_model, get_host
from sim.boards import get_board
from sim.design import Design
from sim.executors import make_executor
from sim.models import get_model
from sim.resources import RESOURCE_NAMES
from sim.space import Space, default_space
from sim.store import ResultStore, design_key

__all__ = [
    "CONSTRAINTS",
    "EVALUATOR",
    "OBJECTIVES",
    "ExploreResult",
    "NoFeasibleDesignError",
    "Workload",
    "evaluate_designs",
    "explore",
    "pareto_front",
]

EVALUATOR = "analytical-4"
"""Version of the evaluation that `explore` stores. Change it whenever the analytical model,
the resource model or the catalogues change a stored number, so that old stores are rejected
instead of mixed with new rows."""

OBJECTIVES = {
    "decode_tokens_per_s": "max",
    "decode_energy_j_per_token": "min",
    "prefill_time_s": "min",
    "lut": "min",
}
"""The objectives of the Pareto front: result column to ``"max"`` or ``"min"``."""

CONSTRAINTS = {
    "tiling": "PE and SIMD dividing every layer's N and K",
    "lut": "LUTs",
    "ff": "flip-flops",
    "dsp": "DSP slices",
    "onchip_bytes": "on-chip memory",
    "dram_bytes": "DRAM capacity",
}
"""The constraints a design can fail, by the name `ExploreResult.rejected` uses."""

_DEFAULT_CHUNK = 4096


@dataclass(frozen=True)
class Workload:
    """What every design of an exploration is evaluated on.

    Parameters
    ----------
    model : str
        A model of the catalogue (`sim.MODELS`).
    board : str
        A board of the catalogue (`sim.BOARDS`).
    context : int or None
        KV-cache length of the decode token; None takes the model's ``max_context``.
    prefill_tokens : int
        Prompt tokens of the prefill phase.
    host : str or None
        Host processor (`sim.HOSTS`); None takes the board's default.
    nonzero_fraction : float
        Share of nonzero weights, which sets the energy of zero-skipping designs.

    Raises
    ------
    TypeError, ValueError
        If a field is invalid; the message names it.
    """

    model: str
    board: str
    context: int | None = None
    prefill_tokens: int = 128
    host: str | None = None
    nonzero_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.model, str):
            raise TypeError(f"Workload.model must be a model name, got {self.model!r}")
        if not isinstance(self.board, str):
            raise TypeError(f"Workload.board must be a board name, got {self.board!r}")
        get_model(self.model)
        get_board(self.board)
        if self.host is not None:
            get_host(self.host)
        fraction = self.nonzero_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise TypeError(f"Workload.nonzero_fraction must be a number, got {fraction!r}")
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"Workload.nonzero_fraction must be between 0 and 1, got {fraction}")
        object.__setattr__(self, "nonzero_fraction", float(fraction))
        # The same checks as the phases that evaluate_model costs, done once up front.
        analytical._check_phase(self.model, "decode", 1, self.context)
        analytical._check_phase(self.model, "prefill", self.prefill_tokens, None)

    def to_dict(self) -> dict:
        """Return the workload as a JSON-ready dict."""
        return dataclasses.asdict(self)


class NoFeasibleDesignError(ValueError):
    """No design of the space fits: the message names the constraints that removed them.

    Attributes
    ----------
    result : ExploreResult
        The exploration, with every design stored and ``feasible == 0``.
    """

    def __init__(self, message: str, result: "ExploreResult") -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True, eq=False)
class ExploreResult:
    """The outcome of `explore`.

    Attributes
    ----------
    workload : Workload
        What the designs were evaluated on.
    space : Space
        The space that was swept.
    store_path : str
        The store the results live in.
    executor : str
        ``serial``, ``processes`` or ``dask``.
    designs_total : int
        Distinct valid designs of the space.
    designs_invalid : int
        Combinations that `Design` rejects (see ``invalid_examples``).
    invalid_examples : tuple of str
        The first few rejection messages.
    designs_evaluated_now : int
        Designs evaluated by this call.
    designs_reused : int
        Designs found in the store.
    table : dict of str to numpy.ndarray
        One row per design, in the order of the space, with the columns of `sim.store.COLUMNS`.
    pareto : numpy.ndarray
        Row indices of the Pareto-optimal feasible designs, fastest decode first.
    rejected : dict of str to int
        For each name of `CONSTRAINTS`, how many designs fail it (a design can fail several).
    """

    workload: Workload
    space: Space
    store_path: str
    executor: str
    designs_total: int
    designs_invalid: int
    invalid_examples: tuple
    designs_evaluated_now: int
    designs_reused: int
    table: dict
    pareto: np.ndarray
    rejected: dict

    @property
    def feasible(self) -> int:
        """The number of feasible designs."""
        return int(np.count_nonzero(self.table["fits"]))

    def row(self, index: int) -> dict:
        """Return row ``index`` of the table as a dict of Python values."""
        return {name: _python(values[index]) for name, values in self.table.items()}

    def design(self, index: int) -> Design:
        """Return the `Design` of row ``index``."""
        return Design.from_spec(self.table["spec"][index], self.workload.board)

    def best(self, objective: str = "decode_tokens_per_s") -> int:
        """Return the row index of the feasible design best at ``objective``.

        Ties go to the fewest LUTs, then to the earliest design of the space.

        Raises
        ------
        ValueError
            If ``objective`` is not one of `OBJECTIVES`, or no design is feasible.
        """
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
        feasible = np.flatnonzero(self.table["fits"])
        if feasible.size == 0:
            raise ValueError("no feasible design to choose from")
        values = self.table[objective][feasible]
        if OBJECTIVES[objective] == "max":
            values = -values
        order = np.lexsort((feasible, self.table["lut"][feasible], values))
        return int(feasible[order[0]])

    def pareto_groups(self) -> list[list[int]]:
        """Return the Pareto-optimal rows grouped by equal objectives, fastest decode first.

        Designs that differ only in fields without effect on the objectives share a group: for
        example ``zero_skip`` on and off at a nonzero fraction of 1, where skipping saves nothing.
        """
        groups: dict[tuple, list[int]] = {}
        for index in self.pareto:
            key = tuple(float(self.table[name][index]) for name in OBJECTIVES)
            groups.setdefault(key, []).append(int(index))
        return list(groups.values())

    def pareto_rows(self) -> list[dict]:
        """Return the Pareto-optimal designs as dicts: design, spec, objectives, resources."""
        return [self.entry(index) for index in self.pareto]

    def entry(self, index: int) -> dict:
        """Return row ``index`` as a dict: design, spec, objectives, resources."""
        row = self.row(index)
        return {
            "spec": row["spec"],
            "design": self.design(index).to_dict(),
            "objectives": {name: row[name] for name in OBJECTIVES},
            "resources": {name: row[name] for name in RESOURCE_NAMES},
        }

    def summary(self) -> dict:
        """Return the JSON-ready summary that ``onebit explore --json`` prints."""
        return {
            "model": self.workload.model,
            "board": self.workload.board,
            "workload": self.workload.to_dict(),
            "space": self.space.to_dict(),
            "store": self.store_path,
            "executor": self.executor,
            "evaluator": EVALUATOR,
            "designs_total": self.designs_total,
            "designs_invalid": self.designs_invalid,
            "designs_evaluated_now": self.designs_evaluated_now,
            "designs_reused": self.designs_reused,
            "feasible": self.feasible,
            "rejected": dict(self.rejected),
            "objectives": dict(OBJECTIVES),
            "pareto": self.pareto_rows(),
        }


def evaluate_designs(workload: dict, designs: list[dict]) -> dict:
    """Evaluate designs on a workload and return the result columns of `sim.store.COLUMNS`.

    This is the task that executors run, so it takes and returns plain data.

    Parameters
    ----------
    workload : dict
        `Workload.to_dict`.
    designs : list of dict
        `Design.to_dict` of each design (board included).

    Returns
    -------
    dict of str to numpy.ndarray or list
        One entry per design in every column, in the order of ``designs``.
    """
    workload = Workload(**workload)
    board = get_board(workload.board)
    objects = [
        Design(board=board, **{key: value for key, value in fields.items() if key != "board"})
        for fields in designs
    ]
    table = DesignTable.from_designs(objects)
    common = {"host": workload.host, "nonzero_fraction": workload.nonzero_fraction}
    decode = evaluate_model(table, workload.model, "decode", 1, workload.context, **common)
    prefill = evaluate_model(
        table, workload.model, "prefill", workload.prefill_tokens, None, **common
    )

    runs = decode["runs"] & prefill["runs"]
    need = {name: np.maximum(decode[name], prefill[name]) for name in RESOURCE_NAMES}
    over = {"tiling": ~runs}
    for name in RESOURCE_NAMES:
        over[name] = need[name] > getattr(board, name)
    fits = ~np.logical_or.reduce(list(over.values()))
    failed = np.zeros(len(objects), dtype=object)
    failed[:] = ""
    for name in CONSTRAINTS:
        mask = over[name]
        failed[mask] = failed[mask] + np.where(failed[mask] == "", name, "," + name)

    def timing(values):
        return np.where(runs, values, np.nan)

    def count(values):
        return np.where(runs, values, -1)

    workload_key = design_key(EVALUATOR, {}, workload.to_dict())
    return {
        "key": [design_key(EVALUATOR, fields, workload.to_dict()) for fields in designs],
        "workload": [workload_key] * len(objects),
        "model": [workload.model] * len(objects),
        "board": [workload.board] * len(objects),
        "spec": [design.to_spec() for design in objects],
        "datapath": [design.datapath for design in objects],
        "pe": table.pe,
        "simd": table.simd,
        "act_bits": table.act_bits,
        "acc_bits": [design.acc_bits for design in objects],
        "weight_format": [design.weight_format for design in objects],
        "weight_store": [design.weight_store for design in objects],
        "zero_skip": table.zero_skip,
        "clock_mhz": np.array([design.clock_mhz for design in objects]),
        "runs": runs,
        "fits": fits,
        "reasons": failed.tolist(),
        "decode_cycles": count(decode["cycles"]),
        "decode_accelerator_time_s": timing(decode["accelerator_time_s"]),
        "decode_host_time_s": decode["host_time_s"],
        "decode_time_s": timing(decode["time_s"]),
        "decode_tokens_per_s": timing(decode["tokens_per_s"]),
        "decode_energy_j_per_token": timing(decode["energy_j_per_token"]),
        "decode_dram_bytes": count(decode["dram_bytes_read"]),
        "prefill_tokens": np.full(len(objects), workload.prefill_tokens),
        "prefill_cycles": count(prefill["cycles"]),
        "prefill_time_s": timing(prefill["time_s"]),
        "prefill_tokens_per_s": timing(prefill["tokens_per_s"]),
        "prefill_energy_j_per_token": timing(prefill["energy_j_per_token"]),
        **need,
    }


def pareto_front(values: np.ndarray, maximize) -> np.ndarray:
    """Return a boolean mask of the rows of ``values`` that no other row dominates.

    Row a dominates row b when a is at least as good in every column and better in one.
    Equal rows do not dominate each other, so all of them are kept.

    Parameters
    ----------
    values : numpy.ndarray
        Shape (n, d): n points, d objectives; no NaN.
    maximize : sequence of bool
        Per column, whether higher is better.

    Raises
    ------
    ValueError
        If ``values`` is not 2-D, contains NaN, or ``maximize`` has another length than d.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D array (points x objectives), got {values.ndim}-D")
    maximize = np.asarray(maximize, dtype=bool)
    if maximize.shape != (values.shape[1],):
        raise ValueError(
            f"maximize has {maximize.size} entries, but values has {values.shape[1]} columns"
        )
    if np.isnan(values).any():
        raise ValueError("values must not contain NaN")
    if values.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    points = np.where(maximize, -values, values)
    # np.unique sorts the distinct points lexicographically. A point can only be dominated by a
    # point that is lexicographically smaller, so one pass over the sorted points, testing each
    # against the front found so far, finds the whole front.
    distinct, inverse = np.unique(points, axis=0, return_inverse=True)
    front = np.empty_like(distinct)
    size = 0
    on_front = np.zeros(len(distinct), dtype=bool)
    for index, point in enumerate(distinct):
        current = front[:size]
        if size and np.any(np.all(current <= point, axis=1) & np.any(current < point, axis=1)):
            continue
        front[size] = point
        size += 1
        on_front[index] = True
    return on_front[inverse.reshape(-1)]


def explore(
    model: str,
    board: str,
    space: Space | None = None,
    *,
    store: "str | None" = None,
    workers: int = 1,
    scheduler: str | None = None,
    context: int | None = None,
    prefill_tokens: int = 128,
    host: str | None = None,
    nonzero_fraction: float = 1.0,
    chunk_size: int = _DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> ExploreResult:
    """Sweep ``space`` for ``model`` on ``board`` and return the feasible designs' Pareto front.

    Parameters
    ----------
    model, board : str
        Names from the catalogues (`sim.MODELS`, `sim.BOARDS`).
    space : Space or None
        The designs to sweep; None takes `sim.space.default_space` of the board.
    store : str or None
        Path of the SQLite result store (created when missing); None keeps the results in
        memory only.
    workers : int
        Local worker processes; 1 evaluates in this process.
    scheduler : str or None
        Address of a Dask scheduler that runs the evaluation instead of local processes.
    context, prefill_tokens, host, nonzero_fraction
        The `Workload`.
    chunk_size : int
        Designs per task and per store transaction.
    progress : callable or None
        Called as ``progress(done, total)`` after each stored chunk, with the designs evaluated
        so far by this call and the number this call has to evaluate.

    Returns
    -------
    ExploreResult

    Raises
    ------
    TypeError, ValueError
        If an argument is invalid; if the space requests the ``xnor`` datapath (every model of
        the catalogue has ternary weights); if no combination of the space is a valid design;
        or if the store is not compatible (see `sim.store.ResultStore`).
    NoFeasibleDesignError
        If no design fits; raised after every design is stored, and its message says which
        constraints removed the designs.
    OSError
        If the store cannot be written or the Dask scheduler cannot be reached.
    """
    workload = Workload(
        model=model,
        board=board,
        context=context,
        prefill_tokens=prefill_tokens,
        host=host,
        nonzero_fraction=nonzero_fraction,
    )
    if space is None:
        space = default_space(board)
    if not isinstance(space, Space):
        raise TypeError(f"space must be a sim.space.Space or None, got {type(space).__name__}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
    if "xnor" in space.axes.get("datapath", ()):
        raise ValueError(
            f"the space's datapath axis has 'xnor', which runs binary (±1) weights, but "
            f"{model} has ternary weights; remove xnor from the datapath axis"
        )

    designs, invalid = space.expand(board)
    if not designs:
        first = invalid[0][1] if invalid else "the space is empty"
        raise ValueError(
            f"no combination of the space is a valid design on {board}: all {len(invalid)} are "
            f"rejected by sim.Design, the first with: {first}"
        )
    workload_fields = workload.to_dict()
    keys, fields = [], []
    seen = set()
    for design in designs:
        entry = design.to_dict()
        key = design_key(EVALUATOR, entry, workload_fields)
        # Two combinations can resolve to one design (a field given as its default value).
        if key in seen:
            continue
        seen.add(key)
        keys.append(key)
        fields.append(entry)

    with ResultStore(":memory:" if store is None else store, evaluator=EVALUATOR) as results:
        have = results.existing(keys)
        missing = [index for index, key in enumerate(keys) if key not in have]
        chunks = [
            missing[start : start + chunk_size] for start in range(0, len(missing), chunk_size)
        ]
        tasks = [(workload_fields, [fields[index] for index in chunk]) for chunk in chunks]
        done = 0
        if progress is not None:
            progress(0, len(missing))
        with make_executor(workers, scheduler) as executor:
            for position, columns in executor.map_unordered(evaluate_designs, tasks):
                results.insert(columns)
                done += len(chunks[position])
                if progress is not None:
                    progress(done, len(missing))
            executor_name = executor.name
        table = results.fetch(keys)
        store_path = results.path

    rejected = {name: 0 for name in CONSTRAINTS}
    for reasons in table["reasons"]:
        if reasons:
            for name in reasons.split(","):
                rejected[name] += 1
    feasible = np.flatnonzero(table["fits"])
    if feasible.size:
        objectives = np.column_stack([table[name][feasible] for name in OBJECTIVES])
        maximize = [direction == "max" for direction in OBJECTIVES.values()]
        front = feasible[pareto_front(objectives, maximize)]
        order = np.lexsort((front, table["lut"][front], -table["decode_tokens_per_s"][front]))
        front = front[order]
    else:
        front = np.zeros(0, dtype=np.int64)
    result = ExploreResult(
        workload=workload,
        space=space,
        store_path=store_path,
        executor=executor_name,
        designs_total=len(keys),
        designs_invalid=len(invalid),
        invalid_examples=tuple(message for _, message in invalid[:3]),
        designs_evaluated_now=done,
        designs_reused=len(keys) - len(missing),
        table=table,
        pareto=front,
        rejected=rejected,
    )
    if not feasible.size:
        raise NoFeasibleDesignError(_no_feasible_message(result), result)
    return result


_HINTS = {
    "tiling": "choose pe and simd values that divide every layer's N and K",
    "lut": "try smaller pe or simd",
    "ff": "try smaller pe or simd",
    "dsp": "try smaller pe or simd",
    "onchip_bytes": "try weight_store=stream, or smaller pe or simd",
    "dram_bytes": "try weight_store=onchip or a board with more DRAM",
}


def _no_feasible_message(result: ExploreResult) -> str:
    total = result.designs_total
    workload = result.workload
    counts = sorted(result.rejected.items(), key=lambda item: -item[1])
    every = [name for name, count in counts if count == total]
    listing = ", ".join(f"{CONSTRAINTS[name]} ({name}) {count}" for name, count in counts if count)
    head = f"no design of the {total} in the space fits {workload.model} on {workload.board}"
    if every:
        labels = [f"{CONSTRAINTS[name]} ({name})" for name in every]
        names = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
        hints = "; ".join(dict.fromkeys(_HINTS[name] for name in every))
        return (
            f"{head}: {names} removed every design (designs removed per constraint: {listing}); "
            f"{hints}"
        )
    return (
        f"{head}: no single constraint removed every design, but together they did (designs "
        f"removed per constraint: {listing})"
    )


def _python(value):
    if isinstance(value, np.generic):
        return value.item()
    return value
