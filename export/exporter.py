"""`export_bundle(run_dir, out_dir)`: a run's checkpoint -> a verified, self-describing model bundle.

The bundle is built in a temporary directory beside its destination and renamed into place only
when every check has passed, so an export that fails (or is interrupted) never leaves a half bundle
and never touches the one already there. See runtime/bundle.py for the format.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import onnx
import torch

from latent_atlas.runtime import bundle as fmt
from latent_atlas.train import data, own_data
from latent_atlas.train.evaluate import iw_log_likelihood, load_model
from latent_atlas.train.model import IMAGE_SHAPE, VAE

from .onnx_export import export_onnx, save, set_metadata
from .variants import convert_fp16, quantize_int8
from .verify import check_batch_sizes, check_parity, onnx_neg_elbo, parity_latents

CALIBRATION_IMAGES = 1024


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("latent-atlas", "torch", "onnx", "onnxscript", "onnxruntime"):
        try:
            out[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


@torch.no_grad()
def posterior_means(model: VAE, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    return np.concatenate([model.encode(torch.from_numpy(x[i:i + batch_size])).mean.numpy()
                           for i in range(0, len(x), batch_size)])


def latent_stats(means: np.ndarray) -> dict[str, list[float]]:
    """Per-dim statistics of the test set's posterior means; the percentiles set grid extents."""
    stats = {"mean": means.mean(0), "std": means.std(0), "min": means.min(0), "max": means.max(0)}
    for q in (1, 5, 95, 99):
        stats[f"p{q:02d}"] = np.percentile(means, q, axis=0)
    return {k: [round(float(x), 6) for x in v] for k, v in stats.items()}


def _target_state(out: Path) -> str:
    """'absent', 'empty' or 'bundle'; anything else is refused before any work is done."""
    if not out.exists():
        return "absent"
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if not any(out.iterdir()):
        return "empty"
    if not (out / fmt.MANIFEST).is_file():
        raise FileExistsError(f"{out} is not empty and holds no bundle; refusing to write into it")
    return "bundle"


def _same_bundle(a: Path, b: Path) -> bool:
    def content(path: Path) -> dict:
        manifest = json.loads((path / fmt.MANIFEST).read_text(encoding="utf-8"))
        manifest.pop("export_command", None)
        return manifest
    try:
        return content(a) == content(b)
    except (OSError, json.JSONDecodeError):
        return False


def _replace_dir(new: Path, out: Path) -> None:
    """Moves `new` onto `out`: the old bundle is renamed aside first and deleted only afterwards."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{new.name}")
        out.rename(old)
    try:
        new.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old)


def export_bundle(run_dir: str | Path, out_dir: str | Path, name: str | None = None, variant: str = "fp32",
                  force: bool = False, verify: bool = True, iw_samples: int = 100, weights: str = "best",
                  data_dir: str | Path | None = None, command: str | None = None, log=_stderr) -> Path:
    """Exports a run's `best` (or `last`) weights to a bundle directory and returns its path."""
    if variant not in fmt.VARIANTS:
        raise ValueError(f"variant must be one of {fmt.VARIANTS}, got {variant!r}")
    out = Path(out_dir)
    state = _target_state(out)
    model, meta = load_model(run_dir, weights)
    config = meta["config"]
    dataset = own_data.for_run(run_dir, meta, data_dir, log=log)  # built-in, or the run's own images
    x_test = data.to_float(dataset.test_images)

    means = posterior_means(model, x_test)
    stats = latent_stats(means)
    manifest = {
        "schema_version": fmt.SCHEMA_VERSION,
        "name": name or dataset.name,
        "variant": variant,
        "latent_dim": model.latent_dim,
        "image_shape": list(IMAGE_SHAPE),
        "pixel_range": [0.0, 1.0],
        "dataset": dataset.record(),
        "training": {"config": config, "commands": meta.get("commands", []), "seed": config["seed"],
                     "epoch": meta["best"]["epoch"] if meta["weights"] == "best" else meta["epoch"],
                     "weights": meta["weights"]},
        "latent_stats": stats,
        "versions": versions(),
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shared
    try:
        log(f"exporting {run_dir} ({meta['weights']} weights, epoch {manifest['training']['epoch']}) to ONNX")
        encoder_path, decoder_path = export_onnx(model, tmp)
        if verify:
            errors = check_parity(model, encoder_path, decoder_path, x_test[:256], parity_latents(stats))
            log("parity with PyTorch: " + ", ".join(f"{k} {v:.2g}" for k, v in errors.items()))
        if variant == "int8":
            rng = np.random.default_rng(config["seed"])
            train_images = dataset.train_images
            calibration = data.to_float(train_images[rng.choice(len(train_images), min(CALIBRATION_IMAGES, len(train_images)), replace=False)])
            with torch.no_grad():
                calibration_z = model.encode(torch.from_numpy(calibration)).sample(torch.Generator().manual_seed(config["seed"])).numpy()
            quantize_int8(tmp, tmp, calibration, calibration_z)
        elif variant == "fp16":
            convert_fp16(tmp, tmp)
        check_batch_sizes(encoder_path, decoder_path, model.latent_dim)

        metrics = onnx_neg_elbo(encoder_path, decoder_path, x_test, seed=config["seed"])
        if iw_samples > 0 and variant == "fp32":
            log(f"importance-weighted bound with K={iw_samples} (about a minute on a small CPU)")
            metrics["test_iw_nll"] = -iw_log_likelihood(model, torch.from_numpy(x_test), iw_samples, seed=config["seed"]).mean().item()
            metrics["iw_samples"] = iw_samples
        manifest["metrics"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}

        for filename, role in ((fmt.ENCODER, "encoder"), (fmt.DECODER, "decoder")):
            proto = onnx.load(tmp / filename)
            set_metadata(proto, fmt.onnx_metadata(manifest, role))
            save(proto, tmp / filename)
        fmt.write_npz(tmp / fmt.ATLAS, z_mean=means.astype(np.float32), labels=dataset.atlas_labels())
        manifest["files"] = {f: {"sha256": fmt.sha256_file(tmp / f), "bytes": (tmp / f).stat().st_size}
                             for f in (fmt.ENCODER, fmt.DECODER, fmt.ATLAS)}
        manifest["onnx"] = {"opset": onnx.load(encoder_path).opset_import[0].version,
                            "encoder": {"inputs": {fmt.ENCODER_INPUT: ["N", *IMAGE_SHAPE]},
                                        "outputs": {o: ["N", model.latent_dim] for o in fmt.ENCODER_OUTPUTS}},
                            "decoder": {"inputs": {fmt.DECODER_INPUT: ["N", model.latent_dim]},
                                        "outputs": {fmt.DECODER_OUTPUT: ["N", *IMAGE_SHAPE]}}}
        manifest["export_command"] = command
        (tmp / fmt.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        fmt.read(tmp, verify=True)  # what we wrote must load

        if state == "bundle" and not force:
            if _same_bundle(tmp, out):
                log(f"{out} already holds this exact bundle; left as it was")
                return out
            raise FileExistsError(f"{out} already holds a different bundle; pass --force to replace it")
        _replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    sizes = ", ".join(f"{f} {e['bytes'] / 1024:.0f} KiB" for f, e in manifest["files"].items())
    log(f"wrote {out} ({variant}): test -ELBO {manifest['metrics']['test_neg_elbo']:.2f} nats; {sizes}")
    return out
