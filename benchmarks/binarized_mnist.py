"""2-D models of dynamically binarized MNIST next to the literature's 2-D figures (issue 14).

Each run is one training seed of the same recipe; each bundle is that run exported with
`--iw-samples 500 --iw-images all`, so its bundle.json holds the IW-500 bound over all 10,000 test
images binarized with the trainer's fixed seed, computed from its ONNX files (the paper's estimator:
Davidson et al., "Hyperspherical Variational Auto-Encoders", UAI 2018, Table 1). This script reads
those, and measures from the bundles' ONNX files:

- each model's -ELBO under N(0, I), the paper's prior (a bundle with a fitted prior, `export
  --prior-components`, records its figures under that prior, and its IW-500 under N(0, I) beside them);

and from the first bundle's, under N(0, I):

- the spread that the binarization draw itself causes: the -ELBO and the IW-100 bound on the test set
  binarized with --binarizations other seeds (mean ± std over draws);
- a tighter estimate, IW-5000, on the first --tight-images test images (all 10,000 would be 50 million
  decodes, about 40 minutes of this 2-core CPU), next to IW-500 on the same images; and the decode
  rate of the bound, from which the time of IW-500 on all 10,000 follows;
- the per-epoch validation and test -ELBO of every run (metrics.jsonl), after those of the run it was
  fine-tuned from (`--init-from`), if any.

    python benchmarks/binarized_mnist.py --runs RUN0 RUN1 RUN2 --bundles BUNDLE0 BUNDLE1 BUNDLE2

About 12 minutes on 2 cores with the defaults (most of it IW-5000 and the IW-100 of each draw). Not in
`make bench`: it needs three trained runs and their exports (scripts/make-models.sh makes seed 0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import publish, section, table  # noqa: E402

import numpy as np  # noqa: E402

from latent_atlas.runtime import bundle as fmt  # noqa: E402
from latent_atlas.runtime import evaluation  # noqa: E402
from latent_atlas.runtime.prior import StandardNormal  # noqa: E402
from latent_atlas.train import data  # noqa: E402
from latent_atlas.train.checkpoint import load_checkpoint  # noqa: E402
from latent_atlas.train.config import TrainConfig  # noqa: E402
from latent_atlas.train.evaluate import BINARIZATION_SEED, binarized_array  # noqa: E402

# Davidson et al. 2018, Table 1, MNIST, d = 2: log-likelihood (IW-500) as -nats, mean ± std over runs.
PAPER = {"N-VAE (Gaussian), d = 2": (135.73, 0.83), "S-VAE (von Mises-Fisher), d = 2": (132.50, 0.73)}


def binary_test_set(data_dir, seed: int) -> np.ndarray:
    return binarized_array(data.to_float(data.load_dataset("mnist", data_dir).test_images), seed)


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def lineage(run: Path) -> list[tuple[dict, dict[int, dict]]]:
    """A run and the runs it was fine-tuned from (`--init-from`), the first training first: each its
    config (read as the trainer reads a saved run: a key an older run lacks is its default) and its
    metrics.jsonl records by epoch."""
    stages = []
    while True:
        state = load_checkpoint(run).state
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        stages.insert(0, (state.config.to_dict(), {r["epoch"]: r for r in records}))
        # A fine-tune from a bundle (`--init-from BUNDLE`) has no per-epoch records to follow.
        if not state.initialized_from or "run" not in state.initialized_from:
            return stages
        run = Path(state.initialized_from["run"])


def train_command(config: dict) -> str:
    """The command line of one training of the recipe, the seed left as S."""
    gradient = config["iwae_gradient"]
    start = "--init-from RUN" if config["init_from"] else f"--preset {config['preset']}"
    return (f"`latent-atlas train {start} --binarize dynamic --objective {config['objective']}"
            + (f" --k {config['importance_samples']}" if config["objective"] == "iwae" else "")
            + (f" --iwae-gradient {gradient}" if gradient != TrainConfig.iwae_gradient else "")
            + f" --batch-size {config['batch_size']} --lr {config['lr']:g} --epochs {config['epochs']}"
            f" --lr-decay-epochs {config['lr_decay_epochs']}"
            + (f" --patience {config['patience']}" if config["patience"] != TrainConfig.patience else "")
            + (f" --eval-images {config['eval_images']}" if config["eval_images"] is not None else "")
            + " --seed S`")


def evaluated_on(eval_images: list[int | None]) -> str:
    """Which images the per-epoch figures of each training cover (`--eval-images`), as a parenthesis."""
    if not any(eval_images):
        return ""
    if len(set(eval_images)) == 1:
        return f" (on the first {eval_images[0]:,} images of each split)"
    return " (" + "; ".join(f"training {i}: " + (f"the first {n:,} images of each split" if n else "all images")
                            for i, n in enumerate(eval_images, 1)) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run directories, one per training seed")
    parser.add_argument("--bundles", nargs="+", required=True, help="their bundles, in the same order")
    parser.add_argument("--binarizations", type=int, default=3)
    parser.add_argument("--tight-images", type=int, default=500)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    if len(args.runs) != len(args.bundles):
        parser.error("give one bundle per run")

    manifests = [fmt.Manifest.load(Path(b)) for b in args.bundles]
    for path, manifest in zip(args.bundles, manifests):
        m = manifest.metrics
        if not m.get("binarized") or m.get("iw_samples") != 500 or m.get("iw_images") != 10000:
            sys.exit(f"{path}: expected a binarized model exported with --iw-samples 500 --iw-images all, "
                     f"found {({k: m.get(k) for k in ('binarized', 'iw_samples', 'iw_images')})}")
    stages = [lineage(Path(run)) for run in args.runs]
    recipes = [[{k: v for k, v in config.items() if k not in ("seed", "init_from")} for config, _ in run]
               for run in stages]
    for path, recipe in zip(args.runs[1:], recipes[1:]):  # the table is one recipe over seeds
        if len(recipe) != len(recipes[0]):
            sys.exit(f"{path}: {len(recipe)} training(s) from scratch to the end, {args.runs[0]} {len(recipes[0])} "
                     "(one fine-tuned with --init-from, the other not?)")
        for stage, (ours, first) in enumerate(zip(recipe, recipes[0]), 1):
            differ = sorted(k for k in ours.keys() | first.keys() if ours.get(k) != first.get(k))
            if differ:
                sys.exit(f"{path}: training {stage} differs from {args.runs[0]}'s in {', '.join(differ)}")
    for path, manifest, run in zip(args.bundles, manifests, stages):
        if TrainConfig.from_dict(manifest.training["config"]).to_dict() != run[-1][0]:
            sys.exit(f"{path}: not exported from the run given in the same place of --runs")
    priors = [m.latent_prior for m in manifests]
    fitted = [p for p in priors if not isinstance(p, StandardNormal)]
    if fitted and (len(fitted) != len(priors) or len({p.components for p in fitted}) > 1):
        sys.exit("expected the same prior in every bundle (all N(0, I), or all fitted with the same "
                 f"--prior-components), found {priors}")
    seeds = [m.training["seed"] for m in manifests]
    iw500 = [m.iw_nll_standard_normal for m in manifests]  # the paper's figures are under N(0, I)
    iw500_fitted = [m.metrics["test_iw_nll"] for m in manifests] if fitted else []
    x_test = binary_test_set(args.data_dir, BINARIZATION_SEED)
    pairs = [evaluation.open_pair(Path(b) / fmt.ENCODER, Path(b) / fmt.DECODER) for b in args.bundles]
    elbo = [evaluation.neg_elbo(*pair, x_test, seed=seed)["test_neg_elbo"] for pair, seed in zip(pairs, seeds)]

    encoder, decoder = pairs[0]
    draws = {"elbo": [], "iw100": []}
    for seed in range(args.binarizations):
        x = binary_test_set(args.data_dir, seed)
        draws["elbo"].append(evaluation.neg_elbo(encoder, decoder, x, seed=0)["test_neg_elbo"])
        draws["iw100"].append(-float(evaluation.iw_log_likelihood(encoder, decoder, x, 100, seed=0).mean()))
        print(f"binarization {seed}: -ELBO {draws['elbo'][-1]:.2f}, IW-100 {draws['iw100'][-1]:.2f}", file=sys.stderr)

    subset = x_test[: args.tight_images]
    tight = {}
    for k in (500, 5000):
        start = time.perf_counter()
        tight[k] = -float(evaluation.iw_log_likelihood(encoder, decoder, subset, k, seed=0).mean())
        tight[f"{k}_s"] = time.perf_counter() - start
        print(f"IW-{k} on {len(subset)} images: {tight[k]:.2f} in {tight[f'{k}_s']:.0f} s", file=sys.stderr)
    rate = 5000 * len(subset) / tight["5000_s"]

    columns = ["model", "test −ELBO, N(0, I)", "test IW-500 (−log p(x) bound), N(0, I)"]
    rows = [[f"this project, seed {s}", f"{e:.2f}", f"{b:.2f}"] for s, e, b in zip(seeds, elbo, iw500)]
    rows.append([f"**this project, mean ± std over {len(seeds)} seeds**", mean_std(elbo), f"**{mean_std(iw500)}**"])
    rows += [[f"Davidson et al. 2018, {name}", "", f"{m:.2f} ± {s:.2f}"] for name, (m, s) in PAPER.items()]
    if fitted:  # a learned prior, unlike the paper's rows: a column of its own, never mixed into theirs
        columns.append(f"test IW-500, its fitted {fitted[0].components}-component prior")
        for row, value in zip(rows, [*(f"{v:.2f}" for v in iw500_fitted), mean_std(iw500_fitted)]):
            row.append(value)
        for row in rows[len(iw500_fitted) + 1:]:
            row.append("")

    def at_epoch(record: dict) -> str:  # an IWAE run's trained bound too, where its metrics.jsonl has it
        elbo = f"{record['val_neg_elbo']:.2f} / {record['test_neg_elbo']:.2f}"
        return elbo + (f" (−IWAE {record['val_neg_iwae']:.2f} / {record['test_neg_iwae']:.2f})"
                       if "val_neg_iwae" in record else "")

    # A fine-tune's epochs follow its source's, numbered +1, +2, ... (each training of a seed's lineage in turn),
    # and named by training where more than one fine-tune follows.
    def label(stage: int, n: int) -> str:
        return str(n) if not stage else f"+{n}" + (f" (training {stage + 1})" if len(stages[0]) > 2 else "")

    epoch_rows = []
    for stage in range(len(stages[0])):
        numbers = sorted(set().union(*(run[stage][1] for run in stages)))
        epoch_rows += [[label(stage, n), *(at_epoch(run[stage][1][n]) if n in run[stage][1] else "" for run in stages)]
                       for n in numbers]
    recipe = ", then ".join(train_command(config) for config, _ in stages[0])
    recipe += (", then `latent-atlas export RUN --iw-samples 500 --iw-images all"
               + (f" --prior-components {fitted[0].components}`" if fitted else "`"))
    markdown = section(
        "Dynamically binarized MNIST, 2-D latent, against the literature (`benchmarks/binarized_mnist.py`)",
        f"Recipe: {recipe}. Nats per image on the 10,000 test images binarized once with the trainer's seed "
        f"({BINARIZATION_SEED}), computed from each bundle's ONNX files; the best epoch chosen on the validation "
        "split. The paper's models are MLPs; ours is the seed's convolutional architecture, unchanged.",
        "",
        table(columns, rows, 1),
        "",
        f"The binarization draw itself (bundle `{args.bundles[0]}`, {args.binarizations} draws of the test set, "
        f"seeds 0–{args.binarizations - 1}): −ELBO {mean_std(draws['elbo'])}, IW-100 {mean_std(draws['iw100'])} "
        "(mean ± std over draws).",
        "",
        f"A tighter estimate on the first {len(subset):,} test images (IW-5000 on all 10,000 is 50 million decodes, "
        f"about {50e6 / rate / 60:.0f} minutes at this rate on this CPU): IW-500 {tight[500]:.2f}, "
        f"IW-5000 {tight[5000]:.2f}. The bound ran at {rate:,.0f} decodes/s (ONNX Runtime on every core, batched, "
        f"numpy for the rest), so IW-500 on all 10,000 takes about {5e6 / rate / 60:.1f} minutes.",
        "",
        "Per epoch, validation / test −ELBO (nats), and for IWAE runs that log it the validation / test K-sample "
        "bound they train and are selected on"
        + evaluated_on([config["eval_images"] for config, _ in stages[0]])
        + (" (+1, +2, …: the epochs of each fine-tune that follows):" if len(stages[0]) > 1 else ":"),
        "",
        table(["epoch", *(f"seed {s}" for s in seeds)], epoch_rows, 1),
    )
    publish("binarized_mnist", markdown, write=not args.no_write)


if __name__ == "__main__":
    main()
