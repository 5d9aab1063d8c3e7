"""Writing files so that a crash, a full disk or Ctrl-C never leaves a half file under the final name,
and checking where an output goes before any work is done, with errors that name the path the user gave."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def _naming(path: Path, exc: OSError) -> OSError:
    """The same error about `path` instead of a hidden temporary file beside it."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def _umask() -> int:
    """The process's umask: Linux shows it in /proc; elsewhere it can only be read by setting it (and back)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def permissions_for(path: Path, new: int) -> int:
    """The mode for a file or folder written privately (mkstemp: 0600, mkdtemp: 0700) and then renamed to
    `path`: the one it replaces keeps its own; a new one gets `new` (0o666 for files, 0o777 for folders)
    less the umask, as open() or mkdir() would give it. Otherwise a user's images, checkpoints, bundles
    and datasets would stay unreadable to the web server or the colleague they are meant for."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return new & ~_umask()


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Calls write(tmp_path), fsyncs, and renames onto `path`; never leaves a half file under `path`,
    so whatever was there before survives a failed write. An OSError names `path`, not the temp file."""
    path = Path(path)
    check_output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _naming(path, exc) from None
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, permissions_for(path, 0o666))
        os.replace(tmp, path)
    except OSError as exc:
        raise _naming(path, exc) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def replace_folder(new: Path, target: Path) -> None:
    """Moves the folder `new` onto `target`: an existing `target` is renamed aside first and deleted only
    once `new` is in its place, so a failed move leaves it as it was."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{new.name}")
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old)


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yields a new empty folder beside `target` to fill; when the block succeeds it takes `target`'s place
    (replace_folder: an earlier `target` is removed only once the new one is in place), when it fails it
    is removed and `target` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield staging
        os.chmod(staging, permissions_for(target, 0o777))  # mkdtemp makes it private
        replace_folder(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_writable_parent(path: Path) -> None:
    parent = _nearest_existing(path.absolute().parent)
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot create {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: the folder {parent} is not writable")


def check_output_file(path: str | Path) -> Path:
    """Raises an OSError naming `path` unless a file can be written there (checked before any work)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; expected a file name")
    _check_writable_parent(path)
    return path


def check_output_dir(path: str | Path) -> Path:
    """Raises an OSError naming `path` unless a directory exists or can be created there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; expected a directory "
                              f"(or a new name)")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write into {path}: the folder is not writable")
    else:
        _check_writable_parent(path)
    return path
