"""The release artefacts and what installing them resolves to.

`python -m build` makes an sdist and a wheel without a warning and twine accepts both; the wheel holds
every subpackage, the bundled models and the web app; installed into a fresh venv (no torch) it runs
the runtime's commands from outside the checkout, and its hints for a missing extra point back to the
wheel. Whatever extras are asked, pip resolves to exactly one ONNX Runtime package (the resolution
runs against small stand-in wheels, so it needs no network and no CUDA)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from PIL import Image

from latent_atlas.runtime.doctor import ORT_DISTRIBUTIONS

REPO = Path(__file__).resolve().parent.parent
PROJECT = "latent-atlas"
WARNING = re.compile(r"warn|deprecat", re.IGNORECASE)


def pip_env() -> dict[str, str]:
    """The environment for pip and build: this machine's pip configuration (its mirrors, find-links and
    constraints) left out, so that every line they print is about this package. Also without
    PYTHONDONTWRITEBYTECODE, under which setuptools warns that it skips byte-compiling."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "PIP_CONSTRAINT",
                        "PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=pip_env(), **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if WARNING.search(line)]


# ---------------------------------------------------------------------------------------------------------------
# The install resolutions: exactly one ONNX Runtime package, whatever the extras.

def write_stand_in_wheel(folder: Path, name: str, version: str, requires: list[str] = (),
                         extras: list[str] = ()) -> None:
    """A wheel with metadata only: all pip needs to resolve it."""
    dist = f"{canonicalize_name(name).replace('-', '_')}-{version}"
    info = f"{dist}.dist-info"
    metadata = "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                        *(f"Provides-Extra: {extra}\n" for extra in extras),
                        *(f"Requires-Dist: {line}\n" for line in requires)])
    files = {f"{info}/METADATA": metadata,
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: stand-in\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


def satisfying_version(requirement: Requirement) -> str:
    """The lowest version its specifier names that it accepts (a torch pin gives the pin)."""
    named = sorted({Version(spec.version.rstrip(".*")) for spec in requirement.specifier} | {Version("1.0")})
    return str(next(v for v in named if requirement.specifier.contains(v, prereleases=True)))


def resolve(requirement: str, find_links: Path, *extra_args: str) -> list[dict]:
    """pip's install report for `requirement`, resolved only against `find_links`, ignoring what is installed."""
    report = json.loads(run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                             "--no-build-isolation", "--no-index", "--find-links", find_links, *extra_args,
                             "--report", "-", requirement]).stdout)
    return report["install"]


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> Path:
    """A find-links folder with the project's metadata as setuptools builds it from the checkout, and a
    stand-in for each of its requirements (all extras) and for every ONNX Runtime distribution, so that a
    wrong dependency has something to resolve to."""
    folder = tmp_path_factory.mktemp("stand-ins")
    (own,) = resolve(str(REPO), folder, "--no-deps")
    metadata = own["metadata"]
    write_stand_in_wheel(folder, PROJECT, metadata["version"], metadata["requires_dist"], metadata["provides_extra"])
    versions = {canonicalize_name(name): "1.17" for name in ORT_DISTRIBUTIONS}
    for line in metadata["requires_dist"]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) != PROJECT:
            versions[canonicalize_name(requirement.name)] = satisfying_version(requirement)
    for name, version in versions.items():
        write_stand_in_wheel(folder, name, version)
    return folder


def onnxruntime_packages(install: list[dict]) -> set[str]:
    family = {canonicalize_name(name) for name in ORT_DISTRIBUTIONS}
    return {canonicalize_name(item["metadata"]["name"]) for item in install} & family


@pytest.mark.parametrize("extras, expected", [
    ("", set()),  # what an app embeds picks its ONNX Runtime itself
    ("[cpu]", {"onnxruntime"}),
    ("[gpu]", {"onnxruntime-gpu"}),
    ("[gpu,train,app]", {"onnxruntime-gpu"}),
    ("[cpu,train,app,dev]", {"onnxruntime"}),  # the Makefile's venv
])
def test_every_install_resolves_to_at_most_one_onnxruntime(stand_ins, extras, expected):
    install = resolve(PROJECT + extras, stand_ins)
    assert onnxruntime_packages(install) == expected
    names = {canonicalize_name(item["metadata"]["name"]) for item in install}
    assert PROJECT in names and ("torch" in names) == ("train" in extras)


def test_asking_for_both_runtimes_is_the_only_way_to_get_both(stand_ins):
    # The check above can fail: the stand-ins resolve the conflicting pair when it is asked for.
    assert onnxruntime_packages(resolve(f"{PROJECT}[cpu,gpu]", stand_ins)) == {"onnxruntime", "onnxruntime-gpu"}


# ---------------------------------------------------------------------------------------------------------------
# The release build.

def source_tree(destination: Path) -> Path:
    """The files a fresh clone has (tracked, and new ones not ignored), so that the build sees neither this
    checkout's build leftovers nor writes any (setuptools puts its egg-info beside pyproject.toml)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    return destination


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("release")
    source, dist = source_tree(root / "source"), root / "dist"
    build = run([sys.executable, "-m", "build", "--outdir", dist, source])
    (wheel,) = dist.glob("latent_atlas-*.whl")
    (sdist,) = dist.glob("latent_atlas-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "output": build.stdout + build.stderr}


@pytest.mark.wheel
def test_build_prints_no_warning_and_twine_accepts_both(release):
    assert "Successfully built" in release["output"]
    assert warning_lines(release["output"]) == []
    check = run([sys.executable, "-m", "twine", "check", "--strict", release["wheel"], release["sdist"]])
    assert check.stdout.count("PASSED") == 2, check.stdout


@pytest.mark.wheel
def test_wheel_metadata_license_and_extras(release):
    with zipfile.ZipFile(release["wheel"]) as wheel:
        names = set(wheel.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        assert wheel.read(f"{info}/licenses/LICENSE") == (REPO / "LICENSE").read_bytes()
    assert metadata["Name"] == PROJECT and metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata.get_all("Project-URL") and metadata.get_all("Classifier")
    assert {"cpu", "gpu", "train", "app", "dev"} <= set(metadata.get_all("Provides-Extra"))
    base = [Requirement(r) for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]
    assert not {canonicalize_name(r.name) for r in base} & {canonicalize_name(n) for n in ORT_DISTRIBUTIONS}


@pytest.mark.wheel
def test_wheel_contains_every_subpackage_the_bundled_models_and_the_web_app(release):
    wheel = zipfile.ZipFile(release["wheel"])
    names = set(wheel.namelist())
    for package in ("cli", "train", "export", "runtime", "desktop_app", "web"):
        for path in (REPO / package).glob("*.py"):
            assert f"latent_atlas/{package}/{path.name}" in names, path
    models = REPO / "runtime" / "models"
    bundled = [p for p in models.rglob("*") if p.is_file()]
    assert {p.parent.name for p in bundled} >= {"mnist", "fashion-mnist", "mnist-binarized"}
    # The browser explorer ships as its sources (no build step) with the lock file that pins onnxruntime-web;
    # onnxruntime-web's .wasm files do not: `latent-atlas web` fetches them once.
    app = [p for p in (REPO / "web" / "app").rglob("*") if p.is_file()]
    for path in [*bundled, *app, REPO / "web" / "package.json", REPO / "web" / "package-lock.json"]:
        wheel_name = f"latent_atlas/{path.relative_to(REPO).as_posix()}"
        assert wheel.read(wheel_name) == path.read_bytes(), wheel_name
    assert not any(n.endswith(".wasm") or "node_modules" in n or "__pycache__" in n for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/", "docs/")) for n in names)


@pytest.mark.wheel
def test_sdist_holds_what_the_wheel_is_built_from(release):
    with tarfile.open(release["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "LICENSE", "README.md", "cli/main.py", "runtime/models/mnist/decoder.onnx",
            "web/app/index.html", "web/package-lock.json"} <= names


@pytest.mark.wheel
def test_installed_wheel_runs_without_torch_from_outside_the_checkout(release, tmp_path):
    env_dir, wheel = tmp_path / "venv", release["wheel"]
    venv.create(env_dir, with_pip=True)
    python, cli = env_dir / "bin" / "python", env_dir / "bin" / "latent-atlas"

    def latent_atlas(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(cli), *args], capture_output=True, text=True, cwd=tmp_path, env=pip_env())

    # The plain install: no ONNX Runtime yet, and every command says which extra brings it.
    installed = run([python, "-m", "pip", "install", wheel], cwd=tmp_path)
    assert warning_lines(installed.stdout + installed.stderr) == []
    version = latent_atlas("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"latent-atlas {wheel.name.split('-')[1]}"
    bare = latent_atlas("info", "-m", "mnist")
    assert bare.returncode == 2 and "Traceback" not in bare.stderr
    assert f"-m pip install '{wheel}[cpu]'" in bare.stderr and "[gpu]" in bare.stderr

    installed = run([python, "-m", "pip", "install", f"{wheel}[cpu]"], cwd=tmp_path)
    assert warning_lines(installed.stdout + installed.stderr) == []
    run([python, "-m", "pip", "check"])
    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert probe.returncode != 0, "the [cpu] install must not pull torch"

    info = latent_atlas("info", "-m", "mnist", "--json")
    assert info.returncode == 0, info.stderr
    assert Path(json.loads(info.stdout)["path"]).is_relative_to(env_dir)
    out = tmp_path / "digit.png"
    decoded = latent_atlas("decode", "-m", "mnist", "--z=0.5,-1", "-o", str(out))
    assert decoded.returncode == 0, decoded.stderr
    with Image.open(out) as image:
        assert min(image.size) >= 28
    # The browser explorer too, with no Node or npm: onnxruntime-web comes from the lock file's pin.
    site = tmp_path / "site"
    served = latent_atlas("web", "-m", "mnist", "--out", str(site), "--quiet")
    assert served.returncode == 0, served.stderr
    assert (site / "index.html").is_file() and (site / "ort" / "ort-wasm-simd-threaded.wasm").stat().st_size > 1e6
    # A hint that is true: the extra, added from the wheel this install came from.
    train = latent_atlas("train")
    assert train.returncode == 2 and "Traceback" not in train.stderr
    assert f"{python} -m pip install '{wheel}[train]'" in train.stderr


# ---------------------------------------------------------------------------------------------------------------
# The Makefile's venv: CPU torch, never an unreachable index first.

def make_venv_recipe(tmp_path: Path, *variables: str) -> list[str]:
    return run(["make", "--no-print-directory", "-n", "venv", f"VENV={tmp_path / 'venv'}", *variables],
               cwd=REPO).stdout.splitlines()


def test_make_venv_takes_a_local_cpu_torch_first_then_the_cpu_index(tmp_path):
    recipe = make_venv_recipe(tmp_path)
    (torch,) = [line for line in recipe if "torch==" in line]
    local, fallback = torch.split("||")
    # A wheel already on the machine, asking no index, and pinned as the train extra pins it.
    pin = next(r for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
               ["train"] if r.startswith("torch"))
    assert "--no-index" in local.split() and f"'{pin}'" in local and f"'{pin}'" in fallback
    assert "--index-url https://download.pytorch.org/whl/cpu" in fallback
    assert recipe.index(torch) < next(i for i, line in enumerate(recipe) if "[cpu,train,app,dev]" in line)


def test_make_venv_for_cuda_users_asks_their_index_and_the_gpu_runtime(tmp_path):
    cuda = "https://download.pytorch.org/whl/cu126"
    recipe = make_venv_recipe(tmp_path, f"TORCH_INDEX={cuda}", "ORT_EXTRA=gpu")
    (torch,) = [line for line in recipe if "torch==" in line]
    assert "--no-index" not in torch and f"--index-url {cuda}" in torch
    assert any("[gpu,train,app,dev]" in line for line in recipe)
