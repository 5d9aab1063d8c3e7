"""Why the `default` preset starts the encoder's Dense 32 ReLUs with a bias of 1: dead units per seed.

For each seed, the trainer runs the first STEPS optimizer steps of the `default` recipe twice, with
Keras' zero bias and with the default's 1. A unit is dead when its pre-activation is <= 0 on every
one of the first 2,000 test images: it gets no gradient and seldom comes back, and the 2-D latent is
computed from the units that are left. Also reported: each run's test -ELBO at that point.

    python benchmarks/bottleneck_units.py [--seeds 12] [--steps 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import publish, section  # noqa: E402

from latent_atlas.train import data  # noqa: E402
from latent_atlas.train.config import PRESETS, TrainConfig  # noqa: E402
from latent_atlas.train.evaluate import images_to_tensor, load_model  # noqa: E402
from latent_atlas.train.train import train  # noqa: E402

BIASES = (0.0, 1.0)
BATCH = PRESETS["default"]["batch_size"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12, help="seeds 0 .. N-1")
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps (batches of the default preset) per run")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    probe = images_to_tensor(data.load_split("mnist", "test", args.data_dir)[0][:2000], torch.device("cpu"))
    results: dict[tuple[int, float], tuple[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for bias in BIASES:
                # One epoch over the first BATCH * STEPS images is exactly STEPS steps of the default recipe.
                config = TrainConfig.from_preset("default", seed=seed, bottleneck_bias=bias, epochs=1,
                                                 limit=BATCH * args.steps, device="cpu")
                run = Path(tmp) / f"seed{seed}-bias{bias:g}"
                state = train(config, run, data_dir=args.data_dir, progress=False, plots=False)
                model, _ = load_model(run, "last")
                results[seed, bias] = model.encoder.dead_bottleneck_units(probe), state.metrics["test_neg_elbo"]
            print(f"seed {seed}: " + ", ".join(f"bias {b:g}: {results[seed, b][0]} dead, {results[seed, b][1]:.1f} nats"
                                               for b in BIASES), file=sys.stderr)

    rows = [f"| {seed} | {results[seed, 0.0][0]} | {results[seed, 1.0][0]} | {results[seed, 0.0][1]:.1f} | "
            f"{results[seed, 1.0][1]:.1f} |" for seed in range(args.seeds)]
    summary = {b: (statistics.median(results[s, b][0] for s in range(args.seeds)),
                   statistics.mean(results[s, b][1] for s in range(args.seeds)),
                   max(results[s, b][1] for s in range(args.seeds))) for b in BIASES}
    markdown = section(
        "Dead encoder units after the first steps (`benchmarks/bottleneck_units.py`)",
        f"The `default` recipe for its first {args.steps} steps (batch {BATCH}, one pass over the first {BATCH * args.steps:,} "
        f"training images, PyTorch {torch.__version__}), seeds "
        f"0–{args.seeds - 1}, with the encoder's Dense 32 ReLU biases starting at Keras' 0 or at the default's 1. "
        "Dead: units whose pre-activation is ≤ 0 on every one of the first 2,000 test images (out of 32). "
        "Test −ELBO over all 10,000 test images at that point, nats per image.",
        "",
        "| seed | dead units, bias 0 | dead units, bias 1 | test −ELBO, bias 0 | test −ELBO, bias 1 |",
        "|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Median dead units: **{summary[0.0][0]:g} of 32 with bias 0, {summary[1.0][0]:g} with bias 1**. "
        f"Test −ELBO after {args.steps} steps, mean (worst) over the seeds: {summary[0.0][1]:.1f} ({summary[0.0][2]:.1f}) "
        f"with bias 0, {summary[1.0][1]:.1f} ({summary[1.0][2]:.1f}) with bias 1.",
    )
    publish("bottleneck_units", markdown, write=not args.no_write)


if __name__ == "__main__":
    main()
