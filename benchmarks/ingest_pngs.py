"""Ingesting a folder of your own images: 60,000 PNGs in class folders, on one core and on all of them.

The PNGs are MNIST's training images (28x28 grey, one folder per digit), written once into --dir.
Each cold run prepares them in a fresh run directory exactly as `latent-atlas train --dataset DIR`
does: list and stat the files, hash each one, decode it, preprocess it with the runtime's
`preprocess` (mnist layout), write the cache, split and write dataset.json. A warm run is the same
call once the cache exists (a resumed run, an export); "one file changed" rewrites one PNG first.
Repeats alternate between the worker counts so that a busy machine slows both alike.

    python benchmarks/ingest_pngs.py [--images 60000] [--repeats 3] [--dir /tmp/latent-atlas-pngs]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import median, stamp, write_section  # noqa: E402

from PIL import Image  # noqa: E402

from latent_atlas.train import data, own_data  # noqa: E402
from latent_atlas.train.config import TrainConfig  # noqa: E402


def write_pngs(root: Path, count: int) -> Path:
    images, labels = data.load_split("mnist", "train")
    folder = root / f"mnist-pngs-{count}"
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.png")) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True)
    for i in range(count):
        Image.fromarray(images[i]).save(folder / str(labels[i]) / f"{i:05d}.png")
    return folder


def cpu_seconds() -> float:
    """CPU time of this process and of its finished worker processes, user and system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_prepare(folder: Path, run_dir: Path, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one prepare."""
    start, cpu = time.perf_counter(), cpu_seconds()
    own_data.prepare(TrainConfig(dataset=str(folder)), run_dir, log=lambda _: None, workers=workers)
    return time.perf_counter() - start, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "latent-atlas-pngs"))
    args = parser.parse_args()

    folder = write_pngs(Path(args.dir), args.images)
    megabytes = sum(p.stat().st_size for p in folder.rglob("*.png")) / 1e6
    cores = os.cpu_count() or 1
    counts = sorted({1, cores})
    load_before = os.getloadavg()[0]
    cold: dict[int, list[float]] = {n: [] for n in counts}
    cpu: dict[int, list[float]] = {n: [] for n in counts}
    warm, changed = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for n in counts:
                run = Path(scratch) / f"run-{n}-{repeat}"
                wall, used = timed_prepare(folder, run, n)
                cold[n].append(wall)
                cpu[n].append(used)
                print(f"cold, {n} worker(s): {wall:.1f} s, {used:.1f} CPU s, load {os.getloadavg()[0]:.1f}",
                      file=sys.stderr)
            warm.append(timed_prepare(folder, run, cores)[0])
            victim = folder / "0" / sorted(os.listdir(folder / "0"))[repeat]
            Image.open(victim).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(victim)
            changed.append(timed_prepare(folder, run, cores)[0])
    load_after = os.getloadavg()[0]

    rate = {n: args.images / median(cold[n]) for n in counts}
    rows = [f"| cold, {'in one process' if n == 1 else f'{n} worker processes'} | {median(cold[n]):.1f} s | "
            f"{min(cold[n]):.1f}–{max(cold[n]):.1f} s | {rate[n]:,.0f} | {median(cpu[n]):.1f} s |" for n in counts]
    rows += [f"| warm: the cache is valid (resume, export) | {median(warm):.2f} s | {min(warm):.2f}–{max(warm):.2f} s | | |",
             f"| one file changed: it alone is preprocessed again | {median(changed):.2f} s | "
             f"{min(changed):.2f}–{max(changed):.2f} s | | |"]
    per_image_ms = median(cpu[cores]) / args.images * 1e3
    speedup = median(cold[1]) / median(cold[cores]) if cores > 1 else 1.0
    write_section("ingest_pngs", f"""
## Ingesting your own images: {args.images:,} PNGs (`benchmarks/ingest_pngs.py`)

{stamp()}

MNIST's first {args.images:,} training images as 28×28 grey PNGs ({megabytes:.0f} MB) in 10 class folders,
prepared as `latent-atlas train --dataset DIR` does (stat, SHA-256, decode, the runtime's `preprocess`
with the mnist layout, cache, split, dataset.json); {args.repeats} repeats, alternating.
Load average while it ran: {load_before:.1f} before, {load_after:.1f} after (other work shares the cores).
Run: `python benchmarks/ingest_pngs.py`.

| {args.images:,} PNGs | median | range | images/s | CPU time |
| --- | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

{cores} workers against 1: {speedup:.2f}× faster in wall time. The work itself costs {per_image_ms:.2f} ms of CPU
per image (all processes, user + system), so on {cores} idle cores, split perfectly, the cold ingest would
take about {median(cpu[cores]) / cores:.0f} s; the wall times above are what the shared machine gave.
""")
    print(f"cold medians: {', '.join(f'{n} worker(s) {median(cold[n]):.1f} s' for n in counts)}; "
          f"warm {median(warm):.2f} s; one changed {median(changed):.2f} s")


if __name__ == "__main__":
    main()
