"""Pages of the documentation site generated from the code that owns their facts.

Each generator takes no argument and returns a page's markdown; `scripts/docs_hooks.py` calls them by
"module:function" name at build time, so nothing here is checked in as markdown and a renamed flag, a
new bundle key or a retrained model shows up in the next `make docs`.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES_DIR = ROOT / "docs" / "notes"


def _cell(text: object) -> str:
    """One markdown table cell: pipes escaped, line breaks joined, so argparse help never breaks a row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _sentence(text: str) -> str:
    """argparse's one-line help ("train a VAE on ...") as a sentence."""
    text = _cell(text)
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def _code(text: object) -> str:
    return f"`{text}`" if text not in (None, "") else ""


# ---------------------------------------------------------------------------------------------------
# CLI reference: every command of `latent-atlas`, every option, from the real parsers.

def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order `--help` lists them."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]


def _option_name(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or (action.dest.upper() if action.choices is None else
                                 "{" + ",".join(map(str, action.choices)) + "}")
    return ", ".join(f"{flag} {metavar}" for flag in action.option_strings)


def _default(action: argparse.Action) -> str:
    """The default a reader can type, or nothing for flags and required arguments."""
    if action.nargs == 0 or action.required or action.default in (None, argparse.SUPPRESS):
        return ""
    value = action.default
    if isinstance(value, (list, tuple)):
        value = " ".join(map(str, value))
    return _code(value)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    if action.choices is not None and action.option_strings == [] and action.metavar:
        text += f" (one of: {', '.join(map(str, action.choices))})"
    return text


def _command_section(name: str, summary: str, parser: argparse.ArgumentParser) -> str:
    usage = " ".join(parser.format_usage().split())
    usage = usage.removeprefix("usage: ")
    rows = [f"| {_cell(_code(_option_name(a)))} | {_cell(_help(parser, a))} | {_cell(_default(a))} |"
            for a in parser._actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]
    lines = [f"## `latent-atlas {name}`", "", _sentence(summary), "",
             f"```text\n{usage}\n```", "", parser.description or "", ""]
    if rows:
        lines += ["| argument | what it does | default |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


def cli_reference() -> str:
    """The CLI reference: `latent_atlas.cli.main.build_parser()` walked command by command."""
    from latent_atlas.cli.main import build_parser

    parser = build_parser()
    commands = _subcommands(parser)
    index = [f"| [`{name}`](#latent-atlas-{name}) | {_cell(summary)} |" for name, summary, _ in commands]
    head = ["# Command-line reference", "",
            "Generated from the argument parsers of `latent-atlas` (`latent_atlas.cli.main.build_parser()`) "
            "each time the site is built. `latent-atlas COMMAND --help` prints the same.", "",
            "```text", " ".join(parser.format_usage().split()).removeprefix("usage: "), "```", "",
            "| command | what it does |", "|---|---|", *index, ""]
    return "\n".join(head + [_command_section(*command) for command in commands])


# ---------------------------------------------------------------------------------------------------
# Model cards: one per bundled model, from its bundle.json.

def _models_dir() -> Path:
    from latent_atlas.runtime import bundle

    return bundle.resolve(bundle.bundled_names()[0]).parent


def bundled_models() -> list[str]:
    from latent_atlas.runtime import bundle

    return bundle.bundled_names()


_METRICS = (("test_neg_elbo", "test −ELBO"), ("test_recon", "reconstruction term"), ("test_kl", "KL term"),
            ("test_iw_nll", "importance-weighted bound on −log p(x)"),
            ("test_iw_nll_standard_normal", "the same bound under the prior N(0, I)"))


def _metrics_table(metrics: dict) -> list[str]:
    rows = [f"| {label} | {metrics[key]:.2f} |" for key, label in _METRICS if key in metrics]
    return ["| test set, nats per image | value |", "|---|---:|", *rows]


def _training_chain(training: dict) -> list[str]:
    """Each training's commands, first to last: `initialized_from` nests back to the first."""
    chain, link = [], training
    while link:
        chain.append(link.get("commands") or [])
        link = link.get("initialized_from") or {}
    lines = []
    for step, commands in enumerate(reversed(chain), 1):
        lines += [f"{step}. Training {step} of {len(chain)}:", "", "    ```sh",
                  *(f"    {command}" for command in commands), "    ```", ""]
    return lines


def _intended_use(manifest: dict) -> list[str]:
    dataset = manifest["dataset"]
    classes = dataset.get("class_names") or []
    side = "×".join(map(str, manifest["image_shape"][1:]))
    what = f"{len(classes)} classes: {', '.join(classes)}" if classes else "unlabelled images"
    return [f"- Exploring, sampling and interpolating the {manifest['latent_dim']}-D latent space of "
            f"`{dataset['name']}` ({what}), in the explorers, the CLI or an app that embeds the decoder.",
            f"- Encoding new pictures: they are preprocessed with the `{dataset.get('layout') or dataset['name']}` "
            f"layout into {side} grey images with pixels in {manifest['pixel_range']}.",
            "- Teaching and demonstrating variational autoencoders; a baseline for likelihood figures."]


def _limits(manifest: dict) -> list[str]:
    metrics, dataset = manifest.get("metrics", {}), manifest["dataset"]
    lines = [f"- A {manifest['latent_dim']}-D latent keeps the map readable but blurs detail: decoded images "
             "are smooth averages, not sharp samples.",
             f"- It knows only what `{dataset['name']}` holds; other pictures are mapped onto the nearest "
             "shapes it learned, and the nearest class is a guess, not a classifier's answer."]
    if metrics.get("binarized"):
        lines.append("- Its figures are over dynamically binarized pixels (test set binarized with seed "
                     f"{metrics.get('binarization_seed')}): compare them with the literature's binarized "
                     "figures, not with the grey-level models'.")
    else:
        lines.append("- Its figures are over grey-level pixels scored as Bernoulli probabilities: they do not "
                     "compare with the literature's binarized-MNIST figures.")
    if manifest.get("static_batch"):
        lines.append(f"- Its ONNX files run only at batch {manifest['static_batch']}.")
    lines.append(f"- Variant `{manifest['variant']}`; meant for: {', '.join(manifest.get('runtimes') or ['unknown'])}.")
    return lines


def _prior_line(prior: dict) -> str:
    if not prior:
        return "N(0, I)."
    fitted = prior.get("fitted", {})
    codes = fitted.get("codes")
    return (f"a {len(prior['weights'])}-component Gaussian mixture fitted by {fitted.get('method', 'unknown')} "
            f"to {f'{codes:,}' if codes else 'the'} codes of the `{fitted.get('split', '?')}` split.")


def model_card(name: str) -> str:
    """The card of one bundled model: data, recipe, metrics, intended use and limits, from its bundle.json."""
    manifest = json.loads((_models_dir() / name / "bundle.json").read_text(encoding="utf-8"))
    dataset, training = manifest["dataset"], manifest.get("training", {})
    source = dataset.get("source", {})
    counts = ", ".join(f"{split} {count:,}" for split, count in source.get("counts", {}).items())
    files = [f"| `{file}` | {entry['bytes']:,} | `{entry['sha256'][:16]}…` |"
             for file, entry in manifest.get("files", {}).items()]
    return "\n".join([
        f"# Model card: `{name}`", "",
        f"Generated from `runtime/models/{name}/bundle.json` (schema version {manifest['schema_version']}). "
        f"Load it with `runtime.load(\"{name}\")`, `latent-atlas explore {name}` or `-m {name}` on any command.", "",
        "## Model", "",
        f"- Convolutional VAE, {manifest['latent_dim']}-D latent, variant `{manifest['variant']}`, "
        f"ONNX opset {manifest.get('onnx', {}).get('opset', '?')}.",
        f"- Prior: {_prior_line(manifest.get('prior') or {})}",
        f"- Weights: the `{training.get('weights', '?')}` epoch ({training.get('epoch', '?')} of its last training), "
        f"chosen by `{training.get('selected_by', 'val_neg_elbo')}`; seed {training.get('seed', '?')}.", "",
        "## Data", "",
        f"- Dataset `{dataset['name']}`, source `{source.get('kind', '?')}`; split {counts or 'unknown'} "
        f"(split seed {source.get('split_seed', '?')}); layout `{dataset.get('layout') or dataset['name']}`.",
        f"- Source checksum `{source.get('checksum', 'unknown')}`.", "",
        "## Recipe", "",
        "The commands that made it, each training starting from the previous one's weights:", "",
        *_training_chain(training),
        "Exported with:", "", f"```sh\n{manifest.get('export_command', 'unknown')}\n```", "",
        "## Metrics", "",
        f"Computed with `{manifest.get('metrics', {}).get('computed_with', '?')}` from the bundle's own ONNX "
        f"files on {_count(manifest.get('metrics', {}).get('iw_images'))} test images "
        f"(importance-weighted bound with K = {manifest.get('metrics', {}).get('iw_samples', '?')}).", "",
        *_metrics_table(manifest.get("metrics", {})), "",
        "## Intended use", "", *_intended_use(manifest), "",
        "## Limits", "", *_limits(manifest), "",
        "## Files", "", "| file | bytes | SHA-256 |", "|---|---:|---|", *files, "",
    ])


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "the"


def models_index() -> str:
    rows = []
    for name in bundled_models():
        manifest = json.loads((_models_dir() / name / "bundle.json").read_text(encoding="utf-8"))
        metrics = manifest.get("metrics", {})
        pixels = "binarized" if metrics.get("binarized") else "grey levels"
        rows.append(f"| [`{name}`]({name}.md) | `{manifest['dataset']['name']}` ({pixels}) | "
                    f"{metrics.get('test_iw_nll', float('nan')):.2f} |")
    return "\n".join(["# Bundled models", "",
                      "The models that ship inside the package; each card is generated from its `bundle.json`.", "",
                      "| model | data | IW bound on −log p(x), nats |", "|---|---|---:|", *rows, ""])


def model_pages() -> dict[str, str]:
    """models/NAME.md for every bundled model."""
    return {f"models/{name}.md": model_card(name) for name in bundled_models()}


# ---------------------------------------------------------------------------------------------------
# The architecture page's import contracts, from pyproject.toml.

def import_contracts() -> str:
    """The import contracts `lint-imports` checks, as pyproject.toml's [tool.importlinter] states them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    lines = []
    for contract in config["contracts"]:
        lines.append(f"- **{contract['name']}** ({contract['type']})")
        if contract["type"] == "forbidden":
            lines.append(f"    - `{'`, `'.join(contract['source_modules'])}` must not import "
                         f"`{'`, `'.join(contract['forbidden_modules'])}`.")
        elif contract["type"] == "layers":
            for container in contract["containers"]:
                lines.append(f"    - in `{container}`, top to bottom (a layer imports only those below it): "
                             + " → ".join(f"`{layer}`" for layer in contract["layers"]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# The notes' index: every dated note, newest first.

def notes_index() -> str:
    rows = []
    for path in sorted(NOTES_DIR.glob("2*.md"), reverse=True):
        title = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
        rows.append(f"- {path.name[:10]}: [{title}]({path.name})")
    return "\n".join(["# Notes", "",
                      "Experiment logs recorded by hand while the project was built, each kept as it was "
                      "written on its date. They explain how the recipes and figures came about; nothing "
                      "here is needed to use Latent Atlas, and the current figures are on the benchmarks page.",
                      "", *rows, ""])
