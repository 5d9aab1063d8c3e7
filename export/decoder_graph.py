"""The decoder as it is exported: the same function as `train.model.Decoder`, arranged for ONNX Runtime.

After its dense layer the decoder upsamples 14x14 -> 28x28 with a stride-2 3x3 transposed convolution
(64 -> 32 channels, ReLU) and ends with a 3x3 convolution to one channel. Exported as they are, ONNX
Runtime's CPU provider spends most of a single decode in two poor kernels: the transposed convolution
scatters its GEMM output with a scalar col2im, and the 32 -> 1 convolution first copies its input into
a 9x larger im2col buffer for a one-row GEMM (docs/benchmarks.md).

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

The weight layout, and its inverse for fine-tuning from a bundle, is `train/phase_form.py`'s. The export's
parity check compares the result with the PyTorch model (`export.verify.check_parity`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from latent_atlas.train.model import HIDDEN_SHAPE, Decoder
from latent_atlas.train.phase_form import PHASE_NAMES, PHASES, phase_kernels, phase_output_kernel


class DecoderGraph(nn.Module):
    """z [N, D] -> pixel probabilities [N, 1, 28, 28], computed on the output phases (see module doc)."""

    def __init__(self, decoder: Decoder):
        super().__init__()
        self.dense = decoder.dense
        upsample, last = decoder.upsample, decoder.to_logits
        for name, kernel in zip(PHASE_NAMES, phase_kernels(upsample.weight.detach())):
            self.register_buffer(name, kernel)
        self.register_buffer("upsample_bias", upsample.bias.detach().clone())
        self.register_buffer("last_weight", phase_output_kernel(last.weight.detach()))
        self.register_buffer("last_bias", last.bias.detach().clone())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.dense(z)).view(-1, *HIDDEN_SHAPE)
        kernels = [getattr(self, name) for name in PHASE_NAMES]
        # Phase (a, b) also reads row m + a and column n + b: pad one zero row/column at the end.
        phases = [torch.relu(F.conv2d(F.pad(h, (0, b, 0, a)), kernel, self.upsample_bias))
                  for (a, b), kernel in zip(PHASES, kernels)]
        logits = F.conv_transpose2d(torch.cat(phases, 1), self.last_weight, self.last_bias, stride=2, padding=1)
        return torch.sigmoid(logits)
