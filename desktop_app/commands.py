"""`latent-atlas explore [-m BUNDLE]`: the desktop explorer (PyQt6 is imported only when it runs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from latent_atlas.runtime.commands import add_verify_option
from latent_atlas.runtime.options import add_model_option, add_provider_option

# Under runs/ (ignored by git), so a headless `make run` never overwrites the pictures the README shows.
DEFAULT_SCREENSHOTS = Path("runs") / "screenshots"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "explore", help="open the desktop explorer of a model's latent space",
        description="Explore a VAE's latent space: map, live decoding, grids, interpolation, your own images. "
                    "Without a display it writes screenshots and a manifold grid instead.")
    add_model_option(p, "a bundled model name (mnist, fashion-mnist) or a bundle directory (default: the last one "
                        "used, else mnist)", deprecated_positional=True)
    add_provider_option(p, "ONNX Runtime execution provider: auto, cpu, cuda, ... (default: the last one used, else auto)")
    p.add_argument("--screenshots", default=None, metavar="DIR",
                   help="photograph the main views into DIR and exit, instead of staying open")
    add_verify_option(p)
    p.set_defaults(handler=run_explore)


def has_display() -> bool:
    """False on Linux and other X11/Wayland systems with neither DISPLAY nor WAYLAND_DISPLAY set."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_explore(args) -> int:
    # Refuse a bad bundle or provider name here, in one line, before a window opens.
    if args.model is not None:
        from latent_atlas.runtime import bundle as bundle_format
        bundle_format.read(args.model, verify=args.verify_checksums)
    if args.provider is not None:
        from latent_atlas.runtime.session import requested_providers
        requested_providers(args.provider)
    out_dir = args.screenshots
    if not has_display():
        out_dir = out_dir or str(DEFAULT_SCREENSHOTS)
        print(f"latent-atlas explore: no display (neither DISPLAY nor WAYLAND_DISPLAY is set); "
              f"writing screenshots and a manifold grid to {out_dir}/ instead", flush=True)
        os.environ["QT_QPA_PLATFORM"] = "offscreen"

    from .app import run, write_screenshots

    if out_dir is None:
        return run(args.model, args.provider, verify_checksums=args.verify_checksums)
    paths, made_by = write_screenshots(out_dir, args.model, args.provider, verify_checksums=args.verify_checksums)
    print(f"latent-atlas explore: {len(paths)} pictures of {made_by} in {out_dir}/: " + ", ".join(p.name for p in paths))
    return 0
