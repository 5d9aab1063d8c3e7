"""atlas_extra.npz, what the explorers explain a model with (the format: runtime/bundle.py `AtlasExtra`).

One row per atlas point, in atlas.npz's order (the test set's): a small thumbnail of the image (the real
neighbours panel), the posterior's log-variance beside the atlas' mean (the aggregate posterior layer),
the reconstruction error -log p(x | z = mean) in nats (the map's error colouring), and the dataset's known
factors where it has them. Everything is computed from the bundle's own ONNX files, so it describes the
model the explorers run. `export` writes it into each new bundle (`--no-atlas-extra` leaves it out);
`add_to_bundle` adds it to a bundle already made, leaving its other files byte for byte:

    python -m latent_atlas.export.atlas_extra BUNDLE... [--data-dir DIR]

(how the shipped models got theirs: scripts/make-models.sh).
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import evaluation
from latent_atlas.runtime.bundle_schema import BERNOULLI
from latent_atlas.runtime.files import atomic_write, directory_lock
from latent_atlas.runtime.images import to_display
from latent_atlas.train import data
from latent_atlas.train.evaluate import binarized_array

# Grey levels a thumbnail keeps: 16 are indistinguishable at thumbnail size, and deflate packs the
# repeats they make into about half the bytes of 256 levels.
THUMBNAIL_LEVELS = 16
# The atlas' means and the encoder's, as read again: the same test images in the same order agree far
# closer than this; anything else means the data is not the atlas' and the rows would not match its points.
ATLAS_TOLERANCE = 1e-3


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def thumbnails(images: np.ndarray) -> np.ndarray:
    """uint8 [M, h, w] (grey) or [M, h, w, 3] (colour) of stored uint8 images: sides above
    bundle.MAX_THUMBNAIL_SIDE downscaled (area average, aspect kept), levels quantised to THUMBNAIL_LEVELS."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise ValueError(f"expected uint8 images [M, H, W] or [M, H, W, 3], got {images.dtype} {list(images.shape)}")
    height, width = images.shape[1:3]
    scale = min(1.0, fmt.MAX_THUMBNAIL_SIDE / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        images = np.stack([np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX)) for image in images])
    step = 255 / (THUMBNAIL_LEVELS - 1)
    return (np.floor(images / step + 0.5) * step + 0.5).astype(np.uint8)


def reconstruction_errors(decoder, means: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log p(x | z = mean) in nats per image under the Bernoulli (evaluation.bernoulli_log_likelihood), from
    the bundle's decoder: float32 [N]. targets: float32 [N, C, H, W] in [0, 1], the pixels the model's metrics
    score (binarized for a model trained on binarized pixels)."""
    return (-evaluation.bernoulli_log_likelihood(to_display(targets), decoder.decode(means))).astype(np.float32)


def likelihood_errors(model, likelihood, means: np.ndarray, targets: np.ndarray, batch: int = 1000) -> np.ndarray:
    """-log p(x | z = mean) in nats per image under a likelihood the runtime's numpy evaluation lacks (its
    train/likelihoods.py definition, on the model's own decoder output): float32 [N]."""
    with torch.no_grad():
        parts = [likelihood.nll(model.decode(torch.from_numpy(means[s:s + batch])), torch.from_numpy(targets[s:s + batch]))
                 for s in range(0, len(means), batch)]
    return torch.cat(parts).numpy().astype(np.float32)


def compute(folder: Path, dataset, binarize: bool, factor_names=(), atlas_means: np.ndarray | None = None,
            errors=None) -> dict:
    """The arrays of atlas_extra.npz for the bundle files in `folder` and the test split of `dataset` (a
    train.own_data.PreparedData: `test_images`, and `test_factors` [M, F] where the dataset knows factors).
    With `atlas_means`, the encoder's means must match them (the same points in the same order). `errors`:
    (means, targets) -> recon_error, the Bernoulli's from the bundle's decoder when None."""
    encoder, decoder = evaluation.open_pair(Path(folder) / fmt.ENCODER, Path(folder) / fmt.DECODER)
    x = data.to_float(dataset.test_images)
    posterior = encoder.encode(x, preprocess=False)
    if atlas_means is not None:
        if atlas_means.shape != posterior.mean.shape:
            raise ValueError(f"the atlas holds {list(atlas_means.shape)} codes, the test set gives "
                             f"{list(posterior.mean.shape)}: not the data the atlas was made from")
        gap = float(np.abs(atlas_means - posterior.mean).max(initial=0.0))
        if gap > ATLAS_TOLERANCE:
            raise ValueError(f"the encoder's codes of the test set differ from the atlas' by up to {gap:.3g}: not the "
                             f"data (or order) the atlas was made from")
    targets = binarized_array(x) if binarize else x
    arrays = {"thumbnails": thumbnails(dataset.test_images), "z_logvar": posterior.logvar.astype(np.float32),
              "recon_error": (errors or functools.partial(reconstruction_errors, decoder))(posterior.mean, targets)}
    factors = getattr(dataset, "test_factors", None)
    if factor_names:
        if factors is None or np.shape(factors) != (len(x), len(factor_names)):
            raise ValueError(f"dataset.factor_names names {len(factor_names)} factors, but the test set carries "
                             f"{'none' if factors is None else list(np.shape(factors))}")
        arrays["factors"] = np.asarray(factors, np.float32)
    return arrays


def write(folder: Path, arrays: dict) -> str:
    """atlas_extra.npz into `folder` (fixed zip timestamps: the same arrays give the same bytes); its name."""
    atomic_write(Path(folder) / fmt.ATLAS_EXTRA, lambda tmp: fmt.write_npz(tmp, **arrays))
    return fmt.ATLAS_EXTRA


def for_export(folder: Path, source, manifest: fmt.Manifest) -> str:
    """What the exporter's sealing step calls: the file for the freshly written ONNX files in `folder` and the
    export's source (exporter.ExportSource: its dataset, config and likelihood)."""
    errors = (None if source.likelihood.name == BERNOULLI else
              functools.partial(likelihood_errors, source.model.eval(), source.likelihood))
    return write(folder, compute(folder, source.dataset, source.state.config.binarize == "dynamic",
                                 manifest.dataset.factor_names, errors=errors))


def add_to_bundle(bundle: str | Path, data_dir: str | Path | None = None, command: str | None = None,
                  log=_stderr) -> Path:
    """Writes atlas_extra.npz into an existing bundle (a bundled model's name or a directory) and lists it in
    its bundle.json; the ONNX files and atlas.npz stay byte for byte. The test set is read again (a built-in
    dataset by its checksums, your own images against the checksum the bundle recorded) and checked against
    the atlas before anything is written."""
    from latent_atlas.train import own_data
    from latent_atlas.train.config import TrainConfig

    source = fmt.read(bundle)
    if source.manifest.likelihood_name != BERNOULLI:  # its errors need the PyTorch model: export writes them
        raise ValueError(f"{source.path}: a {source.manifest.likelihood_name} model; its {fmt.ATLAS_EXTRA} is written "
                         f"by export (--force to re-export it), which has the model's own likelihood")
    if not source.atlas_path.is_file():
        raise fmt.BundleError(f"{source.path}: has no {fmt.ATLAS}, whose points {fmt.ATLAS_EXTRA} would describe")
    with directory_lock(source.path, command):
        config = TrainConfig.from_dict(source.manifest.training["config"])
        dataset = own_data.prepare(config, source.path, data_dir, recorded=source.manifest.to_json()["dataset"],
                                   log=log, write=False)
        arrays = compute(source.path, dataset, config.binarize == "dynamic", source.manifest.dataset.factor_names,
                         atlas_means=source.read_atlas()[0])
        write(source.path, arrays)
        files = {**source.manifest.files, **fmt.file_entries(source.path, (fmt.ATLAS_EXTRA,))}
        manifest = source.manifest.replace(files=files)
        atomic_write(source.path / fmt.MANIFEST, lambda tmp: tmp.write_text(manifest.text(), encoding="utf-8"))
        fmt.read(source.path)  # what we wrote must load, checksums included
    log(f"wrote {source.path / fmt.ATLAS_EXTRA} ({files[fmt.ATLAS_EXTRA]['bytes']:,} bytes)")
    return source.path / fmt.ATLAS_EXTRA


def main(argv: list[str] | None = None) -> int:
    """`python -m latent_atlas.export.atlas_extra BUNDLE...`: add_to_bundle for each bundle named."""
    parser = argparse.ArgumentParser(prog="python -m latent_atlas.export.atlas_extra",
                                     description="Add atlas_extra.npz to existing bundles (export writes it by "
                                                 "default); their ONNX files and atlas.npz stay byte for byte.")
    parser.add_argument("bundles", nargs="+", metavar="BUNDLE", help="a bundled model's name or a bundle directory")
    parser.add_argument("--data-dir", default=None, help="where the datasets are (default: LATENT_ATLAS_DATA)")
    args = parser.parse_args(argv)
    command = shlex.join([parser.prog, *(sys.argv[1:] if argv is None else argv)])
    try:
        for bundle in args.bundles:
            add_to_bundle(bundle, args.data_dir, command)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
