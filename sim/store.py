"""The on-disk store of exploration results: one SQLite file, one row per evaluated design.

Each row is keyed by `design_key`, a SHA-256 hash of the evaluator version, the resolved design
(`Design.to_dict`) and the workload (model, board and phase settings), written as canonical
JSON. The key does not depend on the process, the Python hash seed or the order of a sweep, so a
sweep that runs again finds every row it already has.

Crash safety: the file runs in SQLite's write-ahead-log mode and every batch of rows is one
transaction. A process killed at any point, even with SIGKILL, leaves the file with every batch
committed before the kill and none of the batch in flight; SQLite rolls the partial write back
when the file is next opened. With ``synchronous=NORMAL`` a committed batch survives a process
crash; only a power loss can drop the last batches, and it still cannot corrupt the file.

Compatibility: the file records its `STORE_VERSION` (the table layout) and the evaluator that
produced the rows. Opening a file written by another version of either is rejected with a
`ValueError`, so that rows computed under different formulas are never mixed.
"""

import csv
import hashlib
import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["COLUMNS", "STORE_FORMAT", "STORE_VERSION", "ResultStore", "design_key"]

STORE_FORMAT = "onebit-explore"
"""The ``format`` entry of a store's meta table, which marks a file as a onebit store."""

STORE_VERSION = 1
"""The version of the table layout; a file of another version is rejected."""

COLUMNS = (
    ("key", "TEXT"),
    ("workload", "TEXT"),
    ("model", "TEXT"),
    ("board", "TEXT"),
    ("spec", "TEXT"),
    ("datapath", "TEXT"),
    ("pe", "INTEGER"),
    ("simd", "INTEGER"),
    ("act_bits", "INTEGER"),
    ("acc_bits", "INTEGER"),
    ("weight_format", "TEXT"),
    ("weight_store", "TEXT"),
    ("zero_skip", "INTEGER"),
    ("clock_mhz", "REAL"),
    ("runs", "INTEGER"),
    ("fits", "INTEGER"),
    ("reasons", "TEXT"),
    ("decode_cycles", "INTEGER"),
    ("decode_accelerator_time_s", "REAL"),
    ("decode_host_time_s", "REAL"),
    ("decode_time_s", "REAL"),
    ("decode_tokens_per_s", "REAL"),
    ("decode_energy_j_per_token", "REAL"),
    ("decode_dram_bytes", "INTEGER"),
    ("prefill_tokens", "INTEGER"),
    ("prefill_cycles", "INTEGER"),
    ("prefill_time_s", "REAL"),
    ("prefill_tokens_per_s", "REAL"),
    ("prefill_energy_j_per_token", "REAL"),
    ("lut", "INTEGER"),
    ("ff", "INTEGER"),
    ("dsp", "INTEGER"),
    ("onchip_bytes", "INTEGER"),
    ("dram_bytes", "INTEGER"),
)
"""The columns of a result row, with their SQLite types.

``key`` is `design_key`, ``workload`` the hash of the workload alone. ``acc_bits`` is NULL
where the design derives its accumulator width. ``runs`` is 0 where PE or SIMD does not divide
a layer (the timing columns are then NULL). ``fits`` is 1 where the design runs and every
resource is within the board's capacity; otherwise ``reasons`` lists the failed constraints,
comma-separated (``tiling``, ``lut``, ``ff``, ``dsp``, ``onchip_bytes``, ``dram_bytes``). The
resource columns are the larger need of the two phases.
"""

_NAMES = tuple(name for name, _ in COLUMNS)
_TYPES = dict(COLUMNS)


def design_key(evaluator: str, design: dict, workload: dict) -> str:
    """Return the SHA-256 hex digest that identifies one design evaluated on one workload.

    Parameters
    ----------
    evaluator : str
        The evaluator version (see `sim.explore.EVALUATOR`).
    design : dict
        `Design.to_dict` of the design, with every default resolved.
    workload : dict
        The model, board and phase settings (`sim.explore.Workload.to_dict`).

    Notes
    -----
    The digest is taken over ``json.dumps({"evaluator": ..., "design": ..., "workload": ...},
    sort_keys=True, separators=(",", ":"))`` encoded as UTF-8.
    """
    text = json.dumps(
        {"evaluator": evaluator, "design": design, "workload": workload},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResultStore:
    """A SQLite file of exploration results, safe to kill at any time and to reopen.

    Parameters
    ----------
    path : str or Path
        The file; it is created with its tables when missing. ``":memory:"`` keeps the store
        in memory.
    evaluator : str
        The version of the evaluator whose rows this store holds; a file written by another
        evaluator is rejected.

    Raises
    ------
    ValueError
        If the file is not a SQLite database, not a onebit store, or was written with another
        `STORE_VERSION` or evaluator. The message names the file, both versions and the fix.
    """

    def __init__(self, path: "str | Path", *, evaluator: str) -> None:
        if not isinstance(evaluator, str) or not evaluator:
            raise TypeError(f"evaluator must be a non-empty str, got {evaluator!r}")
        self.path = str(path)
        self.evaluator = evaluator
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are opened explicitly, one per batch.
        self._connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._open()
        except sqlite3.DatabaseError as error:
            self._connection.close()
            raise ValueError(
                f"{self.path} is not a onebit result store (SQLite: {error}); choose another "
                "file or directory"
            ) from None
        except ValueError:
            self._connection.close()
            raise

    def _open(self) -> None:
        connection = self._connection
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            self._use_wal()
            self._create()
            return
        if "meta" not in tables:
            raise ValueError(
                f"{self.path} is a SQLite file but not a onebit result store (it has no meta "
                "table); choose another file or directory"
            )
        meta = dict(connection.execute("SELECT key, value FROM meta"))
        if meta.get("format") != STORE_FORMAT:
            raise ValueError(
                f"{self.path} is not a onebit result store (format {meta.get('format')!r}, "
                f"expected {STORE_FORMAT!r}); choose another file or directory"
            )
        if meta.get("store_version") != str(STORE_VERSION):
            raise ValueError(
                f"{self.path} was written with store version {meta.get('store_version')}, but "
                f"this onebit reads version {STORE_VERSION}; move the file away (or choose "
                "another output directory) to start a new store"
            )
        if meta.get("evaluator") != self.evaluator:
            raise ValueError(
                f"{self.path} holds results of evaluator {meta.get('evaluator')!r}, but this "
                f"onebit evaluates with {self.evaluator!r}; the two would not be comparable, so "
                "move the file away (or choose another output directory) to start a new store"
            )
        self._use_wal()

    def _use_wal(self) -> None:
        # Switching the journal mode writes the file header, so it happens only once the file
        # is known to be a store of ours (or empty): a rejected file is left byte for byte.
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")

    def _create(self) -> None:
        columns = ", ".join(
            f"{name} {kind} PRIMARY KEY" if name == "key" else f"{name} {kind}"
            for name, kind in COLUMNS
        )
        with self._transaction() as connection:
            connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            connection.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("format", STORE_FORMAT),
                    ("store_version", str(STORE_VERSION)),
                    ("evaluator", self.evaluator),
                ],
            )
            connection.execute(f"CREATE TABLE results ({columns})")
            connection.execute("CREATE INDEX results_workload ON results (workload)")

    def _transaction(self):
        return _Transaction(self._connection)

    def __len__(self) -> int:
        return self._connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; every committed batch is already on disk."""
        self._connection.close()

    def existing(self, keys: Iterable[str]) -> set[str]:
        """Return the subset of ``keys`` that the store holds."""
        wanted = set(keys)
        found = set()
        for (key,) in self._connection.execute("SELECT key FROM results"):
            if key in wanted:
                found.add(key)
        return found

    def insert(self, columns: dict) -> int:
        """Insert a batch of rows in one transaction and return how many were new.

        Parameters
        ----------
        columns : dict of str to sequence
            One sequence per name of `COLUMNS`, all of the same length. NaN floats are stored as
            NULL. A row whose key is already stored is skipped, so a batch can be retried.

        Raises
        ------
        ValueError
            If a column is missing or unknown, or the lengths differ.
        """
        missing = [name for name in _NAMES if name not in columns]
        unknown = [name for name in columns if name not in _TYPES]
        if missing or unknown:
            raise ValueError(
                f"a result batch must have exactly the store's columns: missing "
                f"{', '.join(missing) or 'none'}, unknown {', '.join(unknown) or 'none'}"
            )
        lengths = {name: len(columns[name]) for name in _NAMES}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"the columns of a result batch differ in length: {lengths}")
        converted = [_to_sql(columns[name], _TYPES[name]) for name in _NAMES]
        placeholders = ", ".join("?" for _ in _NAMES)
        with self._transaction() as connection:
            before = connection.total_changes
            connection.executemany(
                f"INSERT OR IGNORE INTO results ({', '.join(_NAMES)}) VALUES ({placeholders})",
                zip(*converted, strict=True),
            )
            return connection.total_changes - before

    def fetch(self, keys: Sequence[str]) -> dict:
        """Return the rows of ``keys``, in that order, as one numpy array per column.

        TEXT columns are object arrays, REAL columns float64 (NaN for NULL), INTEGER columns
        int64 with -1 for NULL (a derived ``acc_bits``, or the timing of a design that does not
        run).

        Raises
        ------
        KeyError
            If a key is not in the store.
        """
        connection = self._connection
        with self._transaction():
            connection.execute(
                "CREATE TEMP TABLE IF NOT EXISTS wanted (position INTEGER PRIMARY KEY, key TEXT)"
            )
            connection.execute("DELETE FROM wanted")
            connection.executemany(
                "INSERT INTO wanted (position, key) VALUES (?, ?)", enumerate(keys)
            )
            rows = connection.execute(
                f"SELECT {', '.join('r.' + name for name in _NAMES)} FROM wanted w "
                "JOIN results r ON r.key = w.key ORDER BY w.position"
            ).fetchall()
            connection.execute("DELETE FROM wanted")
        if len(rows) != len(keys):
            found = {row[0] for row in rows}
            absent = next(key for key in keys if key not in found)
            raise KeyError(f"design key {absent} is not in store {self.path}")
        return _to_arrays(rows)

    def export_csv(self, path: "str | Path", keys: Sequence[str] | None = None) -> Path:
        """Write the rows of ``keys`` (all rows when None) to a CSV file with a header line."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(_NAMES)
            writer.writerows(self._rows(keys))
        return path

    def export_parquet(self, path: "str | Path", keys: Sequence[str] | None = None) -> Path:
        """Write the rows of ``keys`` (all rows when None) to a Parquet file (needs pyarrow)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = self._rows(keys)
        kinds = {"TEXT": pa.string(), "INTEGER": pa.int64(), "REAL": pa.float64()}
        schema = pa.schema([(name, kinds[kind]) for name, kind in COLUMNS])
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in _NAMES]
        table = pa.Table.from_arrays(
            [
                pa.array(list(values), type=field.type)
                for values, field in zip(columns, schema, strict=True)
            ],
            schema=schema,
        )
        pq.write_table(table, path)
        return path

    def _rows(self, keys) -> list[tuple]:
        if keys is None:
            return self._connection.execute(
                f"SELECT {', '.join(_NAMES)} FROM results ORDER BY rowid"
            ).fetchall()
        arrays = self.fetch(keys)
        return [
            tuple(_from_array(arrays[name][index], _TYPES[name]) for name in _NAMES)
            for index in range(len(keys))
        ]


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` when the block raises."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self._connection.execute("BEGIN IMMEDIATE")
        return self._connection

    def __exit__(self, exc_type, exc, traceback) -> None:
        self._connection.execute("ROLLBACK" if exc_type else "COMMIT")


def _to_sql(values, kind: str) -> list:
    if isinstance(values, np.ndarray) and values.dtype != object:
        # tolist() turns numpy scalars into Python numbers in C, which a 100,000-row batch needs.
        if kind == "REAL":
            objects = values.astype(object)
            objects[np.isnan(values)] = None
            return objects.tolist()
        return values.tolist()
    if kind == "REAL":
        return [None if value is None or math.isnan(value) else float(value) for value in values]
    if kind == "INTEGER":
        return [None if value is None else int(value) for value in values]
    return [None if value is None else str(value) for value in values]


def _to_arrays(rows: list[tuple]) -> dict:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in _NAMES]
    arrays = {}
    for (name, kind), values in zip(COLUMNS, columns, strict=True):
        if kind == "REAL":
            arrays[name] = np.array(
                [np.nan if value is None else value for value in values], dtype=np.float64
            )
        elif kind == "INTEGER":
            arrays[name] = np.array(
                [-1 if value is None else value for value in values], dtype=np.int64
            )
        else:
            array = np.empty(len(values), dtype=object)
            array[:] = values
            arrays[name] = array
    return arrays


def _from_array(value, kind: str):
    if kind == "REAL":
        return None if np.isnan(value) else float(value)
    if kind == "INTEGER":
        return None if value == -1 else int(value)
    return value
