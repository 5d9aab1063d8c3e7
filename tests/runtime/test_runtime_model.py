"""The Python API: load, encode, decode, sample, interpolate, manifold, lone files, providers, errors."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from latent_atlas import runtime
from latent_atlas.runtime import session as session_module
from latent_atlas.runtime.bundle import BundleError
from latent_atlas.runtime.latent import normal_quantiles


def test_load_describes_the_bundled_model(model):
    assert model.name == "mnist"
    assert model.latent_dim == model.bundle.latent_dim == 2
    assert model.class_names == [str(d) for d in range(10)]
    assert model.provider == "CPUExecutionProvider"
    assert model.providers == {"encoder": "CPUExecutionProvider", "decoder": "CPUExecutionProvider"}
    assert "mnist" in runtime.bundled_names()
    assert "CPUExecutionProvider" in runtime.available_providers()


def test_load_verifies_checksums_on_request(bundle_copy):
    runtime.load(bundle_copy, verify=True)
    with open(bundle_copy / "atlas.npz", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(BundleError, match="SHA-256"):
        runtime.load(bundle_copy, verify=True)


def test_decode_shapes_and_range(model):
    one = model.decode([0.5, -1.0])
    batch = model.decode(np.array([[0.5, -1.0], [0.0, 0.0], [2.0, 1.0]]))
    assert one.shape == (28, 28) and batch.shape == (3, 28, 28)
    assert one.dtype == batch.dtype == np.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0
    # A batch gives what one-by-one calls give, and integer input is converted.
    np.testing.assert_allclose(batch[0], one, atol=1e-6)
    np.testing.assert_allclose(model.decode(np.array([[2, 1]])), batch[2:], atol=1e-6)
    assert model.decode(np.zeros((0, 2))).shape == (0, 28, 28)


def test_different_points_decode_to_different_images(model):
    a, b = model.decode([[-1.5, -1.5], [1.5, 1.5]])
    assert np.abs(a - b).mean() > 0.02


def test_encode_reconstructs_real_digits(model, mnist_test):
    images, labels = mnist_test
    digits = images[:200]
    posterior = model.encode(digits)
    assert posterior.mean.shape == posterior.logvar.shape == (200, 2)
    mean, logvar = posterior  # unpacks like a tuple
    np.testing.assert_array_equal(mean, posterior.mean)
    # uint8 and float input in [0, 1] are the same images.
    np.testing.assert_allclose(model.encode(digits / 255.0).mean, mean, atol=1e-5)
    single = model.encode(digits[0])
    assert single.mean.shape == (2,)
    np.testing.assert_allclose(single.mean, mean[0], atol=1e-5)
    # Each digit's own reconstruction is closer to it than most others' are (an untrained or
    # collapsed model decodes everything to one blob and fails this).
    reconstruction = model.reconstruct(digits)
    assert reconstruction.shape == (200, 28, 28)
    errors = ((reconstruction[None] - digits[:, None] / 255.0) ** 2).mean(axis=(2, 3))  # [digit, reconstruction]
    assert np.mean(np.diag(errors) < np.median(errors, axis=1)) > 0.95
    # The nearest class mean gets most test digits right even in 2-D.
    assert (model.nearest_class(mean) == labels[:200]).mean() > 0.5


def test_posterior_sampling_is_seeded(model, mnist_test):
    posterior = model.encode(mnist_test[0][:5])
    a, b, c = posterior.sample(seed=1), posterior.sample(seed=1), posterior.sample(seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(posterior.std, np.exp(0.5 * posterior.logvar))


def test_sample_is_reproducible_with_a_seed(model):
    first, second, other = model.sample(8, seed=0), model.sample(8, seed=0), model.sample(8, seed=1)
    np.testing.assert_array_equal(first.z, second.z)
    np.testing.assert_array_equal(first.images, second.images)
    assert not np.array_equal(first.z, other.z)
    z, images = first
    assert z.shape == (8, 2) and images.shape == (8, 28, 28) and len(first) == 8
    np.testing.assert_allclose(images, model.decode(z), atol=1e-6)
    grid = first.grid(scale=2)
    assert grid.mode == "L" and grid.size == (2 * (3 * 30 + 2),) * 2  # ceil(sqrt(8)) = 3 columns, 2 px gutters
    assert first.pil(0, scale=3).size == (84, 84)
    with pytest.raises(ValueError, match="non-negative integer"):
        model.sample(-1)


def test_manifold_default_is_the_seed_grid(model):
    n = 5
    result = model.manifold(n)
    q = normal_quantiles(n)
    assert result.z.shape == (n * n, 2) and result.images.shape == (n * n, 28, 28) and result.ncols == n
    rows = result.z.reshape(n, n, 2)
    np.testing.assert_allclose(rows[0, :, 0], q)  # x runs left to right along a row
    np.testing.assert_allclose(rows[:, 0, 1], q[::-1])  # top row = largest y
    np.testing.assert_allclose(result.images, model.decode(result.z), atol=1e-6)
    assert result.grid().size == (n * 30 + 2,) * 2


def test_manifold_percentiles_and_explicit_bounds(model):
    stats = model.latent_stats
    rows = model.manifold(4, extent="percentiles").z.reshape(4, 4, 2)
    np.testing.assert_allclose(rows[0, [0, -1], 0], [stats["p05"][0], stats["p95"][0]], rtol=1e-6)
    np.testing.assert_allclose(rows[[0, -1], 0, 1], [stats["p95"][1], stats["p05"][1]], rtol=1e-6)
    rows = model.manifold(3, extent=((-2, 2), (0, 1))).z.reshape(3, 3, 2)
    np.testing.assert_allclose(rows[0, :, 0], [-2, 0, 2])
    np.testing.assert_allclose(rows[:, 0, 1], [1, 0.5, 0])
    for bad in ("everything", ((0, 1),), ((0, np.nan), (0, 1))):
        with pytest.raises(ValueError, match="extent"):
            model.manifold(3, extent=bad)
    with pytest.raises(ValueError, match="dims"):
        model.manifold(3, dims=(0, 2))


def test_interpolate_latents_and_images(model, mnist_test):
    path = model.interpolate([-1.0, 0.0], [1.0, 0.0], steps=5)
    np.testing.assert_allclose(path.z[:, 0], [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(path.images, model.decode(path.z), atol=1e-6)
    # slerp of two equal-length vectors stays on their circle.
    arc = model.interpolate([2.0, 0.0], [0.0, 2.0], steps=7, method="slerp")
    np.testing.assert_allclose(np.linalg.norm(arc.z, axis=1), 2.0, rtol=1e-5)
    # Images as endpoints: their posterior means.
    three, eight = mnist_test[0][mnist_test[1] == 3][0], mnist_test[0][mnist_test[1] == 8][0]
    morph = model.interpolate(three, eight, steps=4)
    np.testing.assert_allclose(morph.z[0], model.encode(three).mean, atol=1e-5)
    np.testing.assert_allclose(morph.z[-1], model.encode(eight).mean, atol=1e-5)
    with pytest.raises(ValueError, match="steps"):
        model.interpolate([0, 0], [1, 1], steps=1)
    with pytest.raises(ValueError, match="method"):
        model.interpolate([0, 0], [1, 1], method="cubic")
    with pytest.raises(ValueError, match="one image"):
        model.interpolate(mnist_test[0][:2], [1, 1])


def test_lone_decoder_and_encoder_files(model, bundle_dir):
    decoder = runtime.Decoder(bundle_dir / "decoder.onnx")
    encoder = runtime.Encoder(bundle_dir / "encoder.onnx", providers="cpu")
    z = np.array([[0.3, -0.7]], np.float32)
    np.testing.assert_allclose(decoder.decode(z), model.decode(z), atol=1e-6)
    assert decoder.latent_dim == encoder.latent_dim == 2
    assert decoder.metadata["role"] == "decoder" and decoder.metadata["name"] == "mnist"
    image = decoder.decode(z)
    np.testing.assert_allclose(encoder.encode(image).mean, model.encode(image).mean, atol=1e-6)
    # The lone decoder carries its latent_stats, so "percentiles" works without bundle.json.
    np.testing.assert_allclose(decoder.manifold(3, extent="percentiles").z, model.manifold(3, extent="percentiles").z)
    assert "latent_dim=2" in repr(decoder)


def test_higher_dimensional_latents_use_two_dims(onnx_file):
    decoder = runtime.Decoder(onnx_file("decoder", latent_dim=3))
    base = np.array([0.1, 0.2, 0.3], np.float32)
    result = decoder.manifold(4, dims=(2, 0), base=base)
    rows = result.z.reshape(4, 4, 3)
    np.testing.assert_allclose(rows[..., 1], 0.2)  # the dim not spanned stays at base
    np.testing.assert_allclose(rows[0, :, 2], normal_quantiles(4))  # dims[0] runs across
    np.testing.assert_allclose(rows[:, 0, 0], normal_quantiles(4)[::-1])  # dims[1] runs up
    with pytest.raises(ValueError, match="needs the model's latent_stats"):
        decoder.manifold(4, extent="percentiles")
    with pytest.raises(ValueError, match=r"base must be one latent point \[3\]|expected latent points"):
        decoder.manifold(4, base=[0, 0])


@pytest.mark.parametrize("bad, error, message", [
    ([1.0, 2.0, 3.0], ValueError, r"expected latent points \[N, 2\] or \[2\], got shape \(3,\)"),
    (np.zeros((2, 2, 2)), ValueError, "got shape"),
    ([[np.nan, 0.0]], ValueError, "finite"),
    ([[np.inf, 0.0]], ValueError, "finite"),
    ([[1e300, 0.0]], ValueError, "finite"),  # overflows float32
    (np.array([[1 + 2j, 0]]), TypeError, "real numbers"),
    (np.array([["a", "b"]]), TypeError, "real numbers"),
    ([[0.0, 1.0], [0.0]], ValueError, "ragged"),
])
def test_decode_rejects_bad_latents(model, bad, error, message):
    with pytest.raises(error, match=message):
        model.decode(bad)


def test_wrong_onnx_signatures_are_named(onnx_file, tmp_path):
    with pytest.raises(ValueError, match=r"not a latent-atlas decoder: expected inputs z float32 \[N, D\]; found x"):
        runtime.Decoder(onnx_file("decoder", input_name="x"))
    with pytest.raises(ValueError, match=r"expected inputs image float32 \[N, C, H, W\]; found x tensor\(float\) \['N', 1, 28, 28\]"):
        runtime.Encoder(onnx_file("encoder", input_name="x"))
    # Any image shape of the model family is a model's; another is refused in one line (runtime/image_shape.py).
    assert runtime.Encoder(onnx_file("encoder", image_side=32, channels=3)).image_shape == (3, 32, 32)
    assert runtime.Decoder(onnx_file("decoder", image_side=32, channels=3)).decode([0, 0, 0]).shape == (32, 32, 3)
    with pytest.raises(ValueError, match=r"image shape 1 x 30 x 30: height 30 is not a positive multiple of 4"):
        runtime.Encoder(onnx_file("encoder", image_side=30))
    with pytest.raises(ValueError, match=r"image shape 2 x 28 x 28: 2 channels; expected 1 \(grey\) or 3 \(RGB\)"):
        runtime.Decoder(onnx_file("decoder", channels=2))
    # A decoder handed to Encoder (and vice versa) is refused, not run.
    with pytest.raises(ValueError, match="not a latent-atlas encoder"):
        runtime.Encoder(onnx_file("decoder"))
    with pytest.raises(ValueError, match="cannot tell the latent size"):
        runtime.Decoder(onnx_file("decoder", latent_dim=3, metadata_dim=4))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not protobuf")
    with pytest.raises(ValueError, match="not a loadable ONNX model"):
        runtime.Decoder(garbage)
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        runtime.Decoder(tmp_path / "missing.onnx")


def test_encoder_and_decoder_of_different_latent_sizes_are_refused(bundle_copy, onnx_file):
    shutil.copy(onnx_file("decoder", latent_dim=3), bundle_copy / "decoder.onnx")
    with pytest.raises(BundleError, match=r"encoder's latent size \(2\) differs from the decoder's \(3\)"):
        runtime.load(bundle_copy, verify=False)  # edited on purpose: past the checksums, to the shapes


def test_manifest_latent_dim_must_match_the_files(bundle_copy):
    manifest = json.loads((bundle_copy / "bundle.json").read_text())
    manifest["latent_dim"] = 5
    (bundle_copy / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="bundle.json: the prior has 2 latent dims, the model 5"):
        runtime.load(bundle_copy)
    manifest.pop("prior")  # a bundle without a fitted prior: the ONNX files disagree
    (bundle_copy / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="latent_dim 5 but the ONNX files have 2"):
        runtime.load(bundle_copy)


def test_providers_resolve_and_report(bundle_dir):
    assert session_module.requested_providers("cpu") == ["CPUExecutionProvider"]
    assert runtime.Decoder(bundle_dir / "decoder.onnx", providers="auto", strict=True).provider == "CPUExecutionProvider"
    with pytest.raises(runtime.ProviderError, match="unknown execution provider 'gpu'"):
        runtime.Decoder(bundle_dir / "decoder.onnx", providers="gpu")
    missing = next(p for p in ("cuda", "coreml", "directml")
                   if session_module.ALIASES[p] not in runtime.available_providers())
    # Not strict: a missing provider falls back to the CPU with a warning, and the CPU is reported.
    with pytest.warns(RuntimeWarning, match="not available"):
        decoder = runtime.Decoder(bundle_dir / "decoder.onnx", providers=missing)
    assert decoder.provider == "CPUExecutionProvider"
    with pytest.raises(runtime.ProviderError, match="strict=True"):
        runtime.Decoder(bundle_dir / "decoder.onnx", providers=missing, strict=True)


def test_strict_catches_a_silent_fallback(bundle_dir, monkeypatch):
    # onnxruntime-gpu lists CUDA even when the CUDA libraries are missing, then runs on the CPU.
    monkeypatch.setattr(session_module, "available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.warns(UserWarning):  # onnxruntime's own complaint about the provider
        with pytest.raises(runtime.ProviderError, match="asked for CUDAExecutionProvider but ONNX Runtime runs it on CPU"):
            runtime.Decoder(bundle_dir / "decoder.onnx", providers="auto", strict=True)


def test_concurrent_calls_match_serial_calls(model, mnist_test):
    rng = np.random.default_rng(0)
    latents = [rng.normal(size=(n, 2)).astype(np.float32) for n in (1, 3, 17, 64) * 4]
    digits = [mnist_test[0][i * 7:i * 7 + 7] for i in range(16)]
    pictures = [Image.fromarray(255 - digit).resize((60, 45)) for digit in mnist_test[0][:16]]  # preprocessed

    def work(m, i):
        return (m.decode(latents[i]), m.encode(digits[i]).mean, m.encode(pictures[i]).mean,
                m.nearest_class(latents[i]), m.manifold(3, dims=(1, 0)).images)

    serial = [work(model, i) for i in range(16)]
    # A fresh model, so that the threads also race to make its lazily created parts (the atlas's
    # class means); batches of 17 and 64 also go through the shared pool of slices.
    fresh = runtime.load(model.bundle.path, providers="cpu")
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            concurrent = list(pool.map(lambda i: work(fresh, i), range(16)))
            for got, want in zip(concurrent, serial):
                for a, b in zip(got, want):
                    np.testing.assert_array_equal(a, b)


def test_large_batches_run_in_slices_that_agree_with_single_calls(model, mnist_test):
    z = np.random.default_rng(1).normal(size=(100, 2)).astype(np.float32) * 2  # 3 slices of 32 and one of 4
    side_by_side = model.decode(z)
    one_thread = runtime.load(model.bundle.path, providers="cpu", threads=1)
    np.testing.assert_array_equal(side_by_side, one_thread.decode(z))  # same slices, same session settings
    np.testing.assert_allclose(side_by_side, np.stack([model.decode(point) for point in z]), rtol=0, atol=1e-6)
    digits = mnist_test[0][:70]
    mean = model.encode(digits).mean
    assert mean.shape == (70, 2)
    np.testing.assert_allclose(mean, np.stack([model.encode(d).mean for d in digits]), rtol=0, atol=1e-5)
