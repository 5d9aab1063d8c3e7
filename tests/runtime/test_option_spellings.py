"""One spelling per option across the commands: the bundle is -m/--model BUNDLE and the execution provider
--provider NAME everywhere; the older spellings (a positional bundle, --providers) still work for one
release and say on stderr what to type instead."""

from __future__ import annotations

import pytest

from latent_atlas.cli.main import build_parser, main


def subcommands() -> dict:
    return next(a for a in build_parser()._actions if a.dest == "command").choices


def parse(capsys, *argv: str):
    args = build_parser().parse_args(list(argv))
    return vars(args), capsys.readouterr().err


BUNDLE_COMMANDS = ("info", "decode", "grid", "sample", "encode", "interpolate", "bench", "explore", "web", "fit-prior")


def test_every_command_that_reads_a_bundle_spells_its_options_alike():
    for name, parser in subcommands().items():
        strings = {s for action in parser._actions for s in action.option_strings if action.help != "==SUPPRESS=="}
        shown = parser.format_help()
        assert "--providers" not in shown, name
        if name in BUNDLE_COMMANDS:
            assert {"-m", "--model"} <= strings and "-m BUNDLE" in shown, name
            assert "[BUNDLE" not in parser.format_usage(), name  # no positional bundle offered any more
        if "--provider" in strings or name in BUNDLE_COMMANDS[:8]:
            assert "--provider" in strings and "--provider NAME" in shown, name


@pytest.mark.parametrize("old, new", [
    (["grid", "-o", "x.png", "--providers", "cpu"], ["grid", "-o", "x.png", "--provider", "cpu"]),
    (["bench", "--providers=cuda"], ["bench", "--provider=cuda"]),
    (["explore", "fashion-mnist"], ["explore", "-m", "fashion-mnist"]),
    (["explore", "--provider", "cpu", "some/bundle"], ["explore", "--model", "some/bundle", "--provider", "cpu"]),
    (["web", "mnist", "runs/b", "--out", "site"], ["web", "-m", "mnist", "-m", "runs/b", "--out", "site"]),
    (["fit-prior", "mnist", "--out", "b"], ["fit-prior", "-m", "mnist", "--out", "b"]),
])
def test_the_old_spelling_parses_as_the_new_one_with_a_warning(capsys, old, new):
    old_args, old_err = parse(capsys, *old)
    new_args, new_err = parse(capsys, *new)
    assert old_args == new_args
    assert new_err == ""
    line, = old_err.strip().splitlines()
    assert line.startswith(f"latent-atlas {old[0]}: warning: ") and "deprecated" in line
    assert ("use --provider NAME" if "providers" in old_err else "use -m BUNDLE") in line


def test_not_given_the_defaults_stay_as_they_were(capsys):
    grid, _ = parse(capsys, "grid", "-o", "x.png")
    assert (grid["model"], grid["provider"]) == ("mnist", "auto")
    explore, _ = parse(capsys, "explore")
    assert (explore["model"], explore["provider"]) == (None, None)  # the explorer's last-used ones
    assert parse(capsys, "web", "--out", "site")[0]["model"] is None  # the bundled models


@pytest.mark.parametrize("argv", [["explore", "-m", "mnist", "fashion-mnist"],
                                  ["grid", "-o", "x.png", "--provider", "cpu", "--providers", "cuda"]])
def test_both_spellings_at_once_are_refused(capsys, argv):
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(argv)
    assert refused.value.code == 2 and "both given: give it once" in capsys.readouterr().err


def test_fit_prior_without_a_bundle_says_how_to_name_one(capsys, tmp_path):
    assert main(["fit-prior", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("latent-atlas fit-prior: error: say which bundle to refit: -m BUNDLE (a bundled model's "
                           "name or a bundle directory)")
    assert not (tmp_path / "b").exists()


def test_a_runtime_command_runs_with_either_spelling(capsys, tmp_path):
    for flag in ("--provider", "--providers"):
        out = tmp_path / f"{flag.strip('-')}.png"
        assert main(["grid", "-m", "mnist", flag, "cpu", "-n", "2", "-o", str(out)]) == 0
        captured = capsys.readouterr()
        assert out.stat().st_size > 0 and f"{out}: " in captured.out
        assert ("deprecated" in captured.err) == (flag == "--providers")
