"""Training and evaluation for other image shapes and likelihoods (issue 49): the objectives and the
evaluation read the model's likelihood, figures come in nats and bits/dim, and a tiny colour run trains,
resumes and evaluates end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from latent_atlas.cli.main import main as cli
from latent_atlas.train.config import TrainConfig
from latent_atlas.train.evaluate import evaluate_elbo, evaluate_model, images_to_tensor, iw_log_likelihood, load_model
from latent_atlas.train.likelihoods import LIKELIHOODS, bernoulli_nll
from latent_atlas.train.model import VAE, StepNoise, elbo_loss
from latent_atlas.train.options import LIKELIHOOD_NAMES
from latent_atlas.train.sprites import write_sprites
from latent_atlas.train.train import build_training_step

SHAPE = (3, 32, 32)


def _images(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_the_likelihood_names_are_the_options_and_build_the_model():
    assert tuple(LIKELIHOODS) == LIKELIHOOD_NAMES
    for name in LIKELIHOOD_NAMES:
        model = VAE.for_config(TrainConfig(dataset="own.npz", image_shape=SHAPE, likelihood=name))
        assert model.likelihood.name == name and model.image_shape == SHAPE
    with pytest.raises(ValueError, match="unknown likelihood 'gaussian'; expected one of bernoulli, "):
        VAE(2, likelihood="gaussian")


def test_images_to_tensor_takes_grey_and_colour_as_the_runtime_does():
    from latent_atlas.runtime.preprocessing import to_float

    colour = _images()
    np.testing.assert_array_equal(images_to_tensor(colour).numpy(), to_float(colour))
    np.testing.assert_array_equal(images_to_tensor(colour[..., 0]).numpy(), to_float(colour[..., 0]))


@pytest.mark.parametrize("likelihood", LIKELIHOOD_NAMES)
def test_the_elbo_and_its_evaluation_score_images_by_the_models_likelihood(likelihood):
    torch.manual_seed(0)
    model = VAE(2, image_shape=SHAPE, likelihood=likelihood).eval()
    x = images_to_tensor(_images())
    noise = StepNoise.draw(torch.Generator().manual_seed(1), len(x), 2, False, image_shape=SHAPE)
    terms = elbo_loss(model, x, noise)
    posterior = model.encode(x)
    expected = model.likelihood.nll(model.decode(posterior.reparameterize(noise.latent)), x).mean()
    torch.testing.assert_close(terms.recon, expected)
    figures = evaluate_elbo(model, x, seed=0)
    assert math.isclose(figures["bits_per_dim"], model.likelihood.bits_per_dim(figures["neg_elbo"], 3 * 32 * 32))
    if likelihood != "bernoulli":  # another likelihood, another figure than the Bernoulli's
        bernoulli = VAE(2, image_shape=SHAPE)
        bernoulli.load_state_dict(model.state_dict())
        assert evaluate_elbo(bernoulli, x, seed=0)["neg_elbo"] != pytest.approx(figures["neg_elbo"])


def test_bernoulli_figures_are_the_ones_before_likelihoods():
    """The seed's models: the ELBO's reconstruction is still today's BCE, to the bit."""
    torch.manual_seed(0)
    model = VAE(2).eval()
    x = torch.rand(5, 1, 28, 28)
    eps = torch.randn((5, 2), generator=torch.Generator().manual_seed(0))
    z = model.encode(x).reparameterize(eps)
    recon = bernoulli_nll(model.decode(z), x).sum().item()
    kl = model.encode(x).kl().sum().item()
    figures = evaluate_elbo(model, x, seed=0)
    assert figures["neg_elbo"] == (recon + kl) / 5
    assert figures["bits_per_dim"] == pytest.approx(figures["neg_elbo"] / (784 * math.log(2)))
    torch.testing.assert_close(model.decode_probs(z), torch.sigmoid(model.decode(z)), rtol=0, atol=0)


def test_evaluate_model_reports_bits_per_dim_for_the_iw_bound_too():
    torch.manual_seed(0)
    model = VAE(2, image_shape=SHAPE, likelihood="discretized-logistic").eval()
    result = evaluate_model(model, _images(4), iw_samples=3)
    assert result["likelihood"] == "discretized-logistic"
    assert result["iw_bits_per_dim"] == pytest.approx(result["iw_nll"] / (3 * 32 * 32 * math.log(2)))
    iw = -iw_log_likelihood(model, images_to_tensor(_images(4)), 3).mean().item()
    assert result["iw_nll"] == pytest.approx(iw)


def test_a_training_step_takes_colour_batches():
    config = TrainConfig(dataset="own.npz", image_shape=SHAPE, likelihood="continuous-bernoulli", bf16=False,
                         encoder_noise=0.2)
    step = build_training_step(config, torch.device("cpu"))
    images = torch.as_tensor(_images(8))
    x = step.batch(images, torch.arange(8))
    assert x.shape == (8, *SHAPE)
    noise = step.noise(torch.Generator().manual_seed(0), 8)
    assert noise.image.shape == (8, *SHAPE)
    before = [p.detach().clone() for p in step.model.parameters()]
    terms = step(x, 1.0, 1e-3, noise)
    assert torch.isfinite(terms.loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, step.model.parameters()))


@pytest.mark.slow
def test_a_tiny_colour_run_trains_resumes_and_evaluates(tmp_path, capsys):
    data = write_sprites(tmp_path / "sprites", count=80, size=32, seed=0)
    run = tmp_path / "run"
    common = ["train", "--dataset", str(data), "--image-size", "32", "--channels", "3",
              "--likelihood", "discretized-logistic", "--batch-size", "16", "--lr-decay-epochs", "2",
              "--out", str(run), "--quiet", "--seed", "0"]
    assert cli([*common, "--epochs", "1"]) == 0
    assert "bits/dim (discretized-logistic)" in capsys.readouterr().out
    assert cli([*common, "--epochs", "2", "--resume"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(math.isfinite(r["test_bits_per_dim"]) and r["test_bits_per_dim"] > 0 for r in records)
    saved = json.loads((run / "checkpoint.json").read_text())
    assert saved["config"]["image_shape"] == [3, 32, 32] and saved["config"]["likelihood"] == "discretized-logistic"
    assert saved["dataset"]["factor_names"] == ["shape", "hue", "scale", "rotation", "x", "y"]
    for kind in ("reconstructions", "samples", "manifold"):  # drawn in colour, at the model's size
        with Image.open(run / "plots" / f"epoch-0002-{kind}.png") as picture:
            assert picture.mode == "RGB"
    with Image.open(run / "plots" / "epoch-0002-manifold.png") as picture:
        assert picture.size == (10 * 32 * 2, 10 * 32 * 2)
    model, _ = load_model(run)
    assert model.image_shape == SHAPE and model.likelihood.name == "discretized-logistic"
    capsys.readouterr()
    assert cli(["evaluate", str(run), "--iw-samples", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["likelihood"] == "discretized-logistic"
    assert result["images"] == saved["dataset"]["source"]["counts"]["test"]
    assert result["bits_per_dim"] == pytest.approx(result["neg_elbo"] / (3 * 32 * 32 * math.log(2)))
    # Another shape, on resume or as the start of a fine-tune: one line, nothing trained.
    assert cli([*common[:3], "--image-size", "64", *common[5:], "--epochs", "2", "--resume"]) == 2
    assert "image_shape=(3, 64, 64) (the run has (3, 32, 32))" in capsys.readouterr().err
    assert cli(["train", "--dataset", str(data), "--image-size", "64", "--channels", "3", "--init-from", str(run),
                "--out", str(tmp_path / "tuned"), "--quiet", "--epochs", "1", "--lr-decay-epochs", "1"]) == 2
    assert ("that model reads 3 x 32 x 32 images and this one 3 x 64 x 64; pass --image-size 32x32 --channels 3"
            in capsys.readouterr().err)
