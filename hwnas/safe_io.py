"""Strict reading of the files and text a user hands hwnas, and strict JSON output.

Every reader names the file and turns each problem into one `InputError`: text that is not
UTF-8, JSON that is malformed, nested deeper than `MAX_DEPTH`, repeats a key in one object
(Python's `json` would silently keep the last value) or holds NaN/Infinity (not JSON). Output
goes through `dumps_strict`: NaN and infinities become null, so every consumer can parse it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hwnas.errors import InputError

MAX_DEPTH = 64
MAX_BYTES = 64 << 20  # a spec, task or sidecar is small; refuse to slurp a huge file

JSON = Any
"""A parsed JSON value: dict, list, str, int, float, bool or None."""


def read_text(path: str | Path, what: str, max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of a file; every problem is an `InputError` naming `what` and the file."""
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError(f"{what} {p}: is a folder, not a file; give the path of a file")
        size = p.stat().st_size
        if size > max_bytes:
            raise InputError(f"{what} {p}: {size} bytes, more than the {max_bytes} this file "
                             "kind may have; give the right file")
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {p}: no such file") from None
    except OSError as e:
        raise InputError(f"{what} {p}: cannot read it ({e.strerror or e}); check the path "
                         "and its permissions") from None
    return decode_utf8(data, f"{what} {p}")


def decode_utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise InputError(f"{where}: not UTF-8 text (byte 0x{data[e.start]:02x} at line {line}); "
                         "save the file as UTF-8") from None


def _no_duplicates(where: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise InputError(f"{where}: key '{k[:60]}' appears twice in one JSON object; "
                                 "keep one of them")
            out[k] = v
        return out
    return hook


def _no_constants(where: str) -> Callable[[str], float]:
    def hook(name: str) -> float:
        raise InputError(f"{where}: {name} is not valid JSON; write a number or null")
    return hook


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of JSON text, ignoring brackets inside strings."""
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads_strict(text: str, where: str, max_depth: int = MAX_DEPTH) -> JSON:
    """Parse JSON text strictly (see the module docstring); errors name `where`."""
    if nesting_depth(text) > max_depth:
        raise InputError(f"{where}: JSON nested more than {max_depth} levels deep; hwnas files "
                         "are flat objects and lists")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates(where),
                          parse_constant=_no_constants(where))
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                         "fix the syntax") from None
    except RecursionError:  # pragma: no cover (the depth check comes first)
        raise InputError(f"{where}: JSON nested too deeply") from None


def read_json(path: str | Path, what: str, max_bytes: int = MAX_BYTES) -> JSON:
    p = Path(path)
    return loads_strict(read_text(p, what, max_bytes), f"{what} {p}")


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise InputError(f"{what} {path}: expected a JSON object, got {type(data).__name__}")
    return data


def finite(data: JSON) -> JSON:
    """`data` with every NaN or infinite float replaced by None (recursively)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def dumps_strict(data: JSON, **kw: Any) -> str:
    """JSON text every parser accepts: NaN and infinities become null (`allow_nan=False`)."""
    return json.dumps(finite(data), allow_nan=False, **kw)


def fix_modes(folder: Path) -> None:
    """Give a folder written through temporary files the modes of ordinary new files: 0666 and
    0777 less the umask (0644 and 0755 as usual), as `open()` and `mkdir()` would."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for p in folder.rglob("*"):
        if p.is_symlink():
            continue
        p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)
