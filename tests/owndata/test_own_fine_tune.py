"""--init-from across datasets: your own images fine-tuned from an MNIST run (the README's example)."""

from __future__ import annotations

import torch

from latent_atlas.train.checkpoint import load_checkpoint
from latent_atlas.train.config import TrainConfig
from latent_atlas.train.train import train


def test_your_own_images_fine_tune_from_an_mnist_run(tmp_path, shared_run, make_letters):
    mnist, tuned = shared_run, tmp_path / "letters"  # the session's MNIST run (tests/conftest.py)
    letters = make_letters(tmp_path / "images", per_class=20, letters="ACE")
    # A learning rate too small to move the weights: the letters run must hold MNIST's after its epoch.
    train(TrainConfig(dataset=str(letters), epochs=1, batch_size=16, lr=1e-12, lr_schedule="constant",
                      init_from=str(mnist)), tuned, progress=False, plots=False)
    state = load_checkpoint(tuned).state
    assert state.dataset["class_names"] == ["A", "C", "E"]
    assert state.initialized_from["sha256"] == load_checkpoint(mnist).state.best.sha256
    start = load_checkpoint(mnist).model_state("best")
    assert all(torch.allclose(value, start[name], atol=1e-6)
               for name, value in load_checkpoint(tuned).model_state("last").items())
