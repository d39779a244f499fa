import csv
import hashlib
import math
import re
import sqlite3
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from sim.store import COLUMNS, STORE_VERSION, ResultStore, design_key

NAMES = [name for name, _ in COLUMNS]


def make_rows(count, start=0):
    """A batch of ``count`` rows with distinct keys and a value of every kind."""
    columns = {}
    for name, kind in COLUMNS:
        if kind == "TEXT":
            columns[name] = [f"{name}-{start + index}" for index in range(count)]
        elif kind == "INTEGER":
            columns[name] = [start + index for index in range(count)]
        else:
            columns[name] = [0.5 * (start + index) for index in range(count)]
    columns["acc_bits"][0] = None
    columns["decode_time_s"][0] = float("nan")
    return columns


def test_design_key_is_sha256_of_canonical_json():
    design = {"pe": 16, "simd": 64, "board": "kv260", "zero_skip": False, "acc_bits": None}
    workload = {"model": "demo", "context": None}
    # Written out by hand: keys sorted, no spaces.
    text = (
        '{"design":{"acc_bits":null,"board":"kv260","pe":16,"simd":64,"zero_skip":false},'
        '"evaluator":"e1","workload":{"context":null,"model":"demo"}}'
    )
    assert design_key("e1", design, workload) == hashlib.sha256(text.encode()).hexdigest()
    assert design_key("e2", design, workload) != design_key("e1", design, workload)


def test_design_key_is_stable_across_processes():
    code = (
        "from sim.store import design_key; "
        "print(design_key('e1', {'pe': 4, 'datapath': 'ternary'}, {'model': 'demo'}))"
    )
    outputs = set()
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        )
        outputs.add(result.stdout.strip())
    assert outputs == {design_key("e1", {"pe": 4, "datapath": "ternary"}, {"model": "demo"})}


def test_insert_and_fetch_round_trip(tmp_path):
    with ResultStore(tmp_path / "results.sqlite", evaluator="e1") as store:
        rows = make_rows(5)
        assert store.insert(rows) == 5
        assert len(store) == 5
        keys = [rows["key"][index] for index in (3, 0, 4)]
        fetched = store.fetch(keys)
    assert list(fetched["key"]) == keys
    assert fetched["pe"].dtype == np.int64
    assert list(fetched["pe"]) == [3, 0, 4]
    assert list(fetched["acc_bits"]) == [3, -1, 4]
    assert math.isnan(fetched["decode_time_s"][1])
    assert fetched["decode_time_s"][0] == 1.5
    assert list(fetched["model"]) == ["model-3", "model-0", "model-4"]


def test_insert_numpy_columns(tmp_path):
    rows = make_rows(3)
    rows["clock_mhz"] = np.array([1.0, np.nan, 3.0])
    rows["fits"] = np.array([True, False, True])
    rows["lut"] = np.array([7, 8, 9], dtype=np.int64)
    with ResultStore(tmp_path / "r.sqlite", evaluator="e1") as store:
        store.insert(rows)
        fetched = store.fetch(rows["key"])
    assert np.array_equal(fetched["clock_mhz"], [1.0, np.nan, 3.0], equal_nan=True)
    assert list(fetched["fits"]) == [1, 0, 1]
    assert list(fetched["lut"]) == [7, 8, 9]


def test_insert_skips_stored_keys(tmp_path):
    with ResultStore(tmp_path / "r.sqlite", evaluator="e1") as store:
        store.insert(make_rows(4))
        assert store.insert(make_rows(6)) == 2
        assert len(store) == 6
        assert store.existing(["key-1", "key-5", "key-9"]) == {"key-1", "key-5"}


def test_reopen_keeps_rows(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultStore(path, evaluator="e1") as store:
        store.insert(make_rows(3))
    with ResultStore(path, evaluator="e1") as store:
        assert len(store) == 3
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_insert_rejects_bad_batches(tmp_path):
    with ResultStore(tmp_path / "r.sqlite", evaluator="e1") as store:
        rows = make_rows(2)
        del rows["lut"]
        rows["colour"] = ["red", "blue"]
        message = (
            "a result batch must have exactly the store's columns: missing lut, unknown colour"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            store.insert(rows)
        rows = make_rows(2)
        rows["pe"] = [1]
        with pytest.raises(ValueError, match="the columns of a result batch differ in length"):
            store.insert(rows)
        assert len(store) == 0


def test_fetch_missing_key(tmp_path):
    with ResultStore(tmp_path / "r.sqlite", evaluator="e1") as store:
        store.insert(make_rows(2))
        with pytest.raises(KeyError, match="design key absent is not in store"):
            store.fetch(["key-0", "absent"])


def test_other_evaluator_rejected(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path, evaluator="e1").close()
    message = (
        f"{path} holds results of evaluator 'e1', but this onebit evaluates with 'e2'; the two "
        "would not be comparable"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ResultStore(path, evaluator="e2")


def test_other_store_version_rejected(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path, evaluator="e1").close()
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE meta SET value = '0' WHERE key = 'store_version'")
    connection.close()
    message = (
        f"{path} was written with store version 0, but this onebit reads version "
        f"{STORE_VERSION}; move the file away"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        ResultStore(path, evaluator="e1")


def test_foreign_files_rejected(tmp_path):
    text_file = tmp_path / "notes.sqlite"
    text_file.write_text("not a database, just text that is long enough " * 40)
    with pytest.raises(ValueError, match=re.escape(f"{text_file} is not a onebit result store")):
        ResultStore(text_file, evaluator="e1")
    other = tmp_path / "other.sqlite"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE t (x)")
    connection.close()
    message = f"{other} is a SQLite file but not a onebit result store (it has no meta table)"
    with pytest.raises(ValueError, match=re.escape(message)):
        ResultStore(other, evaluator="e1")


def test_export_csv(tmp_path):
    with ResultStore(":memory:", evaluator="e1") as store:
        rows = make_rows(3)
        store.insert(rows)
        store.export_csv(tmp_path / "all.csv")
        store.export_csv(tmp_path / "some.csv", keys=["key-2"])
    with (tmp_path / "all.csv").open(newline="") as file:
        lines = list(csv.reader(file))
    assert lines[0] == NAMES
    assert [line[0] for line in lines[1:]] == ["key-0", "key-1", "key-2"]
    first = dict(zip(NAMES, lines[1], strict=True))
    assert first["acc_bits"] == ""
    assert first["decode_time_s"] == ""
    assert first["lut"] == "0"
    with (tmp_path / "some.csv").open(newline="") as file:
        lines = list(csv.reader(file))
    assert len(lines) == 2
    assert dict(zip(NAMES, lines[1], strict=True))["prefill_time_s"] == "1.0"


def test_export_parquet(tmp_path):
    with ResultStore(":memory:", evaluator="e1") as store:
        rows = make_rows(4)
        store.insert(rows)
        store.export_parquet(tmp_path / "all.parquet")
        store.export_parquet(tmp_path / "none.parquet", keys=[])
    table = pq.read_table(tmp_path / "all.parquet")
    assert table.column_names == NAMES
    data = table.to_pydict()
    assert data["key"] == rows["key"]
    assert data["acc_bits"] == [None, 1, 2, 3]
    assert data["decode_time_s"][0] is None
    assert data["clock_mhz"] == rows["clock_mhz"]
    assert pq.read_table(tmp_path / "none.parquet").num_rows == 0


def test_rejected_files_left_unchanged(tmp_path):
    foreign = tmp_path / "foreign.sqlite"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE users (name TEXT)")
    connection.execute("INSERT INTO users VALUES ('alice')")
    connection.commit()
    connection.close()
    before = foreign.read_bytes()
    with pytest.raises(ValueError, match="it has no meta table"):
        ResultStore(foreign, evaluator="e1")
    assert foreign.read_bytes() == before

    other_evaluator = tmp_path / "store.sqlite"
    with ResultStore(other_evaluator, evaluator="e1"):
        pass
    before = other_evaluator.read_bytes()
    with pytest.raises(ValueError, match="holds results of evaluator 'e1'"):
        ResultStore(other_evaluator, evaluator="e2")
    assert other_evaluator.read_bytes() == before
