"""`latent-atlas train`, `latent-atlas evaluate` (torch is imported only when they run) and `latent-atlas
make-dataset` (torch-free)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import types
import typing
from pathlib import Path
from typing import Literal

from latent_atlas.runtime.evaluation import DEFAULT_IW_SAMPLES, GRID_SPACING, check_grid

from .config import DEFAULT, TrainConfig
from .options import DEVICES, WEIGHTS, flag_of
from .sprites import DEFAULT_COUNT as SPRITES_COUNT, DEFAULT_SEED as SPRITES_SEED, DEFAULT_SIZE as SPRITES_SIZE


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a VAE on MNIST, Fashion-MNIST or your own images",
                              description="Train the convolutional VAE; a checkpoint is written after every epoch.")
    add_config_arguments(p)
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="data-parallel worker processes on this machine (torchrun, DDP; global batch = N x "
                        "--batch-size); for several machines run torchrun yourself (see the README)")
    p.add_argument("--data-dir", default=None, help="where the dataset files are (or are downloaded to); "
                   "default: $LATENT_ATLAS_DATA, then the user cache directory")
    p.add_argument("--out", default=None, help="run directory (default runs/DATASET-PRESET)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-plots", action="store_true", help="skip the per-epoch PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_train)

    p = subparsers.add_parser("evaluate", help="test-set -ELBO and importance-weighted NLL bound, in nats",
                              description="Evaluate a run's best weights on the test set (beta = 1, float32).")
    p.add_argument("run_dir")
    p.add_argument("--iw-samples", type=int, default=DEFAULT_IW_SAMPLES,
                   help=f"K for the importance-weighted bound (default {DEFAULT_IW_SAMPLES}; 0 = skip)")
    p.add_argument("--binarize", action="store_true", help="dynamically binarized test images (the literature's setting)")
    p.add_argument("--exact", action="store_true",
                   help="also the exact NLL, by quadrature over the latent plane (2-D latents; not a bound; "
                        f"{check_grid(2, GRID_SPACING) ** 2:,} decodes at the default grid step, shared by every image)")
    p.add_argument("--grid-spacing", type=float, default=None,
                   help=f"the quadrature's grid step for --exact (default {GRID_SPACING}; coarser is faster "
                        "but misses sharp posteriors)")
    p.add_argument("--weights", default="best", choices=WEIGHTS)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run_evaluate)

    p = subparsers.add_parser("make-dataset", help="write a procedural colour data set with known factors (sprites)",
                              description="Write DIR/sprites.npz: coloured shapes in the manner of dSprites, each drawn "
                                          "from known factors (shape, hue, scale, rotation, x, y), seeded; train on it "
                                          "with --dataset DIR/sprites.npz.")
    p.add_argument("name", choices=["sprites"])
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write sprites.npz into (created if needed)")
    p.add_argument("--count", type=int, default=SPRITES_COUNT, help=f"images (default {SPRITES_COUNT:,})")
    p.add_argument("--size", type=int, default=SPRITES_SIZE,
                   help=f"side in pixels, a multiple of 4 the model family supports (default {SPRITES_SIZE})")
    p.add_argument("--seed", type=int, default=SPRITES_SEED, help=f"the same seed gives the same file (default {SPRITES_SEED})")
    p.add_argument("--centred", action="store_true",
                   help="every shape at the image's centre: a 2-D latent then sorts shape and colour, not position")
    p.set_defaults(handler=run_make_dataset)


def run_train(args) -> int:
    if args.nproc is not None and "WORLD_SIZE" not in os.environ:
        from .distributed import launch_local

        return launch_local(args.nproc, _without_nproc(args.argv))
    from latent_atlas.runtime.files import check_output_dir

    from .checkpoint import load_checkpoint
    from .config import TrainConfig, resolve_config
    from .distributed import COMMAND_ENV
    from .train import train

    overrides = config_overrides(args)
    out = args.out or f"runs/{Path(args.dataset or TrainConfig.dataset).stem or 'data'}-{args.preset or TrainConfig.preset}"
    check_output_dir(out)  # before the data is loaded
    saved = load_checkpoint(out).state.config if args.resume else None
    config = resolve_config(saved, overrides, out)
    _check_dataset_options(args, config)
    for option, given, what in (("--k", args.importance_samples, "the importance samples"),
                                 ("--iwae-gradient", args.iwae_gradient, "the encoder's gradient estimator")):
        if given is not None and config.objective != "iwae":  # refused, not silently ignored
            raise ValueError(f"{option} sets {what} of --objective iwae, and this run's objective is "
                             f"{config.objective}: add --objective iwae, or drop {option}")
    command = os.environ.get(COMMAND_ENV) or shlex.join(["latent-atlas", *args.argv])
    state = train(config, out, data_dir=args.data_dir, resume=args.resume, progress=not args.quiet,
                  plots=not args.no_plots, command=command)
    if state.stopped == "interrupted":
        return 130
    metrics = state.metrics or {}
    if os.environ.get("RANK", "0") == "0":
        bits = (f" = {metrics['test_bits_per_dim']:.4f} bits/dim ({config.likelihood})"
                if config.likelihood != "bernoulli" and "test_bits_per_dim" in metrics else "")
        print(f"{out}: {state.epoch} epochs, test -ELBO {metrics.get('test_neg_elbo', float('nan')):.2f} nats{bits}")
    return 0


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            out.append(token)
    return out


def run_evaluate(args) -> int:
    from .evaluate import evaluate_run

    if args.grid_spacing is not None and not args.exact:  # refused, not silently ignored
        raise ValueError("--grid-spacing sets the step of --exact's quadrature: add --exact, or drop --grid-spacing")
    result = evaluate_run(args.run_dir, iw_samples=args.iw_samples, binarize=args.binarize, weights=args.weights,
                          data_dir=args.data_dir, device=args.device, exact=args.exact,
                          grid_spacing=GRID_SPACING if args.grid_spacing is None else args.grid_spacing)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    rows = [("test images", f"{result['images']}" + (" (binarized)" if result["binarized"] else "")),
            ("-ELBO (nats/image)", f"{result['neg_elbo']:.2f}"),
            ("  reconstruction", f"{result['recon']:.2f}"),
            ("  KL", f"{result['kl']:.2f}"),
            (f"-ELBO (bits/dim, {result['likelihood']})", f"{result['bits_per_dim']:.4f}")]
    if "iw_nll" in result:
        rows.append((f"IW NLL bound, K={result['iw_samples']}", f"{result['iw_nll']:.2f}"))
        rows.append(("  in bits/dim", f"{result['iw_bits_per_dim']:.4f}"))
    if "exact_nll" in result:
        rows.append((f"exact NLL (grid step {result['exact_grid']['spacing']:g})", f"{result['exact_nll']:.2f}"))
    width = max(len(k) for k, _ in rows)
    print(f"{result['dataset']} · {result['run_dir']} · {result['weights']} weights (epoch {result['epoch']}, "
          f"chosen on the {result['selected_on']} split by {result['selected_by']}) · figures on the {result['split']} set")
    for key, value in rows:
        print(f"  {key:<{width}}  {value:>10}")
    return 0


def run_make_dataset(args) -> int:
    from .sprites import FACTOR_NAMES, write_sprites

    path = write_sprites(args.out, count=args.count, size=args.size, seed=args.seed, centred=args.centred)
    print(f"{path}: {args.count:,} {'centred ' if args.centred else ''}sprites, {args.size}x{args.size} RGB, seed "
          f"{args.seed}; labelled by shape, "
          f"factors {', '.join(FACTOR_NAMES)}")
    return 0


def _check_dataset_options(args, config) -> None:
    """An option for the other kind of dataset is refused, not silently ignored: the built-in datasets
    hold out --val-size images; your own images are split per class by fractions."""
    from .sources import is_builtin

    given = {kind: [flag for f in _cli_fields() if f.metadata.get("applies_to") == kind for flag in _given_flags(args, f)]
             for kind in ("own", "builtin")}
    if is_builtin(config.dataset) and given["own"]:
        raise ValueError(f"{', '.join(given['own'])} apply to your own images (--dataset PATH), not to {config.dataset}, "
                         f"whose images are 1 x 28 x 28 grey and whose validation split is set with --val-size N")
    if not is_builtin(config.dataset) and given["builtin"]:
        raise ValueError(f"{', '.join(given['builtin'])} applies to the built-in datasets; your own images are split "
                         "per class: use --validation-fraction (and --test-fraction)")


# --- the flags of TrainConfig's fields, from the fields themselves ---------------------------------

def _cli_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(TrainConfig) if flag_of(f) is not None]


def add_config_arguments(p) -> None:
    """A flag for every TrainConfig field that has one (train/options.py `option`): its name, type, choices
    and help come from the field. Not given, a flag is None, so that a resumed run keeps its saved value
    and a new one takes its preset's."""
    types = typing.get_type_hints(TrainConfig)
    for f in _cli_fields():
        meta, kind = f.metadata, _flag_type(types[f.name])
        for part in meta.get("parts", ()):
            p.add_argument(part.flag, dest=part.dest, type=_argparse_type(part.parse), choices=part.choices,
                           default=None, metavar=part.metavar, help=part.help)
        if "parts" in meta:
            continue
        help_text = meta["help"].format(default=f.default, preset=DEFAULT)
        default = f.default if meta.get("cli_default") else None
        if kind is bool:
            p.add_argument(flag_of(f), dest=f.name, action="store_true", default=default, help=help_text)
            continue
        choices = meta.get("choices") or (typing.get_args(kind) if typing.get_origin(kind) is Literal else None)
        p.add_argument(flag_of(f), dest=f.name, type=str if choices else kind, choices=choices, default=default,
                       metavar=meta.get("metavar"), help=help_text)


def _flag_type(annotation):
    """int | None -> int; a Literal stays itself (its arguments are the choices)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return annotation


def _argparse_type(parse):
    """parse, with its one-line ValueError as argparse's own message (instead of "invalid value")."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def _given_flags(args, config_field: dataclasses.Field) -> list[str]:
    """The flags of a field that the command line gave."""
    parts = config_field.metadata.get("parts")
    if parts:
        return [part.flag for part in parts if getattr(args, part.dest) is not None]
    return [flag_of(config_field)] if getattr(args, config_field.name) is not None else []


def config_overrides(args) -> dict:
    """The TrainConfig fields given on the command line (None where not given)."""
    return {f.name: (f.metadata["combine"](*(getattr(args, part.dest) for part in f.metadata["parts"]))
                     if "parts" in f.metadata else getattr(args, f.name)) for f in _cli_fields()}
