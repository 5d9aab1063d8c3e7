"""The pictures a run writes every epoch, to watch a model learn.

    reconstructions   test images (odd rows) above their reconstructions (even rows)
    samples           decodes of z ~ N(0, I), the prior
    manifold          10 x 10 decodes on the normal-quantile grid (0.05..0.95) of the Keras original
    latent            the test set's posterior means coloured by class (2-D latents only)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latent_atlas.runtime.images import grid_image
from latent_atlas.runtime.latent import grid_points, normal_quantiles

from .model import VAE


def _probs(model: VAE, z: np.ndarray | torch.Tensor, device) -> np.ndarray:
    z = torch.as_tensor(z, dtype=torch.float32, device=device)
    return model.decode_probs(z).float().cpu().numpy()


@torch.no_grad()
def save_epoch_plots(model: VAE, x_test: torch.Tensor, labels: np.ndarray, class_names: list[str],
                     out_dir: Path, epoch: int, seed: int = 0) -> list[Path]:
    """Writes this epoch's PNGs into out_dir and returns their paths. x_test: float [N, C, H, W]."""
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    device = x_test.device
    prefix = out_dir / f"epoch-{epoch:04d}"
    paths = []

    cols = min(8, len(x_test))  # up to 4 rows of 8; fewer for a small dataset of your own
    originals = x_test[: min(32, len(x_test)) // cols * cols]
    shape = tuple(originals.shape[1:])
    recon = model.decode_probs(model.encode(originals).mode())
    rows = torch.stack([originals.reshape(-1, cols, *shape), recon.reshape(-1, cols, *shape)], dim=1).reshape(-1, *shape)
    paths.append(_save(grid_image(rows.float().cpu().numpy(), ncols=cols, scale=2), f"{prefix}-reconstructions.png"))

    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(64, model.latent_dim, generator=generator)
    paths.append(_save(grid_image(_probs(model, z, device), ncols=8, scale=2), f"{prefix}-samples.png"))

    q = normal_quantiles(10)
    z = grid_points(q, q, latent_dim=model.latent_dim)
    paths.append(_save(grid_image(_probs(model, z, device), ncols=10, padding=0, scale=2), f"{prefix}-manifold.png"))

    if model.latent_dim == 2:
        means = torch.cat([model.encode(b).mean.float() for b in x_test.split(1000)]).cpu().numpy()
        paths.append(latent_scatter(means, labels, class_names, Path(f"{prefix}-latent.png"),
                                    title=f"Test-set posterior means, epoch {epoch}"))
    return paths


def _save(image, path: str) -> Path:
    image.save(path)
    return Path(path)


def latent_scatter(means: np.ndarray, labels: np.ndarray, class_names: list[str], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    cmap = plt.get_cmap("tab10")
    for label, name in enumerate(class_names):
        pts = means[labels == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=2, color=cmap(label % 10), label=name, alpha=0.6, rasterized=True)
    if not class_names:  # a dataset without labels: one uncoloured cloud, no legend
        ax.scatter(means[:, 0], means[:, 1], s=2, color="0.35", alpha=0.6, rasterized=True)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(title)
    if class_names:
        ax.legend(markerscale=5, fontsize=8, loc="upper right", framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
