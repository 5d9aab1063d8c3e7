"""A bundle's fitted prior: a Gaussian mixture over the codes its encoder gives the training split.

`latent-atlas export --prior-components M` calls `fit_prior` on the exported encoder, so the mixture,
the metrics measured with it and the ONNX files come from the same numbers. Why a fitted prior, and
what it is, is explained in runtime/prior.py; the gain it buys on each model is in docs/benchmarks.md.
"""

from __future__ import annotations

import time

import numpy as np

from latent_atlas.runtime import evaluation
from latent_atlas.runtime.prior import GaussianMixture, StandardNormal, fit_gaussian_mixture
from latent_atlas.train import data
from latent_atlas.train.evaluate import binarized_array

# Posterior draws per training image: the mixture fits the aggregate posterior q(z), not the means alone
# (a mixture of the means would be too narrow where q(z|x) is wide).
CODES_PER_IMAGE = 2
ENCODE_BATCH = 5000


def fit_prior(encoder, train_images: np.ndarray, components: int, seed: int, binarize: bool,
              log=lambda message: None) -> GaussianMixture:
    """A `components`-Gaussian mixture fitted by EM to CODES_PER_IMAGE draws from q(z|x) of every training
    image (uint8 [N, H, W] grey or [N, H, W, 3] colour); images of a model trained on binarized pixels are binarized once (seeded),
    as the trainer would show them. encoder: a runtime.Encoder."""
    if len(train_images) * CODES_PER_IMAGE < components:
        raise ValueError(f"cannot fit a {components}-component prior to the codes of {len(train_images)} training "
                         f"image(s); expected at least {components} codes")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    codes = []
    for first in range(0, len(train_images), ENCODE_BATCH):
        x = data.to_float(train_images[first:first + ENCODE_BATCH])
        if binarize:
            x = binarized_array(x, seed=seed + first)
        mean, logvar = encoder.encode(x, preprocess=False)
        codes += [evaluation.reparameterised(mean, logvar, rng.standard_normal(mean.shape, dtype=np.float32))
                  for _ in range(CODES_PER_IMAGE)]
    z = np.concatenate(codes).astype(np.float64)
    mixture, mean_log_likelihood = fit_gaussian_mixture(z, components, seed=seed)
    standard = float(StandardNormal(z.shape[1]).log_prob(z).mean())
    mixture.fitted = {"method": "expectation-maximisation", "split": "train", "codes": len(z),
                      "codes_per_image": CODES_PER_IMAGE, "binarized": binarize, "seed": seed,
                      "mean_log_likelihood": round(mean_log_likelihood, 4),
                      "standard_normal_mean_log_likelihood": round(standard, 4)}
    log(f"prior: a {components}-component Gaussian mixture fitted to {len(z):,} codes of the training split in "
        f"{time.perf_counter() - start:.0f} s; mean log p(z) {mean_log_likelihood:.3f} nats (N(0, I): {standard:.3f})")
    return mixture
