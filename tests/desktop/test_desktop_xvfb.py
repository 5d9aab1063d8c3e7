"""The explorer in a real X server: Xvfb, Qt's xcb platform, real windows. Its screenshots of the main
views go to a temporary directory, so a test run leaves the working tree as it found it; `make screenshots`
sets LATENT_ATLAS_SCREENSHOTS=docs/screenshots to refresh the pictures the README shows."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from latent_atlas.desktop_app.screenshots import WINDOW_SIZE

VIEWS = ("map.png", "grid.png", "interpolation.png", "draw.png", "uncertainty.png", "neighbours.png", "landscape.png",
         "compare.png")
START_TIMEOUT_S = 15

pytestmark = pytest.mark.xvfb


@pytest.fixture(scope="module")
def x_display():
    """A private Xvfb server; -displayfd lets it pick a free display number and tell us which."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is not installed: run 'bash scripts/install-system-deps.sh' (or 'make system-deps'), "
                    "which installs it with the X11/xcb libraries Qt's xcb platform needs")
    read_end, write_end = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], START_TIMEOUT_S)
        number = os.read(read_end, 64).decode().strip() if ready else ""
        if not number:
            server.kill()
            pytest.fail(f"Xvfb did not start within {START_TIMEOUT_S} s: {server.communicate()[1].decode()[-2000:]}")
        yield f":{number}"
    finally:
        os.close(read_end)
        server.terminate()
        server.wait(10)


def test_real_windows_are_photographed(x_display, mnist, tmp_path):
    screenshots = Path(os.environ.get("LATENT_ATLAS_SCREENSHOTS") or tmp_path).resolve()
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    env.update(DISPLAY=x_display, QT_QPA_PLATFORM="xcb")
    result = subprocess.run([sys.executable, "-m", "latent_atlas.cli.main", "explore", "-m", "mnist",
                             "--screenshots", str(screenshots)], capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, (f"the explorer failed on {x_display} (missing xcb libraries? run "
                                    f"scripts/install-system-deps.sh):\n{result.stderr[-3000:]}")
    assert "no display" not in result.stdout
    assert "pictures of mnist on the xcb platform" in result.stdout, result.stdout
    for name in VIEWS:
        with Image.open(screenshots / name) as shot:
            assert shot.size == WINDOW_SIZE, name
            rgb = shot.convert("RGB")
            assert max(ImageStat.Stat(rgb).stddev) > 20, f"{name} is nearly blank"
            assert len(rgb.getcolors(1 << 20) or ()) > 500, f"{name} has too few colours to be the explorer"
    with Image.open(screenshots / "manifold.png") as manifold:
        assert manifold.size[0] == manifold.size[1] > 500
