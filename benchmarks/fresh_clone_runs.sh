#!/usr/bin/env bash
# README command 1 as a newcomer runs it, N times in a row: each run a fresh `git clone` of
# this checkout's HEAD and an empty cache, timed by /usr/bin/time -v (wall time, peak memory).
#   bash benchmarks/fresh_clone_runs.sh WORKDIR [N=3]
# Logs: WORKDIR/runK.log; caches (with each run's report and predictor report):
# WORKDIR/runK-cache. A run whose log ends in rc=0 is kept, so re-running resumes the series.
set -uo pipefail
work=${1:?usage: bash benchmarks/fresh_clone_runs.sh WORKDIR [N]}
n=${2:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work"
for i in $(seq 1 "$n"); do
  log="$work/run$i.log"
  if [ -f "$log" ] && grep -q "^rc=0" "$log"; then continue; fi
  rm -rf "$work/run$i" "$work/run$i-cache" "$log"
  git clone -q "$repo" "$work/run$i"
  mkdir -p "$work/run$i-cache"
  ( cd "$work/run$i" && export HWNAS_CACHE="$work/run$i-cache" &&
    { date; git rev-parse --short HEAD
      /usr/bin/time -v bash -c 'bash scripts/setup.sh && .venv/bin/hwnas demo'
      echo "rc=$?"; date; } >> "$log" 2>&1 )
  grep -E "held-out MAPE|within ±10% of the prediction|Elapsed|Maximum resident|^rc=" "$log"
done
