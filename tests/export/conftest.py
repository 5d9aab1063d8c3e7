"""The export tests' run and bundle: the session's shared training and its fp32 export (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def run_dir(shared_run) -> Path:
    return shared_run


@pytest.fixture(scope="session")
def bundle_dir(shared_bundle) -> Path:
    return shared_bundle


@pytest.fixture(scope="session")
def spread_weights():
    """spread_weights(model): gives a fresh VAE random biases (its init leaves them 0) and scales its last
    layer so that the decoder's logits spread over about +-20 on latent points of N(0, 9): decoded pixels
    then reach near 0 and 1 as a trained model's do (a fresh one's stay near 1/2), and each likelihood's
    mean is exercised over its whole range. Returns the model."""
    import torch

    def spread(model):
        generator = torch.Generator().manual_seed(sum(model.image_shape))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith(".bias"):
                    p.add_(torch.randn(p.shape, generator=generator) * 0.05)
            logits = model.decode(torch.randn(16, model.latent_dim, generator=generator) * 3)
            factor = 8.0 / float(logits.std())  # logits' new value: (old - mean) * factor, per channel
            model.decoder.to_logits.weight.mul_(factor)
            model.decoder.to_logits.bias.sub_(logits.mean(dim=(0, 2, 3))).mul_(factor)
        return model.eval()

    return spread
