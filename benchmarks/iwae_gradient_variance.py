"""How noisy the encoder's gradient is under `--objective iwae`, with the standard estimator and with
`--iwae-gradient dreg` (Tucker et al. 2018), at a run's trained weights and at initialisation.

For each of the first --images binarized test images, --copies independent draws of K samples each
give --copies independent estimates of the gradient that reaches the encoder (with respect to the
posterior's mean and log-variance: `model.iwae_posterior_gradients`). Per image and coordinate this
measures the variance of each estimator, and its signal-to-noise ratio |mean| / std (Rainforth et al.
2018 show the standard estimator's falls as K grows; DReG's should not). Both estimators have the same
mean (tests/train/test_iwae_binarized.py); only the scatter differs, and that decides whether DReG can
help a training run. The encoder's input noise is left out, so both see the same images.

    python benchmarks/iwae_gradient_variance.py --run runs/bundled-mnist-binarized

A few minutes on 2 idle cores with the defaults. Not in `make bench`: it needs a trained binarized run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import median, publish, section, table  # noqa: E402

import torch  # noqa: E402

from latent_atlas.train import data  # noqa: E402
from latent_atlas.train.evaluate import BINARIZATION_SEED, binarized, images_to_tensor, load_model  # noqa: E402
from latent_atlas.train.model import VAE, StepNoise, iwae_posterior_gradients  # noqa: E402


def measure(model: VAE, images: torch.Tensor, k: int, copies: int, seed: int = 0) -> dict[str, float]:
    """Medians over images and posterior coordinates: DReG's variance over the standard one's, and each
    estimator's signal-to-noise ratio."""
    ratios, snr = [], {"standard": [], "dreg": []}
    generator = torch.Generator().manual_seed(seed)
    for image in images:
        x = image[None].expand(copies, *image.shape)
        noise = StepNoise.draw(generator, copies, model.encoder.z_mean.out_features, image_noise=False, samples=k)
        found = {gradient: iwae_posterior_gradients(model, x, noise, gradient) for gradient in snr}
        ratios += (found["dreg"].var(0) / found["standard"].var(0)).tolist()
        for gradient, draws in found.items():
            snr[gradient] += (draws.mean(0).abs() / draws.std(0)).tolist()
    return {"variance_ratio": median(ratios), **{f"snr_{g}": median(v) for g, v in snr.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a run trained with --binarize dynamic")
    parser.add_argument("--weights", choices=("best", "last"), default="best")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--copies", type=int, default=200, help="independent draws per image")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    trained, state = load_model(args.run, args.weights)
    torch.manual_seed(state.config.seed)
    models = {f"trained ({args.weights}, epoch {state.weights_file(args.weights).epoch or state.epoch})": trained,
              "at initialisation": VAE(state.config.latent_dim)}
    test = images_to_tensor(data.load_dataset(state.config.dataset, args.data_dir).test_images)
    images = binarized(test)[: args.images]  # the evaluation's draw of the whole test set
    rows = []
    for name, model in models.items():
        model.float().train(False)
        for k in args.k:
            start = time.perf_counter()
            found = measure(model, images, k, args.copies)
            print(f"{name}, K={k}: {found} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            rows.append([name, k, f"{found['variance_ratio']:.2f}", f"{found['snr_standard']:.2f}",
                         f"{found['snr_dreg']:.2f}"])
    markdown = section(
        "The encoder's gradient under the IWAE objective: standard against DReG (`benchmarks/iwae_gradient_variance.py`)",
        f"Run `{args.run}` ({state.config.objective}, K = {state.config.importance_samples} in training). The first "
        f"{len(images)} test images, binarized with the trainer's seed ({BINARIZATION_SEED}); {args.copies} independent "
        "draws of K samples per image; the gradient with respect to the posterior's mean and log-variance, through "
        "which all of the encoder's gradient passes. Medians over images and coordinates. Both estimators have the "
        "same expectation; a variance ratio below 1 and a higher signal-to-noise ratio mean DReG's steps are less noisy.",
        "",
        table(["weights", "K", "variance, DReG / standard", "SNR, standard", "SNR, DReG"], rows, 1),
    )
    publish("iwae_gradient_variance", markdown, write=not args.no_write)


if __name__ == "__main__":
    main()
