"""Writing files so that a crash, a full disk or Ctrl-C never leaves a half file under the final name,
a replaced folder is never missing, and a run directory or bundle has one writer at a time; and checking
where an output goes before any work is done, with errors that name the path the user gave."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shlex
import shutil
import socket
import stat
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is skipped there (see directory_lock)
    fcntl = None

# Beside a folder `NAME` that is written as a whole: `.NAME.tmp-*` is one being filled, `.NAME.old-*`
# one being replaced (only where the two cannot be exchanged at once), `.NAME.lock` its writer's lock.
STAGING_INFIX = ".tmp-"
OLD_INFIX = ".old-"
LOCK_SUFFIX = ".lock"
_FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


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
        _fsync_dir(path.parent)  # the rename itself, so that a power cut cannot undo it
    except OSError as exc:
        raise _naming(path, exc) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def append_text(path: Path, text: str) -> None:
    """Appends `text` to `path` whole or not at all: a full disk mid-write cuts the file back to where it
    was, so a log of JSON lines never ends in half a line. An OSError names `path`."""
    path = Path(path)
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _naming(path, exc) from None
    try:
        size = os.fstat(fd).st_size
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise
    except OSError as exc:
        raise _naming(path, exc) from None
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # only POSIX lets a folder be opened and synced
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Every file and folder under `folder` onto the disk, before it is swapped into place."""
    for parent, _, names in os.walk(folder):
        for name in names:
            fd = os.open(os.path.join(parent, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(parent))


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swaps two existing paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system or the
    file system cannot, so the caller falls back to two renames."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a C library older than glibc 2.28
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_folder(new: Path, target: Path) -> None:
    """Moves the complete folder `new` onto `target` so that `target` always holds the old or the new one:
    both are exchanged in one step where the system can, and the old one then deleted; elsewhere the old
    one is renamed aside first and deleted once `new` is in place, and a kill between the two renames is
    undone by the next writer's `recover_folder`."""
    new, target = Path(new), Path(target)
    fsync_tree(new)
    if target.exists() and exchange(new, target):
        _fsync_dir(target.parent)
        shutil.rmtree(new)  # the old folder, under the staging name
        return
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}{OLD_INFIX}{new.name}")
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old)


def recover_folder(target: Path) -> list[Path]:
    """Undoes what a writer killed mid-way left beside `target`: an old folder renamed aside with no new one
    in its place is put back; leftover old and staging folders are deleted. Call it holding `target`'s lock
    (directory_lock), so that no live writer's staging folder is touched. Returns the paths it deleted."""
    target = Path(target)
    olds = sorted(target.parent.glob(f".{target.name}{OLD_INFIX}*"), key=lambda p: p.stat().st_mtime)
    if olds and not target.exists():
        olds.pop().rename(target)
    removed = [*olds, *target.parent.glob(f".{target.name}{STAGING_INFIX}*")]
    for path in removed:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return removed


@contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A new folder beside `target`, to be filled and then moved onto it (replace_folder); removed whatever
    happens, and a full disk while filling it is reported as one line naming `target`."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{STAGING_INFIX}"))
    except OSError as exc:
        raise _naming(target, exc) from None
    try:
        os.chmod(staging, permissions_for(target, 0o777))  # mkdtemp makes it private; a bundle is shared
        yield staging
    except OSError as exc:
        if exc.errno in _FULL_DISK:
            raise _naming(target, exc) from None
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yields a new empty folder beside `target` to fill; when the block succeeds it takes `target`'s place
    (replace_folder), when it fails it is removed and `target` is left as it was. Holds `target`'s lock."""
    target = Path(target)
    with directory_lock(target), staging_dir(target) as staging:
        yield staging
        replace_folder(staging, target)


# --- one writer per run directory or bundle --------------------------------------------------------

class DirectoryBusy(OSError):
    """Another process is writing the same run directory or bundle."""


def lock_path(directory: Path) -> Path:
    """The lock file of a folder: beside it, so that a bundle swapped as a whole keeps its lock."""
    directory = Path(directory).absolute()
    return directory.parent / f".{directory.name}{LOCK_SUFFIX}"


def _holder(fd: int, patience_s: float = 0.5) -> str:
    """Who holds the lock on `fd`, as its record says. A holder writes its record just after taking the
    lock, so a reader that comes in between waits a moment for it rather than naming nobody."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            record = json.loads(os.pread(fd, 4096, 0) or b"{}")
            return (f"process {record['pid']} on {record['host']} ({record['command']}), started "
                    f"{record['started']}")
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return "another process (it has not recorded itself yet)"
            time.sleep(0.01)


@contextmanager
def directory_lock(directory: Path, command: str | None = None) -> Iterator[None]:
    """Holds `directory`'s write lock for the block (an flock on lock_path, which records the holder's pid,
    host and command); another process gets DirectoryBusy naming that holder. The kernel drops the lock
    of a process that dies, so a crash never leaves it held. Where flock does not exist the block runs
    unlocked. On completion, leftovers of writers killed before (recover_folder) are tidied away."""
    directory = check_output_dir(Path(directory).absolute())  # a file in the way, or no write access, first
    if fcntl is None:
        yield
        return
    path = lock_path(directory)
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise type(exc)(exc.errno, f"cannot lock {directory} for writing ({exc.strerror}: its lock file "
                                       f"{path.name} goes beside it)", str(path.parent)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DirectoryBusy(f"{directory} is being written by {holder}; wait for it to finish or stop it, "
                                f"then try again") from None
        try:  # the previous holder removes the file as it leaves: a lock on that removed file is no lock
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        recover_folder(directory)
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


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
