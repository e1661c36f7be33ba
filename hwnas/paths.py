"""Where hwnas keeps caches and its store: outside the repository, shared by every checkout.

Default ``~/.cache/hwnas``; the ``HWNAS_CACHE`` environment variable or the CLI's
``--cache-dir`` flag (which sets that variable) override it. Nothing is created at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "HWNAS_CACHE"


def cache_dir() -> Path:
    raw = os.environ.get(ENV_VAR)
    base = Path(raw).expanduser() if raw else Path.home() / ".cache" / "hwnas"
    base.mkdir(parents=True, exist_ok=True)
    return base


def sub_dir(*parts: str) -> Path:
    p = cache_dir().joinpath(*parts)
    p.mkdir(parents=True, exist_ok=True)
    return p


def store_path() -> Path:
    return cache_dir() / "store.sqlite"
