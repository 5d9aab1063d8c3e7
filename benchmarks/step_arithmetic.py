"""How much arithmetic a training step is, and how fast this CPU can do arithmetic at all.

Shared by train_profile.py (per-layer shares of the peak) and train_throughput.py (the ceiling any
trainer of this architecture meets on this CPU: the measured GEMM peak divided by the FLOPs of one
image's training step). FLOPs are counted from the layers' shapes, so they are the same for the
Keras original, which computes the same layers.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch
from torch import nn

from report import median

LAYER_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def autocasts_to_bf16(training_step) -> bool:
    """Whether the trainer's step (train.build_training_step) runs in bf16: it autocasts only where the
    hardware has bf16 math (train.device.bf16_supported), else the step is float32."""
    return training_step.autocast is not nullcontext


def gemm_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 7) -> float:
    """Median GFLOP/s of an n x n x n matmul in `dtype` on every core."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / median(times) / 1e9


def forward_flops(module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> float:
    """Multiply-adds x 2 of one forward call, from the layer's shapes."""
    if isinstance(module, nn.Linear):
        return 2.0 * inputs.shape[0] * module.in_features * module.out_features
    kernel = module.kernel_size[0] * module.kernel_size[1]
    if isinstance(module, nn.ConvTranspose2d):  # every input pixel scatters a kernel into the output
        return 2.0 * inputs[:, 0].numel() * module.in_channels * module.out_channels * kernel
    return 2.0 * output[:, 0].numel() * module.in_channels * module.out_channels * kernel


def training_flops(module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> float:
    """Forward + backward FLOPs of one call: the backward computes the weight gradient (as much as the
    forward) and the input gradient too (as much again) unless the input is the image."""
    return forward_flops(module, inputs, output) * (3 if inputs.requires_grad else 2)


def step_flops_per_image(model: nn.Module, image_shape: tuple[int, ...] = (1, 28, 28)) -> float:
    """FLOPs of one image's forward and backward through the VAE's layers, encoder then decoder (the
    optimizer and the element-wise work are not arithmetic a GEMM peak bounds)."""
    total, handles = [0.0], []
    for layer in model.modules():
        if isinstance(layer, LAYER_TYPES):
            handles.append(layer.register_forward_hook(
                lambda m, i, o: total.__setitem__(0, total[0] + training_flops(m, i[0], o))))
    try:
        # With autograd on, as in training: every activation needs a gradient, the image does not.
        model.decode(model.encode(torch.rand(1, *image_shape)).mean)
    finally:
        for handle in handles:
            handle.remove()
    return total[0]
