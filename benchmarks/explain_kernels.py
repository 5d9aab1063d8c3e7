"""The explorers' explaining computations (runtime/explain.py) on the bundled MNIST atlas, and what
atlas_extra.npz adds to each bundled model.

    python benchmarks/explain_kernels.py [--no-write]

Measured: one k-nearest-neighbour query (k = DEFAULT_NEIGHBOURS) at points near the atlas and anywhere in
the view (p50/p99 over thousands of queries), building the index, the prior and aggregate-posterior layers
of a 160 x 120 cell view (computed once per view and cached by the explorers), and the decoder-entropy
layer of the entropy layer's coarser cells (one decode per cell). Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import median, percentile, publish, section, table  # noqa: E402

from latent_atlas.runtime import bundle as fmt  # noqa: E402
from latent_atlas.runtime import explain, load  # noqa: E402
from latent_atlas.runtime import explorer_rules as rules  # noqa: E402

VIEW = ((-4.0, 4.0), (-3.0, 3.0))
LAYER_CELLS = (160, 120)
QUERIES = 5000


def timed(function, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        out.append(time.perf_counter() - start)
    return out


def row(name: str, seconds: list[float], unit: str = "ms") -> list[str]:
    scale = 1e6 if unit == "us" else 1e3
    values = [s * scale for s in seconds]
    return [name, f"{median(values):.1f} {unit}", f"{percentile(values, 99):.1f} {unit}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    load_average = os.getloadavg()[0]
    model = load("mnist")
    means, _ = model.bundle.read_atlas()
    extra = model.atlas_extra
    rng = np.random.default_rng(0)
    index = explain.NeighbourIndex(means)
    near = means[rng.choice(len(means), QUERIES)] + rng.normal(0, 0.1, (QUERIES, 2))
    anywhere = np.stack([rng.uniform(*VIEW[0], QUERIES), rng.uniform(*VIEW[1], QUERIES)], 1)
    k = rules.DEFAULT_NEIGHBOURS
    rows = [row("build the neighbour index", timed(lambda: explain.NeighbourIndex(means), 20))]
    for name, points in (("near the atlas", near), ("anywhere in the view", anywhere)):
        queries = iter(points)
        rows.append(row(f"k-NN query, k = {k}, {name}", timed(lambda: index.query(next(queries), k), QUERIES), "us"))
    grid = explain.LayerGrid(*VIEW, *LAYER_CELLS)
    rows.append(row(f"prior layer ({model.prior.components}-component mixture), {grid.cols} x {grid.rows}",
                    timed(lambda: explain.prior_log_density(model.prior, grid), 5)))
    rows.append(row(f"aggregate posterior layer ({len(means):,} posteriors), {grid.cols} x {grid.rows}",
                    timed(lambda: explain.aggregate_log_density(means, extra.z_logvar, grid), 5)))
    ratio = rules.LAYER_CELL_PIXELS["entropy"] // rules.LAYER_CELL_PIXELS["aggregate"]
    coarse = explain.LayerGrid(*VIEW, LAYER_CELLS[0] // ratio, LAYER_CELLS[1] // ratio)
    rows.append(row(f"entropy layer, {coarse.cols} x {coarse.rows} decodes + entropy",
                    timed(lambda: explain.decoder_entropy(model.decode(coarse.points(2))), 5)))
    sizes = []
    for name in fmt.bundled_names():
        bundle = fmt.read(name)
        total = sum(entry["bytes"] for entry in bundle.manifest.files.values())
        added = bundle.manifest.files[fmt.ATLAS_EXTRA]["bytes"]
        sizes.append([name, f"{added:,}", f"{total - added:,}", f"{added / (total - added):.0%}"])
    markdown = section(
        "Explaining the model: neighbours, layers, atlas extras",
        f"runtime/explain.py on the bundled MNIST atlas ({len(means):,} points), one thread of numpy; the "
        f"explorers compute a layer once per view and cache it. Median and p99 over the repeats.", "",
        table(["computation", "median", "p99"], rows, right_aligned_from=1), "",
        "atlas_extra.npz of each bundled model (thumbnails at full size, grey levels as export/atlas_extra.py "
        "THUMBNAIL_LEVELS quantises them; z_logvar; recon_error):", "",
        table(["model", "atlas_extra.npz (bytes)", "the other files (bytes)", "added"], sizes, right_aligned_from=1),
        "", f"Load average before the run: {load_average:.1f} (other jobs shared the machine).",
        "", "`python benchmarks/explain_kernels.py`")
    publish("explain-kernels", markdown, write=not args.no_write)


if __name__ == "__main__":
    main()
