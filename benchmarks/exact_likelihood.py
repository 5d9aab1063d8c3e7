"""A 2-D model's exact log-likelihood by quadrature, against the importance-weighted bound it is reported with.

The IW-K bound (runtime/evaluation.iw_log_likelihoods) samples the encoder's q(z|x), so it sits below
log p(x) by however badly q covers each image's posterior. With a 2-D latent the integral itself is in
reach: `evaluation.grid_log_likelihood` sums p(x|z) p(z) over a grid of the latent plane, decoded once and
shared by every image. For each bundle, on its test images (binarized models: the trainer's fixed
binarization, as their bundle.json figures are): the grid's convergence on the first --check-images
images (spacings 0.04, 0.02, 0.01), then -log p(x) on every test image under N(0, I) and under the
bundle's own prior, beside the IW-K bound from the same ONNX files, and how the gap between the two is
spread over the images.

    python benchmarks/exact_likelihood.py --bundles mnist-binarized mnist fashion-mnist

About 10 minutes per bundle on 2 cores (most of it IW-500 on the 10,000 test images).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measured import open_bundle  # noqa: E402
from report import publish, section, table  # noqa: E402

import numpy as np  # noqa: E402

from latent_atlas.runtime import evaluation  # noqa: E402
from latent_atlas.runtime.prior import STANDARD_NORMAL, StandardNormal  # noqa: E402

SPACINGS = (0.04, 0.02, 0.01)
LARGE_GAP = 1.0  # nats: an image whose posterior q covers badly


def measure(label: str, iw_k: int, check_images: int, images: int | None, data_dir) -> dict:
    measured = open_bundle(label, data_dir)
    bundle, config, binarize = measured.bundle, measured.config, measured.binarized
    x = measured.as_measured(measured.prepared.test_images[:images])
    encoder, decoder = evaluation.open_pair(bundle.encoder_path, bundle.decoder_path)
    priors = {"normal": StandardNormal(bundle.latent_dim), "own": bundle.prior}

    check = {s: -evaluation.grid_log_likelihood(decoder, x[:check_images], spacing=s) for s in SPACINGS}
    start = time.perf_counter()
    exact = evaluation.grid_log_likelihoods(decoder, x, priors)
    exact_seconds = time.perf_counter() - start
    start = time.perf_counter()
    bound = evaluation.iw_log_likelihoods(encoder, decoder, x, priors, iw_k, seed=config.seed)
    bound_seconds = time.perf_counter() - start
    gap = exact["own"] - bound["own"]  # per image; >= 0 in expectation
    large = gap > LARGE_GAP
    result = {"name": label, "binarized": binarize, "images": len(x), "prior": bundle.prior.kind,
              "check": {s: float(v.mean()) for s, v in check.items()},
              "check_max_diff": float(np.abs(check[0.02] - check[0.01]).max()),
              "exact": {k: -float(v.mean()) for k, v in exact.items()},
              "bound": {k: -float(v.mean()) for k, v in bound.items()},
              "gap_median": float(np.median(gap)), "large_share": float(large.mean()),
              "large_part": float(gap[large].sum() / gap.sum()), "gap_max": float(gap.max()),
              "exact_seconds": exact_seconds, "bound_seconds": bound_seconds}
    print(result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", default=["mnist-binarized", "mnist", "fashion-mnist"],
                        help="bundled names or bundle directories (2-D latents), each named in the tables as given")
    parser.add_argument("--iw-k", type=int, default=500)
    parser.add_argument("--check-images", type=int, default=500)
    parser.add_argument("--images", type=int, default=None, help="the first N test images only (default: all)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    results = [measure(b, args.iw_k, args.check_images, args.images, args.data_dir) for b in args.bundles]
    k = args.iw_k
    rows = [[r["name"], "binarized" if r["binarized"] else "grey levels",
             f"{r['bound']['normal']:.2f}", f"{r['exact']['normal']:.2f}",
             f"{r['bound']['normal'] - r['exact']['normal']:.2f}",
             f"{r['bound']['own']:.2f}" if r["prior"] != STANDARD_NORMAL else "",
             f"{r['exact']['own']:.2f}" if r["prior"] != STANDARD_NORMAL else "",
             f"{r['bound']['own'] - r['exact']['own']:.2f}" if r["prior"] != STANDARD_NORMAL else "",
             f"{r['exact_seconds']:.0f} s", f"{r['bound_seconds']:.0f} s"] for r in results]
    gap_rows = [[r["name"], f"{r['gap_median']:.3f}", f"{100 * r['large_share']:.1f}%",
                 f"{100 * r['large_part']:.0f}%", f"{r['gap_max']:.1f}"] for r in results]
    check_rows = [[r["name"], *(f"{r['check'][s]:.3f}" for s in SPACINGS), f"{r['check_max_diff']:.3f}"]
                  for r in results]
    publish("exact_likelihood", section(
        "Exact log-likelihood of the 2-D models (`benchmarks/exact_likelihood.py`)",
        f"−log p(x) in nats per image on {results[0]['images']:,} test images (binarized models: the trainer's "
        f"fixed binarization), by quadrature over the latent plane (`runtime.evaluation.grid_log_likelihood`: "
        f"spacing {evaluation.GRID_SPACING}, extent ±{evaluation.GRID_EXTENT:g}, {int(2 * evaluation.GRID_EXTENT / evaluation.GRID_SPACING + 1) ** 2:,} "
        f"decodes shared by every image), beside the IW-{k} bound of the same ONNX files (the encoder's q(z|x) as "
        f"proposal, the trainer's seed), under N(0, I) and under the bundle's fitted prior; bound − exact is what "
        f"the bound misses; time = the whole test set under both priors:",
        "",
        table(["bundle", "pixels", f"IW-{k}, N(0, I)", "exact, N(0, I)", "missed", f"IW-{k}, fitted prior",
               "exact, fitted prior", "missed", "exact: time", f"IW-{k}: time"], rows, 2),
        "",
        f"Where the fitted-prior gap lies, per image (exact − IW-{k} of log p(x); its expectation is ≥ 0): the "
        f"median, the images that miss more than {LARGE_GAP:g} nat, their share of the whole gap, the largest:",
        "",
        table(["bundle", "median gap", f"images > {LARGE_GAP:g} nat", "their share of the gap", "largest (nats)"],
              gap_rows, 1),
        "",
        f"The grid's convergence: −log p(x) under N(0, I) on the first {args.check_images} test images at three "
        f"spacings, and the largest change of one image's figure from 0.02 to 0.01:",
        "",
        table(["bundle", *(f"spacing {s}" for s in SPACINGS), "largest change"], check_rows, 1)),
        write=not args.no_write)


if __name__ == "__main__":
    main()
