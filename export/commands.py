"""`latent-atlas export`: a run directory -> a verified ONNX model bundle (needs the train extra)."""

from __future__ import annotations

import argparse
import shlex

from latent_atlas.runtime.evaluation import DEFAULT_IW_SAMPLES, QUICK_IW_IMAGES
from latent_atlas.runtime.limits import MAX_IW_SAMPLES
from latent_atlas.runtime.options import WEIGHTS, add_model_option

# The mixture's size when none is given: on every bundled model's validation split 50 components beat 10
# and came close to 100 (docs/benchmarks.md, "Fitted prior").
DEFAULT_PRIOR_COMPONENTS = 50


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a trained run to an ONNX model bundle",
                              description="Export a run's weights to encoder.onnx + decoder.onnx with metadata, "
                                          "checked against PyTorch, in a bundle directory.")
    p.add_argument("run_dir", help="a run directory written by 'latent-atlas train'")
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.add_argument("--name", default=None, help="the bundle's name (default: the dataset's)")
    variant = p.add_mutually_exclusive_group()
    variant.add_argument("--quantize", choices=["int8"], default=None,
                         help="static int8 QDQ quantization calibrated on training images (CPU edge devices)")
    variant.add_argument("--fp16", action="store_true", help="float16 weights and math for GPU providers (float32 I/O)")
    p.add_argument("--static-batch", type=_positive_int, default=None, metavar="N",
                   help="fix the batch size to N (recorded in the metadata): Android NNAPI and iOS CoreML take "
                        "no node with a dynamic shape; the files then run only at batch N")
    p.add_argument("--ort", action="store_true",
                   help="also write encoder.ort and decoder.ort (onnxruntime's ORT format, for its mobile builds)")
    p.add_argument("--weights", default="best", choices=WEIGHTS)
    _add_iw_options(p)
    p.add_argument("--prior-components", type=int, default=0, metavar="M",
                   help="fit a mixture of M Gaussians to the codes of the training images and record it as the "
                        "model's prior: what sampling draws from and the recorded bounds use (default 0: N(0, I); "
                        "what it gains: docs/benchmarks.md, \"Fitted prior\")")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch parity check")
    p.add_argument("--no-atlas-extra", action="store_true",
                   help="leave out atlas_extra.npz (the test images' thumbnails, posterior log-variances and "
                        "reconstruction errors: the explorers' neighbours, aggregate layer and error colouring)")
    p.add_argument("--force", action="store_true", help="replace a different bundle already in --out")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(handler=run_export)

    p = subparsers.add_parser("fit-prior", help="give a bundle a prior fitted to its training codes",
                              description="Write a copy of an fp32 bundle whose prior is a Gaussian mixture fitted to the "
                                          "codes its encoder gives the training images (what export "
                                          "--prior-components does, for a bundle whose run is gone, such as the "
                                          "bundled models). The graphs and weights stay; the metrics are measured "
                                          "again under the new prior.")
    add_model_option(p, "the bundle to refit: a bundled model's name (e.g. mnist-binarized) or a bundle directory",
                     deprecated_positional=True)
    p.add_argument("--out", required=True, help="bundle directory to write (not the bundle read)")
    p.add_argument("--components", type=_positive_int, default=DEFAULT_PRIOR_COMPONENTS, metavar="M",
                   help=f"Gaussians in the mixture (default {DEFAULT_PRIOR_COMPONENTS})")
    _add_iw_options(p)
    p.add_argument("--force", action="store_true", help="replace a different bundle already in --out")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(handler=run_fit_prior)


def _add_iw_options(p) -> None:
    p.add_argument("--iw-samples", type=int, default=DEFAULT_IW_SAMPLES,
                   help=f"K of the importance-weighted bound recorded in bundle.json, computed from the ONNX files "
                        f"(default {DEFAULT_IW_SAMPLES}; 0 = skip; at most {MAX_IW_SAMPLES:,})")
    p.add_argument("--iw-images", type=_images, default=QUICK_IW_IMAGES, metavar="N|all",
                   help=f"compute that bound on the first N test images, or on all of them (default "
                        f"{QUICK_IW_IMAGES:,}: seconds; all 10,000 take minutes on a laptop CPU)")


def run_fit_prior(args) -> int:
    # Checked before torch is imported, so a plain install hears what it typed wrong first.
    if args.model is None:  # not required by argparse while the positional spelling still works
        raise ValueError("say which bundle to refit: -m BUNDLE (a bundled model's name or a bundle directory)")
    from .exporter import fit_bundle_prior

    fit_bundle_prior(args.model, args.out, args.components, iw_samples=args.iw_samples, iw_images=args.iw_images,
                     force=args.force, data_dir=args.data_dir, command=shlex.join(["latent-atlas", *args.argv]))
    return 0


def run_export(args) -> int:
    from .exporter import ExportOptions, export_bundle

    options = ExportOptions(variant="int8" if args.quantize else ("fp16" if args.fp16 else "fp32"), name=args.name,
                            force=args.force, verify=not args.no_verify, iw_samples=args.iw_samples,
                            iw_images=args.iw_images, weights=args.weights, static_batch=args.static_batch,
                            ort_format=args.ort, prior_components=args.prior_components,
                            atlas_extra=not args.no_atlas_extra)
    export_bundle(args.run_dir, args.out, options, data_dir=args.data_dir,
                  command=shlex.join(["latent-atlas", *args.argv]))
    return 0


def _images(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive number of test images or 'all', got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
