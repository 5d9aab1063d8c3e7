#!/usr/bin/env bash
# Reproduces the bundled models shipped in runtime/models/ (`make models`): trains each with the
# project's own trainer, then exports it. Each bundle.json records these commands, the seed and the
# dataset checksums. About 15 minutes per model on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
LA=${LA:-.venv/bin/latent-atlas}
for dataset in mnist fashion-mnist; do
  run=runs/bundled-$dataset
  if [ -f "$run/checkpoint.json" ]; then resume=--resume; else resume=; fi
  $LA train --dataset "$dataset" --preset default --latent-dim 2 --epochs 20 --seed 0 --eval-iw 100 --out "$run" $resume
  $LA export "$run" --out "runtime/models/$dataset" --name "$dataset" --force
done
