"""`hwnas store check | repair`: find the rows of a store that no stage can read, and move them
into quarantine without losing a good row.

`check_store` reads every row of every table (a damaged page, a payload that is not JSON, a
record that lacks what its readers need) and the schema version. `repair_store` then:

- when the file is sound and only some rows are bad, moves those rows into the `quarantine`
  table of the same store (table, key, reason and the full row as JSON) in one transaction;
- when the file itself is damaged, copies every row it can still read into a fresh store
  (unreadable or bad rows into its `quarantine` table), keeps the damaged file beside it as
  `store.sqlite.damaged-<time>` and puts the fresh store in its place. Nothing is deleted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwnas.store.rows import row_key, row_problem
from hwnas.store.sqlite import SCHEMA_VERSION, TABLES, Store

QUARANTINE = """CREATE TABLE IF NOT EXISTS quarantine (
    tbl TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL, row TEXT NOT NULL,
    created REAL NOT NULL)"""


@dataclass(frozen=True)
class Problem:
    table: str
    key: str
    reason: str
    rowid: int | None = None


@dataclass
class CheckReport:
    path: str
    exists: bool
    damaged: str | None = None  # why the file itself is unreadable (None: sound)
    rows: dict[str, int] = field(default_factory=dict)  # good rows per table
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.damaged is None and not self.problems

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


@dataclass(frozen=True)
class RepairReport:
    path: str
    kept: dict[str, int]
    quarantined: int
    damaged_copy: str | None  # where the damaged file was moved (None: repaired in place)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Undecodable(bytes):
    """A text cell that is not UTF-8 (damage): read as its bytes, so it can be quarantined."""


def _text(raw: bytes) -> str | Undecodable:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return Undecodable(raw)


def _connect(path: Path, read_only: bool = True) -> sqlite3.Connection:
    db = (sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0) if read_only else
          sqlite3.connect(path, timeout=60.0, isolation_level=None))
    db.text_factory = _text
    return db


def _rows(db: sqlite3.Connection, table: str, report: CheckReport
          ) -> list[tuple[int, dict[str, Any]]]:
    """(rowid, row) of every row that can be read; unreadable ones become problems."""
    cols = TABLES[table]
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        ids = [r[0] for r in db.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
    except sqlite3.DatabaseError as e:
        report.problems.append(Problem(table, "*", f"table unreadable ({e})"))
        return out
    for rowid in ids:
        try:
            row = db.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE rowid=?",
                             (rowid,)).fetchone()
        except sqlite3.DatabaseError as e:
            report.problems.append(Problem(table, f"rowid {rowid}", f"unreadable ({e})", rowid))
            continue
        if row is not None:
            out.append((rowid, dict(zip(cols, row, strict=True))))
    return out


def _scan(path: Path) -> tuple[CheckReport, dict[str, list[tuple[int, dict[str, Any]]]]]:
    report = CheckReport(str(path), path.is_file())
    good: dict[str, list[tuple[int, dict[str, Any]]]] = {t: [] for t in TABLES}
    if not report.exists:
        return report, good
    try:
        db = _connect(path)
        msgs = [r[0] for r in db.execute("PRAGMA integrity_check")]
        if msgs != ["ok"]:
            report.damaged = "; ".join(msgs[:3])
    except sqlite3.DatabaseError as e:
        report.damaged = str(e)
        return report, good
    try:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and str(row[0]) != str(SCHEMA_VERSION):
            report.problems.append(Problem("meta", "schema_version",
                                           f"is {str(row[0])[:40]!r}, this hwnas reads "
                                           f"{SCHEMA_VERSION}"))
    except sqlite3.DatabaseError as e:
        report.problems.append(Problem("meta", "*", f"table unreadable ({e})"))
    for table in TABLES:
        for rowid, r in _rows(db, table, report):
            problem = row_problem(table, r)
            if problem is None:
                good[table].append((rowid, r))
            else:
                report.problems.append(Problem(table, row_key(table, r), problem, rowid))
        report.rows[table] = len(good[table])
    db.close()
    return report, good


def check_store(path: str | Path) -> CheckReport:
    return _scan(Path(path))[0]


def repair_store(path: str | Path) -> RepairReport:
    path = Path(path)
    report, good = _scan(path)
    kept = {t: len(rows) for t, rows in good.items()}
    if report.ok or not report.exists:
        return RepairReport(str(path), kept, 0, None)
    if report.damaged is None and all(p.table in TABLES and p.rowid is not None
                                      for p in report.problems):
        _quarantine_in_place(path, report.problems)
        return RepairReport(str(path), kept, len(report.problems), None)
    return _salvage(path, report, good)


def _quarantine_in_place(path: Path, problems: list[Problem]) -> None:
    db = _connect(path, read_only=False)
    try:
        db.execute(QUARANTINE)
        db.execute("BEGIN IMMEDIATE")
        for p in problems:
            cols = TABLES[p.table]
            row = db.execute(f"SELECT {', '.join(cols)} FROM {p.table} WHERE rowid=?",
                             (p.rowid,)).fetchone()
            data = dict(zip(cols, row, strict=True)) if row is not None else {}
            db.execute("INSERT INTO quarantine VALUES (?,?,?,?,?)",
                       (p.table, p.key, p.reason, json.dumps(data, default=repr), time.time()))
            db.execute(f"DELETE FROM {p.table} WHERE rowid=?", (p.rowid,))
        db.execute("COMMIT")
    finally:
        db.close()


def _salvage(path: Path, report: CheckReport,
             good: dict[str, list[tuple[int, dict[str, Any]]]]) -> RepairReport:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fresh = path.with_name(f"{path.name}.repair-{stamp}")
    store = Store(fresh)
    db = store._db
    db.execute(QUARANTINE)
    db.execute("BEGIN IMMEDIATE")
    for table, rows in good.items():
        cols = TABLES[table]
        for _, r in rows:
            db.execute(f"INSERT OR IGNORE INTO {table} VALUES ({','.join('?' * len(cols))})",
                       tuple(r[c] for c in cols))
    for p in report.problems:
        db.execute("INSERT INTO quarantine VALUES (?,?,?,?,?)",
                   (p.table, p.key, p.reason, "{}", time.time()))
    db.execute("COMMIT")
    store.close()
    damaged = path.with_name(f"{path.name}.damaged-{stamp}")
    os.replace(path, damaged)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, damaged.with_name(damaged.name + suffix))
    for suffix in ("-wal", "-shm"):
        side = fresh.with_name(fresh.name + suffix)
        if side.exists():
            side.unlink()  # created by this call; the fresh store is closed and complete
    os.replace(fresh, path)
    return RepairReport(str(path), {t: len(r) for t, r in good.items()}, len(report.problems),
                        str(damaged))
