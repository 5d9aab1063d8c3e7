"""The one reader for bundle files, which come from anywhere and so are read as hostile.

- `read_json`: strict JSON, the same language the browser's JSON.parse accepts: a size limit checked
  before reading, no NaN or Infinity, a nesting limit checked before parsing, integers JavaScript holds
  exactly; a refusal names the file and the field.
- `read_npz`: an .npz read member by member, each .npy header checked (shape x dtype against a limit
  and against the other arrays' lengths) before a byte of any array is decompressed; pickles refused.
- `contained`: a path a manifest names, refused unless it resolves inside the bundle.

Every limit is in limits.py; `browser_limits` hands the same numbers to the page (web/app/js/untrusted.js
reads them from the site's config.json), so both explorers refuse the same files.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from .limits import (MAX_ATLAS_ROWS, MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_INTEGER, MAX_NPY_HEADER_BYTES,
                     MAX_NPZ_ARRAY_BYTES, MAX_NPZ_MEMBERS)

# Array kinds a bundle may hold: booleans, integers, floats; anything else (objects: pickles) is refused.
ARRAY_KINDS = "biuf"
NPY_SUFFIX = ".npy"


def browser_limits() -> dict[str, int]:
    """The limits the page applies (config.json "untrusted"), under the names web/app/js/untrusted.js reads."""
    return {"max_json_bytes": MAX_JSON_BYTES, "max_json_depth": MAX_JSON_DEPTH,
            "max_json_integer": MAX_JSON_INTEGER, "max_npz_members": MAX_NPZ_MEMBERS,
            "max_npz_array_bytes": MAX_NPZ_ARRAY_BYTES, "max_atlas_rows": MAX_ATLAS_ROWS,
            "max_npy_header_bytes": MAX_NPY_HEADER_BYTES}


# --- files -----------------------------------------------------------------------------------------

def regular_size(path: Path, error: type[Exception] = ValueError) -> int:
    """The size of `path`, refused unless it is a regular file (a FIFO or device would block or never end)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: missing") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: not a regular file")
    return info.st_size


def contained(root: Path, name: Any, error: type[Exception] = ValueError, field: str = "files") -> Path:
    """`root / name` for a file name a manifest gives, refused unless it stays inside `root`: no absolute
    path, no `..`, no backslash or NUL, no symbolic link that leads out (or loops)."""
    root = Path(root)
    why = _unsafe_name(name)
    if why is None:
        try:
            inside = (root / name).resolve().is_relative_to(root.resolve())
        except (OSError, RuntimeError):  # a symlink loop: RuntimeError before Python 3.13, OSError after
            why = "a symbolic link loop"
        else:
            why = None if inside else "a symbolic link that leads out of the bundle"
    if why is not None:
        raise error(f"{root}: {field} names {str(name)[:200]!r}, which is not a file inside the bundle ({why})")
    return root / name


def _unsafe_name(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "expected a non-empty file name"
    if "\0" in name or "\\" in name:
        return "NUL and backslash are not allowed"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive:
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' leads out of the bundle"
    return None


# --- strict JSON -------------------------------------------------------------------------------------

class _Refused:
    """Stands in for a value the parser met but must not accept, until its field's name is known."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPENERS = np.zeros(256, np.int8)
_OPENERS[[ord("["), ord("{")]] = 1
_OPENERS[[ord("]"), ord("}")]] = -1


def json_depth(data: bytes) -> int:
    """How deeply `data`'s arrays and objects nest, counted without parsing (brackets outside strings)."""
    steps = _OPENERS[np.frombuffer(_STRING.sub(b'""', data), np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def parse_json(data: bytes, source: Path | str, error: type[Exception] = ValueError) -> Any:
    """Strict JSON from bytes (see the module's docstring); refusals name `source` and, where the parse got
    that far, the field."""
    if len(data) > MAX_JSON_BYTES:
        raise error(f"{source}: {len(data):,} bytes, more than the {MAX_JSON_BYTES:,} a JSON file of a bundle may "
                    f"hold")
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{source}: nested {depth} levels deep, more than the {MAX_JSON_DEPTH} allowed")
    refused: list[_Refused] = []

    def refuse(reason: str) -> _Refused:
        refused.append(_Refused(reason))
        return refused[-1]

    def parse_int(text: str) -> int | _Refused:
        if len(text.lstrip("-")) > len(str(MAX_JSON_INTEGER)) or abs(int(text)) > MAX_JSON_INTEGER:
            return refuse(f"integer {text[:24]}{'...' if len(text) > 24 else ''} is beyond +-{MAX_JSON_INTEGER} "
                          f"(larger ones differ between Python and JavaScript)")
        return int(text)

    def parse_float(text: str) -> float | _Refused:
        value = float(text)
        return value if math.isfinite(value) else refuse(f"number {text[:24]} is out of the float64 range")

    try:
        value = json.loads(data.decode("utf-8"), parse_int=parse_int, parse_float=parse_float,
                           parse_constant=lambda name: refuse(f"{name} is not JSON"))
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not valid JSON ({exc})") from None
    if refused:
        field, reason = _find_refused(value)
        raise error(f"{source}: {field}: {reason}")
    return value


def _find_refused(value: Any, field: str = "") -> tuple[str, str] | None:
    """The first refused value's field (`training.config.epochs`, `image_shape[1]`) and reason."""
    if isinstance(value, _Refused):
        return field or "(top level)", value.reason
    if isinstance(value, dict):
        children = ((f"{field}.{key}" if field else key, child) for key, child in value.items())
    elif isinstance(value, list):
        children = ((f"{field}[{i}]", child) for i, child in enumerate(value))
    else:
        return None
    for name, child in children:
        found = _find_refused(child, name)
        if found:
            return found
    return None


def read_json(path: Path, error: type[Exception] = ValueError) -> Any:
    """A JSON file of a bundle, strictly (parse_json), its size checked before a byte is read."""
    path = Path(path)
    size = regular_size(path, error)
    if size > MAX_JSON_BYTES:
        raise error(f"{path}: {size:,} bytes, more than the {MAX_JSON_BYTES:,} a JSON file of a bundle may hold")
    with open(path, "rb") as f:
        data = f.read(MAX_JSON_BYTES + 1)  # a file that grew since the check is still cut off here
    return parse_json(data, path, error)


# --- bounded .npz ------------------------------------------------------------------------------------

def read_npz(path: Path, error: type[Exception] = ValueError, rows: bool = False) -> dict[str, np.ndarray]:
    """{name: array} of an .npz, every header checked before any array is decompressed: each array's
    dtype (numbers only: pickles are refused), its bytes against MAX_NPZ_ARRAY_BYTES and against the size
    the zip records; with `rows`, the arrays are columns of one table: the same length, at most
    MAX_ATLAS_ROWS. Refusals name the file and the array."""
    path = Path(path)
    regular_size(path, error)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_NPZ_MEMBERS:
                raise error(f"{path}: {len(members)} members, more than the {MAX_NPZ_MEMBERS} an .npz of a bundle "
                            f"may hold")
            headers = {info.filename: _npy_header(archive, info, path, error) for info in members}
            if rows:
                _check_rows(headers, path, error)
            return {name[: -len(NPY_SUFFIX)]: _npy_body(archive, info, headers[name], path, error)
                    for name, info in zip(headers, members)}
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError) as exc:
        raise error(f"{path}: not a readable .npz ({exc})") from None


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, error) -> tuple:
    """(shape, fortran_order, dtype, offset) of one member, from its first bytes only."""
    where = f"{path}: {info.filename}"
    if not info.filename.endswith(NPY_SUFFIX):
        raise error(f"{where}: not an .npy array (an .npz of a bundle holds only arrays)")
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(member, max_header_size=MAX_NPY_HEADER_BYTES)
        except (ValueError, SyntaxError, TypeError) as exc:
            raise error(f"{where}: unreadable .npy header ({str(exc).splitlines()[0][:200]})") from None
        offset = member.tell()
    if dtype.hasobject or dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise error(f"{where}: dtype {dtype} is refused (expected numbers; pickled objects are never loaded)")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > MAX_NPZ_ARRAY_BYTES:
        raise error(f"{where}: shape {tuple(shape)} of {dtype} is {nbytes:,} bytes, more than the "
                    f"{MAX_NPZ_ARRAY_BYTES:,} an array of a bundle may hold")
    if info.file_size != offset + nbytes:
        raise error(f"{where}: the header's shape {tuple(shape)} of {dtype} does not match the {info.file_size:,} "
                    f"bytes the zip records")
    return shape, fortran, dtype, offset


def _check_rows(headers: dict[str, tuple], path: Path, error) -> None:
    lengths = {name[: -len(NPY_SUFFIX)]: (shape[0] if shape else None) for name, (shape, *_) in headers.items()}
    if None in lengths.values() or len(set(lengths.values())) > 1:
        raise error(f"{path}: arrays of different lengths {lengths} (expected one row per point in each)")
    count = next(iter(lengths.values()), 0)
    if count > MAX_ATLAS_ROWS:
        raise error(f"{path}: {count:,} rows, more than the {MAX_ATLAS_ROWS:,} a bundle's table may hold")


def _npy_body(archive: zipfile.ZipFile, info: zipfile.ZipInfo, header: tuple, path: Path, error) -> np.ndarray:
    shape, fortran, dtype, offset = header
    nbytes = math.prod(shape) * dtype.itemsize
    with archive.open(info) as member:
        member.read(offset)
        data = member.read(nbytes)  # decompresses at most what the checked header promised
    if len(data) != nbytes:
        raise error(f"{path}: {info.filename}: truncated ({len(data):,} of {nbytes:,} bytes)")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C").copy()
