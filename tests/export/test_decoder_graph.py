"""The exported decoder's phase form computes exactly what the PyTorch decoder computes."""

import onnx
import pytest
import torch
from torch.nn import functional as F

from latent_atlas.export.decoder_graph import DecoderGraph
from latent_atlas.export.onnx_export import to_onnx_models
from latent_atlas.export.verify import PARITY_TOLERANCE
from latent_atlas.runtime import bundle as fmt
from latent_atlas.train.likelihoods import LIKELIHOODS
from latent_atlas.train.model import VAE
from latent_atlas.train.phase_form import (phase_kernels, phase_output_kernel, weight_from_phase_kernels,
                                           weight_from_phase_output_kernel)


def test_phase_kernels_reproduce_the_strided_transposed_convolution():
    torch.manual_seed(0)
    weight, x = torch.randn(6, 5, 3, 3), torch.randn(2, 6, 7, 7)
    expected = F.conv_transpose2d(x, weight, stride=2, padding=1, output_padding=1)  # [2, 5, 14, 14]
    for (a, b), kernel in zip(((0, 0), (0, 1), (1, 0), (1, 1)), phase_kernels(weight)):
        phase = F.conv2d(F.pad(x, (0, b, 0, a)), kernel)
        torch.testing.assert_close(phase, expected[:, :, a::2, b::2], rtol=0, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])  # a grey and a colour image's last convolution
def test_phase_output_kernel_is_the_image_convolution_on_phase_planes(channels):
    torch.manual_seed(1)
    weight, image = torch.randn(channels, 5, 3, 3), torch.randn(2, 5, 8, 8)
    expected = F.conv2d(image, weight, padding=1)
    planes = torch.cat([image[:, :, a::2, b::2] for a, b in ((0, 0), (0, 1), (1, 0), (1, 1))], 1)
    got = F.conv_transpose2d(planes, phase_output_kernel(weight), stride=2, padding=1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_the_phase_form_reads_back_to_the_same_weights():
    # A fine-tune from a bundle (train/bundle_weights.py) recovers the model's weights through these inverses.
    torch.manual_seed(2)
    upsample, last, colour = torch.randn(6, 5, 3, 3), torch.randn(1, 5, 3, 3), torch.randn(3, 5, 3, 3)
    assert torch.equal(weight_from_phase_kernels(phase_kernels(upsample)), upsample)
    assert torch.equal(weight_from_phase_output_kernel(phase_output_kernel(last)), last)
    assert torch.equal(weight_from_phase_output_kernel(phase_output_kernel(colour)), colour)


@pytest.mark.parametrize("latent_dim", [2, 5])
def test_decoder_graph_matches_the_model(latent_dim):
    torch.manual_seed(latent_dim)
    model = VAE(latent_dim).eval()
    for p in model.parameters():  # biases are zero at init; make every term count
        torch.nn.init.normal_(p, std=0.1)
    z = torch.randn(9, latent_dim) * 3
    with torch.no_grad():
        torch.testing.assert_close(DecoderGraph(model.decoder)(z), model.decode_probs(z), rtol=0, atol=2e-6)


# The shapes the tests build: the seed, grey and colour at 32, colour at 64 (two earlier stages), and a
# non-square colour one (48 x 64).
SHAPES = [(1, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64), (3, 48, 64)]


@pytest.mark.parametrize("image_shape", SHAPES)
@pytest.mark.parametrize("likelihood", list(LIKELIHOODS))
def test_decoder_graph_matches_the_model_for_every_shape_and_likelihood(image_shape, likelihood, spread_weights):
    """Every stride-2 stage in phase form, interleaved between stages, ending in the likelihood's mean."""
    model = spread_weights(VAE(2, image_shape=image_shape))
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(1)) * 3
    chosen = LIKELIHOODS[likelihood]
    with torch.no_grad():
        logits = model.decode(z)
        expected = chosen.mean(logits)
        got = DecoderGraph(model.decoder, chosen)(z)
    assert got.shape == (5, *image_shape)
    # logits near 0 and far from it, both signs: both of the continuous Bernoulli's branches are exercised
    assert logits.abs().min() < 0.1 and logits.min() < -4 and logits.max() > 4
    # float32 rounding of two orders of the same sums, within what the export's parity check allows
    torch.testing.assert_close(got, expected, rtol=0, atol=PARITY_TOLERANCE)


@pytest.mark.slow  # an ONNX export
@pytest.mark.parametrize("image_shape", [(3, 64, 64), (3, 48, 64)])
def test_every_stage_of_a_larger_decoder_is_in_phase_form(image_shape):
    model = VAE(2, image_shape=image_shape)
    stages = model.architecture.halvings
    ops = [node.op_type for node in to_onnx_models(model)[fmt.DECODER].graph.node]
    assert stages == 2 and ops.count("Conv") == 4 * stages and ops.count("ConvTranspose") == 1


@pytest.mark.slow  # an ONNX export
def test_exported_decoder_has_no_col2im_or_im2col_bound_layers():
    proto = to_onnx_models(VAE(2))[fmt.DECODER]
    ops = [node.op_type for node in proto.graph.node]
    # The upsampling as four ordinary convolutions, one ConvTranspose from the phase planes to the image.
    assert ops.count("Conv") == 4 and ops.count("ConvTranspose") == 1
    assert not any(node.op_type == "Pad" for node in proto.graph.node), "padding should fold into the convs"
    onnx.checker.check_model(proto, full_check=True)
