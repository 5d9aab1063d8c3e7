"""`export_bundle(run_dir, out_dir)`: a run's checkpoint -> a verified, self-describing model bundle.

The export is a short sequence of named stages (see `export_bundle`). The bundle is built in a
temporary directory beside its destination and renamed into place only when every check has passed,
so an export that fails (or is interrupted) never leaves a half bundle and never touches the one
already there; a destination it must not replace is refused before any work. See runtime/bundle.py
for the format.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import evaluation
from latent_atlas.runtime.doctor import installed
from latent_atlas.runtime.files import check_output_dir, directory_lock, replace_folder, staging_dir
from latent_atlas.runtime.limits import MAX_IW_SAMPLES, MAX_PRIOR_COMPONENTS
from latent_atlas.runtime.options import VARIANTS, WEIGHTS, Variant, Weights, check_choice
from latent_atlas.runtime.prior import Prior, StandardNormal
from latent_atlas.train import data, own_data
from latent_atlas.train.config import TrainConfig
from latent_atlas.train.evaluate import BINARIZATION_SEED, binarized_array, evaluate_elbo, load_model
from latent_atlas.train.likelihoods import BERNOULLI, Likelihood
from latent_atlas.train.model import VAE
from latent_atlas.train.run_state import RunState

from . import atlas_extra, mobile
from .onnx_export import export_onnx, save, set_metadata
from .prior_fit import fit_prior
from .variants import convert_fp16, quantize_int8
from .verify import ExportError, check_batch_sizes, check_parity, parity_latents

CALIBRATION_IMAGES = 1024
VERSIONED_PACKAGES = ("latent-atlas", "torch", "onnx", "onnxscript", "onnxruntime")
# How bundle.json's metrics were computed: from the bundle's own ONNX files with ONNX Runtime and numpy
# (runtime.evaluation), one posterior sample per image for the -ELBO and K for the IW bound.
METRICS_METHOD = "onnxruntime"
# ...and for a likelihood other than the Bernoulli: the trainer's evaluation (train.evaluate) of the exported
# weights in PyTorch, one posterior sample per image.
TORCH_METRICS_METHOD = "pytorch"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), **installed(VERSIONED_PACKAGES)}


def latent_stats(means: np.ndarray) -> dict[str, list[float]]:
    """Per-dim statistics of the test set's posterior means; the percentiles set grid extents."""
    stats = {"mean": means.mean(0), "std": means.std(0), "min": means.min(0), "max": means.max(0)}
    for q in (1, 5, 95, 99):
        stats[f"p{q:02d}"] = np.percentile(means, q, axis=0)
    return {k: [round(float(x), 6) for x in v] for k, v in stats.items()}


@dataclass(kw_only=True)
class ExportOptions:
    """What `latent-atlas export` was asked for, validated before any work. Keyword-only, so that a
    reordering of the fields can never hand one setting's value to another."""

    variant: Variant = "fp32"
    name: str | None = None
    force: bool = False
    verify: bool = True  # the ONNX Runtime vs PyTorch parity check
    iw_samples: int = evaluation.DEFAULT_IW_SAMPLES  # K of the importance-weighted bound recorded in bundle.json (0 = skip)
    # ...over the first this many test images (None: all). K decodes per image dominate an export's time:
    # the default keeps it to seconds, and bundle.json records the subset.
    iw_images: int | None = evaluation.QUICK_IW_IMAGES
    weights: Weights = "best"
    static_batch: int | None = None  # fix the batch axis (NNAPI / CoreML take no dynamic shape)
    ort_format: bool = False  # also write .ort files for onnxruntime's mobile builds (export/mobile.py)
    prior_components: int = 0  # > 0: fit a Gaussian-mixture prior to the training codes (export/prior_fit.py)
    atlas_extra: bool = True  # write atlas_extra.npz: thumbnails, log-variances, errors (export/atlas_extra.py)

    def __post_init__(self) -> None:
        if self.static_batch is not None:
            mobile.check_static_batch(self.static_batch)
        check_choice(self.variant, VARIANTS, "variant")
        check_choice(self.weights, WEIGHTS, "weights")
        if isinstance(self.iw_samples, bool) or not 0 <= self.iw_samples <= MAX_IW_SAMPLES:
            raise ValueError(f"--iw-samples must be from 0 to {MAX_IW_SAMPLES:,}, got {self.iw_samples}")
        if self.iw_images is not None and (isinstance(self.iw_images, bool) or self.iw_images < 1):
            raise ValueError(f"--iw-images must be a positive number of test images or 'all', got {self.iw_images}")
        if isinstance(self.prior_components, bool) or not 0 <= self.prior_components <= MAX_PRIOR_COMPONENTS:
            raise ValueError(f"--prior-components must be from 0 (the prior N(0, I)) to {MAX_PRIOR_COMPONENTS}, "
                             f"got {self.prior_components}")


def _holding_out_lock(function):
    """Runs `function` holding its `out_dir`'s lock (files.directory_lock): one writer per bundle, and what a
    killed writer left there is tidied first."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def locked(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        with directory_lock(Path(bound.arguments["out_dir"]), bound.arguments.get("command")):
            return function(*args, **kwargs)
    return locked


@dataclass
class ExportSource:
    """What is exported: a model, the run state that describes its training, its data (the test split
    describes it: the atlas, the parity images and the metrics) and its likelihood. `from_run` reads a
    run directory; a caller holding a model in memory (a test's tiny model) builds one directly."""

    model: VAE
    state: RunState
    dataset: own_data.PreparedData  # a built-in dataset or the run's own images, split as it was trained
    likelihood: Likelihood = BERNOULLI

    @classmethod
    def from_run(cls, run_dir, weights: Weights = "best", data_dir=None, log=_stderr) -> "ExportSource":
        model, state = load_model(run_dir, weights)
        dataset = own_data.for_run(run_dir, state, data_dir, log=log)
        return cls(model, state, dataset, model.likelihood)

    @functools.cached_property
    def x_test(self) -> np.ndarray:
        """The test split as the model reads it: float32 [N, C, H, W] in [0, 1]."""
        return data.to_float(self.dataset.test_images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.model.image_shape)


@_holding_out_lock
def export_bundle(run_dir: str | Path, out_dir: str | Path, options: ExportOptions | None = None, *,
                  data_dir: str | Path | None = None, command: str | None = None, log=_stderr, **settings) -> Path:
    """Exports a run's `best` (or `last`) weights to a bundle directory and returns its path.

    `options` (an ExportOptions) and/or its fields by keyword (`variant="int8"`, `iw_samples=0`, ...;
    over `options`): what to export, each setting described once, on ExportOptions."""
    options = dataclasses.replace(options or ExportOptions(), **settings)
    target = _target_state(Path(out_dir))
    source = ExportSource.from_run(run_dir, options.weights, data_dir, log)
    return _export(source, Path(out_dir), target, options, data_dir, command, log, str(run_dir))


@_holding_out_lock
def export_model(source: ExportSource, out_dir: str | Path, options: ExportOptions | None = None, *,
                 data_dir: str | Path | None = None, command: str | None = None, log=_stderr, **settings) -> Path:
    """`export_bundle` for a source already in memory (see ExportSource): the same stages and checks."""
    options = dataclasses.replace(options or ExportOptions(), **settings)
    return _export(source, Path(out_dir), _target_state(Path(out_dir)), options, data_dir, command, log, "the model")


def _export(source: ExportSource, out: Path, target: str, options: ExportOptions, data_dir, command: str | None, log,
            what: str) -> Path:
    manifest = _describe(source, options)
    _refuse_a_different_bundle(out, target, manifest, options.force)
    with _staging_dir(out) as tmp:
        log(f"exporting {what} ({manifest.training['weights']} weights, epoch {manifest.training['epoch']}) to ONNX")
        encoder_path, decoder_path = export_onnx(source.model, tmp, likelihood=source.likelihood)
        # The atlas and the grid extents: the test set's posterior means, from the exported encoder (ONNX
        # Runtime: the same numbers as PyTorch to 1e-6, in a third of the time).
        means = evaluation.open_pair(encoder_path, decoder_path)[0].encode(source.x_test, preprocess=False).mean
        manifest = manifest.replace(latent_stats=latent_stats(means))
        if options.verify:
            errors = check_parity(source.model, encoder_path, decoder_path, source.x_test[:256],
                                  parity_latents(manifest.latent_stats), likelihood=source.likelihood)
            log("parity with PyTorch: " + ", ".join(f"{k} {v:.2g}" for k, v in errors.items()))
        _convert_variant(tmp, source, options.variant, data_dir)
        check_batch_sizes(encoder_path, decoder_path, source.model.latent_dim, image_shape=source.image_shape)
        if options.prior_components:
            prior = fit_prior(evaluation.open_pair(encoder_path, decoder_path)[0], source.dataset.train_images,
                              options.prior_components, source.state.config.seed,
                              source.state.config.binarize == "dynamic", log)
            manifest = manifest.replace(prior=prior.to_json())
        manifest = manifest.replace(metrics=_measure(tmp, source.state.config, source.x_test, manifest.latent_prior,
                                                     options, log, source.likelihood, source.model))
        _check_finite(manifest.metrics, options.variant)
        if options.static_batch is not None:  # after the checks and metrics, which ran on the dynamic files
            errors = mobile.make_static_batch(tmp, options.static_batch)
            log(f"batch fixed to {options.static_batch}; max |static - dynamic| "
                + ", ".join(f"{k} {v:.2g}" for k, v in errors.items()))
        manifest = _seal(tmp, manifest, source, means, command, options.atlas_extra)
        if _install(tmp, out, target, manifest, options.force, log):
            return out
    sizes = ", ".join(f"{f} {e['bytes'] / 1024:.0f} KiB" for f, e in manifest.files.items())
    log(f"wrote {out} ({options.variant}): test -ELBO {manifest.metrics['test_neg_elbo']:.2f} nats; {sizes}")
    return out


# --- stages, in the order export_bundle runs them -------------------------------------------------

def _target_state(out: Path) -> str:
    """'absent', 'empty' or 'bundle'; anything else is refused before any work is done."""
    check_output_dir(out)
    if not out.exists():
        return "absent"
    if not any(out.iterdir()):
        return "empty"
    if not (out / fmt.MANIFEST).is_file():
        raise FileExistsError(f"{out} is not empty and holds no bundle; refusing to write into it")
    return "bundle"


def _describe(source: ExportSource, options: ExportOptions) -> fmt.Manifest:
    """The manifest's every key that does not depend on the ONNX files (those are filled by `_seal`)."""
    config, dataset = source.state.config, source.dataset
    return fmt.Manifest(
        name=options.name or dataset.name, variant=options.variant, latent_dim=source.model.latent_dim,
        image_shape=source.image_shape, likelihood=source.likelihood.to_json(),
        dataset=fmt.DatasetEntry.from_json(dataset.record(), Path(fmt.MANIFEST)),
        training={"config": config.to_dict(), "commands": source.state.commands, "seed": config.seed,
                  "epoch": source.state.weights_epoch(options.weights),
                  "weights": source.state.resolve_weights(options.weights),
                  # which figure picked the best epoch (a metrics.jsonl key: split prefix + figure)
                  "selected_by": source.state.selected_by,
                  **({"initialized_from": source.state.initialized_from} if source.state.initialized_from else {})},
        latent_stats={}, versions=versions(), static_batch=options.static_batch,  # latent_stats: after export
        runtimes=tuple(mobile.runtimes(options.variant, options.static_batch, options.ort_format)),
        ort_optimization_style=mobile.ort_style(options.static_batch) if options.ort_format else None)


def _refuse_a_different_bundle(out: Path, target: str, manifest: fmt.Manifest, force: bool) -> None:
    """Without --force, a bundle already in `out` that describes other weights or options is refused
    now, not after the export (a bundle that may be the same is compared again, whole, at the end)."""
    if target != "bundle" or force:
        return
    try:
        existing = fmt.Manifest.load(out).content()
    except (OSError, ValueError):
        existing = None
    ours = manifest.content()
    known_now = [k for k in ours if k not in ("metrics", "latent_stats", "prior", "files", "onnx", "versions")]
    if existing is None or any(existing.get(k) != ours[k] for k in known_now):
        raise FileExistsError(f"{out} already holds a different bundle; pass --force to replace it")


def _staging_dir(out: Path):
    """A temporary directory beside `out`, removed whatever happens (it is renamed away on success)."""
    return staging_dir(out)


def _convert_variant(tmp: Path, source: ExportSource, variant: Variant, data_dir) -> None:
    if variant == "int8":
        seed = source.state.config.seed
        rng = np.random.default_rng(seed)
        train_images = source.dataset.train_images
        calibration = data.to_float(train_images[rng.choice(len(train_images), min(CALIBRATION_IMAGES, len(train_images)),
                                                            replace=False)])
        with torch.no_grad():
            calibration_z = source.model.encode(torch.from_numpy(calibration)).sample(
                torch.Generator().manual_seed(seed)).numpy()
        quantize_int8(tmp, tmp, calibration, calibration_z)
    elif variant == "fp16":
        convert_fp16(tmp, tmp)


def _measure(tmp: Path, config: TrainConfig, x_test: np.ndarray, prior: Prior, options: ExportOptions, log,
             likelihood: Likelihood = BERNOULLI, model: VAE | None = None) -> dict:
    """The test -ELBO (and the IW bound for fp32) from the exported files themselves, under the bundle's
    prior (with a fitted prior, the bound under N(0, I) too, from the same samples); a model trained on
    binarized pixels is measured on the test set binarized as the trainer did (evaluate.binarized_array).
    The runtime's numpy evaluation is the Bernoulli's; a model of another likelihood is measured with the
    trainer's PyTorch evaluation of that likelihood instead (`_measure_torch`)."""
    if likelihood.name != BERNOULLI.name:
        return _measure_torch(model, config, x_test, prior, options, likelihood)
    encoder, decoder = evaluation.open_pair(tmp / fmt.ENCODER, tmp / fmt.DECODER)
    metrics = {}
    if config.binarize == "dynamic":
        x_test = binarized_array(x_test)
        metrics.update(binarized=True, binarization_seed=BINARIZATION_SEED)
    metrics.update(evaluation.neg_elbo(encoder, decoder, x_test, seed=config.seed, prior=prior))
    if options.iw_samples > 0 and options.variant == "fp32":
        subset = x_test[: options.iw_images]
        log(f"importance-weighted bound with K={options.iw_samples} on {len(subset):,} of {len(x_test):,} "
            f"test images")
        priors = {"prior": prior}
        if not isinstance(prior, StandardNormal):
            priors["standard_normal"] = StandardNormal(prior.latent_dim)
        iw = evaluation.iw_log_likelihoods(encoder, decoder, subset, priors, options.iw_samples, seed=config.seed)
        metrics.update(test_iw_nll=-float(iw["prior"].mean()), iw_samples=options.iw_samples, iw_images=len(subset))
        if "standard_normal" in iw:
            metrics[fmt.IW_NLL_STANDARD_NORMAL] = -float(iw["standard_normal"].mean())
    metrics["computed_with"] = METRICS_METHOD
    return _rounded(metrics, likelihood, x_test.shape[1:])


def _check_finite(metrics: dict, variant: Variant) -> None:
    """A figure that is not a number means the files' arithmetic overflowed on the test set (float16 ends at
    65504, which a wide posterior's samples can pass); bundle.json cannot hold it, and the files are refused."""
    bad = [key for key, value in metrics.items() if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        raise ExportError(f"the {variant} files give a non-finite {', '.join(bad)} on the test images (arithmetic "
                          f"beyond the {variant} range); the export was not written: export this model as fp32")


def _rounded(metrics: dict, likelihood: Likelihood, image_shape) -> dict:
    """The figures with the -ELBO in bits per dimension beside it (the likelihood says how), rounded."""
    metrics["test_bits_per_dim"] = float(likelihood.bits_per_dim(metrics["test_neg_elbo"], math.prod(image_shape)))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}


def _measure_torch(model: VAE | None, config: TrainConfig, x_test: np.ndarray, prior: Prior, options: ExportOptions,
                   likelihood: Likelihood) -> dict:
    """The -ELBO of a non-Bernoulli model under its likelihood, by train.evaluate (PyTorch, float32); no
    importance-weighted bound (the runtime's, which the exporter records, is the Bernoulli's)."""
    if model is None or not isinstance(prior, StandardNormal):
        raise ValueError(f"a {likelihood.name} model is measured with PyTorch under the prior N(0, I); a fitted "
                         f"prior is for Bernoulli models")
    figures = evaluate_elbo(model, torch.from_numpy(x_test), seed=config.seed, likelihood=likelihood)
    metrics = {f"test_{key}": value for key, value in figures.items() if key in ("neg_elbo", "recon", "kl")}
    metrics["computed_with"] = TORCH_METRICS_METHOD
    return _rounded(metrics, likelihood, x_test.shape[1:])


def _stamp_metadata(tmp: Path, manifest: fmt.Manifest) -> None:
    """The manifest's descriptive keys into each ONNX file's metadata_props (fmt.onnx_metadata)."""
    for filename, role in ((fmt.ENCODER, "encoder"), (fmt.DECODER, "decoder")):
        proto = onnx.load(tmp / filename)
        set_metadata(proto, fmt.onnx_metadata(manifest, role))
        save(proto, tmp / filename)


def _seal(tmp: Path, manifest: fmt.Manifest, source: ExportSource, means: np.ndarray, command: str | None,
          with_atlas_extra: bool = True) -> fmt.Manifest:
    """Metadata into each ONNX file, the atlas (and its extra file), the files' hashes, bundle.json; then loads
    it back."""
    _stamp_metadata(tmp, manifest)
    fmt.write_npz(tmp / fmt.ATLAS, z_mean=means.astype(np.float32), labels=source.dataset.atlas_labels())
    extra = [atlas_extra.for_export(tmp, source, manifest)] if with_atlas_extra else []
    ort_files = mobile.write_ort(tmp, manifest.ort_optimization_style) if manifest.ort_optimization_style else []
    latent, batch = source.model.latent_dim, manifest.static_batch or "N"
    manifest = manifest.replace(
        files=fmt.file_entries(tmp, (fmt.ENCODER, fmt.DECODER, fmt.ATLAS, *extra, *ort_files)),
        onnx={"opset": onnx.load(tmp / fmt.ENCODER).opset_import[0].version,
              "encoder": {"inputs": {fmt.ENCODER_INPUT: [batch, *source.image_shape]},
                          "outputs": {o: [batch, latent] for o in fmt.ENCODER_OUTPUTS}},
              "decoder": {"inputs": {fmt.DECODER_INPUT: [batch, latent]},
                          "outputs": {fmt.DECODER_OUTPUT: [batch, *source.image_shape]}}},
        export_command=command)
    _write_manifest(tmp, manifest)
    return manifest


def _write_manifest(tmp: Path, manifest: fmt.Manifest) -> None:
    manifest.write(tmp)
    fmt.read(tmp)  # what we wrote must load, checksums included


def _install(tmp: Path, out: Path, target: str, manifest: fmt.Manifest, force: bool, log) -> bool:
    """Moves the bundle into place; True when `out` already held exactly this bundle (left alone, and said)."""
    if target == "bundle" and not force:
        try:
            same = fmt.Manifest.load(out).content() == manifest.content()
        except (OSError, ValueError):
            same = False
        if same:
            log(f"{out} already holds this exact bundle; left as it was")
            return True
        raise FileExistsError(f"{out} already holds a different bundle; pass --force to replace it")
    replace_folder(tmp, out)
    return False


# --- a fitted prior for a bundle whose run is gone ------------------------------------------------

# The ExportOptions a refit uses: the rest describe how ONNX files are made, and it makes none.
FIT_PRIOR_SETTINGS = ("iw_samples", "iw_images", "force")


@_holding_out_lock
def fit_bundle_prior(bundle: str | Path, out_dir: str | Path, components: int, *, data_dir: str | Path | None = None,
                     command: str | None = None, log=_stderr, **settings) -> Path:
    """A copy of an fp32 bundle (a bundled model's name or a directory) with a Gaussian-mixture prior fitted
    to its training split's codes, as `export --prior-components` fits it, for a model whose run is gone.
    The graphs and weights are the bundle's; its metrics are measured again under the new prior and its
    files sealed again (their metadata carries the prior). The bundle it reads is left as it was.
    `settings`: the ExportOptions fields that apply to it (FIT_PRIOR_SETTINGS)."""
    unknown = sorted(set(settings) - set(FIT_PRIOR_SETTINGS))
    if unknown:
        raise TypeError(f"fit_bundle_prior takes {', '.join(FIT_PRIOR_SETTINGS)}, not {', '.join(unknown)}")
    options = ExportOptions(prior_components=components, **settings)
    if components < 1:
        raise ValueError(f"--components must be at least 1, got {components}")
    source = fmt.read(bundle)
    if source.variant != "fp32" or source.manifest.static_batch is not None or source.manifest.ort_optimization_style:
        raise ValueError(f"{source.path}: expected a plain fp32 bundle (dynamic batch, no .ort files); fit the prior "
                         f"on that, then make the other forms from it")
    if source.manifest.likelihood_name != BERNOULLI.name:
        raise ValueError(f"{source.path}: a {source.manifest.likelihood_name} model; a fitted prior is measured with the "
                         f"runtime's evaluation, which is the Bernoulli's (export --prior-components likewise)")
    out = Path(out_dir)
    if out.resolve() == source.path.resolve():
        raise ValueError(f"--out {out} is the bundle being read: write the new one elsewhere, so that the bundle "
                         f"you have stays as it is")
    target = _target_state(out)
    # A different model already in --out is refused now, not after the fit and the bound (minutes).
    _refuse_a_different_bundle(out, target, source.manifest, options.force)
    config = TrainConfig.from_dict(source.manifest.training["config"])
    # The bundle directory as the "run": a built-in dataset needs none, a folder of your own images is read
    # again and checked against the checksum the bundle recorded.
    dataset = own_data.prepare(config, source.path, data_dir, recorded=source.manifest.to_json()["dataset"],
                               log=log, write=False)
    with _staging_dir(out) as tmp:
        for filename in (fmt.ENCODER, fmt.DECODER, fmt.ATLAS):
            if (source.path / filename).is_file():
                shutil.copyfile(source.path / filename, tmp / filename)
        encoder = evaluation.open_pair(tmp / fmt.ENCODER, tmp / fmt.DECODER)[0]
        prior = fit_prior(encoder, dataset.train_images, components, config.seed, config.binarize == "dynamic", log)
        if command:  # export_command still says how the ONNX files were made
            prior.fitted["command"] = command
        manifest = source.manifest.replace(prior=prior.to_json())
        manifest = manifest.replace(metrics=_measure(tmp, config, data.to_float(dataset.test_images), prior, options,
                                                     log))
        _stamp_metadata(tmp, manifest)
        manifest = manifest.replace(files=fmt.file_entries(tmp, [f for f in (fmt.ENCODER, fmt.DECODER, fmt.ATLAS)
                                                                 if (tmp / f).is_file()]))
        _write_manifest(tmp, manifest)
        if _install(tmp, out, target, manifest, options.force, log):
            return out
    log(f"wrote {out}: test IW-{options.iw_samples} bound {manifest.metrics.get('test_iw_nll', float('nan')):.2f} nats "
        f"under the fitted prior, {manifest.iw_nll_standard_normal or float('nan'):.2f} under N(0, I)")
    return out
