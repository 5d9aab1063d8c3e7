"""The documentation site's generated pages follow the code, and docs/benchmarks.md stays generated only.

`make test` also builds the whole site with `mkdocs build --strict`; these tests say which fact broke."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages():
    return _load("docs_pages", REPO / "scripts" / "docs_pages.py")


@pytest.fixture(scope="module")
def hooks(pages):
    return _load("docs_hooks", REPO / "scripts" / "docs_hooks.py")


def test_cli_reference_lists_every_command_and_option(pages):
    from latent_atlas.cli.main import build_parser

    text = pages.cli_reference()
    for name, _, parser in pages._subcommands(build_parser()):
        section = text.split(f"## `latent-atlas {name}`", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue  # hidden from --help too: the deprecated spellings
            for flag in action.option_strings or [action.metavar or action.dest]:
                assert f"`{flag}" in section or f", {flag}" in section, f"{name}: {flag} missing"
            if action.option_strings and action.nargs != 0 and isinstance(action.default, (int, float, str)) \
                    and not isinstance(action.default, bool) and not action.required:
                assert f"`{action.default}`" in section, f"{name}: default of {action.dest} missing"


def test_a_model_card_per_bundled_model_carries_its_bundle_json(pages):
    from latent_atlas.runtime import bundle

    cards = pages.model_pages()
    assert sorted(cards) == sorted(f"models/{name}.md" for name in bundle.bundled_names())
    for name in bundle.bundled_names():
        manifest = json.loads((bundle.resolve(name) / "bundle.json").read_text())
        card = cards[f"models/{name}.md"]
        assert f"| {manifest['metrics']['test_neg_elbo']:.2f} |" in card
        assert f"| {manifest['metrics']['test_iw_nll']:.2f} |" in card
        assert manifest["export_command"] in card
        for command in manifest["training"]["commands"]:
            assert command in card
        for heading in ("## Data", "## Recipe", "## Metrics", "## Intended use", "## Limits"):
            assert heading in card
    binarized = cards["models/mnist-binarized.md"]
    assert "dynamically binarized" in binarized and "grey-level pixels" in cards["models/mnist.md"]


def test_every_generator_resolves_and_pages_are_in_the_nav(hooks):
    pages = hooks.generated_pages()
    assert {"bundle-format.md", "reference/cli.md", "models/index.md", "notes/index.md"} <= set(pages)
    nav = (REPO / "mkdocs.yml").read_text()
    for page in ("bundle-format.md", "reference/cli.md", "reference/api.md", "models/index.md", "notes/index.md",
                 *(f"embedding/{name}.md" for name in ("index", "python", "browser", "node", "cpp", "mobile"))):
        assert f": {page}" in nav or f"- {page}" in nav, page
    with pytest.raises(ValueError, match="module:function"):
        hooks.generator("docs_pages.cli_reference")


def test_the_models_entry_of_the_nav_grows_a_card_per_model(hooks, pages):
    nav = hooks._expand_models([{"Home": "index.md"}, {"Bundled models": "models/index.md"}])
    assert nav[1] == {"Bundled models": ["models/index.md", *({n: f"models/{n}.md"} for n in pages.bundled_models())]}


def test_architecture_lists_every_import_contract(pages):
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    text = pages.import_contracts()
    assert [line for line in text.splitlines() if line.startswith("- **")] == \
        [f"- **{c['name']}** ({c['type']})" for c in contracts]
    assert "<!-- generated: docs_pages:import_contracts -->" in (REPO / "docs" / "architecture.md").read_text()


# --- docs/benchmarks.md: generated sections only -------------------------------------------------------

SECTION = re.compile(r"<!-- (\S+):start -->\n.*?\n<!-- \1:end -->", re.S)
WRITER = re.compile(r"""(?:publish|write_section)\(\s*f?["']([\w-]+?)(-\{cpu_kind\(\)\})?["']""")


def _writers() -> tuple[set[str], set[str]]:
    """Section names the benchmark scripts write: exact names, and prefixes of per-CPU-kind names."""
    exact, per_kind = set(), set()
    for script in (REPO / "benchmarks").glob("*.py"):
        for name, kind in WRITER.findall(script.read_text(encoding="utf-8")):
            (per_kind if kind else exact).add(name)
    return exact, per_kind


def test_benchmarks_page_holds_only_sections_the_scripts_write():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        report = _load("report", REPO / "benchmarks" / "report.py")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    text = report.BENCHMARKS_MD.read_text(encoding="utf-8")
    assert report.BENCHMARKS_MD == REPO / "docs" / "benchmarks.md"
    names = [match.group(1) for match in SECTION.finditer(text)]
    exact, per_kind = _writers()
    assert exact and per_kind
    for name in names:
        assert name in exact or any(name.startswith(prefix + "-") for prefix in per_kind), \
            f"section {name} is written by no script in benchmarks/: move it to docs/notes/"
    assert exact <= set(names), f"scripts write sections the page lacks: {sorted(exact - set(names))}"
    outside = SECTION.sub("", text)
    assert outside.split() == report.HEADER.split(), "text outside the generated sections: move it to docs/notes/"
    for match in SECTION.finditer(text):
        assert re.search(r"Date: \d{4}-\d{2}-\d{2}", match.group(0)), f"{match.group(1)}: no machine and date"


def test_write_section_still_replaces_a_section_in_place(tmp_path):
    report = _load("report", REPO / "benchmarks" / "report.py")
    page = tmp_path / "benchmarks.md"
    page.write_text((REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8"), encoding="utf-8")
    report.write_section("fitted_prior", "## Fitted prior\n\nnew figures", page)
    text = page.read_text(encoding="utf-8")
    assert "<!-- fitted_prior:start -->\n## Fitted prior\n\nnew figures\n<!-- fitted_prior:end -->" in text
    assert text.count("<!-- ") == (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8").count("<!-- ")


def test_notes_are_dated_and_indexed(pages):
    notes = sorted((REPO / "docs" / "notes").glob("*.md"))
    dated = [note for note in notes if note.name != "index.md"]
    assert dated and all(re.match(r"\d{4}-\d{2}-\d{2}-[a-z0-9-]+\.md$", note.name) for note in dated)
    index = pages.notes_index()
    for note in dated:
        assert f"]({note.name})" in index


# --- the built site, opened from disk ---------------------------------------------------------------


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    import os
    import subprocess

    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
                   cwd=REPO, check=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    return site


@pytest.mark.browser
def test_the_built_site_works_from_disk_without_network(built_site):
    """Opened as file://, every page's assets and the search come from the site itself."""
    from playwright.sync_api import sync_playwright

    from latent_atlas.web.browser import launched

    requested = []
    with sync_playwright() as playwright, launched(playwright) as context:
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.goto((built_site / "index.html").as_uri())
        page.get_by_role("link", name="Command line").first.click()
        page.wait_for_url("**/reference/cli.html")
        page.keyboard.press("/")  # Material's shortcut to the search box
        page.keyboard.type("static-batch")
        page.wait_for_selector(".md-search-result__item", timeout=15_000)
        assert "export" in page.inner_text(".md-search-result")
    outside = [url for url in requested if not url.startswith(("file://", "data:", "blob:"))]
    assert not outside, f"the site reached the network: {outside}"
