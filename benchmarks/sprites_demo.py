"""The colour demo (`make sprites-model`): its figures and how well its 2-D map sorts the sprites' factors.

Reads the sprites bundle (default runtime/models/sprites, which `make sprites-model` writes) and writes
docs/benchmarks.md's section "sprites-demo":

  * the test figures the export recorded (-ELBO in nats and bits per dimension, KL, IW bound) and the
    epoch the validation split selected;
  * how the map organises each known factor, from the test set's posterior means: the share of points whose
    k nearest neighbours (leave-one-out, runtime.explain.NeighbourIndex) vote for their shape, the mean
    circular error of the neighbours' mean hue (in turns), and the R^2 of the neighbours' mean for scale and
    rotation; with each one's chance level (shuffled factors);
  * a picture, docs/screenshots/sprites-map.png: the atlas coloured by shape, the atlas in each sprite's
    own hue, and a 12 x 12 manifold of decodes.

    python benchmarks/sprites_demo.py [--bundle runtime/models/sprites] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import publish, section, table  # noqa: E402

from latent_atlas import runtime  # noqa: E402
from latent_atlas.runtime.explain import NeighbourIndex  # noqa: E402
from latent_atlas.runtime.explorer_rules import CLASS_COLOURS, rgb  # noqa: E402
from latent_atlas.train.sprites import hue_colour  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PICTURE = ROOT / "docs" / "screenshots" / "sprites-map.png"
NEIGHBOURS = 10
PANEL = 420  # pixels per side of each picture panel
SHUFFLE_SEED = 0


def neighbour_means(z: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each point's neighbours' values [M, k] (itself left out)."""
    index = NeighbourIndex(z)
    return np.stack([values[index.query(point, NEIGHBOURS + 1)[0][1:]] for point in z])


def organisation(z: np.ndarray, factors: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """How well the map's neighbourhoods predict each factor (see the module doc)."""
    out = {}
    shape = factors[:, names.index("shape")].astype(int)
    votes = neighbour_means(z, shape)
    majority = np.array([np.bincount(row, minlength=shape.max() + 1).argmax() for row in votes])
    out["shape: neighbours' majority is right"] = float((majority == shape).mean())
    hue = factors[:, names.index("hue")]
    angles = neighbour_means(z, hue) * 2 * np.pi
    mean_hue = (np.arctan2(np.sin(angles).mean(1), np.cos(angles).mean(1)) / (2 * np.pi)) % 1.0
    error = np.abs(mean_hue - hue)
    out["hue: neighbours' mean hue error (turns)"] = float(np.minimum(error, 1 - error).mean())
    for name in ("scale", "rotation"):
        values = factors[:, names.index(name)]
        predicted = neighbour_means(z, values).mean(1)
        out[f"{name}: R^2 of the neighbours' mean"] = float(1 - ((values - predicted) ** 2).sum()
                                                            / ((values - values.mean()) ** 2).sum())
    return out


def _points(z: np.ndarray, colours: np.ndarray) -> Image.Image:
    low, high = np.percentile(z, 0.5, axis=0), np.percentile(z, 99.5, axis=0)
    xy = (z - low) / (high - low) * (PANEL - 20) + 10
    picture = Image.new("RGB", (PANEL, PANEL), (250, 250, 250))
    draw = ImageDraw.Draw(picture)
    for (x, y), colour in zip(xy, colours):
        draw.ellipse((x - 2, PANEL - y - 2, x + 2, PANEL - y + 2), fill=tuple(int(c) for c in colour))
    return picture


def picture(model, z: np.ndarray, factors: np.ndarray, names: tuple[str, ...]) -> Image.Image:
    shape = factors[:, names.index("shape")].astype(int)
    by_shape = np.array([rgb(CLASS_COLOURS[s]) for s in shape])
    hue = factors[:, names.index("hue")]
    by_hue = np.array([hue_colour(h) for h in hue])
    grid = model.manifold(12).grid(padding=1).resize((PANEL, PANEL), Image.Resampling.NEAREST)
    out = Image.new("RGB", (3 * PANEL + 20, PANEL), (255, 255, 255))
    for i, panel in enumerate((_points(z, by_shape), _points(z, by_hue), grid.convert("RGB"))):
        out.paste(panel, (i * (PANEL + 10), 0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=str(ROOT / "runtime" / "models" / "sprites"),
                        help="the sprites bundle (default: what `make sprites-model` writes)")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/ alone")
    args = parser.parse_args()
    model = runtime.load(args.bundle)
    z, _ = model.atlas()
    extra = model.atlas_extra
    if extra is None or extra.factors is None:
        sys.exit(f"{args.bundle}: no atlas_extra.npz with factors; expected a bundle exported from sprites")
    names = tuple(extra.factor_names)
    manifest = json.loads((Path(args.bundle) / "bundle.json").read_text())
    metrics, training = manifest.get("metrics", {}), manifest.get("training", {})
    found = organisation(z, extra.factors, names)
    shuffled = extra.factors[np.random.default_rng(SHUFFLE_SEED).permutation(len(z))]
    chance = organisation(z, shuffled, names)
    figures = [[key, f"{metrics[key]:.4g}"] for key in ("test_neg_elbo", "test_bits_per_dim", "test_recon", "test_kl")
               if isinstance(metrics.get(key), (int, float))]
    if isinstance(metrics.get("test_iw_nll"), (int, float)):
        figures.append([f"test_iw_nll (K = {metrics.get('iw_samples')}, on {metrics.get('iw_images')} of the test images)",
                        f"{metrics['test_iw_nll']:.4g}"])
    figures.append([f"epoch of the {training.get('weights', '?')} weights (picked on the validation split)",
                    str(training.get("epoch", "?"))])
    markdown = section(
        "Sprites demo: a 64 x 64 x 3 model with a 2-D latent",
        f"`make sprites-model`: {model.name}, image shape {' x '.join(map(str, model.image_shape))}, likelihood "
        f"{manifest.get('likelihood', {}).get('name', 'bernoulli')}, {len(z):,} test images. Figures as the export "
        f"recorded them (nats per image unless stated).",
        "",
        table(["figure", "value"], figures, right_aligned_from=1),
        "",
        f"How the map sorts the known factors: each test point's {NEIGHBOURS} nearest neighbours on the map "
        "predict its factor; chance is the same with the factors shuffled.",
        "",
        table(["factor", "map", "chance"], [[key, f"{found[key]:.3f}", f"{chance[key]:.3f}"] for key in found],
              right_aligned_from=1),
        "",
        f"![The sprites' map coloured by shape, then in each sprite's hue, and a 12 x 12 manifold]"
        f"(screenshots/{PICTURE.name})",
    )
    if not args.no_write:
        picture(model, z, extra.factors, names).save(PICTURE)
    publish("sprites-demo", markdown, write=not args.no_write)


if __name__ == "__main__":
    main()
