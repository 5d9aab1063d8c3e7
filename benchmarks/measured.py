"""A bundle with the data its figures were measured on, for the benchmarks that measure bundles again.

The export measures a bundle on its dataset's test split, and a model trained on binarized pixels on the
test images binarized once with the trainer's fixed seed; the benchmarks take the same images from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latent_atlas.runtime import bundle as fmt
from latent_atlas.train import data, own_data
from latent_atlas.train.config import TrainConfig
from latent_atlas.train.evaluate import binarized_array


@dataclass(frozen=True)
class MeasuredBundle:
    bundle: fmt.Bundle
    config: TrainConfig
    prepared: own_data.PreparedData
    binarized: bool  # trained, and measured, on binarized pixels

    def as_measured(self, images: np.ndarray) -> np.ndarray:
        """uint8 images [N, 28, 28] -> float32 [N, 1, 28, 28] as the bundle's figures saw them."""
        x = data.to_float(images)
        return binarized_array(x) if self.binarized else x


def open_bundle(label: str, data_dir=None) -> MeasuredBundle:
    """A bundled model's name or a bundle directory, with its training config and dataset's splits."""
    bundle = fmt.read(label)
    config = TrainConfig.from_dict(bundle.manifest.training["config"])
    prepared = own_data.prepare(config, ".", data_dir, write=False, log=lambda _: None)
    return MeasuredBundle(bundle, config, prepared, config.binarize == "dynamic")
