"""The trainer's float32 evaluation (train.evaluate.evaluate_elbo, what every epoch and `latent-atlas
evaluate` run): images/s by batch size and memory format, on random weights and images (the speed of a
convolution does not depend on its numbers). Repeats alternate between the settings; we quote medians.

    python benchmarks/evaluation_speed.py [--images 4000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import median, publish, section, table  # noqa: E402

import torch  # noqa: E402

from latent_atlas.train.evaluate import evaluate_elbo  # noqa: E402
from latent_atlas.train.model import VAE  # noqa: E402

BATCH_SIZES = (64, 128, 256, 512, 1000)
FORMATS = {"channels-last": torch.channels_last, "NCHW": torch.contiguous_format}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.rand(args.images, 1, 28, 28)
    models = {name: VAE().to(memory_format=fmt).eval() for name, fmt in FORMATS.items()}
    settings = [(name, batch) for name in FORMATS for batch in BATCH_SIZES]
    rates: dict[tuple, list[float]] = {setting: [] for setting in settings}
    evaluate_elbo(models["channels-last"], x[:512])  # warm-up: oneDNN primitives, allocator
    for r in range(args.repeats):
        for name, batch in settings:
            start = time.perf_counter()
            evaluate_elbo(models[name], x, batch_size=batch)
            rates[(name, batch)].append(args.images / (time.perf_counter() - start))
        print(f"repeat {r + 1} done", file=sys.stderr)

    reference = median(rates[("channels-last", 1000)])
    rows = [[name, f"{batch:,}", f"{median(rates[(name, batch)]):,.0f}",
             f"{min(rates[(name, batch)]):,.0f}–{max(rates[(name, batch)]):,.0f}",
             f"{median(rates[(name, batch)]) / reference:.2f}×"] for name, batch in settings]
    markdown = section(
        "The trainer's evaluation, float32 (`benchmarks/evaluation_speed.py`)",
        f"`evaluate_elbo` (encode, one posterior sample, decode, Bernoulli NLL and KL) on {args.images:,} images, "
        f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats} alternating "
        "repeats. Every epoch evaluates the 5,000 validation and 10,000 test images, so this is time the user "
        "waits per epoch. The trainer and `evaluate` use batches of 128 in the run's memory format (channels-last "
        "by default).",
        "",
        table(["memory format", "batch", "images/s (median)", "range", "vs channels-last × 1,000"], rows, 1),
    )
    publish("evaluation_speed", markdown, write=not args.no_write)


if __name__ == "__main__":
    main()
