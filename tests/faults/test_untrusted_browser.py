"""The browser's rules for bundles opened from a user's disk (web/app/js/untrusted.js, npz.js), in real
Chromium: the same files the Python runtime accepts are accepted with the same values, the same hostile
ones refused (naming the same field), with the limits the page read from config.json."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import untrusted
from latent_atlas.runtime.limits import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_INTEGER, MAX_NPZ_ARRAY_BYTES, MAX_NPZ_MEMBERS

from .conftest import reseal
from .test_hostile_bundles import npy_header, write_zeros_member

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    from latent_atlas.web.browser import launched
    from latent_atlas.web.serve import serve_in_thread
    from latent_atlas.web.site import build_site

    site = build_site(["mnist"], tmp_path_factory.mktemp("site") / "site", quiet=True)
    server, url = serve_in_thread(site)
    try:
        with sync_playwright() as playwright, launched(playwright) as context:
            page = context.new_page()
            page.goto(url + "?provider=wasm")
            page.wait_for_function("window.__atlas !== undefined")
            page.evaluate("window.__atlas.ready")
            yield page
    finally:
        server.shutdown()
        server.server_close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


JS_JSON = """async (cases) => {
  const u = await import('./js/untrusted.js');
  return cases.map(text => {
    try { return { value: JSON.stringify(u.parseJson(Uint8Array.from(atob(text), c => c.charCodeAt(0)), 'x.json')) }; }
    catch (error) { return { error: error.message }; }
  });
}"""


def python_json(data: bytes) -> dict:
    try:
        return {"value": untrusted.parse_json(data, "x.json")}
    except ValueError as exc:
        return {"error": str(exc)}


def field(message: str) -> str | None:
    match = re.match(r"x\.json: (\S+): ", message)
    return match.group(1) if match else None


JSON_CASES = {
    "the bundled manifest": (fmt.BUNDLED_MODELS_DIR / "mnist" / fmt.MANIFEST).read_bytes(),
    "NaN": b'{"a": [1, NaN]}', "Infinity": b'{"a": {"b": Infinity}}', "-Infinity": b"[-Infinity]",
    "overflowing float": b'{"a": 1e400}', "a float that is fine": b'{"a": 1.5e300, "b": -0.0, "c": 5e-324}',
    "2**53": b'{"n": %d}' % (MAX_JSON_INTEGER + 1), "-(2**53)": b'{"n": [%d]}' % -(MAX_JSON_INTEGER + 1),
    "2**53 - 1": b'{"n": %d, "m": %d}' % (MAX_JSON_INTEGER, -MAX_JSON_INTEGER),
    "thousands of digits": b'{"deep": {"n": ' + b"7" * 5000 + b"}}",
    "at the depth limit": b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH,
    "past the depth limit": b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    "100,000 levels": b"{\"a\":" * 100_000 + b"1" + b"}" * 100_000,
    "brackets in strings": json.dumps({"s": "[{" * 500, "t": '\\"]'}).encode(),
    "a byte-order mark": b"\xef\xbb\xbf{}", "not UTF-8": b'{"a": "\xff"}', "trailing comma": b"[1,]",
    "too big": b'"' + b"a" * MAX_JSON_BYTES + b'"',
}


def test_python_and_the_browser_accept_and_refuse_the_same_json(page):
    browser = page.evaluate(JS_JSON, [b64(data) for data in JSON_CASES.values()])
    for (case, data), js in zip(JSON_CASES.items(), browser):
        py = python_json(data)
        assert ("error" in py) == ("error" in js), (case, py, js)
        if "error" in py:
            # JSON.parse itself refuses NaN and Infinity as syntax, before any field is known.
            named = field(js["error"]) if case not in ("NaN", "Infinity", "-Infinity") else field(py["error"])
            assert js["error"].startswith("x.json: ") and field(py["error"]) == named, (case, py, js)
        else:
            assert json.loads(js["value"]) == py["value"], case
    refused = {case for (case, _), js in zip(JSON_CASES.items(), browser) if "error" in js}
    assert refused >= {"NaN", "2**53", "past the depth limit", "100,000 levels", "too big", "a byte-order mark"}


JS_NPZ = """async (cases) => {
  const { readNpz } = await import('./js/npz.js');
  const out = [];
  for (const data of cases) {
    try {
      const arrays = await readNpz(Uint8Array.from(atob(data), c => c.charCodeAt(0)), { rows: true });
      out.push({ value: Object.fromEntries(Object.entries(arrays).map(([k, a]) => [k, [a.shape, Array.from(a.data, Number)]])) });
    } catch (error) { out.push({ error: error.message }); }
  }
  return out;
}"""


def npz_cases() -> dict[str, bytes]:
    def npz(**arrays) -> bytes:
        buffer = io.BytesIO()
        fmt.write_npz(buffer, **arrays)
        return buffer.getvalue()

    def raw(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        return buffer.getvalue()

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        write_zeros_member(archive, "z_mean.npy", (MAX_NPZ_ARRAY_BYTES // 8 + 1, 2))
        write_zeros_member(archive, "labels.npy", (MAX_NPZ_ARRAY_BYTES // 8 + 1,), "|u1")
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return {
        "an honest atlas": npz(z_mean=np.arange(8, dtype=np.float32).reshape(4, 2), labels=np.arange(4, dtype=np.uint8)),
        "different lengths": npz(z_mean=np.zeros((4, 2), np.float32), labels=np.zeros(3, np.uint8)),
        "a zip bomb": bomb.getvalue(),
        "terabytes claimed": raw({"z_mean.npy": npy_header((1 << 39, 2)) + bytes(64)}),
        "a header that understates": raw({"z_mean.npy": npy_header((2, 2)) + bytes(16 + 4096)}, zipfile.ZIP_DEFLATED),
        "a pickle": raw({"z_mean.npy": pickled.getvalue()}),
        "too many members": npz(**{f"a{i}": np.zeros(1, np.uint8) for i in range(MAX_NPZ_MEMBERS + 1)}),
        "not an array": raw({"z_mean.npy": b"plain text"}),
    }


def test_python_and_the_browser_accept_and_refuse_the_same_npz(page, tmp_path):
    cases = npz_cases()
    browser = page.evaluate(JS_NPZ, [b64(data) for data in cases.values()])
    for (case, data), js in zip(cases.items(), browser):
        path = tmp_path / "a.npz"
        path.write_bytes(data)
        try:
            py = {"value": {k: [list(v.shape), v.ravel().tolist()] for k, v in untrusted.read_npz(path, rows=True).items()}}
        except ValueError as exc:
            py = {"error": str(exc)}
        assert ("error" in py) == ("error" in js), (case, py, js)
        if "value" in py:
            assert js["value"] == py["value"], case
    assert sum("error" in js for js in browser) == len(cases) - 1


def test_a_hostile_bundle_opened_from_disk_is_refused_and_the_model_kept(page, tmp_path):
    source = fmt.BUNDLED_MODELS_DIR / "mnist"
    deep = tmp_path / "deep"
    shutil.copytree(source, deep)
    (deep / fmt.MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    bomb = tmp_path / "bomb"
    shutil.copytree(source, bomb)
    (bomb / fmt.ATLAS).write_bytes(npz_cases()["a zip bomb"])
    reseal(bomb)
    for folder, words in ((deep, "levels deep"), (bomb, f"more than the {MAX_NPZ_ARRAY_BYTES}")):
        loads = page.evaluate("window.__atlas.state.loads")
        page.set_input_files("#open-bundle-files", files=[str(p) for p in sorted(Path(folder).iterdir())])
        page.wait_for_function(f"window.__atlas.state.loads > {loads}")
        assert words in page.inner_text("#message"), folder.name
        assert "model mnist" in page.inner_text("#status")
