"""The model family: which image shapes the convolutional VAE supports, and the architecture each gets.

The seed network (train/model.py) reads a 1 x 28 x 28 image with Conv 32 at full resolution, one
stride-2 Conv 64 that halves it to 14 x 14, two more Conv 64 there, and a Dense 32; its decoder mirrors
the halving with one stride-2 ConvTranspose. The family keeps that rule and repeats the stride-2 stage:

    encoder  Conv 32 -> per halving a stride-2 Conv (width w_i) -> 2 x Conv w_n -> Dense 32 -> heads
    decoder  Dense to w_n x h x w -> per halving a stride-2 ConvTranspose (w_i -> w_(i-1)) -> Conv C

An image is halved once, then again while both its sides are even and the larger exceeds the seed's
14, so 28 x 28 gets exactly the seed's one halving, and every halving is exact: each transposed stage is then the seed's
own layer (kernel 3, stride 2, padding 1, output padding 1), which the exporter's phase form already
handles. Which shapes there are (runtime/image_shape.py) is the runtime's rule, read here.

Torch-free arithmetic (numbers and shapes only), so that tools which only make or check data, such as
`latent-atlas make-dataset`, share the rule without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from latent_atlas.runtime.image_shape import SEED_IMAGE_SHAPE, check_image_shape, shape_text
from latent_atlas.runtime.limits import MAX_HIDDEN_VALUES

FIRST_WIDTH = 32  # the seed's full-resolution Conv 32 (and its decoder's last ConvTranspose)
# The seed's hidden feature map is 14 x 14: the family halves an image until its larger side is at most this.
HIDDEN_SIDE = 14
# Channel widths double per halving, as in DCGAN (Radford et al. 2015) and the small VAEs of pythae and
# AntixK/PyTorch-VAE: a halving quarters the map's area while doubling both a stage's input and output
# widths quadruples its weights, so every stage costs about the same multiply-adds and no resolution
# is starved. The cap bounds the parameters, which grow fourfold per stage: with a 2-D latent the
# deepest stages only need to tell a handful of factors apart, not store detail.
MAX_WIDTH = 256


@dataclass(frozen=True)
class Architecture:
    """One member of the family, as `architecture` derives it from an image shape."""

    image_shape: tuple[int, int, int]  # channels, height, width
    widths: tuple[int, ...]  # channels at full resolution, then after each halving: (32, 64) for the seed

    @property
    def halvings(self) -> int:
        return len(self.widths) - 1

    @property
    def hidden_shape(self) -> tuple[int, int, int]:
        """The encoder's last feature map, which the decoder's Dense layer produces: (64, 14, 14) for the seed."""
        _, height, width = self.image_shape
        return self.widths[-1], height >> self.halvings, width >> self.halvings

    @property
    def pixels(self) -> int:
        """Values per image (channels x height x width): the likelihood's dimensions."""
        return math.prod(self.image_shape)


def _halvings(height: int, width: int) -> int:
    n = 0
    # At least one halving: every member keeps the seed's stride-2 stage.
    while height % 2 == 0 and width % 2 == 0 and (n == 0 or max(height, width) > HIDDEN_SIDE):
        height, width, n = height // 2, width // 2, n + 1
    return n


def architecture(image_shape=SEED_IMAGE_SHAPE) -> Architecture:
    """The family member for `image_shape` (channels, height, width), or ValueError in one line saying
    what is supported."""
    what = f"image shape {shape_text(image_shape)}"
    channels, height, width = check_image_shape(image_shape)
    n = _halvings(height, width)
    widths = (FIRST_WIDTH, *(min(FIRST_WIDTH << i, MAX_WIDTH) for i in range(1, n + 1)))
    found = Architecture((channels, height, width), widths)
    values = math.prod(found.hidden_shape)
    if values > MAX_HIDDEN_VALUES:
        raise ValueError(f"{what}: its sides halve evenly only {n} times, to a {shape_text(found.hidden_shape)} "
                         f"feature map of {values:,} values, more than the {MAX_HIDDEN_VALUES:,} the encoder's Dense "
                         f"layer may read; expected sides that halve evenly down to {HIDDEN_SIDE} or less (e.g. "
                         f"32, 48, 64, 96, 128)")
    return found
