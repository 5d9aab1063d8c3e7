"""A fitted prior against N(0, I) for the same encoder and decoder, on bundles (runtime/prior.py).

For each bundle: a Gaussian mixture is fitted to the codes of its training split for each component
count in --components (export/prior_fit.py: what `export --prior-components M` runs); the validation
split's importance-weighted bound under N(0, I) and under each mixture, from the same samples, picks
the count; then the test split's bound (all images) under N(0, I) and under the chosen mixture, from the
same samples, with the standard error of the paired difference. A model of binarized pixels is measured
on images binarized with the trainer's fixed seed, as its bundle.json figures are. Model choice on
validation, the test set only reports.

    python benchmarks/fitted_prior.py --bundles mnist-binarized mnist fashion-mnist

About 10 minutes per bundle on 2 cores with the defaults (most of it IW-500 on the 10,000 test images).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measured import open_bundle  # noqa: E402
from report import publish, section, table  # noqa: E402

from latent_atlas.export.prior_fit import fit_prior  # noqa: E402
from latent_atlas.runtime import evaluation  # noqa: E402
from latent_atlas.runtime.prior import StandardNormal  # noqa: E402


def measure(label: str, components: list[int], val_k: int, test_k: int, data_dir) -> dict:
    measured = open_bundle(label, data_dir)
    bundle, config, prepared, binarize = measured.bundle, measured.config, measured.prepared, measured.binarized
    encoder, decoder = evaluation.open_pair(bundle.encoder_path, bundle.decoder_path)
    normal = StandardNormal(bundle.latent_dim)
    fits, fit_seconds = {}, {}
    for m in components:
        start = time.perf_counter()
        fits[m] = fit_prior(encoder, prepared.train_images, m, config.seed, binarize, log=print)
        fit_seconds[m] = time.perf_counter() - start
    x_val = measured.as_measured(prepared.validation_images)
    val = evaluation.iw_log_likelihoods(encoder, decoder, x_val, {"normal": normal, **fits}, val_k, seed=config.seed)
    val_nll = {name: -float(v.mean()) for name, v in val.items()}
    chosen = min(components, key=lambda m: val_nll[m])
    print(f"{label}: validation IW-{val_k} " + ", ".join(f"{n}: {v:.3f}" for n, v in val_nll.items())
          + f"; chosen {chosen}", flush=True)
    start = time.perf_counter()
    x_test = measured.as_measured(prepared.test_images)
    test = evaluation.iw_log_likelihoods(encoder, decoder, x_test, {"normal": normal, "fitted": fits[chosen]}, test_k,
                                         seed=config.seed)
    gain = test["fitted"] - test["normal"]
    return {"name": label, "binarized": binarize, "val_nll": val_nll, "chosen": chosen,
            "fit_seconds": fit_seconds[chosen], "test_normal": -float(test["normal"].mean()),
            "test_fitted": -float(test["fitted"].mean()), "gain": float(gain.mean()),
            "gain_se": float(gain.std(ddof=1) / math.sqrt(len(gain))), "images": len(x_test),
            "test_seconds": time.perf_counter() - start,
            "fit": fits[chosen].fitted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", default=["mnist-binarized", "mnist", "fashion-mnist"],
                        help="bundled names or bundle directories, each named in the tables as given")
    parser.add_argument("--components", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--val-k", type=int, default=100)
    parser.add_argument("--test-k", type=int, default=500)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    results = [measure(b, args.components, args.val_k, args.test_k, args.data_dir) for b in args.bundles]
    val_columns = ["N(0, I)", *(f"{m} comp." for m in args.components)]
    rows = [[r["name"], "binarized" if r["binarized"] else "grey levels",
             *(f"{r['val_nll'][k]:.3f}" for k in ("normal", *args.components)), r["chosen"]] for r in results]
    test_rows = [[r["name"], f"{r['test_normal']:.2f}", f"{r['test_fitted']:.2f}",
                  f"{r['gain']:.3f} ± {r['gain_se']:.3f}", f"{r['fit_seconds']:.0f} s",
                  f"{r['fit']['standard_normal_mean_log_likelihood']:.3f} → {r['fit']['mean_log_likelihood']:.3f}"]
                 for r in results]
    publish("fitted_prior", section(
        "Fitted prior (`benchmarks/fitted_prior.py`)",
        f"The same encoder and decoder under two priors: N(0, I), which every model is trained with, and a "
        f"Gaussian mixture fitted by EM to two posterior draws per training image (`export --prior-components M`, "
        f"runtime/prior.py). Validation IW-{args.val_k} bound (−nats, {len(val_columns)} "
        f"priors from the same samples) picks M:",
        "",
        table(["bundle", "pixels", *val_columns, "chosen M"], rows, 2),
        "",
        f"Test IW-{args.test_k} bound on all {results[0]['images']:,} test images (binarized models: the trainer's "
        f"fixed binarization), both priors from the same samples; gain = mean paired difference ± its standard "
        f"error; fit = the EM fit's time; mean log p(z) of the training codes under N(0, I) → under the mixture:",
        "",
        table(["bundle", "N(0, I)", "fitted", "gain (nats)", "fit", "mean log p(z)"], test_rows, 1)),
        write=not args.no_write)


if __name__ == "__main__":
    main()
