"""The model family (train/family.py, train/model.py): the 1 x 28 x 28 member is the seed network
exactly, and every other supported shape gets the seed's stages repeated by the family's rule."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
from torch import nn

from latent_atlas.runtime.limits import MAX_HIDDEN_VALUES, MAX_IMAGE_SIDE
from latent_atlas.train import bundle_weights, model as model_module
from latent_atlas.train.family import HIDDEN_SIDE, MAX_WIDTH, architecture
from latent_atlas.train.model import VAE, StepNoise, elbo_loss, load_weights

# The seed's state dict as it was before the family: every name and shape, written out.
SEED_STATE = {
    "encoder.convs.conv1.weight": (32, 1, 3, 3), "encoder.convs.conv1.bias": (32,),
    "encoder.convs.conv2.weight": (64, 32, 3, 3), "encoder.convs.conv2.bias": (64,),
    "encoder.convs.conv3.weight": (64, 64, 3, 3), "encoder.convs.conv3.bias": (64,),
    "encoder.convs.conv4.weight": (64, 64, 3, 3), "encoder.convs.conv4.bias": (64,),
    "encoder.bottleneck.weight": (32, 64 * 14 * 14), "encoder.bottleneck.bias": (32,),
    "encoder.z_mean.weight": (2, 32), "encoder.z_mean.bias": (2,),
    "encoder.z_logvar.weight": (2, 32), "encoder.z_logvar.bias": (2,),
    "decoder.dense.weight": (64 * 14 * 14, 2), "decoder.dense.bias": (64 * 14 * 14,),
    "decoder.upsample.weight": (64, 32, 3, 3), "decoder.upsample.bias": (32,),
    "decoder.to_logits.weight": (1, 32, 3, 3), "decoder.to_logits.bias": (1,),
}


class SeedNetwork(nn.Module):
    """The seed network as the code before the family built it, layer by layer, to compare against."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.convs = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(1, 32, 3, padding=1)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(32, 64, 3, stride=2, padding=1)), ("relu2", nn.ReLU()),
            ("conv3", nn.Conv2d(64, 64, 3, padding=1)), ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(64, 64, 3, padding=1)), ("relu4", nn.ReLU())]))
        self.encoder.bottleneck = nn.Linear(64 * 14 * 14, 32)
        self.encoder.z_mean, self.encoder.z_logvar = nn.Linear(32, 2), nn.Linear(32, 2)
        self.decoder = nn.Module()
        self.decoder.dense = nn.Linear(2, 64 * 14 * 14)
        self.decoder.upsample = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        self.decoder.to_logits = nn.Conv2d(32, 1, 3, padding=1)

    def encode_mean(self, x):
        h = torch.relu(self.encoder.bottleneck(self.encoder.convs(x).flatten(1)))
        return self.encoder.z_mean(h), self.encoder.z_logvar(h)

    def decode(self, z):
        h = torch.relu(self.decoder.dense(z)).view(-1, 64, 14, 14)
        return self.decoder.to_logits(torch.relu(self.decoder.upsample(h)))


def test_the_seed_member_has_the_seed_state_dict():
    for model in (VAE(2), VAE(2, image_shape=(1, 28, 28))):
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == SEED_STATE
    assert list(VAE(2).state_dict()) == list(SEED_STATE)  # the order too: it is the order of initialisation
    assert model_module.HIDDEN_SHAPE == (64, 14, 14) and model_module.NUM_PIXELS == 784


@pytest.mark.parametrize("bottleneck_bias", [0.0, 1.0])
def test_the_seed_member_initialises_and_computes_as_before(bottleneck_bias):
    torch.manual_seed(0)
    model = VAE(2, bottleneck_bias)
    torch.manual_seed(0)
    seed = SeedNetwork()
    model_module._init_weights(seed, bottleneck_bias)
    for (name, a), b in zip(model.state_dict().items(), seed.state_dict().values()):
        assert torch.equal(a, b), name
    x, z = torch.rand(4, 1, 28, 28), torch.randn(5, 2)
    mean, logvar = seed.encode_mean(x)
    posterior = model.encode(x)
    torch.testing.assert_close(posterior.mean, mean, rtol=0, atol=0)
    torch.testing.assert_close(posterior.logvar, logvar, rtol=0, atol=0)
    torch.testing.assert_close(model.decode(z), seed.decode(z), rtol=0, atol=0)


def test_a_checkpoint_of_the_seed_network_loads_and_computes_the_same():
    torch.manual_seed(3)
    seed = SeedNetwork()
    model = VAE(2)
    load_weights(model, seed.state_dict(), "seed.safetensors")
    z = torch.randn(6, 2)
    torch.testing.assert_close(model.decode(z), seed.decode(z), rtol=0, atol=0)


def test_the_bundled_mnist_weights_load_and_reproduce_its_onnx_files():
    # bundle_weights.read loads the shipped model's weights into VAE(latent_dim) and refuses them unless
    # the PyTorch model reproduces the bundle's encoder and decoder under ONNX Runtime.
    weights = bundle_weights.read("mnist")
    assert {k: tuple(v.shape) for k, v in weights.state.items()} == SEED_STATE


def _layers(model: VAE) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("shape", [(3, 28, 28), (1, 32, 32), (3, 64, 64), (3, 96, 96), (1, 128, 128), (3, 28, 64)])
def test_family_members_follow_the_rule(shape):
    model = VAE(2, image_shape=shape)
    arch = model.architecture
    channels, height, width = shape
    hidden_width, hidden_height, hidden_w = arch.hidden_shape
    # Halved exactly, once and then until the larger side is at most the seed's 14 (or a side is odd).
    assert hidden_height * 2 ** arch.halvings == height and hidden_w * 2 ** arch.halvings == width
    assert arch.halvings >= 1
    assert max(hidden_height, hidden_w) <= HIDDEN_SIDE or hidden_height % 2 or hidden_w % 2
    assert max(hidden_height, hidden_w) * 2 > HIDDEN_SIDE or arch.halvings == 1
    # Widths: 32 at full resolution, doubling per halving up to the cap.
    assert arch.widths == tuple(min(32 * 2 ** i, MAX_WIDTH) for i in range(arch.halvings + 1))
    encoder_strides = [m.stride for m in _layers(model.encoder)]
    assert encoder_strides == [(1, 1)] + [(2, 2)] * arch.halvings + [(1, 1)] * 2
    transposed = [m for m in _layers(model.decoder) if isinstance(m, nn.ConvTranspose2d)]
    assert len(transposed) == arch.halvings
    for layer in transposed:  # each the seed's own upsampling layer, which the exporter's phase form handles
        assert (layer.kernel_size, layer.stride, layer.padding, layer.output_padding) == ((3, 3), (2, 2), (1, 1), (1, 1))
    assert [m.out_channels for m in transposed] == list(arch.widths[::-1][1:])
    assert model.encoder.convs.conv1.in_channels == channels == model.decoder.to_logits.out_channels

    x = torch.rand(3, *shape)
    posterior = model.encode(x)
    assert posterior.mean.shape == (3, 2)
    decoded = model.decode(posterior.mean)
    assert decoded.shape == (3, *shape)
    noise = StepNoise.draw(torch.Generator().manual_seed(0), 3, 2, image_noise=True, image_shape=shape)
    assert noise.image.shape == (3, *shape)
    terms = elbo_loss(model, x, noise, encoder_noise=0.2)
    terms.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_the_64_pixel_colour_member_names_its_layers():
    names = list(VAE(2, image_shape=(3, 64, 64)).state_dict())
    assert [n for n in names if n.startswith("encoder.convs.") and n.endswith(".weight")] == [
        f"encoder.convs.conv{i}.weight" for i in range(1, 7)]
    assert [n for n in names if n.startswith("decoder.") and n.endswith(".weight")] == [
        "decoder.dense.weight", "decoder.upsamples.stage1.weight", "decoder.upsamples.stage2.weight",
        "decoder.upsample.weight", "decoder.to_logits.weight"]


def test_a_model_of_another_shape_refuses_the_seed_weights_in_one_line():
    with pytest.raises(ValueError, match=r"^seed.safetensors: the weights do not fit the model its config describes: "
                                         r"encoder.convs.conv5.weight is missing \(and \d+ more\)$"):
        load_weights(VAE(2, image_shape=(3, 64, 64)), VAE(2).state_dict(), "seed.safetensors")


@pytest.mark.parametrize("shape, message", [
    ((2, 28, 28), "2 channels; expected 1 (grey) or 3 (RGB)"),
    ((3, 30, 30), "height 30 is not a positive multiple of 4"),
    ((1, 28, 26), "width 26 is not a positive multiple of 4"),
    ((3, 0, 28), "height 0 is not a positive multiple of 4"),
    ((3, MAX_IMAGE_SIDE + 4, 64), f"height {MAX_IMAGE_SIDE + 4} is larger than the limit of {MAX_IMAGE_SIDE}"),
    ((3, 100, 100), f"to a 128 x 25 x 25 feature map of 80,000 values, more than the {MAX_HIDDEN_VALUES:,}"),
    ((1, 28), "expected three integers"),
    ((1, 28.0, 28), "expected three integers"),
    ((True, 28, 28), "expected three integers"),
    ("1x28x28", "expected three integers"),
])
def test_an_unsupported_shape_is_one_clear_line(shape, message):
    with pytest.raises(ValueError) as error:
        VAE(2, image_shape=shape)
    text = str(error.value)
    assert message in text and "\n" not in text and text.startswith("image shape ")


def test_every_supported_square_side_builds_a_bounded_model():
    # Every multiple of 4 up to the limit is either refused in one line or gives a member whose Dense layer
    # reads at most MAX_HIDDEN_VALUES.
    supported = []
    for side in range(4, MAX_IMAGE_SIDE + 1, 4):
        try:
            arch = architecture((3, side, side))
        except ValueError as error:
            assert "halve evenly only" in str(error)
            continue
        assert math.prod(arch.hidden_shape) <= MAX_HIDDEN_VALUES
        supported.append(side)
    assert {28, 32, 48, 64, 96, 128, 256} <= set(supported)
