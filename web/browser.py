"""Headless Chromium for the tests, the benchmark and the screenshots: Debian's `chromium` package
driven by Playwright, never a browser download. Playwright is a dev dependency; it is imported by
the caller."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM = os.environ.get("LATENT_ATLAS_CHROMIUM", "/usr/bin/chromium")
# Flags that work on headless machines without a GPU, a display or a network.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
# Chromium's software WebGPU adapter (SwiftShader), for machines without a GPU.
SOFTWARE_WEBGPU_FLAGS = ("--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader")
VIEWPORT = {"width": 1280, "height": 860}


def launch(playwright, extra_flags: tuple[str, ...] = ()):
    """(a persistent context on a fresh --user-data-dir, that dir). Close the context, then remove the dir."""
    if not Path(CHROMIUM).is_file():
        raise FileNotFoundError(f"{CHROMIUM} not found: run scripts/install-system-deps.sh (Debian's chromium package)")
    user_data = tempfile.mkdtemp(prefix="latent-atlas-chromium-")
    context = playwright.chromium.launch_persistent_context(
        user_data, executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_FLAGS, *extra_flags], viewport=VIEWPORT)
    return context, user_data


@contextlib.contextmanager
def launched(playwright, extra_flags: tuple[str, ...] = ()):
    """`launch` as a context: yields the context; closes it and removes its profile on the way out."""
    context, user_data = launch(playwright, extra_flags)
    try:
        yield context
    finally:
        context.close()
        shutil.rmtree(user_data, ignore_errors=True)
