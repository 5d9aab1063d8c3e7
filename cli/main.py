"""`latent-atlas`: one entry point with a subcommand per job.

Each subpackage contributes its subcommands through a light `commands` module whose `register`
adds parsers; heavy dependencies (torch, Qt) are imported only inside the handler that needs them,
so `latent-atlas grid` starts on a plain, torch-free install.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .install import missing_dependency_message, version

COMMAND_MODULES = (
    "latent_atlas.train.commands",
    "latent_atlas.export.commands",
    "latent_atlas.runtime.commands",
    "latent_atlas.desktop_app.commands",
    "latent_atlas.web.commands",
)

# Errors that mean "the user asked for something we cannot do": one line, no traceback.
# OSError covers missing files, permissions, a full disk and network failures alike: one line each.
USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latent-atlas",
        description="Train a convolutional VAE, export it to ONNX, and explore its latent space.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
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
    typed = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
    except ModuleNotFoundError as exc:  # every subcommand reaches the runtime, which needs ONNX Runtime
        message = missing_dependency_message(exc.name)
        if message is None:
            raise
        if typed == ["--version"]:
            print(f"latent-atlas {version()}")
            return 0
        print(f"latent-atlas: {message}", file=sys.stderr)
        return 2
    args = parser.parse_args(typed)
    args.argv = typed  # as typed, for the records commands keep
    try:
        result = args.handler(args)
    except KeyboardInterrupt:
        print("latent-atlas: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        message = missing_dependency_message(exc.name)
        if message is None:
            raise
        print(f"latent-atlas {args.command}: {message}", file=sys.stderr)
        return 2
    except USER_ERRORS as exc:
        print(f"latent-atlas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
