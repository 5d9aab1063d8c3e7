"""The literature's setting: dynamically binarized pixels and the importance-weighted (IWAE) objective."""

from __future__ import annotations

import json
import math

import pytest
import torch

from latent_atlas.cli.main import main as cli
from latent_atlas.export.exporter import export_bundle
from latent_atlas.runtime import bundle as fmt
from latent_atlas.train.config import TrainConfig
from latent_atlas.runtime import evaluation
from latent_atlas.runtime.preprocessing import to_float
from latent_atlas.train import data
from latent_atlas.train.evaluate import binarized_array, evaluate_run
from latent_atlas.train.model import (VAE, StepNoise, elbo_loss, iwae_loss, iwae_posterior_gradients,
                                      log_importance_weights)
from latent_atlas.train.train import objective_for, train


def images(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, 1, 28, 28), generator=torch.Generator().manual_seed(seed))


def test_binarization_redraws_pixels_and_leaves_the_other_noise_as_it_was():
    x = images(64)
    plain = StepNoise.draw(torch.Generator().manual_seed(3), 64, 2, image_noise=True)
    noise = StepNoise.draw(torch.Generator().manual_seed(3), 64, 2, image_noise=True, binarize=True)
    # New kinds of noise are drawn last: runs without them keep their exact numbers.
    assert torch.equal(plain.latent, noise.latent) and torch.equal(plain.image, noise.image)
    assert plain.binarized(x) is x
    binary = noise.binarized(x)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    assert abs(binary.mean().item() - x.mean().item()) < 0.01  # Bernoulli(grey level), 50,176 pixels
    assert torch.equal(noise[16:32].binarized(x[16:32]), binary[16:32])  # a rank's slice: the same pixels


def test_iwae_is_the_logmeanexp_of_the_importance_weights_and_tighter_than_their_mean():
    torch.manual_seed(0)
    model, x = VAE(2), images(8)
    noise = StepNoise.draw(torch.Generator().manual_seed(1), 8, 2, image_noise=False, samples=16)
    assert noise.latent.shape == (8, 16, 2)
    terms = iwae_loss(model, x, noise)
    posterior = model.encode(x)
    log_w, _ = log_importance_weights(model, x, posterior, posterior.reparameterize(noise.latent.transpose(0, 1)))
    expected = -(torch.logsumexp(log_w, 0) - math.log(16)).mean()
    assert terms.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Jensen: the K-sample bound is at least as tight as the average single-sample ELBO of the same draws.
    assert terms.loss.item() <= -log_w.mean().item() + 1e-4
    terms.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_iwae_with_one_sample_is_the_elbo_with_a_sampled_kl():
    torch.manual_seed(0)
    model, x = VAE(2), images(8)
    noise = StepNoise.draw(torch.Generator().manual_seed(1), 8, 2, image_noise=False)
    iwae, elbo = iwae_loss(model, x, noise), elbo_loss(model, x, noise)
    assert iwae.recon.item() == pytest.approx(elbo.recon.item(), rel=1e-6)  # the same decodes
    # Their difference is the KL's Monte-Carlo error only, small next to the loss.
    assert abs(iwae.loss.item() - elbo.loss.item()) < 0.05 * elbo.loss.item()


def _gradients(model: VAE, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def test_dreg_changes_only_the_encoders_gradient_to_the_doubly_reparameterised_one():
    """Tucker et al. 2018, eq. 7: the encoder's gradient is sum_k w~_k^2 d log w_k / d phi through z_k
    alone (q's parameters held fixed inside log q); the loss and the decoder's gradient stay IWAE's."""
    torch.manual_seed(0)
    model, x = VAE(2), images(8)
    noise = StepNoise.draw(torch.Generator().manual_seed(1), 8, 2, image_noise=False, samples=6)
    standard, dreg = iwae_loss(model, x, noise), iwae_loss(model, x, noise, gradient="dreg")
    assert dreg.loss.item() == standard.loss.item()
    grad_standard, grad_dreg = _gradients(model, standard.loss), _gradients(model, dreg.loss)
    # The estimator written out as its surrogate, independently of the hook that implements it.
    posterior = model.encode(x)
    fixed_q = type(posterior)(posterior.mean.detach(), posterior.logvar.detach())
    log_w, _ = log_importance_weights(model, x, fixed_q, posterior.reparameterize(noise.latent.transpose(0, 1)))
    squared_weights = torch.softmax(log_w.detach(), dim=0) ** 2
    reference = _gradients(model, -(squared_weights * log_w).sum(0).mean())
    for name in grad_dreg:
        if name.startswith("decoder."):
            torch.testing.assert_close(grad_dreg[name], grad_standard[name], rtol=1e-5, atol=1e-6)
        else:
            torch.testing.assert_close(grad_dreg[name], reference[name], rtol=1e-3, atol=1e-5)  # summation order
    assert not torch.allclose(grad_dreg["encoder.z_logvar.bias"], grad_standard["encoder.z_logvar.bias"], rtol=0.1)
    # What the trainer runs for --objective iwae --iwae-gradient dreg.
    config = TrainConfig(objective="iwae", importance_samples=6, iwae_gradient="dreg", encoder_noise=0.0)
    trained = _gradients(model, objective_for(config)(model, x, 1.0, noise).loss)
    assert all(torch.equal(trained[name], grad_dreg[name]) for name in grad_dreg)


@pytest.mark.slow  # 500 copies of the backward pass
def test_dreg_has_the_standard_gradients_expectation():
    """Unbiased: over many draws for one image both estimators average to the same gradient of the
    posterior's mean and log-variance, within 4 standard errors. (Whether DReG's draws scatter less
    depends on the weights: benchmarks/iwae_gradient_variance.py measures it on trained ones.)"""
    torch.manual_seed(0)
    model, copies = VAE(2), 500
    x = images(1, seed=2).expand(copies, 1, 28, 28)
    noise = StepNoise.draw(torch.Generator().manual_seed(5), copies, 2, image_noise=False, samples=8)
    standard, dreg = (iwae_posterior_gradients(model, x, noise, gradient) for gradient in ("standard", "dreg"))
    assert standard.shape == (copies, 4) and not torch.allclose(standard, dreg)
    error = ((standard.var(0) + dreg.var(0)) / copies).sqrt()
    assert ((standard.mean(0) - dreg.mean(0)).abs() <= 4 * error).all()


@pytest.fixture(scope="module")
def binarized_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("iwae") / "run"
    config = TrainConfig(limit=600, val_size=200, epochs=1, seed=0, objective="iwae", importance_samples=3,
                         binarize="dynamic")
    train(config, run, data_dir=data_dir, progress=False, plots=False)
    return run


@pytest.mark.slow
def test_a_binarized_iwae_run_is_measured_on_binarized_images(binarized_run, data_dir):
    record = json.loads((binarized_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["binarized"] is True and record["binarization_seed"] == 0 and record["selected_on"] == "validation"
    # `evaluate` binarizes a binarized run's test set by itself, with the same pixels and noise as the trainer.
    result = evaluate_run(binarized_run, iw_samples=0, data_dir=data_dir, device="cpu")
    assert result["binarized"] is True
    assert result["neg_elbo"] == pytest.approx(record["test_neg_elbo"], abs=1e-3)
    saved = json.loads((binarized_run / "checkpoint.json").read_text())
    assert saved["config"]["objective"] == "iwae" and saved["config"]["binarize"] == "dynamic"


@pytest.mark.slow
def test_its_bundle_says_its_likelihood_is_over_binarized_pixels(binarized_run, data_dir, tmp_path):
    out = export_bundle(binarized_run, tmp_path / "bundle", iw_samples=5, iw_images=200, data_dir=data_dir,
                        log=lambda _: None)
    metrics = fmt.Manifest.load(out).metrics
    assert metrics["binarized"] is True and metrics["binarization_seed"] == 0
    # Exactly the runtime's figure on the test set binarized as the trainer binarizes it (not on grey images).
    x_test = to_float(data.load_dataset("mnist", data_dir).test_images)
    encoder, decoder = evaluation.open_pair(out / fmt.ENCODER, out / fmt.DECODER)
    on_binary = evaluation.neg_elbo(encoder, decoder, binarized_array(x_test), seed=0)
    assert metrics["test_neg_elbo"] == pytest.approx(on_binary["test_neg_elbo"], abs=1e-3)
    assert abs(evaluation.neg_elbo(encoder, decoder, x_test, seed=0)["test_neg_elbo"] - metrics["test_neg_elbo"]) > 0.01
    expected_iw = -evaluation.iw_log_likelihood(encoder, decoder, binarized_array(x_test)[:200], 5,
                                                seed=0).mean()
    assert metrics["test_iw_nll"] == pytest.approx(expected_iw, abs=1e-3) and metrics["iw_images"] == 200
    # A model of binary pixels is always measured on binary pixels, whatever the caller asked.
    assert evaluate_run(binarized_run, iw_samples=0, data_dir=data_dir, device="cpu", binarize=False)["binarized"]


@pytest.mark.parametrize("argv, message", [(["--objective", "iwae", "--k", "0"], "importance samples (--k) must be from 1"),
                                           (["--binarize", "sometimes"], "invalid choice: 'sometimes'"),
                                           (["--k", "50"], "--k sets the importance samples of --objective iwae, "
                                                           "and this run's objective is elbo"),
                                           (["--iwae-gradient", "dreg"], "--iwae-gradient sets the encoder's "
                                                                         "gradient estimator of --objective iwae"),
                                           (["--objective", "iwae", "--iwae-gradient", "reinforce"],
                                            "invalid choice: 'reinforce'")])
def test_bad_settings_are_refused_in_one_line(tmp_path, capsys, argv, message):
    try:
        code = cli(["train", *argv, "--out", str(tmp_path / "run"), "--quiet"])
    except SystemExit as exit_:  # argparse's own refusal
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
