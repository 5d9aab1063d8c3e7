"""The latent prior p(z) a bundle's decoder is meant to be sampled from (torch-free).

A VAE is trained with the prior N(0, I), but the codes its encoder gives the training images (the
aggregate posterior, q(z) = mean over x of q(z|x)) never fill N(0, I) exactly: in 2-D they form clusters
with thinner regions between them. A Gaussian mixture fitted to those codes is a better prior for the
same decoder: it puts less mass where no image is coded, so the model gives the data a higher
likelihood (the importance-weighted bound uses it as p(z)) and draws from it land where the decoder has
seen codes. This is the ex-post density estimate of Ghosh et al., "From Variational to Deterministic
Autoencoders" (ICLR 2020, https://arxiv.org/abs/1903.12436); the bound with any fixed prior
is still a lower bound on log p(x) of the model with that prior (Burda et al. 2015).

bundle.json "prior": absent or {"kind": "standard_normal"} is N(0, I); {"kind": "gaussian_mixture",
"weights" [M], "means" [M][D], "covariances" [M][D][D], "fitted": {...how}} is the mixture. `from_json`
is the one reader, `to_json` the one writer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

STANDARD_NORMAL = "standard_normal"
GAUSSIAN_MIXTURE = "gaussian_mixture"
LOG_2PI = math.log(2.0 * math.pi)
# Added to each fitted covariance's diagonal: keeps a component that collapses onto a few codes invertible.
COVARIANCE_FLOOR = 1e-6


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log sum exp(a) along `axis`, without overflow (the runtime has no scipy); the one copy the runtime's
    numpy math (this module and runtime/evaluation.py) uses."""
    top = a.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))).squeeze(axis)


class StandardNormal:
    """N(0, I), the prior every model is trained with."""

    kind = STANDARD_NORMAL

    def __init__(self, latent_dim: int):
        self.latent_dim = int(latent_dim)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log p(z) summed over latent dims; z [..., D]."""
        return -0.5 * np.sum(LOG_2PI + np.asarray(z, np.float64) ** 2, axis=-1)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((int(n), self.latent_dim), dtype=np.float32)

    def to_json(self) -> dict:
        return {"kind": self.kind}

    def __repr__(self) -> str:
        return f"StandardNormal(latent_dim={self.latent_dim})"


class GaussianMixture:
    """sum_m weights[m] N(means[m], covariances[m]), full covariances."""

    kind = GAUSSIAN_MIXTURE

    def __init__(self, weights: Any, means: Any, covariances: Any, fitted: dict | None = None):
        self.weights = np.asarray(weights, np.float64)
        self.means = np.asarray(means, np.float64)
        self.covariances = np.asarray(covariances, np.float64)
        self.fitted = dict(fitted or {})
        m = len(self.weights)
        if self.weights.ndim != 1 or m < 1 or self.means.ndim != 2 or len(self.means) != m:
            raise ValueError(f"a Gaussian mixture needs weights [M] and means [M, D] for the same M >= 1, got "
                             f"shapes {self.weights.shape} and {self.means.shape}")
        d = self.means.shape[1]
        if self.covariances.shape != (m, d, d):
            raise ValueError(f"covariances must have shape [M, D, D] = {[m, d, d]}, got {list(self.covariances.shape)}")
        if not (np.isfinite(self.weights).all() and (self.weights >= 0).all() and abs(self.weights.sum() - 1) < 1e-6):
            raise ValueError("mixture weights must be non-negative and sum to 1")
        if not (np.isfinite(self.means).all() and np.isfinite(self.covariances).all()):
            raise ValueError("mixture means and covariances must be finite")
        try:
            self._cholesky = np.linalg.cholesky(self.covariances)
        except np.linalg.LinAlgError:
            raise ValueError("every mixture covariance must be symmetric positive definite") from None
        self._log_det = 2.0 * np.log(np.diagonal(self._cholesky, axis1=-2, axis2=-1)).sum(-1)
        self._whiten = np.linalg.inv(self._cholesky)  # L^-1: |L^-1 (z - mean)|^2 is the Mahalanobis distance

    @property
    def latent_dim(self) -> int:
        return self.means.shape[1]

    @property
    def components(self) -> int:
        return len(self.weights)

    def component_log_probs(self, z: np.ndarray) -> np.ndarray:
        """log weights[m] + log N(z; means[m], covariances[m]), shape [N, M] for z [N, D]."""
        diff = np.asarray(z, np.float64)[:, None, :] - self.means[None]  # [N, M, D]
        solved = np.einsum("mij,nmj->nmi", self._whiten, diff, optimize=True)
        with np.errstate(divide="ignore"):
            log_weights = np.log(self.weights)
        return log_weights[None] - 0.5 * (self.latent_dim * LOG_2PI + self._log_det[None] + (solved ** 2).sum(-1))

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log p(z); z [..., D]."""
        z = np.asarray(z, np.float64)
        flat = z.reshape(-1, z.shape[-1])
        return logsumexp(self.component_log_probs(flat), axis=1).reshape(z.shape[:-1])

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        which = rng.choice(self.components, size=int(n), p=self.weights / self.weights.sum())
        eps = rng.standard_normal((int(n), self.latent_dim))
        return (self.means[which] + np.einsum("nij,nj->ni", self._cholesky[which], eps)).astype(np.float32)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "weights": self.weights.tolist(), "means": self.means.tolist(),
               "covariances": self.covariances.tolist()}
        return {**out, "fitted": self.fitted} if self.fitted else out

    def __repr__(self) -> str:
        return f"GaussianMixture(components={self.components}, latent_dim={self.latent_dim})"


Prior = StandardNormal | GaussianMixture


def from_json(value: Any, latent_dim: int) -> Prior:
    """The prior bundle.json describes; raises ValueError saying what was expected."""
    if value is None or value == {}:
        return StandardNormal(latent_dim)
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind == STANDARD_NORMAL:
        return StandardNormal(latent_dim)
    if kind != GAUSSIAN_MIXTURE:
        raise ValueError(f"prior must be {{\"kind\": \"{STANDARD_NORMAL}\"}} or {{\"kind\": \"{GAUSSIAN_MIXTURE}\", "
                         f"weights, means, covariances}}, got {value!r:.80}")
    try:
        mixture = GaussianMixture(value["weights"], value["means"], value["covariances"], value.get("fitted"))
    except KeyError as exc:
        raise ValueError(f"a {GAUSSIAN_MIXTURE} prior needs {exc}") from None
    if mixture.latent_dim != latent_dim:
        raise ValueError(f"the prior has {mixture.latent_dim} latent dims, the model {latent_dim}")
    return mixture


def fit_gaussian_mixture(z: np.ndarray, components: int, iterations: int = 100, tolerance: float = 1e-5,
                         seed: int = 0) -> tuple[GaussianMixture, float]:
    """A mixture fitted to codes z [N, D] by expectation-maximisation (Dempster, Laird & Rubin 1977), and its
    mean log-likelihood on them. Starts from `components` codes drawn at random (seeded) with the codes'
    covariance shrunk by the component count; stops when an iteration gains less than `tolerance` nats."""
    z = np.asarray(z, np.float64)
    if z.ndim != 2 or not 1 <= components <= len(z):
        raise ValueError(f"cannot fit {components} components to {len(z)} codes; expected 1 <= components <= codes")
    rng = np.random.default_rng(seed)
    floor = COVARIANCE_FLOOR * np.eye(z.shape[1])
    means = z[rng.choice(len(z), components, replace=False)]
    covariances = np.tile(np.cov(z.T).reshape(z.shape[1], z.shape[1]) / components, (components, 1, 1)) + floor
    mixture = GaussianMixture(np.full(components, 1.0 / components), means, covariances)
    previous = -np.inf
    for _ in range(iterations):
        log_probs = mixture.component_log_probs(z)  # E step: responsibilities
        log_likelihood = logsumexp(log_probs, axis=1)
        mean_log_likelihood = float(log_likelihood.mean())
        if mean_log_likelihood - previous < tolerance:
            break
        previous = mean_log_likelihood
        resp = np.exp(log_probs - log_likelihood[:, None])
        counts = resp.sum(0) + 1e-12  # M step
        means = resp.T @ z / counts[:, None]
        diff = z[:, None, :] - means[None]
        covariances = np.einsum("nm,nmi,nmj->mij", resp, diff, diff, optimize=True) / counts[:, None, None] + floor
        mixture = GaussianMixture(counts / counts.sum(), means, covariances)
    else:  # out of iterations: the figure above is the mixture's before this last M step
        mean_log_likelihood = float(mixture.log_prob(z).mean())
    return mixture, mean_log_likelihood
