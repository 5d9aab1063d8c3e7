"""`latent-atlas train`'s flags come from TrainConfig's fields, and still accept exactly what users type:
every `latent-atlas train` line of the README and the documentation pages, and of scripts/make-models.sh, parses to the config the
hand-written parser gave it (no training: only the parser and the config)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from latent_atlas.cli.main import build_parser
from latent_atlas.train.commands import config_overrides
from latent_atlas.train.config import PRESETS, TrainConfig, resolve_config

ROOT = Path(__file__).resolve().parents[2]

# The flags users typed before the parser was derived from the config: each to its field and the
# conversion the hand-written parser applied. The contract the generated parser keeps.
LEGACY_FLAGS = {
    "--dataset": ("dataset", str), "--layout": ("layout", str), "--split-seed": ("split_seed", int),
    "--validation-fraction": ("validation_fraction", float), "--test-fraction": ("test_fraction", float),
    "--skip-bad-images": ("skip_bad_images", bool), "--preset": ("preset", str), "--latent-dim": ("latent_dim", int),
    "--epochs": ("epochs", int), "--limit": ("limit", int), "--val-size": ("val_size", int), "--seed": ("seed", int),
    "--batch-size": ("batch_size", int), "--lr": ("lr", float), "--lr-schedule": ("lr_schedule", str),
    "--lr-decay-epochs": ("lr_decay_epochs", int), "--objective": ("objective", str),
    "--k": ("importance_samples", int), "--iwae-gradient": ("iwae_gradient", str), "--binarize": ("binarize", str),
    "--beta": ("beta", float), "--beta-warmup": ("beta_warmup_epochs", int),
    "--encoder-weight-decay": ("encoder_weight_decay", float), "--encoder-noise": ("encoder_noise", float),
    "--bottleneck-bias": ("bottleneck_bias", float), "--patience": ("patience", int),
    "--eval-images": ("eval_images", int), "--eval-iw": ("eval_iw_samples", int), "--init-from": ("init_from", str),
    "--device": ("device", str), "--likelihood": ("likelihood", str),
}
# Two flags, one field: --image-size H[xW] and --channels C give image_shape (C, H, W), the seed's where not given.
IMAGE_FLAGS = {"--image-size", "--channels"}
OTHER_FLAGS = {"--nproc": int, "--data-dir": str, "--out": str, "--resume": bool, "--no-plots": bool, "--quiet": bool}


def train_parser():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    return subparsers.choices["train"]


def documented_train_commands() -> list[list[str]]:
    """Each `latent-atlas train ...` line the README and the documentation pages show (the dated notes
    record what was typed then, not what to type)."""
    pages = [ROOT / "README.md", *(p for p in sorted((ROOT / "docs").rglob("*.md")) if "notes" not in p.parts)]
    commands = []
    for page in pages:
        for line in page.read_text(encoding="utf-8").replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("latent-atlas train "):
                commands.append(shlex.split(line, comments=True)[2:])
    return commands


def make_models_train_commands() -> list[list[str]]:
    """Each `train NAME ...` call of scripts/make-models.sh, expanded through its `train` function."""
    script = (ROOT / "scripts" / "make-models.sh").read_text(encoding="utf-8").replace("\\\n", " ")
    template = shlex.split(next(line for line in script.splitlines() if "$LA train" in line))
    template = template[template.index("train") + 1:]
    commands = []
    for match in re.finditer(r"^ *(?:threads=\d+ )?train (\S+)(.*?)(?:&.*)?$", script, re.MULTILINE):
        name, args = match.group(1), shlex.split(match.group(2))
        expanded = []
        for token in template:
            expanded += {"$@": args, "$run": [f"runs/bundled-{name}"], "$resume": []}.get(token, [token])
        commands.append(expanded)
    return commands


def legacy_parse(argv: list[str]) -> tuple[dict, dict]:
    """What the hand-written parser made of `argv`: the config overrides (device "auto" unless given) and
    the other options."""
    overrides, others, tokens, image = {"device": "auto"}, {}, iter(argv), {}
    for token in tokens:
        if token in IMAGE_FLAGS:
            image[token] = next(tokens)
        elif token in LEGACY_FLAGS:
            name, kind = LEGACY_FLAGS[token]
            overrides[name] = True if kind is bool else kind(next(tokens))
        elif token in OTHER_FLAGS:
            kind = OTHER_FLAGS[token]
            others[token] = True if kind is bool else kind(next(tokens))
        else:
            raise AssertionError(f"{token!r} was never a flag of latent-atlas train")
    if image:
        height, _, width = image.get("--image-size", "28").partition("x")
        overrides["image_shape"] = (int(image.get("--channels", 1)), int(height), int(width or height))
    return overrides, others


COMMANDS = documented_train_commands() + make_models_train_commands()


def test_the_documented_commands_were_found():
    assert len(documented_train_commands()) >= 6 and len(make_models_train_commands()) == 6  # sprites: the 6th
    assert any("--k" in argv for argv in make_models_train_commands())


def test_the_flags_are_exactly_the_ones_users_type():
    flags = {s for action in train_parser()._actions for s in action.option_strings} - {"-h", "--help"}
    assert flags == set(LEGACY_FLAGS) | IMAGE_FLAGS | set(OTHER_FLAGS)


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(argv) for argv in COMMANDS])
def test_documented_command_lines_parse_to_the_same_config(argv):
    args = build_parser().parse_args(["train", *argv])
    given = {k: v for k, v in config_overrides(args).items() if v is not None}
    expected, others = legacy_parse(argv)
    assert given == expected
    assert {"--out": args.out, "--resume": args.resume or None, "--nproc": args.nproc}.items() >= {
        k: others.get(k) for k in ("--out", "--resume", "--nproc")}.items()
    config = resolve_config(None, config_overrides(args))
    preset = expected.pop("preset", "default")
    assert config == TrainConfig(**{**PRESETS[preset], "preset": preset, **expected})


def test_a_flag_not_given_is_none_so_a_resumed_run_keeps_its_own_value():
    overrides = config_overrides(build_parser().parse_args(["train"]))
    assert overrides == {name: ("auto" if name == "device" else None)
                         for name in [*(name for name, _ in LEGACY_FLAGS.values()), "image_shape"]}
    saved = TrainConfig(epochs=3, lr_decay_epochs=3, batch_size=8)
    resumed = resolve_config(saved, config_overrides(build_parser().parse_args(["train", "--epochs", "2"])))
    assert (resumed.batch_size, resumed.epochs) == (8, 2)


def test_the_defaults_are_the_default_preset_and_the_help_quotes_them():
    assert TrainConfig() == TrainConfig.from_preset("default")
    for preset in PRESETS.values():
        assert set(preset) <= set(TrainConfig.__dataclass_fields__)
    help_text = " ".join(train_parser().format_help().split())
    assert f"batch {PRESETS['default']['batch_size']}," in help_text
    assert f"(default {PRESETS['default']['epochs']})" in help_text
    assert f"--lr LR default {PRESETS['default']['lr']:g}" in help_text


@pytest.mark.parametrize("argv, message", [
    (["--layout", "resize"], "--layout apply to your own images"),
    (["--dataset", "some/folder", "--val-size", "10"], "--val-size applies to the built-in datasets"),
])
def test_a_flag_for_the_other_kind_of_dataset_is_refused_in_one_line(argv, message, capsys, tmp_path):
    from latent_atlas.cli.main import main

    assert main(["train", "--out", str(tmp_path / "run"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["--lr-schedule", "linear"], "invalid choice: 'linear'"),
    (["--k", "many"], "invalid int value: 'many'"),
    (["--lr", "fast"], "invalid float value: 'fast'"),
])
def test_a_bad_value_is_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, shape", [
    (["--image-size", "64", "--channels", "3"], (3, 64, 64)),
    (["--image-size", "48x64"], (1, 48, 64)),
    (["--channels", "3"], (3, 28, 28)),
])
def test_image_size_and_channels_give_the_image_shape(argv, shape):
    args = build_parser().parse_args(["train", "--dataset", "own.npz", *argv])
    assert config_overrides(args)["image_shape"] == shape
    assert resolve_config(None, config_overrides(args)).image_shape == shape


@pytest.mark.parametrize("argv, message", [
    (["--image-size", "30"], "argument --image-size: image height 30 is not a positive multiple of 4"),
    (["--image-size", "512"], "argument --image-size: image height 512 is larger than the limit of 256"),
    (["--image-size", "64by64"], "argument --image-size: image size '64by64': expected H or HxW"),
    (["--channels", "2"], "argument --channels: invalid choice: 2"),
    (["--likelihood", "gaussian"], "argument --likelihood: invalid choice: 'gaussian'"),
])
def test_bad_image_flags_are_one_line_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", *argv])
    assert message in capsys.readouterr().err


def test_the_image_flags_are_for_own_images_and_a_colour_model_refuses_the_ink_layouts(tmp_path, capsys):
    from latent_atlas.cli.main import main

    assert main(["train", "--image-size", "64", "--channels", "3", "--out", str(tmp_path / "run")]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["latent-atlas train: error: --image-size, --channels apply to your own images (--dataset PATH), "
                     "not to mnist, whose images are 1 x 28 x 28 grey and whose validation split is set with --val-size N"]
    with pytest.raises(ValueError, match=r"^the mnist layout finds light ink .* takes one of resize, pad, crop$"):
        TrainConfig(dataset="own.npz", image_shape=(3, 32, 32), layout="mnist")
    with pytest.raises(ValueError, match="keras-seed objective is the original Bernoulli recipe"):
        TrainConfig.from_preset("seed", likelihood="continuous-bernoulli")


def test_a_saved_config_without_shape_or_likelihood_reads_as_the_seeds():
    saved = TrainConfig().to_dict()
    del saved["image_shape"], saved["likelihood"]
    config = TrainConfig.from_dict(saved)
    assert (config.image_shape, config.likelihood) == ((1, 28, 28), "bernoulli")
    assert TrainConfig.from_dict({**saved, "image_shape": [3, 64, 64]}).image_shape == (3, 64, 64)  # JSON lists


def test_resume_refuses_another_image_shape_in_one_line():
    saved = TrainConfig(dataset="own.npz", image_shape=(3, 32, 32))
    with pytest.raises(ValueError, match=r"^--resume continues run with its saved settings; these options contradict "
                                         r"them: image_shape=\(3, 64, 64\) \(the run has \(3, 32, 32\)\)$"):
        resolve_config(saved, {"image_shape": (3, 64, 64)}, "run")
