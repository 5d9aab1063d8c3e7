"""`latent-atlas web` without a browser: the site it writes, the server's headers, the onnxruntime-web
download (against a registry this test serves on 127.0.0.1), errors, and torch-freedom."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest

from latent_atlas.cli.main import main
from latent_atlas.runtime.bundle import bundled_names
from latent_atlas.web import onnxruntime_web, site
from latent_atlas.web.serve import ISOLATION_HEADERS, serve_in_thread

WEB = Path(site.__file__).parent


def test_the_site_holds_the_app_onnxruntime_web_and_every_bundle_byte_for_byte(tmp_path):
    out = site.build_site(["mnist", "fashion-mnist"], tmp_path / "site", quiet=True)
    config = json.loads((out / "config.json").read_text())
    assert [m["name"] for m in config["models"]] == ["mnist", "fashion-mnist"]
    for model in config["models"]:
        source = Path(__file__).parents[2] / "runtime" / "models" / model["name"]
        for path in source.iterdir():
            assert (out / model["path"] / path.name).read_bytes() == path.read_bytes()
    for name in onnxruntime_web.SITE_FILES:
        assert (out / "ort" / name).stat().st_size > 0
    assert config["onnxruntime_web"]["version"] == onnxruntime_web.read_pin().version
    # The page validates bundle.json against the schema the Python runtime uses: the package's copy.
    from latent_atlas.runtime import bundle_schema
    assert (out / bundle_schema.SCHEMA_FILE).read_bytes() == bundle_schema.SCHEMA_PATH.read_bytes()
    # The preprocessing constants come from the Python module: one definition.
    from latent_atlas.runtime import preprocessing
    assert config["preprocessing"]["layouts"]["fashion-mnist"] == {"box": 28, "centre_of_mass": False, "crop": True,
                                                                   "fit": "stretch"}
    assert config["preprocessing"]["min_contrast"] == preprocessing.MIN_CONTRAST
    # The app ships as its sources (plain ES modules, no build step): the site's copy is byte-identical.
    for path in (WEB / "app").rglob("*"):
        if path.is_file():
            assert (out / path.relative_to(WEB / "app")).read_bytes() == path.read_bytes()
    sizes = site.site_sizes(out)
    assert sizes["app"] < 1_000_000 and sizes["onnxruntime-web"] > 10_000_000 and sizes["bundles"] > 4_000_000


def test_the_site_uses_relative_urls_only():
    # Any static host serves it from any folder (e.g. GitHub Pages' /project/).
    html = (WEB / "app" / "index.html").read_text()
    assert not re.search(r'(src|href)="(/|https?:)', html)
    for script in (WEB / "app" / "js").glob("*.js"):
        text = script.read_text()
        for target in re.findall(r"""(?:import|from)\s*\(?\s*['"]([^'"]+)['"]""", text):
            assert target.startswith("./"), (script.name, target)
        assert "fetch('/" not in text and 'fetch("/' not in text


def test_rebuilding_replaces_an_earlier_site_but_never_a_foreign_folder(tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["web", "-m", "mnist", "--out", str(out), "--quiet"]) == 0
    assert main(["web", "-m", "fashion-mnist", "--out", str(out), "--quiet"]) == 0
    assert [m["name"] for m in json.loads((out / "config.json").read_text())["models"]] == ["fashion-mnist"]
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"precious")
    assert main(["web", "--out", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "not an empty folder or a site" in err and len(err.strip().splitlines()) == 1
    assert (foreign / "holiday.jpg").read_bytes() == b"precious"


def test_bad_bundles_and_arguments_are_one_line_errors(tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bundle.json").write_text("{}")
    for argv, words in ((["web", "-m", str(broken), "--out", str(tmp_path / "a")], "schema_version"),
                        (["web", "-m", str(tmp_path / "nowhere"), "--out", str(tmp_path / "b")], "neither a bundled model"),
                        (["web"], "--out DIR"),
                        (["web", "--serve", "--port", "70000"], "--port")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "a").exists()


def test_the_server_sends_the_cross_origin_isolation_headers_and_wasm_types(tmp_path):
    out = site.build_site(["mnist"], tmp_path / "site", quiet=True)
    server, url = serve_in_thread(out)
    try:
        for path, content_type in (("", "text/html"), ("ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
                                   ("ort/ort.wasm.min.mjs", "text/javascript"), ("js/main.js", "text/javascript")):
            with urllib.request.urlopen(url + path) as response:
                for name, value in ISOLATION_HEADERS.items():
                    assert response.headers[name] == value
                assert response.headers["Content-Type"].startswith(content_type), path
                body = response.read()  # sent by the kernel (sendfile): every byte, in order
                assert body == (out / (path or "index.html")).read_bytes(), path
    finally:
        server.shutdown()
        server.server_close()


def test_web_serve_prints_the_url_and_says_it_is_cross_origin_isolated(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "latent_atlas.cli.main", "web", "-m", "mnist", "--serve", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("open "):
                break
        text = "".join(lines)
        assert "Cross-Origin-Opener-Policy" in text and "WASM on several threads" in text
        url = lines[-1].split()[1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        with urllib.request.urlopen(url + "config.json") as response:
            assert json.load(response)["models"][0]["name"] == "mnist"
    finally:
        process.terminate()
        process.wait(timeout=10)


# ------------------------------------------------------------------------------------------------
# onnxruntime-web for pip users: fetched once from the npm registry, checked, cached


def fake_package(version: str) -> bytes:
    """An npm tarball laid out like onnxruntime-web's: package/dist/<the site's files>."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ("package.json", *(f"dist/{n}" for n in onnxruntime_web.SITE_FILES), "dist/ort.all.min.js"):
            data = f"{name} of {version}\n".encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A local npm registry with one fake onnxruntime-web, and a lock file that pins it."""
    version = "9.9.9"
    tarball = fake_package(version)
    root = tmp_path / "registry"
    (root / "onnxruntime-web" / "-").mkdir(parents=True)
    (root / "onnxruntime-web" / "-" / f"onnxruntime-web-{version}.tgz").write_bytes(tarball)
    lock = tmp_path / "package-lock.json"

    def pin(hash_of: bytes) -> None:
        lock.write_text(json.dumps({"lockfileVersion": 3, "packages": {
            "node_modules/onnxruntime-web": {"version": version, "integrity": integrity(hash_of)}}}))

    pin(tarball)
    monkeypatch.setattr(onnxruntime_web, "LOCK_FILE", lock)
    monkeypatch.setattr(onnxruntime_web, "NODE_MODULES_DIST", tmp_path / "no-node-modules")
    monkeypatch.setenv(onnxruntime_web.CACHE_ENV, str(tmp_path / "cache"))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server, url = serve_in_thread(root)
    monkeypatch.setenv(onnxruntime_web.REGISTRY_ENV, url)
    yield {"server": server, "pin": pin, "cache": tmp_path / "cache" / version, "version": version}
    server.shutdown()
    server.server_close()


def test_onnxruntime_web_is_fetched_once_checked_and_cached(registry, capsys):
    files = onnxruntime_web.ensure_files()
    assert files == registry["cache"]
    assert "fetching onnxruntime-web 9.9.9 once" in capsys.readouterr().out
    assert sorted(p.name for p in files.iterdir()) == sorted(onnxruntime_web.SITE_FILES)
    assert (files / "ort.wasm.min.mjs").read_text() == "dist/ort.wasm.min.mjs of 9.9.9\n"
    # Offline now: the cache serves it without the registry.
    registry["server"].shutdown()
    registry["server"].server_close()
    assert onnxruntime_web.ensure_files() == files
    assert capsys.readouterr().out == ""


def test_a_tarball_that_does_not_match_the_lock_file_is_refused(registry):
    registry["pin"](b"some other tarball")
    with pytest.raises(onnxruntime_web.OrtWebError, match="but the lock file pins"):
        onnxruntime_web.ensure_files(quiet=True)
    assert not registry["cache"].exists()  # nothing half-written is kept


def test_offline_is_a_one_line_error_that_says_what_to_do(registry, monkeypatch, tmp_path, capsys):
    registry["server"].shutdown()
    registry["server"].server_close()
    port = registry["server"].server_address[1]
    monkeypatch.setenv(onnxruntime_web.REGISTRY_ENV, f"http://127.0.0.1:{port}")
    assert main(["web", "-m", "mnist", "--out", str(tmp_path / "site"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "cannot fetch onnxruntime-web" in err and "connect to the internet once" in err and "npm ci" in err
    assert not (tmp_path / "site").exists()


def test_the_lock_file_pins_what_package_json_asks_for():
    wanted = json.loads((WEB / "package.json").read_text())["dependencies"]["onnxruntime-web"]
    pin = onnxruntime_web.read_pin()
    assert pin.version == wanted and pin.integrity.startswith("sha512-")


def test_the_web_package_is_torch_free():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import latent_atlas.web.commands, latent_atlas.web.site, latent_atlas.web.serve\n"
            "from latent_atlas.web.site import build_site\n"
            "bad = [m for m in sys.modules if m.startswith(('latent_atlas.train', 'latent_atlas.export', "
            "'latent_atlas.desktop_app', 'PyQt6'))]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert "mnist" in bundled_names()
