"""`latent-atlas export --static-batch N --ort`: a fixed batch, the ORT format, and the runtime on both.

bundle_dir (tests/export/conftest.py) is the same run exported with a dynamic batch: the reference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from latent_atlas import runtime
from latent_atlas.cli.main import main as cli
from latent_atlas.export import mobile
from latent_atlas.runtime import bundle as fmt

STATIC_BATCH = 4


@pytest.fixture(scope="module")
def static_bundle(tmp_path_factory, run_dir, data_dir) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "static"
    assert cli(["export", str(run_dir), "--out", str(out), "--static-batch", str(STATIC_BATCH), "--ort",
                "--iw-samples", "0", "--data-dir", str(data_dir)]) == 0
    return out


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def inputs(rng: np.random.Generator, n: int) -> dict[str, dict[str, np.ndarray]]:
    return {fmt.ENCODER: {fmt.ENCODER_INPUT: rng.random((n, 1, 28, 28), dtype=np.float32)},
            fmt.DECODER: {fmt.DECODER_INPUT: rng.standard_normal((n, 2), dtype=np.float32) * 2}}


def test_static_batch_is_fixed_recorded_and_gives_the_dynamic_numbers(static_bundle, bundle_dir):
    manifest = json.loads((static_bundle / fmt.MANIFEST).read_text())
    assert manifest["static_batch"] == STATIC_BATCH
    assert manifest["onnx"]["decoder"]["inputs"] == {"z": [STATIC_BATCH, 2]}
    assert manifest["onnx"]["encoder"]["outputs"]["z_mean"] == [STATIC_BATCH, 2]
    assert json.loads((bundle_dir / fmt.MANIFEST).read_text())["static_batch"] is None
    feeds = inputs(np.random.default_rng(0), STATIC_BATCH)
    for name in (fmt.ENCODER, fmt.DECODER):
        proto = onnx.load(static_bundle / name)
        shapes = [[d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]
                  for v in (*proto.graph.input, *proto.graph.output)]
        assert all(shape[0] == STATIC_BATCH for shape in shapes), shapes
        assert fmt.parse_onnx_metadata({p.key: p.value for p in proto.metadata_props})["static_batch"] == STATIC_BATCH
        static, dynamic = session(static_bundle / name), session(bundle_dir / name)
        for got, want in zip(static.run(None, feeds[name]), dynamic.run(None, feeds[name])):
            assert got.shape[0] == STATIC_BATCH
            np.testing.assert_array_equal(got, want)
        with pytest.raises(Exception, match="(?i)dimension"):  # onnxruntime itself refuses another batch
            static.run(None, inputs(np.random.default_rng(1), STATIC_BATCH + 1)[name])


def test_ort_files_are_listed_load_and_give_the_same_outputs(static_bundle, bundle_dir):
    manifest = json.loads((static_bundle / fmt.MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted([fmt.ENCODER, fmt.DECODER, fmt.ATLAS, fmt.ATLAS_EXTRA, "encoder.ort", "decoder.ort"])
    assert manifest["ort_optimization_style"] == "Runtime"  # a static batch is for NNAPI / CoreML
    fmt.read(static_bundle, verify=True)  # the .ort files' SHA-256 match
    feeds = inputs(np.random.default_rng(2), STATIC_BATCH)
    for name in (fmt.ENCODER, fmt.DECODER):
        ort_session = session(static_bundle / mobile.ort_name(name))
        assert fmt.parse_onnx_metadata(ort_session.get_modelmeta().custom_metadata_map)["latent_dim"] == 2
        for got, want in zip(ort_session.run(None, feeds[name]), session(bundle_dir / name).run(None, feeds[name])):
            np.testing.assert_allclose(got, want, atol=mobile.ORT_PARITY_TOLERANCE, rtol=0)


def test_ort_for_a_bundle_dir_uses_the_cpu_style_and_keeps_the_batch_axis(bundle_dir, tmp_path):
    bundle = shutil.copytree(bundle_dir, tmp_path / "b")
    written = mobile.write_ort(bundle, mobile.ort_style(None))
    assert written == ["encoder.ort", "decoder.ort"] and mobile.ort_style(None) == "Fixed"
    decoder = session(bundle / "decoder.ort")
    z = np.random.default_rng(3).standard_normal((7, 2), dtype=np.float32)
    np.testing.assert_allclose(decoder.run(None, {"z": z})[0], session(bundle / fmt.DECODER).run(None, {"z": z})[0],
                               atol=mobile.ORT_PARITY_TOLERANCE, rtol=0)


def test_runtimes_say_what_each_form_is_for(static_bundle, bundle_dir):
    static = json.loads((static_bundle / fmt.MANIFEST).read_text())["runtimes"]
    dynamic = json.loads((bundle_dir / fmt.MANIFEST).read_text())["runtimes"]
    assert dynamic == list(fmt.VARIANT_RUNTIMES["fp32"]) and "opencv-dnn" in dynamic
    assert static == dynamic + list(fmt.STATIC_BATCH_RUNTIMES) + list(fmt.ORT_FORMAT_RUNTIMES)
    assert "opencv-dnn" not in mobile.runtimes("int8", None, False)  # OpenCV 4's DNN crashes on QDQ int8
    assert mobile.runtimes("fp16", None, False)[0] == "onnxruntime-gpu"
    props = {p.key: p.value for p in onnx.load(static_bundle / fmt.DECODER).metadata_props}
    assert fmt.parse_onnx_metadata(props)["runtimes"] == static


@pytest.mark.parametrize("n", [0, 1, 3, STATIC_BATCH, 9])
def test_runtime_runs_a_static_batch_bundle_at_any_batch(static_bundle, bundle_dir, n):
    static, dynamic = runtime.load(static_bundle, providers="cpu"), runtime.load(bundle_dir, providers="cpu")
    assert static.decoder.static_batch == static.encoder.static_batch == STATIC_BATCH
    assert dynamic.decoder.static_batch is None
    feeds = inputs(np.random.default_rng(n), n)
    z = feeds[fmt.DECODER][fmt.DECODER_INPUT]
    images = feeds[fmt.ENCODER][fmt.ENCODER_INPUT]
    np.testing.assert_array_equal(static.decode(z), dynamic.decode(z))
    for got, want in zip(static.encode(images), dynamic.encode(images)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(static.decode([0.5, -1.0]), dynamic.decode([0.5, -1.0]))  # one point: [28, 28]
    np.testing.assert_array_equal(static.manifold(5).images, dynamic.manifold(5).images)


def test_runtime_refuses_a_file_whose_metadata_disagrees_with_its_batch(static_bundle, tmp_path):
    proto = onnx.load(static_bundle / fmt.DECODER)
    for prop in proto.metadata_props:
        if prop.key == f"{fmt.METADATA_PREFIX}static_batch":
            prop.value = json.dumps(STATIC_BATCH * 2)
    path = tmp_path / "decoder.onnx"
    onnx.save(proto, path)
    with pytest.raises(ValueError, match=f"static_batch metadata says {STATIC_BATCH * 2}"):
        runtime.Decoder(path, providers="cpu")


@pytest.mark.parametrize("value", ["0", "-3", "four"])
def test_static_batch_must_be_a_positive_integer(run_dir, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        cli(["export", str(run_dir), "--out", str(tmp_path / "b"), f"--static-batch={value}"])
    assert exit_info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
