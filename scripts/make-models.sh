#!/usr/bin/env bash
# Reproduces the bundled models shipped in runtime/models/ (`make models`): trains each with the
# project's own trainer, then exports it; each bundle.json records these commands, the seed and the
# dataset checksums. The two trainings run side by side on one thread each, exactly as the shipped
# models were made (float sums depend on the thread count). About an hour on an idle 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
LA=${LA:-.venv/bin/latent-atlas}
train() {
  local dataset=$1 run=runs/bundled-$1 resume=
  [ -f "$run/checkpoint.json" ] && resume=--resume
  OMP_NUM_THREADS=1 $LA train --dataset "$dataset" --preset default --latent-dim 2 --epochs 20 --seed 0 \
    --eval-iw 100 --out "$run" $resume
}
train mnist & mnist=$!
train fashion-mnist & fashion=$!
wait $mnist && wait $fashion
for dataset in mnist fashion-mnist; do
  $LA export "runs/bundled-$dataset" --out "runtime/models/$dataset" --name "$dataset" --iw-images all --force
done
