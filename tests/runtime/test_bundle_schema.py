"""The bundle format's one owner (runtime/bundle_schema.py): what is derived from it, the checked-in
schema, byte-for-byte round trips of the bundled models, and the small JSON-Schema validator against
the reference implementation (the `jsonschema` package, used here only)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import bundle_schema
from latent_atlas.runtime.json_schema import first_error, unsupported_keywords

SOURCE = Path(fmt.MANIFEST)


def mnist_values() -> dict:
    return json.loads((fmt.BUNDLED_MODELS_DIR / "mnist" / fmt.MANIFEST).read_text())


def test_the_checked_in_schema_is_the_one_the_owner_generates():
    assert bundle_schema.SCHEMA_PATH.read_text(encoding="utf-8") == bundle_schema.schema_text(), (
        "runtime/bundle.schema.json is stale: regenerate it with "
        "python -c 'from latent_atlas.runtime import bundle_schema; bundle_schema.write_schema()'")


def test_the_schema_is_valid_and_uses_only_what_both_validators_implement():
    jsonschema.Draft202012Validator.check_schema(bundle_schema.SCHEMA)
    assert unsupported_keywords(bundle_schema.SCHEMA) == []
    assert unsupported_keywords({"type": "object", "properties": {"a": {"oneOf": []}}}) == ["a: oneOf"]
    # (each keyword, in Python and in the browser: tests/web/test_web_bundle_schema.py)


def test_everything_is_derived_from_the_fields():
    fields = bundle_schema.FIELDS
    assert fmt.METADATA_KEYS == tuple(f.key for f in fields if f.metadata)
    # the keys the ONNX files of earlier exports carry, and the likelihood (issue 49)
    assert set(fmt.METADATA_KEYS) == {"schema_version", "name", "variant", "latent_dim", "image_shape", "likelihood",
                                      "pixel_range", "dataset", "training", "metrics", "latent_stats", "prior",
                                      "versions", "static_batch", "runtimes"}
    schema = bundle_schema.SCHEMA
    assert schema["required"] == [f.key for f in fields if f.required]
    assert list(schema["properties"]) == [f.key for f in fields]
    # The typed Manifest has exactly the fields' keys (plus `extra`, the keys it does not know).
    assert {f.name for f in dataclasses.fields(fmt.Manifest)} == {f.key for f in fields} | {"extra"}
    defaults = {f.name: f.default for f in dataclasses.fields(fmt.Manifest) if f.default is not dataclasses.MISSING}
    for field in fields:
        if field.default is not None:
            assert defaults[field.key] == field.default, field.key
    # The ONNX metadata carries exactly the metadata keys, under their declared metadata keys.
    # (the bundled MNIST bundle.json predates `likelihood`, which exports now write)
    values = {**mnist_values(), "likelihood": {"name": "bernoulli"}}
    props = fmt.onnx_metadata(fmt.Manifest.from_json(values, SOURCE), "decoder")
    assert set(props) == {f.metadata_key for f in fields if f.metadata} | {"latent_atlas.role"}


def test_the_reference_names_every_field_the_version_and_the_compatibility_promise():
    text = bundle_schema.reference_markdown()
    assert text.startswith(f"# The model bundle format (schema_version {bundle_schema.SCHEMA_VERSION})")
    for field in bundle_schema.FIELDS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{field.key}` |"))
        assert field.description in row and f"| {'yes' if field.required else 'no'} |" in row, row
    for nested in ("dataset.class_names", "files.<name>.sha256", "onnx.decoder.inputs.<name>", "prior.kind"):
        assert f"| `{nested}` |" in text, nested
    assert bundle_schema.COMPATIBILITY in text and "bumps schema_version" in text
    assert "reference_markdown()" in fmt.__doc__  # the module's docstring points at the reference


@pytest.mark.parametrize("name", fmt.bundled_names())
def test_the_bundled_models_round_trip_byte_for_byte(name, tmp_path):
    path = fmt.BUNDLED_MODELS_DIR / name / fmt.MANIFEST
    fmt.Manifest.load(path.parent).write(tmp_path)
    assert (tmp_path / fmt.MANIFEST).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("field", [f for f in bundle_schema.FIELDS if not f.required], ids=lambda f: f.key)
def test_an_older_bundle_without_an_optional_key_loads_and_is_written_back_as_it_was(field):
    values = mnist_values()
    for key in (field.key, field.written_with) + tuple(f.key for f in bundle_schema.FIELDS if f.written_with == field.key):
        values.pop(key, None)  # static_batch and runtimes came together
    written = fmt.Manifest.from_json(values, SOURCE).to_json()
    if field.always_written or field.default is not None:  # written with its default value
        assert written.pop(field.key) == (None if field.default is None else list(field.default))
    assert written == values


@pytest.mark.parametrize("key", bundle_schema.REQUIRED)
def test_a_missing_required_key_is_one_line_naming_the_file_and_the_key(key):
    values = mnist_values()
    del values[key]
    with pytest.raises(fmt.BundleError) as caught:
        fmt.Manifest.from_json(values, SOURCE)
    message = str(caught.value)
    assert message.startswith(f"bundle.json: ") and f"{key}: missing (a required key)" in message
    assert "\n" not in message


def test_an_unlabelled_dataset_and_unknown_keys_load():
    values = mnist_values()
    del values["dataset"]["class_names"]
    values["dataset"]["colour"] = "sepia"
    values["added_later"] = {"x": 1}
    manifest = fmt.Manifest.from_json(values, SOURCE)
    assert manifest.class_names == [] and manifest.extra == {"added_later": {"x": 1}}
    assert manifest.to_json()["dataset"]["colour"] == "sepia" and list(manifest.to_json())[-1] == "added_later"
    values["dataset"]["class_names"] = []
    assert fmt.Manifest.from_json(values, SOURCE).class_names == []


def test_a_whole_number_written_as_a_float_is_an_integer_as_in_javascript():
    values = mnist_values()
    values["latent_dim"] = 2.0
    manifest = fmt.Manifest.from_json(values, SOURCE)
    assert manifest.latent_dim == 2 and isinstance(manifest.latent_dim, int)


def test_another_schema_version_says_which_one_this_reader_reads():
    values = mnist_values()
    values["schema_version"] = 2
    with pytest.raises(fmt.BundleError, match=r"^bundle\.json: not a latent-atlas bundle manifest of schema_version 1 "
                                              r"\(schema_version: expected one of 1, found 2\)"):
        fmt.Manifest.from_json(values, SOURCE)
    with pytest.raises(fmt.BundleError, match=r"not a latent-atlas bundle manifest .*\(\(the whole document\): "
                                              r"expected object, found array"):
        fmt.Manifest.from_json([1, 2], SOURCE)


def test_the_bundled_manifests_conform_and_a_broken_one_fails_in_both_validators():
    for name in fmt.bundled_names():
        values = json.loads((fmt.BUNDLED_MODELS_DIR / name / fmt.MANIFEST).read_text())
        assert first_error(bundle_schema.SCHEMA, values) is None
        jsonschema.validate(values, bundle_schema.SCHEMA)
    broken = copy.deepcopy(mnist_values())
    broken["onnx"]["encoder"]["inputs"]["image"][1] = 1.5
    assert first_error(bundle_schema.SCHEMA, broken).path == "onnx.encoder.inputs.image[1]"
    assert not jsonschema.Draft202012Validator(bundle_schema.SCHEMA).is_valid(broken)
