"""The decoder's upsampling in sub-pixel phase form: how the exported decoder stores its weights, both ways.

`export/decoder_graph.py` computes each of the decoder's stride-2 transposed convolutions, and its last
3x3 convolution, on the grid of output-pixel phases (its docstring says why and how). This module is
the one owner of that weight layout, for every member of the model family (train/family.py): the
exporter writes it with `phase_kernels` and `phase_output_kernel` under the names `stage_names` gives,
and a fine-tune from a bundle (`bundle_weights`) reads it back with their inverses.
"""

from __future__ import annotations

import torch

# TAPS[a]: the kernel rows of a stride-2, padding-1 transposed convolution that reach output row 2m + a,
# in the order a convolution reads input rows m, m + 1 (from y[o] = sum over o = 2i - 1 + k of x[i] w[k]).
TAPS = ((1,), (2, 0))
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))
PHASE_NAMES = ("phase_00", "phase_01", "phase_10", "phase_11")
# The full-resolution stage's buffers keep the seed's names (so the seed's decoder.onnx is unchanged);
# an earlier stage i of a larger image (Decoder.upsamples' stage{i}) prefixes them with "stage{i}_".
LAST_STAGE_BIAS = "upsample_bias"


def stage_names(stage: str | None = None) -> tuple[tuple[str, ...], str]:
    """(the four phase kernels' names, the bias's name) of one transposed stage in the exported decoder:
    stage None is the full-resolution `upsample`, "stage1" ... the earlier ones."""
    if stage is None:
        return PHASE_NAMES, LAST_STAGE_BIAS
    return tuple(f"{stage}_{name}" for name in PHASE_NAMES), f"{stage}_bias"


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
    """A 3x3, padding-1 Conv2d weight [K, C, 3, 3] applied to the full-resolution map (K = the image's 1
    or 3 channels) -> the ConvTranspose2d weight [4 * C, K, 4, 4] (stride 2, padding 1) that computes it
    from the four half-resolution phase planes.

    Output row 2m + a reads image row 2m + a + dy, which lies in phase a' = (a + dy) mod 2 at grid
    row m' = m + floor((a + dy) / 2). A stride-2, padding-1 transposed convolution sends input row m'
    to output row 2m + a through kernel tap ky = 2m + a - 2m' + 1 = a' - dy + 1. So phase (a', b')'s
    kernel is the 3x3 kernel flipped, placed at offset (a', b') in a 4x4 one."""
    out_channels, channels = weight.shape[:2]
    flipped = weight.flip(2, 3).transpose(0, 1)  # [C, K, 3, 3]: a transposed convolution's weight layout
    kernel = weight.new_zeros(len(PHASES), channels, out_channels, 4, 4)
    for source, (a, b) in enumerate(PHASES):
        kernel[source, :, :, a:a + 3, b:b + 3] = flipped
    return kernel.reshape(len(PHASES) * channels, out_channels, 4, 4)


def weight_from_phase_output_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """The inverse of `phase_output_kernel`: [4 * C, K, 4, 4] -> the 3x3 Conv2d weight [K, C, 3, 3]
    (read from phase (0, 0), whose copy of the flipped kernel sits at offset (0, 0))."""
    channels, out_channels = kernel.shape[0] // len(PHASES), kernel.shape[1]
    flipped = kernel.reshape(len(PHASES), channels, out_channels, 4, 4)[0, :, :, 0:3, 0:3]
    return flipped.flip(2, 3).transpose(0, 1).contiguous()
