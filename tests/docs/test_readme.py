"""The README stays a front door: short, free of dates and history, and its model figures are the ones
the bundles record (bundle.json owns them; the README quotes them)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
MODELS = REPO / "runtime" / "models"
# Which bundle.json metric a headline names.
HEADLINE_METRICS = {"−ELBO": "test_neg_elbo", "IW-": "test_iw_nll"}


def test_it_is_at_most_200_lines():
    assert len(README.splitlines()) <= 200


@pytest.mark.parametrize("pattern, what", [
    (r"\b(19|20)\d\d-\d\d-\d\d\b", "a date"),
    (r"\b20[12]\d\b", "a year"),
    (r"(?i)\bissue[s]? \d+|#\d+\b", "an issue number"),
    (r"(?i)\bthis (VM|machine's|project's \d-core)\b|\bXeon\b|\bEPYC\b", "a machine-specific figure"),
    (r"(?i)\buntil \d|\bused to\b|\bno longer\b|\bwas replaced\b", "history"),
])
def test_it_carries_no_dates_history_or_machine_figures(pattern, what):
    found = [line for line in README.splitlines() if re.search(pattern, line)]
    assert not found, f"README.md carries {what}: {found}"


def _shipped_models() -> list[str]:
    """The bundled models the repository ships (tracked by git): one that `make sprites-model` writes beside
    them is git-ignored, not shipped, and has no row."""
    listed = subprocess.run(["git", "ls-files", "--", "runtime/models/*/bundle.json"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    return sorted(Path(line).parent.name for line in listed.splitlines())


def _model_rows() -> dict[str, str]:
    return dict(re.findall(r"^\| `([\w-]+)` \| [^|]+ \| ([^|]+) \|$", README, flags=re.M))


def test_every_bundled_model_has_a_row():
    assert sorted(_model_rows()) == _shipped_models()


@pytest.mark.parametrize("name", _shipped_models())
def test_each_headline_figure_is_the_one_its_bundle_records(name):
    headline = _model_rows()[name]
    (key,) = [metric for label, metric in HEADLINE_METRICS.items() if label in headline]
    metrics = json.loads((MODELS / name / "bundle.json").read_text())["metrics"]
    (figure,) = re.findall(r"\d+\.\d+", headline)
    assert figure == f"{metrics[key]:.2f}", f"README's {name} row says {figure}, bundle.json's {key} is {metrics[key]}"


def test_the_command_table_lists_every_subcommand_of_the_parser():
    from latent_atlas.cli.main import build_parser

    (subparsers,) = [a for a in build_parser()._actions if a.dest == "command"]
    listed = set()
    for cell in re.findall(r"^\| (`latent-atlas [^|]+)\|", README, flags=re.M):
        listed |= {name.removeprefix("latent-atlas ") for name in re.findall(r"`([^`]+)`", cell)}
    assert listed == set(subparsers.choices)
