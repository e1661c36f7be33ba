"""Where hwnas keeps caches and its store: outside the repository, shared by every checkout.

Default ``~/.cache/hwnas``; the ``HWNAS_CACHE`` environment variable or the CLI's
``--cache-dir`` flag (which sets that variable) override it. Nothing is created at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from hwnas.errors import InputError

ENV_VAR = "HWNAS_CACHE"


def cache_dir() -> Path:
    raw = os.environ.get(ENV_VAR)
    base = Path(raw).expanduser() if raw else Path.home() / ".cache" / "hwnas"
    _make_dir(base)
    return base


def sub_dir(*parts: str) -> Path:
    p = cache_dir().joinpath(*parts)
    _make_dir(p)
    return p


def _make_dir(p: Path) -> None:
    """Create a cache folder; a file in the way or a read-only parent is the user's to fix."""
    fix = f"point {ENV_VAR} or --cache-dir at a writable folder"
    if p.exists() and not p.is_dir():
        raise InputError(f"cache folder {p}: is a file, not a folder; {fix}")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"cache folder {p}: a file is in the way; {fix}") from None
    except OSError as e:
        raise InputError(f"cache folder {p}: cannot create it ({e.strerror or e}); {fix}"
                         ) from None


def store_path() -> Path:
    return cache_dir() / "store.sqlite"
