"""Where training runs: the device and whether bfloat16 pays off there (shared by train and evaluate)."""

from __future__ import annotations

import torch

from .options import Device


def pick_device(requested: Device) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but PyTorch sees no CUDA device")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def bf16_supported(device: torch.device) -> bool:
    """bfloat16 autocast pays off only with native bf16 math (AVX512-BF16/AMX on CPUs, Ampere+ GPUs);
    elsewhere it is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
