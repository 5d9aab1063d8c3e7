"""The browser validates bundle.json by the same rules as Python: the site's bundle.schema.json, read by
web/app/js/schema.js, agrees with runtime/json_schema.py (and with the `jsonschema` package) on every
manifest below, accepted or refused, down to the field path of the first error."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import bundle_schema, explorer_rules
from latent_atlas.runtime.json_schema import first_error

SOURCE = Path(fmt.MANIFEST)
# The one colour of an unlabelled atlas, from the rules both explorers read.
UNLABELLED_RGB = tuple(int(explorer_rules.UNLABELLED_COLOUR[i:i + 2], 16) for i in (1, 3, 5))


def manifest_cases() -> dict[str, object]:
    """name -> a bundle.json value, built from the bundled MNIST model's: some valid, most broken."""
    base = json.loads((fmt.BUNDLED_MODELS_DIR / "mnist" / fmt.MANIFEST).read_text())
    cases: dict[str, object] = {"bundled mnist": base, "not an object": [base], "empty object": {}}

    def case(name, change):
        values = copy.deepcopy(base)
        change(values)
        cases[name] = values

    case("unlabelled: class_names empty", lambda v: v["dataset"].update(class_names=[]))
    case("unlabelled: class_names absent", lambda v: v["dataset"].pop("class_names"))
    case("older bundle: only the required keys",
         lambda v: [v.pop(f.key, None) for f in bundle_schema.FIELDS if not f.required])
    case("unknown keys", lambda v: (v.update(added_later={"x": [1]}), v["dataset"].update(colour="sepia")))
    case("latent_dim written 2.0", lambda v: v.update(latent_dim=2.0))
    case("static batch", lambda v: v.update(static_batch=4))
    case("layout null", lambda v: v["dataset"].update(layout=None))
    case("standard normal prior", lambda v: v.update(prior={"kind": "standard_normal"}))
    for key in bundle_schema.REQUIRED:
        case(f"missing {key}", lambda v, key=key: v.pop(key))
    for name, key, value in [
        ("schema_version 2", "schema_version", 2), ("schema_version a string", "schema_version", "1"),
        ("latent_dim a word", "latent_dim", "two"), ("latent_dim 0", "latent_dim", 0),
        ("latent_dim 2.5", "latent_dim", 2.5), ("latent_dim true", "latent_dim", True),
        ("variant unknown", "variant", "fp64"), ("name a number", "name", 7),
        ("image_shape too short", "image_shape", [28, 28]), ("image_shape too long", "image_shape", [1, 28, 28, 1]),
        ("image_shape zero", "image_shape", [1, 0, 28]), ("pixel_range strings", "pixel_range", ["0", "1"]),
        ("static_batch 0", "static_batch", 0), ("metrics a list", "metrics", [1]),
        ("ort style unknown", "ort_optimization_style", "Eager"), ("export_command a number", "export_command", 1),
        ("runtimes a string", "runtimes", "onnxruntime"),
    ]:
        case(name, lambda v, key=key, value=value: v.update({key: value}))
    case("class_names a string", lambda v: v["dataset"].update(class_names="0123456789"))
    case("class_names numbers", lambda v: v["dataset"].update(class_names=list(range(10))))
    case("layout unknown", lambda v: v["dataset"].update(layout="polaroid"))
    case("source kind unknown", lambda v: v["dataset"]["source"].update(kind="cloud"))
    case("dataset file checksum short", lambda v: v["dataset"]["files"].update({"extra.gz": "abc"}))
    case("file sha256 upper case", lambda v: v["files"]["atlas.npz"].update(sha256=v["files"]["atlas.npz"]["sha256"].upper()))
    case("file without sha256", lambda v: v["files"]["decoder.onnx"].pop("sha256"))
    case("file bytes negative", lambda v: v["files"]["encoder.onnx"].update(bytes=-1))
    case("prior kind unknown", lambda v: v["prior"].update(kind="uniform"))
    case("prior weights strings", lambda v: v["prior"].update(weights=["0.5", "0.5"]))
    case("onnx shape a float", lambda v: v["onnx"]["encoder"]["inputs"]["image"].__setitem__(1, 1.5))
    case("versions a number", lambda v: v["versions"].update(python=3.11))
    case("latent_stats a list", lambda v: v.update(latent_stats=[0.0, 1.0]))
    return cases


def python_verdict(values) -> str | None:
    """None if Python's reader accepts the manifest, else the field path its one-line error names."""
    try:
        fmt.Manifest.from_json(values, SOURCE)
    except fmt.BundleError as exc:
        message = str(exc)
        assert message.startswith("bundle.json: ") and "\n" not in message, message
        error = first_error(bundle_schema.SCHEMA, values)
        assert error is not None and str(error) in message, message  # it is the schema that refused it
        return error.path
    return None


CASES = manifest_cases()
VERDICTS = {name: python_verdict(values) for name, values in CASES.items()}


def test_python_accepts_the_valid_manifests_and_refuses_each_broken_one_where_it_is_broken():
    accepted = {name for name, path in VERDICTS.items() if path is None}
    assert accepted == {"bundled mnist", "unlabelled: class_names empty", "unlabelled: class_names absent",
                        "older bundle: only the required keys", "unknown keys", "latent_dim written 2.0",
                        "static batch", "layout null", "standard normal prior"}
    assert VERDICTS["latent_dim a word"] == "latent_dim" and VERDICTS["missing files"] == "files"
    assert VERDICTS["onnx shape a float"] == "onnx.encoder.inputs.image[1]"
    assert VERDICTS["file without sha256"] == "files.decoder.onnx.sha256"
    assert VERDICTS["not an object"] == "" and VERDICTS["empty object"] == "schema_version"


def test_the_reference_implementation_agrees_with_python_on_every_manifest():
    validator = jsonschema.Draft202012Validator(bundle_schema.SCHEMA)
    for name, values in CASES.items():
        assert validator.is_valid(values) == (VERDICTS[name] is None), name


# Each keyword of the subset, alone: (schema, value, the path of the first error or None).
KEYWORD_CASES = [
    ({"type": "integer"}, 3, None), ({"type": "integer"}, 3.0, None), ({"type": "integer"}, 3.5, ""),
    ({"type": "integer"}, True, ""), ({"type": "number"}, False, ""), ({"type": ["string", "null"]}, None, None),
    ({"type": "object"}, [], ""), ({"type": "array"}, {}, ""), ({"type": "boolean"}, 0, ""),
    ({"enum": [1, "a", None]}, True, ""), ({"enum": [1, "a", None]}, 1.0, None), ({"enum": [1, "a", None]}, None, None),
    ({"minimum": 1}, 0, ""), ({"minimum": 1}, "0", None), ({"maximum": 2.5}, 2.5, None), ({"maximum": 2.5}, 3, ""),
    ({"minLength": 2}, "é", ""), ({"maxLength": 2}, "éé", None), ({"maxLength": 2}, "abc", ""),
    ({"maxLength": 1}, "\U0001F600", None),
    ({"pattern": "^[0-9a-f]+$"}, "00ff", None), ({"pattern": "^[0-9a-f]+$"}, "00FF", ""), ({"pattern": "b"}, "abc", None),
    ({"minItems": 1}, [], ""), ({"maxItems": 1}, [1, 2], ""), ({"items": {"type": "string"}}, ["a", 2], "[1]"),
    ({"required": ["a", "b"]}, {"b": 1}, "a"), ({"properties": {"a": {"type": "string"}}}, {"a": 1}, "a"),
    ({"properties": {"a": {}}, "additionalProperties": False}, {"a": 1, "b": 2}, "b"),
    ({"additionalProperties": {"type": "integer"}}, {"x": 1, "y": "2"}, "y"),
    ({"properties": {"a": {"items": {"properties": {"b": {"type": "null"}}}}}}, {"a": [{"b": None}, {"b": 0}]}, "a[1].b"),
]


@pytest.mark.parametrize("schema, value, path", KEYWORD_CASES, ids=[str(i) for i in range(len(KEYWORD_CASES))])
def test_each_keyword_as_the_reference_implementation_reads_it(schema, value, path):
    error = first_error(schema, value)
    assert (error.path if error else None) == path
    assert jsonschema.Draft202012Validator(schema).is_valid(value) == (path is None)


BROWSER_VERDICTS = """async ([manifests, keywordCases]) => {
  const { firstError } = await import('./js/schema.js');
  const { bundleSchema, checkManifest } = await import('./js/bundle.js');
  const schema = await bundleSchema();
  const verdicts = {};
  for (const [name, values] of Object.entries(manifests)) {
    const error = firstError(schema, values);
    let message = null;
    try { checkManifest(values, schema); } catch (thrown) { message = thrown.message; }
    verdicts[name] = { path: error ? error.path : null, text: error ? String(error) : null, message };
  }
  const keywords = keywordCases.map(([rules, value]) => { const e = firstError(rules, value); return e ? e.path : null; });
  return { verdicts, keywords };
}"""


@pytest.mark.browser
def test_the_browser_validator_agrees_with_python_on_every_manifest_and_keyword(page):
    result = page.evaluate(BROWSER_VERDICTS, [CASES, [[s, v] for s, v, _ in KEYWORD_CASES]])
    for name, verdict in result["verdicts"].items():
        assert verdict["path"] == VERDICTS[name], name
        if verdict["path"] is None:
            assert verdict["message"] is None, name
        else:  # bundle.js refuses it in one line naming the file and the same field path
            assert verdict["message"].startswith("bundle.json: ") and verdict["text"] in verdict["message"], name
            assert "\n" not in verdict["message"] and verdict["text"].startswith(verdict["path"] or "(the whole"), name
    assert result["keywords"] == [path for _, _, path in KEYWORD_CASES]


@pytest.mark.browser
def test_an_unlabelled_bundle_opens_in_the_browser_uncoloured_without_a_legend(page, tmp_path):
    bundle = tmp_path / "unlabelled"
    shutil.copytree(fmt.BUNDLED_MODELS_DIR / "mnist", bundle)
    values = json.loads((bundle / fmt.MANIFEST).read_text())
    del values["dataset"]["class_names"]  # your own images, without labels
    values["name"] = "letters"
    (bundle / fmt.MANIFEST).write_text(json.dumps(values))
    assert fmt.read(bundle).class_names == []  # Python opens it...
    loads = page.evaluate("window.__atlas.state.loads")
    page.set_input_files("#open-bundle-files", files=[str(p) for p in sorted(bundle.iterdir())])
    page.wait_for_function(f"window.__atlas.state.loads > {loads}")
    assert page.is_hidden("#message"), page.inner_text("#message")  # ...and so does the browser
    assert "model letters" in page.inner_text("#status")
    assert page.evaluate("document.getElementById('legend').children.length") == 0
    rgba = np.array(page.evaluate("""(() => { const c = document.getElementById('map-points');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); })()""")).reshape(-1, 4)
    # The atlas is drawn, every point in the one uncoloured colour (pixels a point covers; the edges of
    # points are too transparent for their colour to survive the canvas's 8-bit alpha).
    drawn = rgba[rgba[:, 3] >= 128, :3]
    assert len(drawn) > 1000
    assert np.abs(drawn - np.array(UNLABELLED_RGB)).max() <= 3
