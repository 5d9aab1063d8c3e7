"""Data parallelism on this machine: 1 process x 1 thread, 1 process x all threads, N processes x 1 thread.

Each configuration is a real `latent-atlas train` run (the `default` preset, one epoch on the first
--limit MNIST training images); its training rate is the `images_per_s` the trainer records in
metrics.jsonl (the epoch's training time only: no start-up, no evaluation). Repeats alternate between
the configurations, so a noisy, shared machine slows all alike; we quote medians. Scaling efficiency
is the rate over (workers x the 1 x 1 rate), where workers = processes x threads.

    python benchmarks/ddp_scaling.py [--repeats 2] [--limit 8000]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import cpu_kind, median, publish, section, table  # noqa: E402

import torch  # noqa: E402

from latent_atlas.train.config import TrainConfig  # noqa: E402

CORES = os.cpu_count() or 1


def configurations() -> dict[str, dict]:
    """label -> processes, threads per process, per-rank batch (the global batch is per-rank x processes)."""
    batch = TrainConfig.from_preset("default").batch_size  # the preset's own batch, whatever it is now
    return {
        "1 process × 1 thread": {"processes": 1, "threads": 1, "batch": batch},
        f"1 process × {CORES} threads": {"processes": 1, "threads": CORES, "batch": batch},
        f"{CORES} processes × 1 thread, per-rank batch {batch // CORES} (global {batch}: the same run)":
            {"processes": CORES, "threads": 1, "batch": batch // CORES},
        f"{CORES} processes × 1 thread, per-rank batch {batch} (global {batch * CORES})":
            {"processes": CORES, "threads": 1, "batch": batch},
    }


def train_rate(run: Path, setup: dict, limit: int, data_dir: str | None) -> float:
    command = [sys.executable, "-m", "latent_atlas.cli", "train", "--preset", "default", "--epochs", "1",
               "--limit", str(limit), "--val-size", "1000", "--batch-size", str(setup["batch"]), "--no-plots",
               "--quiet", "--out", str(run), *(["--data-dir", data_dir] if data_dir else [])]
    if setup["processes"] > 1:
        command += ["--nproc", str(setup["processes"])]
    env = {**os.environ, "OMP_NUM_THREADS": str(setup["threads"])}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:  # say why, not just that it failed
        sys.exit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr.strip()[-3000:]}")
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=8000)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    setups = configurations()
    rates: dict[str, list[float]] = {label: [] for label in setups}
    with tempfile.TemporaryDirectory() as scratch:
        for r in range(args.repeats):
            for i, (label, setup) in enumerate(setups.items()):
                rates[label].append(train_rate(Path(scratch) / f"run-{r}-{i}", setup, args.limit, args.data_dir))
            print(f"repeat {r + 1}: " + ", ".join(f"{v[-1]:.0f}" for v in rates.values()), file=sys.stderr)

    single = median(rates["1 process × 1 thread"])
    rows = []
    for label, setup in setups.items():
        rate, workers = median(rates[label]), setup["processes"] * setup["threads"]
        rows.append([label, f"{rate:,.0f}", f"{min(rates[label]):,.0f}–{max(rates[label]):,.0f}",
                     f"{rate / single:.2f}×", f"{rate / (workers * single):.0%}"])
    markdown = section(
        f"Data-parallel training on one machine, {cpu_kind()} (`benchmarks/ddp_scaling.py`)",
        f"`latent-atlas train --preset default --epochs 1 --limit {args.limit:,}`, gloo on 127.0.0.1 for the "
        f"processes, PyTorch {torch.__version__}; images/s of the epoch's training (metrics.jsonl), median of "
        f"{args.repeats} alternating repeats. Efficiency: the rate over (processes × threads × the 1 × 1 rate).",
        "",
        table(["configuration", "images/s (median)", "range", "vs 1 × 1", "scaling efficiency"], rows, 1),
    )
    publish(f"ddp_scaling-{cpu_kind()}", markdown, write=not args.no_write)  # one section per kind of CPU


if __name__ == "__main__":
    main()
