"""The model's shape and the objective's arithmetic, checked against independent computations."""

import math

import pytest
import torch

from latent_atlas.train.evaluate import evaluate_elbo, iw_log_likelihood
from latent_atlas.train.model import VAE, DiagonalGaussian, StepNoise, bernoulli_nll, elbo_loss, keras_seed_loss


def test_architecture_is_the_keras_seed():
    model = VAE(2)
    layers = [(type(m).__name__, getattr(m, "out_channels", getattr(m, "out_features", None)), getattr(m, "stride", None))
              for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    assert layers == [
        ("Conv2d", 32, (1, 1)), ("Conv2d", 64, (2, 2)), ("Conv2d", 64, (1, 1)), ("Conv2d", 64, (1, 1)),
        ("Linear", 32, None), ("Linear", 2, None), ("Linear", 2, None),
        ("Linear", 14 * 14 * 64, None), ("ConvTranspose2d", 32, (2, 2)), ("Conv2d", 1, (1, 1)),
    ]
    # Counted by hand from the layer sizes: conv 320 + 18,496 + 2 x 36,928, dense 401,440, heads 2 x 66.
    assert sum(p.numel() for p in model.encoder.parameters()) == 494_244
    assert sum(p.numel() for p in model.decoder.parameters()) == 37_632 + 18_464 + 289


@pytest.mark.parametrize("latent_dim", [1, 2, 16])
def test_shapes(latent_dim):
    model = VAE(latent_dim)
    posterior = model.encode(torch.rand(5, 1, 28, 28))
    assert posterior.mean.shape == posterior.logvar.shape == (5, latent_dim)
    assert model.decode(posterior.sample()).shape == (5, 1, 28, 28)
    probs = model.decode_probs(torch.randn(3, latent_dim))
    assert probs.min() >= 0 and probs.max() <= 1


def test_latent_dim_must_be_positive():
    with pytest.raises(ValueError, match="latent_dim"):
        VAE(0)


def test_kl_matches_monte_carlo_estimate():
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.tensor([[0.7, -1.2, 0.1]]), torch.tensor([[-0.5, 0.8, -2.0]]))
    z = q.mean + q.std * torch.randn(200_000, 3)
    prior = torch.distributions.Normal(0.0, 1.0)
    mc = (q.log_prob(z) - prior.log_prob(z).sum(-1)).mean()
    assert q.kl().item() == pytest.approx(mc.item(), abs=0.02)
    # And the closed form against torch.distributions' own.
    reference = torch.distributions.kl_divergence(torch.distributions.Normal(q.mean, q.std), prior).sum(-1)
    assert q.kl().item() == pytest.approx(reference.item(), rel=1e-6)


def test_log_prob_matches_torch_distributions():
    q = DiagonalGaussian(torch.tensor([[0.3, -0.4]]), torch.tensor([[0.2, -1.0]]))
    z = torch.tensor([[1.0, 0.5]])
    expected = torch.distributions.Normal(q.mean, q.std).log_prob(z).sum(-1)
    assert q.log_prob(z).item() == pytest.approx(expected.item(), rel=1e-6)


def _hand_bce(logits: torch.Tensor, x: torch.Tensor) -> float:
    total = 0.0
    for l, t in zip(logits.flatten().tolist(), x.flatten().tolist()):
        p = 1.0 / (1.0 + math.exp(-l))
        total -= t * math.log(p) + (1.0 - t) * math.log(1.0 - p)
    return total


def test_elbo_loss_matches_hand_computation():
    torch.manual_seed(1)
    model = VAE(2)
    x = torch.rand(2, 1, 28, 28)
    noise = StepNoise.draw(torch.Generator().manual_seed(7), 2, 2, image_noise=False)
    terms = elbo_loss(model, x, noise, beta=0.5)

    posterior = model.encode(x)
    eps = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(7))
    z = posterior.mean + torch.exp(0.5 * posterior.logvar) * eps
    logits = model.decode(z)
    recon = sum(_hand_bce(logits[i], x[i]) for i in range(2)) / 2
    kl = sum(0.5 * (m * m + math.exp(lv) - 1 - lv)
             for m, lv in zip(posterior.mean.flatten().tolist(), posterior.logvar.flatten().tolist())) / 2
    assert terms.recon.item() == pytest.approx(recon, rel=1e-5)
    assert terms.kl.item() == pytest.approx(kl, rel=1e-5, abs=1e-6)  # tiny at init: float32 rounding
    assert terms.loss.item() == pytest.approx(recon + 0.5 * kl, rel=1e-5)
    assert (terms.recon + terms.kl).item() == pytest.approx(recon + kl, rel=1e-5)  # the -ELBO (LossTerms.neg_elbo was dead code)


def test_encoder_noise_reaches_only_the_encoder():
    torch.manual_seed(2)
    model = VAE(2)
    x = torch.rand(4, 1, 28, 28)
    seen = []
    model.encoder.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    decoded = []
    model.decoder.register_forward_hook(lambda module, inputs, output: decoded.append(output))
    terms = elbo_loss(model, x, StepNoise.draw(torch.Generator().manual_seed(3), 4, 2, image_noise=True),
                      encoder_noise=0.2)
    noise = seen[0] - x
    assert 0.18 < noise.std().item() < 0.22 and abs(noise.mean().item()) < 0.01
    # The reconstruction term scores the clean images, not the noisy ones the encoder saw.
    assert terms.recon.item() == pytest.approx(bernoulli_nll(decoded[0], x).mean().item(), rel=1e-6)
    seen.clear()
    elbo_loss(model, x, StepNoise.draw(torch.Generator().manual_seed(3), 4, 2, image_noise=False))
    assert torch.equal(seen[0], x)


def test_bce_with_logits_is_stable_for_extreme_logits():
    logits = torch.tensor([[-200.0, 200.0, 0.0]])
    x = torch.tensor([[0.0, 1.0, 0.5]])
    assert torch.isfinite(bernoulli_nll(logits, x)).all()
    assert bernoulli_nll(logits, x).item() == pytest.approx(math.log(2), rel=1e-6)


def test_keras_seed_loss_is_the_original_formula():
    torch.manual_seed(2)
    model = VAE(2)
    x = torch.rand(3, 1, 28, 28)
    terms = keras_seed_loss(model, x, StepNoise.draw(torch.Generator().manual_seed(3), 3, 2, image_noise=False))

    posterior = model.encode(x)
    eps = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(3))
    z = posterior.mean + torch.exp(posterior.logvar) * eps  # the original's std = exp(logvar)
    logits = model.decode(z)
    mean_bce = sum(_hand_bce(logits[i], x[i]) for i in range(3)) / (3 * 784)
    m, lv = posterior.mean.flatten().tolist(), posterior.logvar.flatten().tolist()
    keras_kl = -5e-4 * sum(1 + b - a * a - math.exp(b) for a, b in zip(m, lv)) / len(m)
    assert terms.loss.item() == pytest.approx(mean_bce + keras_kl, rel=1e-5)


def test_importance_weighted_bound_is_tighter_than_the_elbo():
    torch.manual_seed(3)
    model = VAE(2)
    x = torch.rand(20, 1, 28, 28).round()
    # Average the single-sample ELBO over several seeds so its Monte-Carlo noise does not decide the test.
    neg_elbo = sum(evaluate_elbo(model, x, seed=s)["neg_elbo"] for s in range(8)) / 8
    iw_nll = -iw_log_likelihood(model, x, k=64, seed=0).mean().item()
    assert iw_nll < neg_elbo
    # With K = 1 the bound is a single-sample ELBO (Monte-Carlo KL): close to the analytic-KL one.
    k1 = sum(-iw_log_likelihood(model, x, k=1, seed=s).mean().item() for s in range(8)) / 8
    assert k1 == pytest.approx(neg_elbo, rel=0.02)
