"""The SQLite implementation of `Storage` (standard library): schema-versioned, append-only,
one record per commit.

Tables hold a few indexed columns for queries plus the full record as JSON. A record's key
is the hash of what produced it (docs/ARCHITECTURE.md, "Keys"), so a re-run finds what is already
there and never duplicates it: `put_*` is INSERT OR IGNORE and reports whether it wrote.
Runs are append-only event logs. Tables export to and import from Parquet or CSV.

The `accuracy` column of `evaluations` holds the evaluation's score, the value of its metric:
an accuracy, or a perplexity for perplexity tasks (the column kept its first name so that
existing stores and their exports stay readable).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.errors import InputError
from hwnas.store.protocol import Record
from hwnas.store.rows import PayloadError, decode_payload, record_problem, row_key, row_problem

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS measurements (
    key TEXT PRIMARY KEY, hw TEXT NOT NULL, model TEXT NOT NULL, kind TEXT NOT NULL,
    median_ms REAL, noisy INTEGER NOT NULL DEFAULT 0, payload TEXT NOT NULL,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS measurements_hw_model ON measurements (hw, model, kind);
CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, subnet TEXT NOT NULL, task TEXT NOT NULL,
    accuracy REAL, payload TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS evaluations_model_task ON evaluations (model, task);
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY, config TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS run_events (
    run TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (run, seq));
"""

TABLES = {
    "measurements": ("key", "hw", "model", "kind", "median_ms", "noisy", "payload", "created"),
    "evaluations": ("key", "model", "subnet", "task", "accuracy", "payload", "created"),
    "runs": ("name", "config", "created"),
    "run_events": ("run", "seq", "kind", "payload", "created"),
}


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        _check_writable(self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.OperationalError as e:
            if "readonly" in str(e) or "read-only" in str(e):
                raise InputError(_read_only(self.path)) from None
            raise InputError(f"store {self.path}: cannot open it ({e}); move it away or point "
                             "HWNAS_CACHE / --cache-dir elsewhere") from None
        except sqlite3.DatabaseError as e:
            raise InputError(f"store {self.path}: damaged, not a readable hwnas store ({e}); "
                             "run `hwnas store repair` (it keeps every readable row and moves "
                             "the damaged file aside), or point HWNAS_CACHE / --cache-dir "
                             "elsewhere") from None
        self._check_schema()

    def _check_schema(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            with self._tx():
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                 (str(SCHEMA_VERSION),))
        elif str(row[0]) != str(SCHEMA_VERSION):
            raise InputError(f"store {self.path}: table 'meta', key 'schema_version' is "
                             f"{str(row[0])[:40]!r}, this hwnas reads {SCHEMA_VERSION}; use a "
                             "matching hwnas or a new cache dir")

    def _decode(self, table: str, key: str, text: object) -> Record:
        """A stored payload, checked: a bad one names its table and key, and the fix."""
        try:
            rec = decode_payload(text)
        except PayloadError as e:
            problem: str | None = str(e)
        else:
            problem = record_problem(table, rec)
        if problem is not None:
            raise InputError(f"store {self.path}: table '{table}', key '{key}': {problem}; run "
                             "`hwnas store repair` to move bad rows into quarantine")
        return rec

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")  # one writer at a time
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- measurements ----------------------------------------------------------------------
    def put_measurement(self, key: str, *, hw: str, model: str, kind: str,
                        median_ms: float | None, noisy: bool, record: Record) -> bool:
        with self._tx():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO measurements VALUES (?,?,?,?,?,?,?,?)",
                (key, hw, model, kind, median_ms, int(noisy), json.dumps(record), time.time()))
        return cur.rowcount == 1

    def get_measurement(self, key: str) -> Record | None:
        row = self._db.execute("SELECT payload FROM measurements WHERE key=?", (key,)).fetchone()
        return None if row is None else self._decode("measurements", key, row[0])

    def measurement_keys(self, hw: str | None = None, model: str | None = None) -> set[str]:
        q, args = _where("SELECT key FROM measurements", hw=hw, model=model)
        return {r[0] for r in self._db.execute(q, args)}

    def measurements(self, hw: str | None = None, model: str | None = None,
                     kind: str | None = None) -> list[Record]:
        q, args = _where("SELECT key, payload FROM measurements", hw=hw, model=model, kind=kind)
        return [self._decode("measurements", k, p)
                for k, p in self._db.execute(q + " ORDER BY created, key", args)]

    # ---- evaluations -----------------------------------------------------------------------
    def put_evaluation(self, key: str, *, model: str, subnet: str, task: str,
                       score: float | None, record: Record) -> bool:
        """`score` (the metric's value) goes into the column named `accuracy`."""
        with self._tx():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO evaluations VALUES (?,?,?,?,?,?,?)",
                (key, model, subnet, task, score, json.dumps(record), time.time()))
        return cur.rowcount == 1

    def get_evaluation(self, key: str) -> Record | None:
        row = self._db.execute("SELECT payload FROM evaluations WHERE key=?", (key,)).fetchone()
        return None if row is None else self._decode("evaluations", key, row[0])

    def evaluations(self, model: str | None = None,
                    task: str | None = None) -> list[Record]:
        q, args = _where("SELECT key, payload FROM evaluations", model=model, task=task)
        return [self._decode("evaluations", k, p)
                for k, p in self._db.execute(q + " ORDER BY created, key", args)]

    # ---- runs (append-only event logs) -----------------------------------------------------
    def create_run(self, name: str, config: Record) -> bool:
        with self._tx():
            cur = self._db.execute("INSERT OR IGNORE INTO runs VALUES (?,?,?)",
                                   (name, json.dumps(config), time.time()))
        return cur.rowcount == 1

    def run_config(self, name: str) -> Record | None:
        row = self._db.execute("SELECT config FROM runs WHERE name=?", (name,)).fetchone()
        return None if row is None else self._decode("runs", name, row[0])

    def run_names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM runs ORDER BY created")]

    def append_event(self, run: str, kind: str, payload: Record) -> int:
        with self._tx():
            row = self._db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM run_events "
                                   "WHERE run=?", (run,)).fetchone()
            seq = int(row[0])
            self._db.execute("INSERT INTO run_events VALUES (?,?,?,?,?)",
                             (run, seq, kind, json.dumps(payload), time.time()))
        return seq

    def events(self, run: str) -> list[tuple[int, str, Record]]:
        rows = self._db.execute("SELECT seq, kind, payload FROM run_events WHERE run=? "
                                "ORDER BY seq", (run,))
        return [(int(s), k, self._decode("run_events", f"{run}/{s}", p)) for s, k, p in rows]

    # ---- sharing ---------------------------------------------------------------------------
    def export_table(self, table: str, path: str | Path, **where: str | None) -> int:
        """Write a table (optionally filtered, e.g. hw=..., model=...) to .parquet or .csv.
        A filter on a column the table does not have is an `InputError`, never dropped."""
        import pyarrow as pa

        cols = _columns(table)
        unknown = sorted(set(where) - set(cols))
        if unknown:
            raise InputError(f"store table '{table}' has no column(s) {', '.join(unknown)} to "
                             f"filter on; columns: {', '.join(cols)}")
        q, args = _where(f"SELECT {', '.join(cols)} FROM {table}", **where)
        rows = self._db.execute(q, args).fetchall()
        data = pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})
        _write_table(data, Path(path))
        return len(rows)

    def import_table(self, table: str, path: str | Path) -> int:
        """Add the rows of a shared file; rows whose key exists are skipped. Returns rows added."""
        cols = _columns(table)
        data = _read_table(Path(path))
        missing = [c for c in cols if c not in data.column_names]
        if missing:
            raise InputError(f"{path}: not an hwnas '{table}' export: missing column(s) "
                             f"{', '.join(missing)}; export it with `hwnas profile export`")
        rows = list(zip(*(data.column(c).to_pylist() for c in cols), strict=True))
        for n, row in enumerate(rows, start=1):
            problem = row_problem(table, dict(zip(cols, row, strict=True)))
            if problem is not None:
                key = row_key(table, dict(zip(cols, row, strict=True)))
                raise InputError(f"{path}: row {n} (key '{key[:60]}'): {problem}; nothing was "
                                 "imported; fix or drop that row, or export it again with "
                                 "`hwnas profile export`")
        added = 0
        with self._tx():
            for row in rows:
                cur = self._db.execute(f"INSERT OR IGNORE INTO {table} VALUES "
                                       f"({','.join('?' * len(cols))})", row)
                added += cur.rowcount
        return added


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise InputError(f"store {path}: is a folder, not a store file; move it away or point "
                         "HWNAS_CACHE / --cache-dir elsewhere")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"store {path}: cannot create its folder ({e.strerror or e}); point "
                         "HWNAS_CACHE / --cache-dir at a writable folder") from None
    if (path.exists() and not os.access(path, os.R_OK | os.W_OK)) or not os.access(
            path.parent, os.W_OK | os.X_OK):
        raise InputError(_read_only(path))


def _read_only(path: Path) -> str:
    return (f"store {path}: read-only (no permission to write it or its folder); hwnas records "
            "every measurement there, so make it writable (chmod u+w) or point HWNAS_CACHE / "
            "--cache-dir at a writable folder")


def _columns(table: str) -> tuple[str, ...]:
    if table not in TABLES:
        raise InputError(f"unknown store table '{table}'; tables: {', '.join(TABLES)}")
    return TABLES[table]


def _where(query: str, **filters: str | None) -> tuple[str, list[str]]:
    parts, args = [], []
    for col, val in filters.items():
        if val is not None:
            parts.append(f"{col}=?")
            args.append(val)
    return (query + (" WHERE " + " AND ".join(parts) if parts else "")), args


def _write_table(data: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq
        pq.write_table(data, path)
    elif path.suffix == ".csv":
        import pyarrow.csv as pcsv
        pcsv.write_csv(data, path)
    else:
        raise InputError(f"{path}: unknown format '{path.suffix}'; use .parquet or .csv")


def _read_table(path: Path) -> pa.Table:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    import pyarrow as pa

    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq
            return pq.read_table(path)
        if path.suffix == ".csv":
            import pyarrow.csv as pcsv
            # text columns stay text (a hex key of digits only must not become a number)
            text = {c: pa.string() for cols in TABLES.values() for c in cols
                    if c not in ("median_ms", "noisy", "accuracy", "created", "seq")}
            return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=text))
    except (pa.ArrowException, OSError, UnicodeDecodeError) as e:
        first = " ".join(str(e).split())[:200]
        raise InputError(f"{path}: not a readable {path.suffix[1:]} table ({first}); give a "
                         "file written by `hwnas profile export`") from None
    raise InputError(f"{path}: unknown format '{path.suffix}'; use .parquet or .csv")


def open_store(path: str | Path | None = None) -> Store:
    from hwnas.paths import store_path
    return Store(path or store_path())
