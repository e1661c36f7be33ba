#!/usr/bin/env bash
# The test command: set up ./.venv if needed, then lint (ruff), check the import layers
# (import-linter), type-check (mypy) and run the test suite. Extra arguments go to pytest (e.g. `-m "not slow"` for the fast tests only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check hwnas tests benchmarks
.venv/bin/lint-imports --no-cache
.venv/bin/mypy
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then  # no tests collected: not a failure of the code under test
  echo "pytest collected no tests"
  exit 0
fi
exit "$rc"
