"""Issue 49: every image shape of the model family exports (each form of the files), loads and draws in colour.

Tiny models (tests/conftest.py tiny_export_source, a few Adam steps on sprites) keep each export to seconds;
parity is checked on random weights spread so that decoded pixels reach near 0 and 1 (spread_weights)."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from latent_atlas.cli.main import main as cli
from latent_atlas.export.exporter import export_model
from latent_atlas.export.onnx_export import export_onnx
from latent_atlas.export.verify import PARITY_TOLERANCE, check_batch_sizes, check_parity
from latent_atlas.runtime import bundle as fmt
from latent_atlas.runtime import load
from latent_atlas.runtime.bundle_schema import LIKELIHOOD_NAMES
from latent_atlas.runtime.limits import max_points
from latent_atlas.train import bundle_weights
from latent_atlas.train.likelihoods import LIKELIHOODS
from latent_atlas.train.model import VAE

pytestmark = pytest.mark.slow  # every test here exports

SHAPES = [(1, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64), (3, 48, 64)]
QUIET = dict(iw_samples=0, log=lambda _: None)


def test_the_bundle_format_names_the_trainers_likelihoods():
    assert LIKELIHOOD_NAMES == tuple(LIKELIHOODS)


@pytest.mark.parametrize("image_shape", SHAPES)
def test_onnx_matches_pytorch_for_every_shape(image_shape, spread_weights, tmp_path):
    model = spread_weights(VAE(2, image_shape=image_shape))
    encoder, decoder = export_onnx(model, tmp_path)
    rng = np.random.default_rng(0)
    images = rng.random((6, *image_shape), dtype=np.float32)
    latents = (3 * rng.standard_normal((25, 2))).astype(np.float32)
    errors = check_parity(model, encoder, decoder, images, latents)
    assert max(errors.values()) <= PARITY_TOLERANCE
    check_batch_sizes(encoder, decoder, 2, image_shape=image_shape)
    inputs = onnx.load(encoder).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in inputs[1:]] == list(image_shape)


@pytest.mark.parametrize("likelihood", ["continuous-bernoulli", "discretized-logistic"])
def test_the_decoder_outputs_the_likelihoods_mean(likelihood, spread_weights, tmp_path):
    model = spread_weights(VAE(2, image_shape=(3, 32, 32)))
    chosen = LIKELIHOODS[likelihood]
    encoder, decoder = export_onnx(model, tmp_path, likelihood=chosen)
    rng = np.random.default_rng(1)
    latents = (3 * rng.standard_normal((25, 2))).astype(np.float32)
    check_parity(model, encoder, decoder, rng.random((4, 3, 32, 32), dtype=np.float32), latents, likelihood=chosen)
    if likelihood == "continuous-bernoulli":  # its mean is not lambda = sigmoid(logits): a Bernoulli check fails
        with pytest.raises(ValueError, match="disagree beyond"):
            check_parity(model, encoder, decoder, rng.random((4, 3, 32, 32), dtype=np.float32), latents)


@pytest.fixture(scope="module")
def sources(make_tiny_source):
    """One tiny sprites model per shape, trained once for the module."""
    return {shape: make_tiny_source(shape, steps=2) for shape in [(3, 32, 32), (3, 64, 64), (3, 48, 64), (1, 32, 32)]}


@pytest.mark.parametrize("image_shape, variant, static_batch", [
    ((3, 32, 32), "fp16", None), ((3, 32, 32), "int8", None), ((3, 64, 64), "int8", 4), ((3, 48, 64), "fp16", 3),
    ((1, 32, 32), "fp32", 2)])
def test_each_form_of_the_files_exports_for_colour_and_larger_shapes(sources, colour_bundle, tmp_path, image_shape,
                                                                   variant, static_batch):
    source = sources[image_shape]
    fp32 = export_model(source, tmp_path / "fp32", **QUIET)
    out = export_model(source, tmp_path / variant, variant=variant, static_batch=static_batch, **QUIET)
    manifest = json.loads((out / fmt.MANIFEST).read_text())
    batch = static_batch or "N"
    assert manifest["image_shape"] == list(image_shape) and manifest["likelihood"] == {"name": "bernoulli"}
    assert manifest["onnx"]["encoder"]["inputs"]["image"] == [batch, *image_shape]
    assert manifest["onnx"]["decoder"]["outputs"]["image"] == [batch, *image_shape]
    recorded = json.loads((fp32 / fmt.MANIFEST).read_text())["metrics"]
    # as for MNIST's variants: within a nat of the fp32 figure
    assert manifest["metrics"]["test_neg_elbo"] == pytest.approx(recorded["test_neg_elbo"], abs=1.0)
    assert manifest["metrics"]["test_bits_per_dim"] == pytest.approx(
        manifest["metrics"]["test_neg_elbo"] / (math.prod(image_shape) * math.log(2)), rel=1e-3)
    model, reference = load(out, providers="cpu"), load(fp32, providers="cpu")
    z = np.random.default_rng(2).standard_normal((5, 2)).astype(np.float32)
    display = image_shape[1:] if image_shape[0] == 1 else (*image_shape[1:], 3)
    assert model.decode(z).shape == (5, *display)
    tolerance = {"fp32": 1e-6, "fp16": 1e-2, "int8": 0.1}[variant]
    assert np.abs(model.decode(z) - reference.decode(z)).max() <= tolerance


def test_ort_files_for_a_colour_bundle(sources, tmp_path):
    out = export_model(sources[(3, 64, 64)], tmp_path / "ort", ort_format=True, **QUIET)
    assert {fmt.ENCODER.replace(".onnx", ".ort"), fmt.DECODER.replace(".onnx", ".ort")} <= set(
        json.loads((out / fmt.MANIFEST).read_text())["files"])


def test_the_colour_bundle_reads_back_into_pytorch(colour_bundle):
    """--init-from a colour bundle: every stage's phase form read back reproduces the ONNX files."""
    weights = bundle_weights.read(colour_bundle)
    model = VAE(2, image_shape=(3, 32, 32))
    model.load_state_dict(weights.state)
    assert {k for k in weights.state if k.startswith("decoder.upsamples.")} == {
        "decoder.upsamples.stage1.weight", "decoder.upsamples.stage1.bias"}


# --- the runtime and the CLI on a colour bundle ------------------------------------------------------

@pytest.fixture(scope="module")
def colour(colour_bundle):
    return load(colour_bundle, providers="cpu")


def test_the_runtime_draws_a_colour_model_in_colour(colour, tmp_path):
    assert colour.image_shape == (3, 32, 32) and colour.likelihood == "bernoulli"
    assert colour.class_names == ["square", "ellipse", "triangle", "heart"]
    assert colour.decode([0.0, 0.0]).shape == (32, 32, 3)
    samples = colour.sample(6, seed=0)
    assert samples.images.shape == (6, 32, 32, 3) and samples.images.dtype == np.float32
    grid = colour.manifold(4)
    picture = grid.grid(scale=2, padding=2)
    assert picture.mode == "RGB" and picture.size == (2 * (4 * 34 + 2),) * 2
    assert colour.manifold(3).pil(0, scale=3).size == (96, 96)
    path = colour.interpolate([-1.0, 0.0], [1.0, 0.0], steps=5)
    assert path.images.shape == (5, 32, 32, 3)
    # what it encodes, it decodes back near where it came from: the model's own [N, 3, H, W] arrays
    images = np.transpose(samples.images, (0, 3, 1, 2)).copy()
    mean = colour.encode(images, preprocess=False).mean
    assert mean.shape == (6, 2) and np.isfinite(mean).all()
    assert colour.reconstruct(images, preprocess=False).shape == (6, 32, 32, 3)


def test_a_colour_array_of_the_wrong_shape_is_refused_in_one_line(colour):
    with pytest.raises(ValueError, match=r"3 x 32 x 32") as caught:
        colour.encode(np.zeros((2, 3, 28, 28), np.float32), preprocess=False)
    assert "\n" not in str(caught.value)


def test_limits_scale_with_the_image_shape(colour):
    most = max_points(3 * 32 * 32)
    assert most < max_points()  # fewer colour images than MNIST ones fit the same memory
    with pytest.raises(ValueError, match=f"above the limit of {most:,}"):
        colour.sample(most + 1)
    with pytest.raises(ValueError, match="above the limit"):
        colour.manifold(int(math.isqrt(most)) + 1)


@pytest.mark.parametrize("argv, size", [
    (["decode", "--z=0,0"], (32, 32)),
    (["decode", "--z=0,0", "--z=1,1", "--scale", "2"], (2 * (2 * 34 + 2), 2 * (1 * 34 + 2))),
    (["grid", "-n", "3"], (3 * 34 + 2, 3 * 34 + 2)),
    (["sample", "-n", "4", "--seed", "1"], (2 * 34 + 2, 2 * 34 + 2)),
    (["interpolate", "--from=-1,0", "--to=1,0", "--steps", "3"], (3 * 34 + 2, 34 + 2)),
])
def test_the_cli_draws_a_colour_bundle(colour_bundle, tmp_path, capsys, argv, size):
    out = tmp_path / "out.png"
    assert cli([argv[0], "-m", str(colour_bundle), "--provider", "cpu", *argv[1:], "-o", str(out)]) == 0
    with Image.open(out) as picture:
        assert picture.mode == "RGB" and picture.size == size


def test_the_cli_animates_a_colour_interpolation(colour_bundle, tmp_path, capsys):
    out = tmp_path / "path.gif"
    assert cli(["interpolate", "-m", str(colour_bundle), "--from=-1,0", "--to=1,0", "--steps", "4", "-o", str(out)]) == 0
    assert "4 frames, 32x32" in capsys.readouterr().out
    with Image.open(out) as gif:
        assert gif.n_frames == 4 and gif.convert("RGB").size == (32, 32)


def test_info_reports_the_image_shape_and_likelihood(colour_bundle, capsys):
    assert cli(["info", "-m", str(colour_bundle), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["image_shape"] == [3, 32, 32] and info["likelihood"] == "bernoulli"
    assert cli(["info", "-m", str(colour_bundle)]) == 0
    assert "3 x 32 x 32" in capsys.readouterr().out


# --- a bundle whose shape is wrong ------------------------------------------------------------------------

def _copy_with(colour_bundle, tmp_path, **changes):
    import shutil

    target = tmp_path / "bundle"
    shutil.copytree(colour_bundle, target)
    values = json.loads((target / fmt.MANIFEST).read_text())
    (target / fmt.MANIFEST).write_text(json.dumps({**values, **changes}))
    return target


@pytest.mark.parametrize("shape, message", [
    ([1, 32, 32], r"says image_shape 1 x 32 x 32 but its encoder's images are 3 x 32 x 32"),
    ([3, 30, 30], r"image shape 3 x 30 x 30: height 30 is not a positive multiple of 4"),
    ([2, 32, 32], r"2 channels; expected 1 \(grey\) or 3 \(RGB\)"),
])
def test_a_bundle_whose_image_shape_is_wrong_is_refused_in_one_line(colour_bundle, tmp_path, capsys, shape, message):
    broken = _copy_with(colour_bundle, tmp_path, image_shape=shape)
    with pytest.raises(fmt.BundleError, match=message):
        load(broken, providers="cpu")
    assert cli(["decode", "-m", str(broken), "--z=0,0", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_unknown_likelihood_is_refused(colour_bundle, tmp_path):
    broken = _copy_with(colour_bundle, tmp_path, likelihood={"name": "gaussian"})
    with pytest.raises(fmt.BundleError, match="likelihood.name"):
        load(broken, providers="cpu")


def test_the_runtime_evaluation_is_the_bernoullis_only(colour):
    from latent_atlas.runtime.evaluation import check_bernoulli

    check_bernoulli(colour.likelihood)
    with pytest.raises(ValueError, match="the runtime's evaluation is the Bernoulli's only: read its figures"):
        check_bernoulli("continuous-bernoulli", "sprites")
