"""Writing a folder the user names (`hwnas export --out DIR`) without ever destroying data.

- The new contents are written into a fresh temporary folder beside the target
  (`.DIR.hwnas-XXXXXX`), created by this call; files get ordinary modes (0644 under the usual
  umask), as the tokenizer's and config's do.
- A missing or empty target is replaced by renaming the temporary folder onto it: atomic, so a
  crash leaves the empty target (or nothing) and a stray temporary folder, never a half export.
- An existing non-empty target is refused unless `overwrite`; then only the files hwnas lists in
  the target's sidecar (its own earlier export) are replaced or removed. A file hwnas did not
  write is never touched; if the new export would need its name, the export is refused.
- Nothing else is deleted: the temporary folder is removed only when this call created it and
  it is empty (after a successful move) or after a failure, and a leftover from an earlier,
  killed call stays where it is.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hwnas.errors import InputError
from hwnas.safe_io import fix_modes, read_json_object


def check_target(out: Path, sidecar: str, overwrite: bool) -> None:
    """Refuse a target that is a file, a non-empty folder without `overwrite`, or (with it) a
    non-empty folder that holds no readable hwnas sidecar listing its files."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; give a new or empty folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        if not (out / sidecar).is_file():
            raise InputError(f"--out {out}: folder exists, is not empty and is not an hwnas "
                             "export; give a new or empty folder")
        raise InputError(f"--out {out}: holds an earlier export; pass --overwrite to replace "
                         "it (only the files its sidecar lists; yours stay), or give a new or "
                         "empty folder")
    if overwrite and out.is_dir() and any(out.iterdir()):
        owned_files(out, sidecar)  # refuse now when there is no readable sidecar


def owned_files(out: Path, sidecar: str) -> set[str]:
    """The files of an earlier export in `out` that hwnas wrote (its sidecar's list)."""
    path = out / sidecar
    if not path.is_file():
        raise InputError(f"--out {out}: not an hwnas export (no {sidecar}), so --overwrite "
                         "would replace files hwnas did not write; give a new or empty folder")
    files = read_json_object(path, "export sidecar").get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise InputError(f"--out {out}: {sidecar} does not list the files hwnas wrote (an "
                         "export by an older hwnas?), so --overwrite cannot tell them from "
                         "yours; give a new or empty folder")
    return {f for f in files if _plain_name(f)} | {sidecar}


def _plain_name(name: str) -> bool:
    p = Path(name)
    return not p.is_absolute() and ".." not in p.parts and name not in ("", ".")


@contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A fresh temporary folder beside `out`, created here; removed again if what it holds was
    not moved into place."""
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.hwnas-", dir=parent))
    except OSError as e:
        raise InputError(f"--out {out}: cannot write in {parent} ({e.strerror or e}); choose a "
                         "writable folder") from None
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)  # created by this call: only what this call wrote


def place(tmp: Path, out: Path, sidecar: str) -> None:
    """Move the finished contents of `tmp` to `out` (see the module docstring)."""
    fix_modes(tmp)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        if out.exists():
            tmp.chmod(out.stat().st_mode & 0o7777)
        os.rename(tmp, out)  # atomic; replaces an empty folder
        return
    owned = owned_files(out, sidecar)
    new = sorted(str(f.relative_to(tmp)) for f in tmp.rglob("*") if f.is_file())
    foreign = [f for f in new if (out / f).exists() and f not in owned]
    if foreign:
        raise InputError(f"--out {out}: holds '{foreign[0]}', which hwnas did not write; move it "
                         "away or give a new or empty folder")
    for f in new:  # the sidecar last: it lists what the folder holds once this is done
        if f != sidecar:
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / f, out / f)
    for f in sorted(owned - set(new)):  # an earlier export's files this one does not have
        stale = out / f
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
    os.replace(tmp / sidecar, out / sidecar)
