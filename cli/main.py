"""`latent-atlas`: one entry point with a subcommand per job.

Each subpackage contributes its subcommands through a light `commands` module whose `register`
adds parsers; heavy dependencies (torch, Qt) are imported only inside the handler that needs them,
so `latent-atlas grid` starts on a plain, torch-free install.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "latent_atlas.train.commands",
    "latent_atlas.export.commands",
    "latent_atlas.runtime.commands",
    "latent_atlas.desktop_app.commands",
    "latent_atlas.web.commands",
)

# Extras named in error messages when a subcommand's dependencies are not installed.
_EXTRA_FOR_MODULE = {"torch": "train", "onnx": "train", "onnxscript": "train", "safetensors": "train",
                     "tqdm": "train", "matplotlib": "train", "PyQt6": "app"}

# Errors that mean "the user asked for something we cannot do": one line, no traceback.
# OSError covers missing files, permissions, a full disk and network failures alike: one line each.
USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latent-atlas",
        description="Train a convolutional VAE, export it to ONNX, and explore its latent space.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a subpackage left out of a trimmed install
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed, for the records commands keep
    try:
        result = args.handler(args)
    except KeyboardInterrupt:
        print("latent-atlas: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        extra = _EXTRA_FOR_MODULE.get(top)
        if extra is None:
            raise
        print(f"latent-atlas {args.command}: needs the '{top}' package; install it with "
              f"pip install 'latent-atlas[{extra}]'", file=sys.stderr)
        return 2
    except USER_ERRORS as exc:
        print(f"latent-atlas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
