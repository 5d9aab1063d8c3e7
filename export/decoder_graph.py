"""The decoder as it is exported: the same function as `train.model.Decoder`, arranged for ONNX Runtime.

After its dense layer the seed's decoder upsamples 14x14 -> 28x28 with a stride-2 3x3 transposed
convolution (64 -> 32 channels, ReLU) and ends with a 3x3 convolution to one channel; a larger image's
(train/family.py) has one such stage per halving, and a colour image's last convolution has three.
Exported as they are, ONNX Runtime's CPU provider spends most of a single decode in two poor kernels:
the transposed convolution scatters its GEMM output with a scalar col2im, and the 32 -> 1 convolution
first copies its input into a 9x larger im2col buffer for a one-row GEMM (docs/benchmarks.md).

So the graph computes the same numbers on the 14x14 grid of output-pixel *phases* instead (the
sub-pixel view of a strided transposed convolution: Shi et al., 2016, https://arxiv.org/abs/1609.07009):

- Output pixel (2m + a, 2n + b) of the transposed convolution depends only on inputs (m, n), (m, n + 1),
  (m + 1, n), (m + 1, n + 1), through the kernel taps `TAPS[a] x TAPS[b]`. Each of the four phases is
  therefore an ordinary small convolution (1x1, 1x2, 2x1 and 2x2) of the 14x14 input, which ONNX
  Runtime runs with its blocked NCHWc kernels, bias and ReLU fused. Same multiply-adds, no col2im.
- The final 3x3 convolution reads each phase plane through the same 3x3 kernel, flipped and shifted
  by the phase: one stride-2 transposed convolution from the 4 x 32 phase channels straight to the
  28x28 image. ONNX Runtime runs that as a small GEMM and a 16-tap scatter into one channel, instead
  of the im2col of the original layer.
- Every earlier transposed stage of a larger image is computed on its phases the same way; its four
  phase planes are then interleaved into the next stage's full map (ONNX's DepthToSpace), which costs a
  copy, not arithmetic.

The graph ends with the likelihood's mean (train/likelihoods.py): pixel values in [0, 1] whatever the
likelihood (a sigmoid for the Bernoulli and the discretized logistic). The weight layout, and its
inverse for fine-tuning from a bundle, is `train/phase_form.py`'s. The export's parity check compares the
result with the PyTorch model (`export.verify.check_parity`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from latent_atlas.train.likelihoods import BERNOULLI, Likelihood
from latent_atlas.train.model import Decoder
from latent_atlas.train.phase_form import PHASES, phase_kernels, phase_output_kernel, stage_names


class DecoderGraph(nn.Module):
    """z [N, D] -> pixel values [N, C, H, W], computed on the output phases (see module doc)."""

    def __init__(self, decoder: Decoder, likelihood: Likelihood = BERNOULLI):
        super().__init__()
        self.dense = decoder.dense
        self.hidden_shape = decoder.hidden_shape
        self.likelihood = likelihood
        # The earlier stages of a larger image (none for the seed), then the full-resolution one.
        stages = [(name, layer) for name, layer in decoder.upsamples.named_children()
                  if isinstance(layer, nn.ConvTranspose2d)]
        self.stages = [name for name, _ in stages]
        for stage, layer in [*stages, (None, decoder.upsample)]:
            names, bias = stage_names(stage)
            for name, kernel in zip(names, phase_kernels(layer.weight.detach())):
                self.register_buffer(name, kernel)
            self.register_buffer(bias, layer.bias.detach().clone())
        last = decoder.to_logits
        self.register_buffer("last_weight", phase_output_kernel(last.weight.detach()))
        self.register_buffer("last_bias", last.bias.detach().clone())

    def _phases(self, h: torch.Tensor, stage: str | None) -> list[torch.Tensor]:
        """One transposed stage's four output phases, each [N, C, h, w] for an input [N, C', h, w]."""
        names, bias = stage_names(stage)
        # Phase (a, b) also reads row m + a and column n + b: pad one zero row/column at the end.
        return [torch.relu(F.conv2d(F.pad(h, (0, b, 0, a)), getattr(self, name), getattr(self, bias)))
                for (a, b), name in zip(PHASES, names)]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.dense(z)).view(-1, *self.hidden_shape)
        for stage in self.stages:
            h = _interleave(self._phases(h, stage))
        logits = F.conv_transpose2d(torch.cat(self._phases(h, None), 1), self.last_weight, self.last_bias,
                                    stride=2, padding=1)
        return self.likelihood.mean(logits)


def _interleave(phases: list[torch.Tensor]) -> torch.Tensor:
    """The four phase planes [N, C, h, w] (PHASES order) -> the map [N, C, 2h, 2w] whose pixel (2m + a,
    2n + b) is phase (a, b)'s (m, n): a pixel shuffle, exported as one DepthToSpace (CRD), which ONNX
    Runtime runs faster on a batch than the same reshape as a Transpose."""
    n, c, h, w = phases[0].shape
    return F.pixel_shuffle(torch.stack(phases, 2).reshape(-1, 4 * c, h, w), 2)  # channel c * 4 + (2a + b)
