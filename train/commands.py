"""`latent-atlas train` and `latent-atlas evaluate` (torch is imported only when they run)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from latent_atlas.runtime.evaluation import DEFAULT_IW_SAMPLES, GRID_SPACING, QUICK_IW_IMAGES, check_grid
from latent_atlas.runtime.preprocessing import LAYOUTS

from .config import PRESETS as PRESET_SETTINGS, TrainConfig
from .options import BINARIZE, DEVICES, IWAE_GRADIENTS, LR_SCHEDULES, OBJECTIVES, PRESETS, WEIGHTS

DEFAULT = PRESET_SETTINGS["default"]  # the help text quotes the recommended recipe, never a copy of it


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a VAE on MNIST, Fashion-MNIST or your own images",
                              description="Train the convolutional VAE; a checkpoint is written after every epoch.")
    # None means "not given": a resumed run then keeps its own dataset and preset.
    p.add_argument("--dataset", default=None, metavar="NAME|PATH",
                   help="mnist (default), fashion-mnist, or your own images: a folder (one subfolder per class), "
                        "an .npz file (images, labels, class_names) or a folder of IDX files")
    p.add_argument("--layout", default=None, choices=list(LAYOUTS),
                   help="own images: how each picture becomes 28x28 grey: mnist (crop, fit 20x20, centre of mass; "
                        "the default), fashion-mnist (crop, fit 28x28, centred) or resize (the whole picture, resized)")
    p.add_argument("--split-seed", type=int, default=None, help=f"own images: seed of the train/validation/test split (default {TrainConfig.split_seed})")
    p.add_argument("--validation-fraction", type=float, default=None, help=f"own images: share of each class for validation (default {TrainConfig.validation_fraction:g})")
    p.add_argument("--test-fraction", type=float, default=None, help=f"own images: share of each class for test (default {TrainConfig.test_fraction:g})")
    p.add_argument("--skip-bad-images", action="store_true", default=None,
                   help="own images: leave out unreadable or blank pictures (at most 5%%) with a warning instead of stopping")
    p.add_argument("--preset", default=None, choices=PRESETS,
                   help=f"default (recommended): Adam, cosine LR, batch {DEFAULT['batch_size']}, bf16 on capable CPUs; "
                        "seed: the original Keras recipe")
    p.add_argument("--latent-dim", type=int, default=None, help=f"size of z (default {TrainConfig.latent_dim})")
    p.add_argument("--epochs", type=int, default=None, help=f"total epochs to reach, also with --resume (default {DEFAULT['epochs']})")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--val-size", type=int, default=None, metavar="N",
                   help="training images held out (fixed, seeded) to pick the best epoch and stop early (default "
                        f"{TrainConfig.val_size}); 0 selects on the test set instead, for comparison with older runs")
    p.add_argument("--seed", type=int, default=None, help=f"makes a CPU run reproducible (default {TrainConfig.seed})")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {DEFAULT['batch_size']}")
    p.add_argument("--lr", type=float, default=None, help=f"default {DEFAULT['lr']:g}")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None, help=f"default: {DEFAULT['lr_schedule']}")
    p.add_argument("--lr-decay-epochs", type=int, default=None, metavar="N",
                   help=f"the cosine reaches 0 at epoch N (default {DEFAULT['lr_decay_epochs']}), whatever --epochs says, "
                        "so runs resume exactly")
    p.add_argument("--objective", choices=OBJECTIVES, default=None,
                   help="elbo (default preset), iwae (the importance-weighted bound with --k samples; Burda et al. "
                        "2015) or keras-seed (the seed preset's)")
    p.add_argument("--k", type=int, default=None, metavar="K", help=f"importance samples per image of --objective iwae (default {TrainConfig.importance_samples})")
    p.add_argument("--iwae-gradient", choices=IWAE_GRADIENTS, default=None,
                   help="the encoder's gradient under --objective iwae: standard (default) or dreg, the doubly "
                        "reparameterised estimator (Tucker et al. 2018), the same expectation with less variance")
    p.add_argument("--binarize", choices=BINARIZE, default=None,
                   help="dynamic: re-draw every training image's pixels as Bernoulli(grey level) each time it is used, "
                        "and measure on binarized images (the literature's dynamically binarized MNIST); default none")
    p.add_argument("--beta", type=float, default=None, help="KL weight (1 = the ELBO)")
    p.add_argument("--beta-warmup", type=int, default=None, metavar="EPOCHS", help="ramp beta up linearly over EPOCHS")
    p.add_argument("--encoder-weight-decay", type=float, default=None, metavar="W",
                   help="decoupled weight decay on the encoder's weights (Adam only)")
    p.add_argument("--encoder-noise", type=float, default=None, metavar="STD",
                   help="Gaussian noise added to the encoder's input while training")
    p.add_argument("--bottleneck-bias", type=float, default=None, metavar="B",
                   help="initial bias of the encoder's Dense 32 ReLU units (default preset: 1; seed preset and Keras: 0)")
    p.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs")
    p.add_argument("--eval-images", type=int, default=None, metavar="N",
                   help="quick trials: evaluate every epoch on the first N validation and test images only (default: "
                        "all; export and evaluate always use the whole test set)")
    p.add_argument("--eval-iw", type=int, default=None, metavar="K",
                   help=f"also log the importance-weighted bound (K samples, first {QUICK_IW_IMAGES} test images) every epoch")
    p.add_argument("--init-from", default=None, metavar="RUN|BUNDLE",
                   help="fine-tune: start from RUN's best weights, or a model bundle's (a bundled model's name such as "
                        "mnist, or an exported directory; float32), instead of a fresh initialisation (same "
                        "--latent-dim); a new run with its own optimizer, learning-rate schedule, objective and data")
    p.add_argument("--device", default="auto", choices=DEVICES)
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


def run_train(args) -> int:
    if args.nproc is not None and "WORLD_SIZE" not in os.environ:
        from .distributed import launch_local

        return launch_local(args.nproc, _without_nproc(args.argv))
    from latent_atlas.runtime.files import check_output_dir

    from .checkpoint import load_checkpoint
    from .config import TrainConfig, resolve_config
    from .distributed import COMMAND_ENV
    from .train import train

    overrides = {"preset": args.preset, **_config_options(args), "epochs": args.epochs,
                 "eval_iw_samples": args.eval_iw, "device": args.device}
    out = args.out or f"runs/{Path(args.dataset or TrainConfig.dataset).stem or 'data'}-{args.preset or TrainConfig.preset}"
    check_output_dir(out)  # before the data is loaded
    saved = load_checkpoint(out).state.config if args.resume else None
    config = resolve_config(saved, overrides, out)
    _check_dataset_options(args, config)
    for option, given, what in (("--k", args.k, "the importance samples"),
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
        print(f"{out}: {state.epoch} epochs, test -ELBO {metrics.get('test_neg_elbo', float('nan')):.2f} nats")
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
            ("  KL", f"{result['kl']:.2f}")]
    if "iw_nll" in result:
        rows.append((f"IW NLL bound, K={result['iw_samples']}", f"{result['iw_nll']:.2f}"))
    if "exact_nll" in result:
        rows.append((f"exact NLL (grid step {result['exact_grid']['spacing']:g})", f"{result['exact_nll']:.2f}"))
    width = max(len(k) for k, _ in rows)
    print(f"{result['dataset']} · {result['run_dir']} · {result['weights']} weights (epoch {result['epoch']}, "
          f"chosen on the {result['selected_on']} split by {result['selected_by']}) · figures on the {result['split']} set")
    for key, value in rows:
        print(f"  {key:<{width}}  {value:>10}")
    return 0


def _check_dataset_options(args, config) -> None:
    """An option for the other kind of dataset is refused, not silently ignored: the built-in datasets
    hold out --val-size images; your own images are split per class by fractions."""
    from .sources import is_builtin

    own_only = {"--layout": args.layout, "--split-seed": args.split_seed,
                "--validation-fraction": args.validation_fraction, "--test-fraction": args.test_fraction,
                "--skip-bad-images": args.skip_bad_images}
    if is_builtin(config.dataset):
        given = [flag for flag, value in own_only.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to your own images (--dataset PATH), not to {config.dataset}; "
                             f"its validation split is set with --val-size N")
    elif args.val_size is not None:
        raise ValueError("--val-size applies to the built-in datasets; your own images are split per class: "
                         "use --validation-fraction (and --test-fraction)")


def _config_options(args) -> dict:
    """The TrainConfig fields given on the command line (None where not given)."""
    return {"dataset": args.dataset, "latent_dim": args.latent_dim, "limit": args.limit, "val_size": args.val_size,
            "seed": args.seed,
            "batch_size": args.batch_size, "lr": args.lr, "lr_schedule": args.lr_schedule,
            "lr_decay_epochs": args.lr_decay_epochs, "objective": args.objective, "importance_samples": args.k,
            "iwae_gradient": args.iwae_gradient,
            "binarize": args.binarize, "beta": args.beta, "beta_warmup_epochs": args.beta_warmup,
            "encoder_weight_decay": args.encoder_weight_decay, "encoder_noise": args.encoder_noise,
            "bottleneck_bias": args.bottleneck_bias, "patience": args.patience, "layout": args.layout,
            "split_seed": args.split_seed, "validation_fraction": args.validation_fraction,
            "test_fraction": args.test_fraction, "skip_bad_images": args.skip_bad_images, "eval_images": args.eval_images,
            "init_from": args.init_from}
