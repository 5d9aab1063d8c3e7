"""onnxruntime-web's browser files for the site, without Node or npm.

The version and its sha512 `integrity` come from package-lock.json (shipped beside this module): the
one pin, which developers install with `npm ci`. A pip user's first `latent-atlas web` fetches that
package's tarball once from the npm registry, checks the integrity hash, and keeps the files the site
needs in the user cache dir, as the datasets are kept. A source checkout with `npm ci` done uses
web/node_modules instead.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from latent_atlas.runtime.cache import user_cache_dir
from latent_atlas.runtime.files import staged_folder

PACKAGE = "onnxruntime-web"
LOCK_FILE = Path(__file__).parent / "package-lock.json"
NODE_MODULES_DIST = Path(__file__).parent / "node_modules" / PACKAGE / "dist"
REGISTRY_ENV = "LATENT_ATLAS_NPM_REGISTRY"
CACHE_ENV = "LATENT_ATLAS_ORT_WEB_CACHE"
DEFAULT_REGISTRY = "https://registry.npmjs.org"
DOWNLOAD_TIMEOUT_S = 60.0
# The two builds the app loads: plain WASM (the default provider) and WebGPU (with its WASM fallback).
# Each .mjs loader finds its .wasm beside it; the browser fetches only the build it uses.
WASM_BUILD = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
WEBGPU_BUILD = ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
SITE_FILES = WASM_BUILD + WEBGPU_BUILD


class OrtWebError(OSError):
    """onnxruntime-web could not be had: offline, a bad download, or a broken cache."""


@dataclass(frozen=True)
class Pin:
    version: str
    integrity: str  # "sha512-<base64>", as npm writes it

    @property
    def tarball_name(self) -> str:
        return f"{PACKAGE}-{self.version}.tgz"

    def tarball_url(self, registry: str) -> str:
        return f"{registry.rstrip('/')}/{PACKAGE}/-/{self.tarball_name}"


def read_pin(lock_file: Path | None = None) -> Pin:
    """The onnxruntime-web version and integrity that package-lock.json pins."""
    lock_file = lock_file or LOCK_FILE
    try:
        entry = json.loads(lock_file.read_text(encoding="utf-8"))["packages"][f"node_modules/{PACKAGE}"]
        return Pin(entry["version"], entry["integrity"])
    except (OSError, ValueError, KeyError) as exc:
        raise OrtWebError(f"{lock_file}: cannot read the {PACKAGE} pin ({exc}); expected an npm lockfile v3") from exc


def check_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm not in ("sha512", "sha384", "sha256"):
        raise OrtWebError(f"unsupported integrity hash {algorithm!r} in the lock file (expected sha512)")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise OrtWebError(f"the downloaded {PACKAGE} tarball has {algorithm} {actual}, but the lock file pins "
                          f"{expected}: a corrupt download or a wrong registry")


def cache_dir(pin: Pin) -> Path:
    root = os.environ.get(CACHE_ENV, "").strip()
    base = Path(root).expanduser().absolute() if root else user_cache_dir(PACKAGE)
    return base / pin.version


def _complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in SITE_FILES)


def _version_of(dist: Path) -> str | None:
    try:
        return json.loads((dist.parent / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_files(quiet: bool = False) -> Path:
    """A directory holding SITE_FILES of the pinned onnxruntime-web, fetched once."""
    pin = read_pin()
    if _complete(NODE_MODULES_DIST) and _version_of(NODE_MODULES_DIST) == pin.version:
        return NODE_MODULES_DIST  # a developer's `npm ci`
    target = cache_dir(pin)
    if _complete(target):
        return target
    registry = os.environ.get(REGISTRY_ENV, "").strip() or DEFAULT_REGISTRY
    url = pin.tarball_url(registry)
    if not quiet:
        print(f"latent-atlas: fetching {PACKAGE} {pin.version} once from {url} (33 MB) into {target.parent}",
              flush=True)
    data = _download(url)
    check_integrity(data, pin.integrity)
    _unpack(data, target)
    return target


def _download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "latent-atlas-web/0.1 (+python-urllib)"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise OrtWebError(
            f"cannot fetch {PACKAGE} from {url} ({reason}); connect to the internet once (it is cached), set "
            f"{REGISTRY_ENV} to an npm registry mirror, or run `npm ci` in web/ of a source checkout") from exc


def _unpack(data: bytes, target: Path) -> None:
    """Extracts the site's files from the tarball into `target`, atomically (a staged folder renamed into place)."""
    with staged_folder(target) as staging:
        wanted = {f"package/dist/{name}": name for name in SITE_FILES}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                name = wanted.get(member.name)
                if name is None or not member.isfile():
                    continue
                with archive.extractfile(member) as source, open(staging / name, "wb") as out:
                    shutil.copyfileobj(source, out)
        missing = [name for name in SITE_FILES if not (staging / name).is_file()]
        if missing:
            raise OrtWebError(f"the {PACKAGE} tarball lacks {', '.join(missing)} (expected them under package/dist/)")
