"""`RecordingStore`: a `Storage` that keeps what is written in memory, for a worker.

Workers never open the SQLite store: code that writes as it goes (the layer profiler, subnet
timing) runs on a worker against a recording store, whose `writes` travel back with the job's
result; the driver `replay`s them into the real store (INSERT OR IGNORE by key, so a job that
ran twice is recorded once). Reads answer from records the driver sent along (`known`) and
from what was written; runs belong to the driver alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hwnas.store.protocol import Record, Storage


@dataclass(frozen=True)
class Write:
    table: str  # "measurements" | "evaluations"
    key: str
    columns: dict[str, str | float | bool | None]
    record: Record


@dataclass
class RecordingStore:
    known: dict[str, Record] = field(default_factory=dict)  # key -> record, from the driver
    writes: list[Write] = field(default_factory=list)
    path: Path = Path("<recording>")

    def _has(self, key: str) -> bool:
        return key in self.known or any(w.key == key for w in self.writes)

    def _get(self, table: str, key: str) -> Record | None:
        for w in self.writes:
            if w.table == table and w.key == key:
                return w.record
        return self.known.get(key)

    def _rows(self, table: str, **where: str | None) -> list[Write]:
        return [w for w in self.writes if w.table == table and
                all(v is None or w.columns.get(k) == v for k, v in where.items())]

    # measurements
    def put_measurement(self, key: str, *, hw: str, model: str, kind: str,
                        median_ms: float | None, noisy: bool, record: Record) -> bool:
        if self._has(key):
            return False
        self.writes.append(Write("measurements", key, {"hw": hw, "model": model, "kind": kind,
                                                       "median_ms": median_ms,
                                                       "noisy": noisy}, record))
        return True

    def get_measurement(self, key: str) -> Record | None:
        return self._get("measurements", key)

    def measurement_keys(self, hw: str | None = None, model: str | None = None) -> set[str]:
        return {w.key for w in self._rows("measurements", hw=hw, model=model)}

    def measurements(self, hw: str | None = None, model: str | None = None,
                     kind: str | None = None) -> list[Record]:
        return [w.record for w in self._rows("measurements", hw=hw, model=model, kind=kind)]

    # evaluations
    def put_evaluation(self, key: str, *, model: str, subnet: str, task: str,
                       score: float | None, record: Record) -> bool:
        if self._has(key):
            return False
        self.writes.append(Write("evaluations", key, {"model": model, "subnet": subnet,
                                                      "task": task, "accuracy": score},
                                 record))
        return True

    def get_evaluation(self, key: str) -> Record | None:
        return self._get("evaluations", key)

    def evaluations(self, model: str | None = None, task: str | None = None) -> list[Record]:
        return [w.record for w in self._rows("evaluations", model=model, task=task)]

    # runs and sharing: the driver's
    def create_run(self, name: str, config: Record) -> bool:
        raise NotImplementedError("a worker records no runs: the driver writes run events")

    def run_config(self, name: str) -> Record | None:
        return None

    def run_names(self) -> list[str]:
        return []

    def append_event(self, run: str, kind: str, payload: Record) -> int:
        raise NotImplementedError("a worker records no runs: the driver writes run events")

    def events(self, run: str) -> list[tuple[int, str, Record]]:
        return []

    def export_table(self, table: str, path: str | Path, **where: str | None) -> int:
        raise NotImplementedError("export from the driver's store")

    def import_table(self, table: str, path: str | Path) -> int:
        raise NotImplementedError("import into the driver's store")

    def close(self) -> None:
        return None


def replay(writes: list[Write], store: Storage) -> int:
    """Write a worker's records into `store`; returns how many were new."""
    added = 0
    for w in writes:
        c = w.columns
        if w.table == "measurements":
            median = c["median_ms"]
            added += store.put_measurement(
                w.key, hw=str(c["hw"]), model=str(c["model"]), kind=str(c["kind"]),
                median_ms=None if median is None else float(median), noisy=bool(c["noisy"]),
                record=w.record)
        elif w.table == "evaluations":
            acc = c["accuracy"]
            added += store.put_evaluation(
                w.key, model=str(c["model"]), subnet=str(c["subnet"]), task=str(c["task"]),
                score=None if acc is None else float(acc), record=w.record)
        else:
            raise ValueError(f"unknown store table {w.table!r} in a worker's writes")
    return added
