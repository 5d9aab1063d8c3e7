"""Where a training step's time goes, layer by layer, against what this CPU can do.

Runs the `default` preset's exact step (via train_throughput.PresetRunner) under torch.profiler,
with a record_function range around each layer's forward and backward (module hooks), and sets each
layer's FLOPs (counted from its shapes) against a measured GEMM peak in the precision the step runs
in: a large matmul on every core, bf16 where the trainer autocasts to it (AMX / AVX512-BF16), else
float32. What is not in a layer (the loss, sampling, casts between them, the optimizer) is listed as
such. The section is kept per kind of CPU (report.cpu_kind).

Then times the same step at several batch sizes: what a step costs whatever its batch (the per-call
work: Python, dispatch, small copies, the optimizer) against what grows with it.

    python benchmarks/train_profile.py [--steps 60] [--preset default]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import cpu_kind, median, publish, section  # noqa: E402
from step_arithmetic import LAYER_TYPES, autocasts_to_bf16, gemm_peak_gflops, training_flops  # noqa: E402
from train_throughput import PresetRunner  # noqa: E402

from latent_atlas.train import data  # noqa: E402
from latent_atlas.train.config import TrainConfig  # noqa: E402

SWEEP_BATCHES = (1, 8, 32, 64, 128)


def step_ms_by_batch(preset: str, images: torch.Tensor, seconds: float = 2.0, repeats: int = 3) -> dict[int, float]:
    """Median milliseconds per optimizer step of the preset's step at each of SWEEP_BATCHES and its own batch."""
    result = {}
    for batch in sorted({*SWEEP_BATCHES, TrainConfig.from_preset(preset).batch_size}):
        runner = PresetRunner(preset, images, batch_size=batch)
        runner.images_per_second(0.5)  # warm-up: oneDNN picks its kernels for these shapes
        result[batch] = median([batch / runner.images_per_second(seconds) * 1000 for _ in range(repeats)])
    return result


class LayerRanges:
    """Wraps each layer's forward and backward in a named profiler range and counts its FLOPs."""

    def __init__(self, model: nn.Module):
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, LAYER_TYPES)}
        self.flops = {name: 0.0 for name in self.layers}
        self.open = {}
        for name, module in self.layers.items():
            module.register_forward_pre_hook(self._enter(f"{name}.fwd"))
            module.register_forward_hook(self._leave(f"{name}.fwd", name))
            module.register_full_backward_pre_hook(self._enter(f"{name}.bwd"))
            module.register_full_backward_hook(self._leave(f"{name}.bwd"))
        self.counting = False

    def _enter(self, label):
        def hook(module, *args):
            self.open[label] = record_function(f"layer:{label}").__enter__()
        return hook

    def _leave(self, label, name=None):
        def hook(module, inputs, output):
            if name is not None and self.counting:
                self.flops[name] += training_flops(module, inputs[0], output)
            self.open.pop(label).__exit__(None, None, None)
        return hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    # The first conv's input (the image) needs no gradient; its backward range is still wanted.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")

    images = torch.as_tensor(data.load_split("mnist", "train", args.data_dir)[0][:20000])
    runner = PresetRunner(args.preset, images)
    plain = [runner.images_per_second(3.0) for _ in range(3)]  # without hooks: the hooks' own cost shows
    ranges = LayerRanges(runner.training_step.model)
    for _ in range(10):
        runner.step()
    ranges.counting = True
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(args.steps):
            runner.step()
        wall = time.perf_counter() - start
    ranges.counting = False
    per_step_ms = wall / args.steps * 1000
    totals = {e.key: e.cpu_time_total / 1000 / args.steps for e in prof.key_averages() if e.key.startswith("layer:")}
    ops = sorted(((e.key, e.self_cpu_time_total / 1000 / args.steps) for e in prof.key_averages()
                  if not e.key.startswith("layer:") and not e.key.startswith("ProfilerStep")),
                 key=lambda kv: -kv[1])[:8]

    bf16 = autocasts_to_bf16(runner.training_step)
    # Without bf16 hardware the trainer runs in float32 (a bf16 matmul is emulated there, ~300x slower).
    peak = {"fp32": gemm_peak_gflops(torch.float32), **({"bf16": gemm_peak_gflops(torch.bfloat16)} if bf16 else {})}
    precision = "bf16" if bf16 else "fp32"
    sweep = step_ms_by_batch(args.preset, images)
    rows, in_layers = [], 0.0
    for name in ranges.layers:
        fwd, bwd = totals.get(f"layer:{name}.fwd", 0.0), totals.get(f"layer:{name}.bwd", 0.0)
        in_layers += fwd + bwd
        gflop = ranges.flops[name] / args.steps / 1e9
        rate = gflop / ((fwd + bwd) / 1000) if fwd + bwd else 0.0
        rows.append(f"| `{name}` | {fwd:.3f} | {bwd:.3f} | {(fwd + bwd) / per_step_ms:.0%} | {gflop * 1000:.1f} | "
                    f"{rate:,.0f} | {rate / peak[precision]:.1%} |")
    batch = runner.config.batch_size
    flop_total = sum(ranges.flops.values()) / args.steps / 1e9
    markdown = section(
        f"Training step profile on {cpu_kind()} (`benchmarks/train_profile.py`)",
        f"The `{args.preset}` preset's step (batch {batch}, {'bf16 autocast' if bf16 else 'float32'}, "
        f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads) under torch.profiler, {args.steps} steps: "
        f"{per_step_ms:.2f} ms per step with the profiler and layer hooks on "
        f"({batch / per_step_ms * 1000:,.0f} images/s; {median(plain):,.0f} images/s without them). "
        "Measured GEMM peak on this machine (2048³ matmul, all cores): "
        + ", ".join(f"{k} **{v:,.0f} GFLOP/s**" if k == precision else f"{k} {v:,.0f} GFLOP/s" for k, v in peak.items())
        + ("." if bf16 else " (no bf16 hardware: the trainer runs the step in float32)."),
        "",
        f"| layer | forward ms | backward ms | share of step | MFLOP per step | GFLOP/s | of {precision} peak |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        f"| everything else (loss, sampling, casts, optimizer, Python) | | | {1 - in_layers / per_step_ms:.0%} | | | |",
        "",
        f"The whole step does {flop_total * 1000:.0f} MFLOP: at the measured {precision} peak that is "
        f"{flop_total / peak[precision] * 1000:.3f} ms of arithmetic in a {per_step_ms:.2f} ms step "
        f"({flop_total / peak[precision] * 1000 / per_step_ms:.1%}), so at most "
        f"{batch / (flop_total / peak[precision]):,.0f} images/s at that peak. Top operators by self time per step: "
        + ", ".join(f"`{k}` {v:.3f} ms" for k, v in ops) + ".",
        "",
        "The same step (no profiler, no hooks) at other batch sizes, median of 3 × 2 s each:",
        "",
        "| batch | ms per step | images/s | ms per image |",
        "|---:|---:|---:|---:|",
        *[f"| {b} | {ms:.1f} | {b / ms * 1000:,.0f} | {ms / b:.2f} |" for b, ms in sweep.items()],
        "",
        f"A one-image step costs {sweep[1]:.1f} ms: that much of every step is per-call work whatever the batch, "
        f"{sweep[1] / sweep[batch]:.0%} of a batch-{batch} step.",
    )
    publish(f"train_profile-{cpu_kind()}", markdown, write=not args.no_write)  # one section per kind of CPU


if __name__ == "__main__":
    main()
