"""Assembles the static site: the app, onnxruntime-web's files and model bundles, relative URLs only.

    SITE/
        index.html, style.css, js/     the app (app/ beside this module), as it is: no build step
        config.json                    the models, onnxruntime-web's files, the preprocessing constants,
                                       the explorer's rules (runtime/explorer_rules.py)
        bundle.schema.json             the bundle format's JSON Schema (runtime/bundle_schema.py), the page's check
        view_state.schema.json         the view state's JSON Schema (runtime/view_state.py): the URL's bounds
        ort/                           onnxruntime-web's loaders and .wasm files (MIT licensed)
        models/NAME/                   each bundle's files, byte for byte (bundle.json, *.onnx, atlas.npz)

Any static host serves it as it is; WASM threads need the COOP/COEP headers that `serve` sends.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict
from pathlib import Path

from latent_atlas.runtime import bundle as bundle_format
from latent_atlas.runtime import bundle_schema, explain, explorer_rules, preprocessing, untrusted, view_state
from latent_atlas.runtime.files import staged_folder

from . import onnxruntime_web

APP_DIR = Path(__file__).parent / "app"
CONFIG = "config.json"
ORT_DIR = "ort"
MODELS_DIR = "models"
# What marks a folder as one this module wrote, so that rebuilding may replace it.
MARKER = ".latent-atlas-site"


def site_config(models: list[dict], ort_version: str) -> dict:
    return {
        "models": models,
        "onnxruntime_web": {
            "version": ort_version,
            "dir": f"{ORT_DIR}/",
            "wasm": f"{ORT_DIR}/{onnxruntime_web.WASM_BUILD[0]}",
            "webgpu": f"{ORT_DIR}/{onnxruntime_web.WEBGPU_BUILD[0]}",
        },
        "preprocessing": {
            "image_side": preprocessing.IMAGE_SIDE,
            "centre": preprocessing.CENTRE,
            "min_contrast": preprocessing.MIN_CONTRAST,
            "ink_threshold": preprocessing.INK_THRESHOLD,
            "work_side": preprocessing.WORK_SIDE,
            "layouts": {name: asdict(layout) for name, layout in preprocessing.LAYOUTS.items()},
        },
        "explorer": explorer_rules.site_config(),
        # The bounds the page applies to bundles a user opens (web/app/js/untrusted.js), the runtime's own.
        "untrusted": untrusted.browser_limits(),
        # How the page reads a state from its URL (web/app/js/view_state.js), beside view_state.schema.json.
        "view_state": view_state.browser_rules(),
        # The constants of runtime/explain.py's computations, which web/app/js/explain.js ports.
        "explain": explain.browser_constants(),
    }


def _slug(name: str, taken: set[str]) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"
    candidate, i = slug, 2
    while candidate in taken:
        candidate, i = f"{slug}-{i}", i + 1
    taken.add(candidate)
    return candidate


def build_site(bundles: list[str | Path], out: Path, quiet: bool = False) -> Path:
    """Writes the site into `out` (a new or empty folder, or one this function wrote before)."""
    out = Path(out).absolute()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise FileExistsError(f"{out}: exists and is not an empty folder or a site that 'latent-atlas web' wrote; "
                              f"choose another --out")
    # Every bundle is read and its checksums verified before anything is written.
    read = [bundle_format.read(b, verify=True) for b in bundles]
    for item in read:
        if not item.atlas_path.is_file():
            raise bundle_format.BundleError(f"{item.path}: missing {bundle_format.ATLAS} (the map needs it)")
    ort_dir = onnxruntime_web.ensure_files(quiet=quiet)
    pin = onnxruntime_web.read_pin()

    with staged_folder(out) as staging:
        shutil.copytree(APP_DIR, staging, dirs_exist_ok=True)
        shutil.copy2(bundle_schema.SCHEMA_PATH, staging / bundle_schema.SCHEMA_FILE)
        shutil.copy2(view_state.SCHEMA_PATH, staging / view_state.SCHEMA_FILE)
        (staging / ORT_DIR).mkdir()
        for name in onnxruntime_web.SITE_FILES:
            shutil.copy2(ort_dir / name, staging / ORT_DIR / name)
        models, taken = [], set()
        for item in read:
            slug = _slug(item.name if item.variant == "fp32" else f"{item.name}-{item.variant}", taken)
            folder = staging / MODELS_DIR / slug
            folder.mkdir(parents=True)
            for filename in [bundle_format.MANIFEST, *item.manifest.files]:
                _copy_bundle_file(item.path, filename, folder)
            models.append({"name": slug, "path": f"{MODELS_DIR}/{slug}/", "dataset": item.manifest.dataset.name})
        config = site_config(models, pin.version)
        (staging / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (staging / MARKER).write_text("written by latent-atlas web\n", encoding="utf-8")
    return out


def _copy_bundle_file(bundle: Path, filename: str, folder: Path) -> None:
    """One file a bundle's manifest names into the site: only a regular file inside the bundle (a hostile
    manifest must not pull a file from elsewhere on the disk into a site its user then publishes)."""
    source = untrusted.contained(bundle, filename, bundle_format.BundleError, f"{bundle_format.MANIFEST} files")
    untrusted.regular_size(source, bundle_format.BundleError)
    (folder / filename).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / filename)


def site_sizes(site: Path) -> dict[str, int]:
    """Bytes by part: the app, onnxruntime-web, the bundles."""
    sizes = {"app": 0, "onnxruntime-web": 0, "bundles": 0}
    for path in Path(site).rglob("*"):
        if not path.is_file():
            continue
        top = path.relative_to(site).parts[0]
        part = {ORT_DIR: "onnxruntime-web", MODELS_DIR: "bundles"}.get(top, "app")
        sizes[part] += path.stat().st_size
    return sizes
