"""What a valid row of each store table looks like, checked wherever rows come in or out.

`row_problem` names what is wrong with one row (or returns None): it runs on every imported
row (`hwnas profile import`), on every payload read back (a bad one names its table and key)
and in `hwnas store check | repair`. It checks what the readers rely on, no more: a record
that passes can be read by every stage.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hwnas.store.protocol import Record

TEXT_COLUMNS = {
    "measurements": ("key", "hw", "model", "kind"),
    "evaluations": ("key", "model", "subnet", "task"),
    "runs": ("name",),
    "run_events": ("run", "kind"),
}
PAYLOAD_COLUMN = {"measurements": "payload", "evaluations": "payload", "runs": "config",
                  "run_events": "payload"}
KEY_COLUMNS = {"measurements": ("key",), "evaluations": ("key",), "runs": ("name",),
               "run_events": ("run", "seq")}
_SPEC_TEXT = ("target", "phase", "dtype", "backend", "device", "arch")
_SPEC_INT = ("batch", "tokens", "context", "threads")


class PayloadError(ValueError):
    """A payload that is not a JSON object (the message says why)."""


def row_key(table: str, row: dict[str, Any]) -> str:
    return "/".join(str(row.get(c)) for c in KEY_COLUMNS[table])


def decode_payload(text: Any) -> Record:
    """A stored payload back as a record; `PayloadError` when it is not a JSON object."""
    if not isinstance(text, str):
        raise PayloadError(f"payload is {type(text).__name__}, not JSON text")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        msg = getattr(e, "msg", "nested too deeply")
        raise PayloadError(f"payload is not valid JSON ({msg})") from None
    if not isinstance(data, dict):
        raise PayloadError(f"payload is a JSON {type(data).__name__}, not an object")
    return data


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def record_problem(table: str, rec: Record) -> str | None:
    """What a decoded payload lacks for its table's readers, or None."""
    if table == "measurements":
        spec = rec.get("spec")
        if not isinstance(spec, dict):
            return "payload field 'spec' is not an object"
        for f in _SPEC_TEXT:
            if not isinstance(spec.get(f), str):
                return f"payload field 'spec.{f}' is not text"
        for f in _SPEC_INT:
            if not _is_int(spec.get(f)) or spec[f] < 0:
                return f"payload field 'spec.{f}' is not a non-negative integer"
        for f in ("width", "kv_heads"):
            if spec.get(f) is not None and not _is_int(spec[f]):
                return f"payload field 'spec.{f}' is not an integer"
        if spec.get("subnet") is not None and not isinstance(spec["subnet"], str):
            return "payload field 'spec.subnet' is not text"
        if "error" in rec:  # a failed (out-of-memory) record: no times
            return None if isinstance(rec["error"], str) else "payload field 'error' is not text"
        times = rec.get("times_ms")
        if (not isinstance(times, list) or not times
                or not all(_is_num(t) and math.isfinite(t) and t >= 0 for t in times)):
            return "payload field 'times_ms' is not a non-empty list of finite times"
        median = rec.get("median_ms")
        if not isinstance(median, int | float) or isinstance(median, bool) or not math.isfinite(
                median):
            return "payload field 'median_ms' is not a finite number"
        if not _is_int(rec.get("protocol")):
            return "payload field 'protocol' is not an integer"
    elif table == "evaluations":
        for f in ("task", "metric", "model", "subnet"):
            if not isinstance(rec.get(f), str):
                return f"payload field '{f}' is not text"
        if not _is_num(rec.get("score", rec.get("accuracy"))):  # "accuracy": before 0.x
            return "payload field 'score' is not a number"
        if not _is_int(rec.get("n")) or rec["n"] < 0:
            return "payload field 'n' is not a non-negative integer"
        if not isinstance(rec.get("extra", {}), dict):
            return "payload field 'extra' is not an object"
    return None


def row_problem(table: str, row: dict[str, Any]) -> str | None:
    """What is wrong with a whole row (a dict of its columns), or None."""
    for c in TEXT_COLUMNS[table]:
        v = row.get(c)
        if not isinstance(v, str) or not v:
            return f"column '{c}' is {v!r}, not non-empty text"
    created = row.get("created")
    if not isinstance(created, int | float) or isinstance(created, bool) or not math.isfinite(
            created):
        return f"column 'created' is {created!r}, not a time stamp"
    if table == "measurements":
        m = row.get("median_ms")
        if m is not None and (not _is_num(m) or not math.isfinite(m)):
            return f"column 'median_ms' is {m!r}, not a finite number"
        if row.get("noisy") not in (0, 1) or isinstance(row.get("noisy"), float):
            return f"column 'noisy' is {row.get('noisy')!r}, not 0 or 1"
    if table == "evaluations":
        a = row.get("accuracy")
        if a is not None and not _is_num(a):
            return f"column 'accuracy' is {a!r}, not a number"
    if table == "run_events" and (not _is_int(row.get("seq")) or row["seq"] < 0):
        return f"column 'seq' is {row.get('seq')!r}, not a non-negative integer"
    try:
        rec = decode_payload(row.get(PAYLOAD_COLUMN[table]))
    except PayloadError as e:
        return str(e)
    return record_problem(table, rec)
