"""The fault-injection suite's tools: hostile copies of a bundle, one-line CLI errors, a small real file
system, and killing a write at its k-th step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from latent_atlas.runtime import bundle as fmt

from ..runtime.test_runtime_hardening import one_line_error  # noqa: F401  (shared with this suite)
from ..runtime.test_runtime_hardening import run as run_cli  # noqa: F401


def edit_manifest(bundle: Path, change) -> None:
    """Rewrites bundle.json with change(values) applied (a dict edited in place)."""
    values = json.loads((bundle / fmt.MANIFEST).read_text())
    change(values)
    (bundle / fmt.MANIFEST).write_text(json.dumps(values))


def reseal(bundle: Path) -> None:
    """bundle.json's checksums made to match the files again, as an attacker who edits a bundle would."""
    edit_manifest(bundle, lambda values: values["files"].update(fmt.file_entries(bundle, [
        f for f in values["files"] if (bundle / f).is_file()])))


@pytest.fixture
def mnist_copy(tmp_path) -> Path:
    """A copy of the bundled MNIST model, free to be made hostile."""
    target = tmp_path / "bundle"
    shutil.copytree(fmt.BUNDLED_MODELS_DIR / "mnist", target)
    return target


@pytest.fixture
def small_filesystem(tmp_path):
    """mount(size_mib) -> a folder on a tmpfs of that size (a full disk on demand), unmounted afterwards;
    skipped with the reason where this process may not mount one (it needs root or CAP_SYS_ADMIN)."""
    mounted = []

    def mount(size_mib: float) -> Path:
        point = tmp_path / f"small-{len(mounted)}"
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size_mib * 1024)}k", "tmpfs", str(point)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip() or 'mount failed'}); "
                        f"the full-disk tests need root or CAP_SYS_ADMIN")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(folder: Path, leave_bytes: int) -> None:
    """Fills the file system holding `folder` until about `leave_bytes` stay free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with open(folder / "filler", "wb") as f:
        remaining = max(0, free - leave_bytes)
        while remaining > 0:
            try:
                remaining -= f.write(b"\0" * min(remaining, 1 << 20))
            except OSError:
                break


def kill_at_step(k: int, functions: dict[object, list[str]]) -> list[str]:
    """Patches each named function of each module so that the k-th call among all of them (1-based) exits
    the process at once (os._exit: no finally, no cleanup: a kill). Returns the list of steps taken, in order.
    Only in a forked child (in_child): the patches are never undone."""
    steps: list[str] = []

    def wrap(name, original):
        def step(*args, **kwargs):
            steps.append(name)
            if len(steps) == k:
                os._exit(77)
            return original(*args, **kwargs)
        return step

    for module, names in functions.items():
        for name in names:
            setattr(module, name, wrap(name, getattr(module, name)))
    return steps


def in_child(body) -> int:
    """Runs body() in a forked process; returns its exit code (77: killed at the chosen step, 0: finished)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            body()
        except BaseException:  # noqa: BLE001  (any failure of the write is a non-zero exit, reported by the test)
            code = 1
        os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
