"""Shared fixtures and the suite's tiers. Tests that need the real datasets read them from $LATENT_ATLAS_DATA
(the Makefile points it at ../shared/datasets) and skip with the reason when the files are absent. One tiny
trained run and its export serve the whole session; each test is marked with the tiers of what it uses, and
`pytest --fast` (`make test-fast`) leaves every tier out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def real_data_dir(dataset: str = "mnist") -> Path:
    root = os.environ.get("LATENT_ATLAS_DATA")
    if not root:
        pytest.skip("LATENT_ATLAS_DATA is not set: point it at a directory holding mnist/ and fashion-mnist/")
    path = Path(root)
    if not (path / dataset / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the {dataset} files are not in {path / dataset}")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real dataset directory (MNIST files), or a skip naming what is missing."""
    return real_data_dir("mnist")


# --- the session's shared model ----------------------------------------------------------------------
# One tiny MNIST training and one fp32 export of it, for every test that needs "a trained run" or "its
# bundle" and not a particular recipe. The per-epoch evaluation on 200 images is what the fine-tune tests
# measure their own runs on, so that the figures compare. Read them; a test that changes a run works on
# shared_run_copy.
SHARED_RUN = dict(limit=2000, epochs=1, seed=0, eval_images=200)


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory, data_dir) -> Path:
    from latent_atlas.train.config import TrainConfig
    from latent_atlas.train.train import train

    run = tmp_path_factory.mktemp("shared") / "run"
    train(TrainConfig(**SHARED_RUN), run, data_dir=data_dir, progress=False, plots=False)
    return run


@pytest.fixture(scope="session")
def shared_bundle(tmp_path_factory, shared_run, data_dir) -> Path:
    from latent_atlas.export.exporter import export_bundle

    out = tmp_path_factory.mktemp("shared") / "mnist"
    export_bundle(shared_run, out, iw_samples=2, iw_images=None, data_dir=data_dir, log=lambda _: None)
    return out


@pytest.fixture
def shared_run_copy(shared_run, tmp_path) -> Path:
    """A private copy of the shared run, for a test that resumes, damages or overwrites it."""
    return Path(shutil.copytree(shared_run, tmp_path / "run"))


# --- tiny models of any image shape ----------------------------------------------------------------
# A few Adam steps of a VAE of the family (train/family.py) on procedural sprites (train/sprites.py) at the
# shape asked for, exported with the exporter's own stages (export.exporter.export_model): enough for the
# map to spread the shapes apart, in seconds. `colour_bundle` is the session's 3 x 32 x 32 one, for every
# test that needs "a colour model" and not a particular recipe.
TINY_MODEL = dict(train_images=256, test_images=64, steps=8, batch_size=32, seed=0)


def tiny_export_source(image_shape=(3, 32, 32), likelihood: str = "bernoulli", steps: int = TINY_MODEL["steps"],
                       latent_dim: int = 2):
    """An export.exporter.ExportSource: a VAE of `image_shape` trained `steps` Adam steps on sprites (grey
    ones, their brightest channel, for a 1-channel shape), with the sprites' shapes as its classes."""
    import numpy as np
    import torch

    from latent_atlas.export.exporter import ExportSource
    from latent_atlas.train import data, own_data, sprites
    from latent_atlas.train.config import TrainConfig
    from latent_atlas.train.likelihoods import likelihood_for
    from latent_atlas.train.model import VAE
    from latent_atlas.train.run_state import RunState

    channels, height, width = image_shape
    side = max(height, width)
    n_train, n_test = TINY_MODEL["train_images"], TINY_MODEL["test_images"]
    made = sprites.make_sprites(n_train + n_test, side, TINY_MODEL["seed"])
    top, left = (side - height) // 2, (side - width) // 2
    images = made.images[:, top:top + height, left:left + width]
    images = images if channels == 3 else images.max(axis=-1)
    labels = made.labels
    torch.manual_seed(TINY_MODEL["seed"])
    model, chosen = VAE(latent_dim, image_shape=tuple(image_shape)), likelihood_for(likelihood)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    x_train = torch.from_numpy(data.to_float(images[:n_train]))
    for step in range(steps):
        x = x_train[torch.randint(0, n_train, (TINY_MODEL["batch_size"],))]
        posterior = model.encode(x)
        loss = (chosen.nll(model.decode(posterior.sample()), x) + posterior.kl()).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    config = TrainConfig(seed=TINY_MODEL["seed"], latent_dim=latent_dim)
    state = RunState(config=config, commands=[f"tests: tiny_export_source({tuple(image_shape)}, {likelihood!r}, "
                                              f"steps={steps})"])
    counts = {"train": n_train, "validation": 0, "test": n_test}
    source = {"kind": "npz", "path": sprites.FILE_NAME, "checksum": "tiny", "counts": counts, "split_seed": None}
    empty = np.zeros((0, *images.shape[1:]), np.uint8)
    dataset = own_data.PreparedData("sprites", sprites.SHAPES, "resize", source, images[:n_train], labels[:n_train],
                                    empty, np.zeros(0, np.int32), images[n_train:], labels[n_train:])
    return ExportSource(model, state, dataset, chosen)


@pytest.fixture(scope="session")
def make_tiny_source():
    """tiny_export_source, for tests that export a tiny model of their own shape or likelihood."""
    return tiny_export_source


@pytest.fixture(scope="session")
def colour_bundle(tmp_path_factory) -> Path:
    """A 3 x 32 x 32 colour bundle (fp32, Bernoulli, 2-D latent) of a tiny sprites model, with
    dataset.class_names (the sprites' four shapes) and an atlas of its 64 test images."""
    from latent_atlas.export.exporter import export_model

    out = tmp_path_factory.mktemp("shared") / "colour"
    export_model(tiny_export_source((3, 32, 32)), out, iw_samples=2, iw_images=None, log=lambda _: None)
    return out


# --- tiers -----------------------------------------------------------------------------------------
# A test's tier follows from the fixtures it uses, directly or through other fixtures, so a new test that
# opens Chromium, starts Xvfb, runs npm, builds the wheel or takes the shared trained run is marked without
# anyone remembering to. Tests that train or export inline carry `slow` themselves. The markers are
# registered (with what each means) in pyproject.toml.
FIXTURE_TIERS = {
    "playwright_driver": "browser",  # every Chromium context starts from it
    "x_display": "xvfb",
    "node_example": "npm",
    "wheel": "wheel",
    "shared_run": "slow",  # shared_bundle and shared_run_copy start from it
    "colour_bundle": "slow",  # trains and exports a tiny model
    "make_tiny_source": "slow",
}

# The tiers, each with its per-test limit in seconds (pytest-timeout; fixture set-up counts, so the first
# user of a session fixture pays for it); every other test has pyproject's `timeout`. A hang then fails one
# test, not the run. The limits leave room for a CPU shared with other work.
TIER_TIMEOUTS = {"slow": 1200, "distributed": 1800, "wheel": 1200, "npm": 900, "browser": 600, "xvfb": 600}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fast", action="store_true",
                     help=f"the fast tier alone: deselect every test marked {', '.join(TIER_TIMEOUTS)}")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = []
    for item in items:
        for name in sorted(FIXTURE_TIERS.keys() & set(getattr(item, "fixturenames", ()))):
            item.add_marker(FIXTURE_TIERS[name])
        limits = [seconds for tier, seconds in TIER_TIMEOUTS.items() if item.get_closest_marker(tier)]
        if limits and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(max(limits)))
        if limits:
            slow.append(item)
    if config.getoption("fast") and slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]
