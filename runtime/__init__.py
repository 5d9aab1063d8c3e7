"""Latent Atlas runtime: run an exported VAE with nothing but numpy, onnxruntime and pillow.

    from latent_atlas import runtime
    model = runtime.load("mnist")              # or a bundle directory
    image = model.decode([0.5, -1.0])          # [28, 28] pixel probabilities
    mean, logvar = model.encode(runtime.example_image(3))   # any picture of a digit, preprocessed MNIST-style
    model.manifold(20).grid(scale=2).save("grid.png")

`Encoder("encoder.onnx")` and `Decoder("decoder.onnx")` run one file on its own.
"""

from .bundle import BundleError, bundled_names
from .example_images import example_image, example_names
from .images import grid_image, tile, to_pil, to_uint8
from .model import Decoded, Decoder, Encoder, LatentModel, Posterior, load
from .preprocessing import preprocess
from .session import ProviderError, available_providers

__all__ = [
    "load", "LatentModel", "Encoder", "Decoder", "Posterior", "Decoded", "preprocess",
    "available_providers", "bundled_names", "BundleError", "ProviderError",
    "to_pil", "grid_image", "tile", "to_uint8", "example_image", "example_names",
]
