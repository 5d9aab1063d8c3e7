"""The decoder's upsampling in sub-pixel phase form: how the exported decoder stores its weights, both ways.

`export/decoder_graph.py` computes the decoder's stride-2 transposed convolution and its last 3x3
convolution on the 14x14 grid of output-pixel phases (its docstring says why and how). This module is
the one owner of that weight layout: the exporter writes it with `phase_kernels` and
`phase_output_kernel`, and a fine-tune from a bundle (`bundle_weights`) reads it back with their inverses.
"""

from __future__ import annotations

import torch

# TAPS[a]: the kernel rows of a stride-2, padding-1 transposed convolution that reach output row 2m + a,
# in the order a convolution reads input rows m, m + 1 (from y[o] = sum over o = 2i - 1 + k of x[i] w[k]).
TAPS = ((1,), (2, 0))
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))
PHASE_NAMES = ("phase_00", "phase_01", "phase_10", "phase_11")


def phase_kernels(weight: torch.Tensor) -> list[torch.Tensor]:
    """A ConvTranspose2d(stride 2, padding 1, output_padding 1) weight [in, out, 3, 3] -> the four
    Conv2d weights [out, in, len(TAPS[a]), len(TAPS[b])] of its output phases, in PHASES order."""
    return [weight[:, :, TAPS[a]][:, :, :, TAPS[b]].transpose(0, 1).contiguous() for a, b in PHASES]


def weight_from_phase_kernels(kernels: list[torch.Tensor]) -> torch.Tensor:
    """The inverse of `phase_kernels`: the four phase weights -> the ConvTranspose2d weight [in, out, 3, 3].
    The phases' taps partition the 3x3 kernel, so every tap is read back from exactly one of them."""
    out_channels, in_channels = kernels[0].shape[:2]
    weight = kernels[0].new_zeros(in_channels, out_channels, 3, 3)
    for (a, b), kernel in zip(PHASES, kernels):
        for i, row in enumerate(TAPS[a]):
            for j, column in enumerate(TAPS[b]):
                weight[:, :, row, column] = kernel[:, :, i, j].transpose(0, 1)
    return weight


def phase_output_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3, padding-1 Conv2d weight [1, C, 3, 3] applied to the 28x28 image -> the ConvTranspose2d
    weight [4 * C, 1, 4, 4] (stride 2, padding 1) that computes it from the four 14x14 phase planes.

    Output row 2m + a reads image row 2m + a + dy, which lies in phase a' = (a + dy) mod 2 at grid
    row m' = m + floor((a + dy) / 2). A stride-2, padding-1 transposed convolution sends input row m'
    to output row 2m + a through kernel tap ky = 2m + a - 2m' + 1 = a' - dy + 1. So phase (a', b')'s
    kernel is the 3x3 kernel flipped, placed at offset (a', b') in a 4x4 one."""
    channels = weight.shape[1]
    flipped = weight[0].flip(1, 2)
    kernel = weight.new_zeros(len(PHASES), channels, 4, 4)
    for source, (a, b) in enumerate(PHASES):
        kernel[source, :, a:a + 3, b:b + 3] = flipped
    return kernel.reshape(len(PHASES) * channels, 1, 4, 4)


def weight_from_phase_output_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """The inverse of `phase_output_kernel`: [4 * C, 1, 4, 4] -> the 3x3 Conv2d weight [1, C, 3, 3]
    (read from phase (0, 0), whose copy of the flipped kernel sits at offset (0, 0))."""
    channels = kernel.shape[0] // len(PHASES)
    flipped = kernel.reshape(len(PHASES), channels, 4, 4)[0, :, 0:3, 0:3]
    return flipped.flip(1, 2).unsqueeze(0).contiguous()
