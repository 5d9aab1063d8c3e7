"""`latent-atlas --version` and the hints for a missing extra: they name the extra and the pip command
that adds it from where this install came from (a checkout, a wheel, a repository), never an index
that does not carry the package."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from importlib import metadata

import pytest

from latent_atlas.cli import install
from latent_atlas.cli.main import main

PYTHON = shlex.quote(sys.executable)


class FakeDistribution:
    def __init__(self, direct_url: dict | None):
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return None if self.direct_url is None else json.dumps(self.direct_url)


def installed_from(monkeypatch, direct_url: dict | None) -> None:
    monkeypatch.setattr(install.metadata, "distribution", lambda name: FakeDistribution(direct_url))


@pytest.mark.parametrize("direct_url, expected", [
    ({"url": "file:///home/me/latent-atlas", "dir_info": {"editable": True}},
     "-m pip install -e '/home/me/latent-atlas[train]'"),
    ({"url": "file:///home/me/latent-atlas", "dir_info": {}}, "-m pip install '/home/me/latent-atlas[train]'"),
    ({"url": "file:///tmp/my%20dist/latent_atlas-1.0-py3-none-any.whl", "archive_info": {}},
     "-m pip install '/tmp/my dist/latent_atlas-1.0-py3-none-any.whl[train]'"),
    ({"url": "https://example.org/latent-atlas.git", "vcs_info": {"vcs": "git", "commit_id": "abc"}},
     "-m pip install 'latent-atlas[train] @ git+https://example.org/latent-atlas.git'"),
    (None, "-m pip install 'latent-atlas[train]'"),  # pip recorded no direct source: it came from an index
])
def test_install_command_points_back_to_where_the_package_came_from(monkeypatch, direct_url, expected):
    installed_from(monkeypatch, direct_url)
    assert install.install_command(["train"]) == f"{PYTHON} {expected}"


def test_missing_module_messages_name_the_extra(monkeypatch):
    installed_from(monkeypatch, {"url": "file:///src/atlas", "dir_info": {"editable": True}})
    assert install.missing_dependency_message("torch.nn") == (
        f"needs the 'torch' package, from the [train] extra; install it with {PYTHON} -m pip install -e "
        "'/src/atlas[train]'")
    assert install.missing_dependency_message("PyQt6.QtWidgets").endswith("-e '/src/atlas[app]'")
    onnxruntime = install.missing_dependency_message("onnxruntime")
    assert "[gpu]" in onnxruntime and onnxruntime.endswith("-e '/src/atlas[cpu]'")
    assert install.missing_dependency_message("somebody_elses_module") is None
    assert install.missing_dependency_message(None) is None


def test_version_is_the_installed_metadata(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"latent-atlas {metadata.version('latent-atlas')}\n"


def without_onnxruntime(*argv: str) -> subprocess.CompletedProcess:
    # None in sys.modules makes `import onnxruntime` fail as it does where no ONNX Runtime is installed.
    code = ("import sys; sys.modules['onnxruntime'] = None; from latent_atlas.cli.main import main; "
            f"sys.exit(main({list(argv)!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_without_onnxruntime_every_command_names_the_two_extras_and_version_still_works():
    result = without_onnxruntime("info", "-m", "mnist")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("latent-atlas: needs ONNX Runtime, from the [cpu] extra") and "[gpu]" in line
    assert line.endswith("[cpu]'")
    version = without_onnxruntime("--version")
    assert version.returncode == 0 and version.stdout == f"latent-atlas {metadata.version('latent-atlas')}\n"
