#!/usr/bin/env bash
# The #11 headline training run: distil the embedded model into its super-network for
# 90 minutes of wall time, keeping a copy of the model at 10 minutes (the 10-minute
# acceptance check). Resumable: re-run the same command after a crash or kill -9 and it
# continues from the last checkpoint (minutes are summed over resumes).
#   nohup bash benchmarks/train_headline.sh OUT_DIR > OUT_DIR.log 2>&1 &
set -euo pipefail
OUT=${1:?usage: train_headline.sh OUT_DIR}
HW=${HWNAS:-.venv/bin/hwnas}
ARGS=(--model smollm2-135m --lr 1e-4 --warmup 10 --band 1.2,1.8 --random-subnets 1
      --seq-len 256 --batch 4 --save-every 10 --json)
run() {  # run MINUTES: train until MINUTES in total, resuming when a checkpoint exists
  if compgen -G "$OUT/checkpoint*/state.json" > /dev/null; then "$HW" supernet train "${ARGS[@]}" --out "$OUT" --minutes "$1" --resume
  else "$HW" supernet train "${ARGS[@]}" --out "$OUT" --minutes "$1"; fi
}
if [ ! -d "$OUT.10min" ]; then
  run 10
  rm -rf "$OUT.10min.tmp" && cp -r "$OUT" "$OUT.10min.tmp" && rm -rf "$OUT.10min.tmp/checkpoint"
  mv "$OUT.10min.tmp" "$OUT.10min"
fi
run 90
