"""Every snippet a reader can copy runs, or at least parses, as written.

- Each ```python block of README.md and docs/**/*.md runs exactly as written: the blocks of one file in
  order, in one fresh interpreter (so a page may build on its earlier blocks), in an empty temporary
  folder. A traceback names the Markdown file and line.
- Each `latent-atlas …` command in a ```sh / ```console / ```bash block is parsed by the real parser
  (`latent_atlas.cli.main.build_parser()`): a renamed or removed flag fails here. The cheap commands
  that read only the bundled models or files that exist (info, decode, grid, sample, encode,
  interpolate) also run, in a temporary folder, one per file, in order.

A block opts out only by being another language (```text, ```html, ...).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from latent_atlas.cli.main import build_parser, main
from latent_atlas.runtime import bundled_names

REPO = Path(__file__).resolve().parents[2]
PYTHON_LANGUAGES = {"python", "py"}
SHELL_LANGUAGES = {"sh", "console", "bash", "shell"}
# Subcommands that only read a bundle (and images) and write small files: cheap enough to run.
CHEAP_COMMANDS = {"info", "decode", "grid", "sample", "encode", "interpolate"}
# Options whose value is a file the command writes, not one it reads.
OUTPUT_OPTIONS = {"-o", "--out"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*\{?\.?(?P<lang>[\w+-]*)")
# Runs one file's Python blocks in order in one namespace; each is compiled under "FILE:LINE" names with
# its lines where they sit in the Markdown file, so a traceback points at the page.
RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for block in json.load(sys.stdin):
    source = "\\n" * (block["line"] - 1) + block["code"]
    exec(compile(source, block["file"], "exec"), namespace)
"""


@dataclass
class Block:
    file: str
    line: int  # of the block's first code line, 1-based
    language: str
    code: str


def markdown_files(root: Path = REPO) -> list[Path]:
    files = [root / "README.md"] + sorted((root / "docs").glob("**/*.md"))
    return [f for f in files if f.is_file()]


def code_blocks(text: str, name: str) -> list[Block]:
    """The fenced blocks of a Markdown text, dedented by their fence's indent (blocks inside lists)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        body, start = [], i + 2
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        blocks.append(Block(name, start, match["lang"].lower(), "\n".join(body) + "\n"))
        i += 1
    return blocks


def shell_commands(block: Block) -> list[tuple[int, list[str]]]:
    """(line, argv after `latent-atlas`) for each latent-atlas command in a shell block: prompts ("$ "),
    comments, line continuations and `&&` / `;` chains handled; `python -m latent_atlas.cli` counts."""
    commands, pending, first = [], "", 0
    for offset, raw in enumerate(block.code.splitlines()):
        line = raw.strip()
        if not pending:
            first = block.line + offset
            if line.startswith("$ "):
                line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        for part in _split_chain(words):
            argv = _latent_atlas_argv(part)
            if argv is not None:
                commands.append((first, argv))
    return commands


def _split_chain(words: list[str]) -> list[list[str]]:
    parts, current = [], []
    for word in words:
        if word in {"&&", ";", "||"}:
            parts.append(current)
            current = []
        else:
            current.append(word)
    return [*parts, current]


def _latent_atlas_argv(words: list[str]) -> list[str] | None:
    for i, word in enumerate(words):
        if word == "latent-atlas" and (i == 0 or "=" in words[i - 1] or words[i - 1] in {"time", "exec"}):
            return words[i + 1:]
        if word in {"latent_atlas.cli", "latent_atlas.cli.main"} and i > 0 and words[i - 1] == "-m":
            return words[i + 1:]
    return None


def parse(argv: list[str]):
    """The real parser's namespace for argv, or an AssertionError with argparse's own message."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            return build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:  # --help, --version
            return None
        raise AssertionError(stderr.getvalue().strip().splitlines()[-1]) from None


def reads_only_what_exists(argv: list[str], args, cwd: Path) -> bool:
    """Whether a cheap command's model is bundled (or a folder here) and each file it reads is here."""
    if args.command not in CHEAP_COMMANDS:
        return False
    if args.model not in bundled_names() and not (cwd / args.model).expanduser().is_dir():
        return False
    words = argv[1:]
    for i, word in enumerate(words):
        if word.startswith("-") or (i > 0 and words[i - 1] in OUTPUT_OPTIONS | {"-m", "--model"}):
            continue
        if Path(word).suffix and not re.fullmatch(r"[-+0-9.,eE]+", word) and not (cwd / word).exists():
            return False
    for option, value in ((opt.split("=", 1) + [""])[:2] for opt in words if opt.startswith("--")):
        if option in {"--from", "--to"} and value and not re.fullmatch(r"[-+0-9.,eE ]+", value):
            if not (cwd / value).exists():
                return False
    for key in ("start", "end"):  # interpolate's endpoints: an image file or a latent point
        value = getattr(args, key, None)
        if value and not re.fullmatch(r"[-+0-9.,eE ]+", value) and not (cwd / value).exists():
            return False
    return True


def blocks_of(path: Path, languages: set[str]) -> list[Block]:
    name = str(path.relative_to(REPO))
    return [b for b in code_blocks(path.read_text(encoding="utf-8"), name) if b.language in languages]


def _ids(files: list[Path]) -> list[str]:
    return [str(f.relative_to(REPO)) for f in files]


FILES = markdown_files()
WITH_PYTHON = [f for f in FILES if blocks_of(f, PYTHON_LANGUAGES)]
WITH_COMMANDS = [f for f in FILES if any(shell_commands(b) for b in blocks_of(f, SHELL_LANGUAGES))]


def test_the_readme_and_the_embedding_pages_have_snippets_to_check():
    assert {"README.md", "docs/embedding/python.md"} <= set(_ids(WITH_PYTHON))
    assert "README.md" in _ids(WITH_COMMANDS)


@pytest.mark.parametrize("path", WITH_PYTHON, ids=_ids(WITH_PYTHON))
def test_python_blocks_run_as_written(path: Path, tmp_path):
    name = str(path.relative_to(REPO))
    blocks = blocks_of(path, PYTHON_LANGUAGES)
    payload = json.dumps([{"file": b.file, "line": b.line, "code": b.code} for b in blocks])
    result = subprocess.run([sys.executable, "-c", RUNNER], input=payload, cwd=tmp_path,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"a Python block of {name} failed:\n{result.stderr[-4000:]}"


@pytest.mark.parametrize("path", WITH_COMMANDS, ids=_ids(WITH_COMMANDS))
def test_latent_atlas_commands_parse_and_the_cheap_ones_run(path: Path, tmp_path, monkeypatch):
    name = str(path.relative_to(REPO))
    monkeypatch.chdir(tmp_path)
    for block in blocks_of(path, SHELL_LANGUAGES):
        for line, argv in shell_commands(block):
            where = f"{name}:{line}: latent-atlas {shlex.join(argv)}"
            try:
                args = parse(argv)
            except AssertionError as exc:
                raise AssertionError(f"{where}\n  does not parse: {exc}") from None
            if args is None or not reads_only_what_exists(argv, args, tmp_path):
                continue
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
            assert code == 0, f"{where}\n  exited {code}: {err.getvalue().strip()}"


# The checks above must be able to fail: a renamed flag, a Python error and a missing input are caught.

def test_a_renamed_flag_fails_to_parse():
    block = code_blocks("```sh\n$ latent-atlas grid --size 20 -o grid.png   # renamed\n```\n", "x.md")[0]
    ((line, argv),) = shell_commands(block)
    assert line == 2 and argv[:2] == ["grid", "--size"]
    with pytest.raises(AssertionError, match="unrecognized arguments: --size"):
        parse(argv)


def test_commands_are_found_in_chains_continuations_and_torchrun_lines():
    text = ("```console\ncd examples && latent-atlas info -m mnist\nlatent-atlas grid \\\n    -n 5 -o g.png\n"
            "torchrun --nproc-per-node 2 -m latent_atlas.cli train --out runs/x\nnpm ci\n```\n")
    found = [argv for _, argv in shell_commands(code_blocks(text, "x.md")[0])]
    assert found == [["info", "-m", "mnist"], ["grid", "-n", "5", "-o", "g.png"], ["train", "--out", "runs/x"]]


def test_indented_blocks_are_dedented_and_other_languages_left_alone():
    text = "- item\n\n    ```python\n    x = 1\n    ```\n\n```text\nnot code\n```\n"
    blocks = code_blocks(text, "x.md")
    assert [(b.language, b.code, b.line) for b in blocks] == [("python", "x = 1\n", 4), ("text", "not code\n", 8)]


def test_a_failing_python_block_names_the_markdown_line(tmp_path):
    payload = json.dumps([{"file": "page.md", "line": 7, "code": "x = 1\nundefined_name\n"}])
    result = subprocess.run([sys.executable, "-c", RUNNER], input=payload, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and 'File "page.md", line 8' in result.stderr


def test_a_command_reading_a_missing_file_is_parsed_but_not_run(tmp_path):
    argv = ["encode", "photo.png", "-m", "mnist"]
    assert not reads_only_what_exists(argv, parse(argv), tmp_path)
    (tmp_path / "photo.png").write_bytes(b"")
    assert reads_only_what_exists(argv, parse(argv), tmp_path)
    argv = ["grid", "-n", "4", "-o", "grid.png"]
    assert reads_only_what_exists(argv, parse(argv), tmp_path)
    argv = ["info", "-m", "bundles/letters"]
    assert not reads_only_what_exists(argv, parse(argv), tmp_path)
