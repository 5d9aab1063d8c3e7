"""MkDocs hooks (mkdocs.yml `hooks:`): pages generated at build time from the code that owns their facts.

GENERATED_PAGES maps a page to the "module:function" that writes its markdown; a generator may also
return {page: markdown} for a family of pages (the model cards). A page may embed a generator's output
at a line `<!-- generated: module:function -->`. Nothing generated is checked in.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import docs_pages  # noqa: F401  (scripts/, beside this file: MkDocs puts it on the path while loading hooks)
from mkdocs.structure.files import File, Files

GENERATED_PAGES: list[tuple[str, str]] = [
    ("bundle-format.md", "latent_atlas.runtime.bundle_schema:reference_markdown"),
    ("reference/cli.md", "docs_pages:cli_reference"),
    ("models/index.md", "docs_pages:models_index"),
    ("models/*.md", "docs_pages:model_pages"),
    ("notes/index.md", "docs_pages:notes_index"),
]

# Where namespace_links lays out the package for mkdocstrings (`paths` in mkdocs.yml).
API_PATHS = "build/docs-api"
INLINE = re.compile(r"^<!-- generated: (\S+:\S+) -->$", re.M)


def generator(reference: str) -> Callable[[], object]:
    """The function a "module:function" string names."""
    module, _, function = reference.partition(":")
    if not function:
        raise ValueError(f"expected 'module:function', got {reference!r}")
    return getattr(importlib.import_module(module), function)


def generated_pages() -> dict[str, str]:
    """Every generated page's markdown, by its path under docs/."""
    pages: dict[str, str] = {}
    for page, reference in GENERATED_PAGES:
        content = generator(reference)()
        pages.update(content if isinstance(content, dict) else {page: content})
    return pages


def _expand_models(nav: list) -> list:
    """The nav's `models/index.md` entry becomes a section: the index, then one card per bundled model."""
    expanded = []
    for entry in nav:
        if isinstance(entry, dict):
            (title, value), = entry.items()
            if value == "models/index.md":
                cards = [{name: f"models/{name}.md"} for name in docs_pages.bundled_models()]
                entry = {title: ["models/index.md", *cards]}
            elif isinstance(value, list):
                entry = {title: _expand_models(value)}
        expanded.append(entry)
    return expanded


def namespace_links(root: Path) -> Path:
    """root/latent_atlas/<name> links to each folder pyproject.toml maps into the namespace, so that
    mkdocstrings finds `latent_atlas.runtime` in runtime/ as the installed package does."""
    project = Path(docs_pages.ROOT)
    package_dir = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    namespace = root / "latent_atlas"
    namespace.mkdir(parents=True, exist_ok=True)
    for package, folder in package_dir.items():
        link = namespace / package.split(".", 1)[1]
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(project / folder, target_is_directory=True)
    return root


# At load, not in on_config: mkdocstrings resolves its `paths` in its own on_config, which runs first.
namespace_links(Path(docs_pages.ROOT) / API_PATHS)


def on_config(config):
    config.nav = _expand_models(config.nav or [])
    return config


def on_files(files: Files, config) -> Files:
    for page, content in generated_pages().items():
        if files.get_file_from_path(page) is not None:
            raise ValueError(f"{page} is generated at build time; remove the checked-in docs/{page}")
        files.append(File.generated(config, page, content=content))
    # The schema the bundle-format page links to, as the package ships it.
    from latent_atlas.runtime import bundle_schema

    files.append(File.generated(config, bundle_schema.SCHEMA_FILE, abs_src_path=str(bundle_schema.SCHEMA_PATH)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    return INLINE.sub(lambda match: str(generator(match.group(1))()), markdown)
