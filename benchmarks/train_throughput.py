"""Training throughput of both presets and the seed's Keras original, side by side in one run.

Each preset trains with exactly the trainer's step (`train.build_training_step`: its objective, optimizer,
batch size, autocast and memory format). The Keras original (`../shared/peers/keras_seed_vae.py`)
runs in its own virtual environment, which `keras_peer` creates on first use. Repeats alternate
between the three so that a noisy, shared machine slows all alike; we quote medians and ratios, and
no figure from another machine.

    python benchmarks/train_throughput.py [--repeats 5] [--seconds 6] [--no-peer]
    python benchmarks/train_throughput.py --shapes [--repeats 5] [--seconds 6]

--shapes measures the image shapes instead (issue 49): the `default` step on MNIST's 1 x 28 x 28 against the
sprites' 3 x 64 x 64 (the demo model's shape and likelihood), alternating in one run, in images/s and in
pixel values (channels x height x width) per second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keras_peer import peer_images_per_second  # noqa: E402
from report import cpu_kind, median, publish, section  # noqa: E402
from step_arithmetic import autocasts_to_bf16, gemm_peak_gflops, step_flops_per_image  # noqa: E402

from latent_atlas.train import data  # noqa: E402
from latent_atlas.train.config import TrainConfig  # noqa: E402
from latent_atlas.train.family import architecture  # noqa: E402
from latent_atlas.train.sprites import make_sprites  # noqa: E402
from latent_atlas.train.train import build_training_step  # noqa: E402


# The `default` recipe before it moved to batch 64 (docs/benchmarks.md, "The batch-64 recipe"), in the same run.
BATCH_32 = "default, batch 32"


class PresetRunner:
    def __init__(self, preset: str, images: torch.Tensor, **overrides):
        self.config = TrainConfig.from_preset(preset, device="cpu", **overrides)
        self.training_step = build_training_step(self.config)  # the trainer's own model, optimizer and step
        self.rng = torch.Generator().manual_seed(0)
        self.images = images
        self.order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
        self.cursor = 0

    def step(self) -> int:
        bs = self.config.batch_size
        if self.cursor + bs > len(self.order):
            self.cursor = 0
        idx = self.order[self.cursor:self.cursor + bs]
        self.cursor += bs
        x = self.training_step.batch(self.images, idx)  # the trainer's per-batch work: index, scale, memory format
        self.training_step(x, 1.0, self.config.lr, self.training_step.noise(self.rng, bs))
        return bs

    def images_per_second(self, seconds: float) -> float:
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            done += self.step()
        return done / (time.perf_counter() - start)


# The demo model's shape and likelihood (scripts/make-models.sh, `make sprites-model`), on sprites drawn here.
SPRITES = dict(dataset="sprites.npz", image_shape=(3, 64, 64), likelihood="bernoulli")
SPRITES_DRAWN = 2048


def shapes(args) -> None:
    """The `default` step at 1 x 28 x 28 (MNIST) and 3 x 64 x 64 (sprites), alternating repeats in one run."""
    mnist = torch.as_tensor(data.load_split("mnist", "train", args.data_dir)[0])
    sprites = torch.as_tensor(make_sprites(SPRITES_DRAWN, SPRITES["image_shape"][1], seed=0).images)
    runners = {"MNIST": PresetRunner("default", mnist), "sprites": PresetRunner("default", sprites, **SPRITES)}
    for runner in runners.values():
        runner.images_per_second(1.0)  # warm-up
    rates = {name: [] for name in runners}
    for r in range(args.repeats):
        for name, runner in runners.items():
            rates[name].append(runner.images_per_second(args.seconds))
        print(f"repeat {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f} img/s" for n, v in rates.items()), file=sys.stderr)
    rows, per_value, flops_per_value = [], {}, {}
    for name, runner in runners.items():
        c = runner.config
        values = architecture(c.image_shape).pixels
        med = median(rates[name])
        per_value[name] = med * values
        flops = step_flops_per_image(runner.training_step.model, c.image_shape)
        flops_per_value[name] = flops / values
        rows.append(f"| {name} | {' x '.join(map(str, c.image_shape))} | {c.likelihood} | "
                    f"{flops / 1e6:,.0f} | {med:,.1f} | "
                    f"{min(rates[name]):,.1f}–{max(rates[name]):,.1f} | {per_value[name]:,.0f} |")
    ratio = median(rates["MNIST"]) / median(rates["sprites"])
    markdown = section(
        f"Training throughput per image shape on {cpu_kind()} (`benchmarks/train_throughput.py --shapes`)",
        f"The `default` preset's step (batch {runners['MNIST'].config.batch_size}, "
        f"{'bf16 autocast' if autocasts_to_bf16(runners['MNIST'].training_step) else 'float32'}) on real MNIST and on "
        f"{SPRITES_DRAWN:,} procedural sprites, median of {args.repeats} alternating repeats ({args.seconds:g} s each), "
        f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads. A pixel value is one channel of one pixel.",
        "",
        "| data | image shape | likelihood | MFLOP per image's step | images/s (median) | range | pixel values/s |",
        "|---|---|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"A 64 x 64 x 3 image trains {ratio:.1f}× slower than a 28 x 28 x 1 one, for "
        f"{architecture(SPRITES['image_shape']).pixels / architecture((1, 28, 28)).pixels:.1f}× the pixel values: "
        f"{per_value['sprites'] / per_value['MNIST']:.2f}× the pixel values per second; its step costs "
        f"{flops_per_value['sprites'] / flops_per_value['MNIST']:.2f}× the FLOPs per pixel value (the family's "
        f"further stride-2 stages, train/family.py).",
        *([] if not args.note else ["", args.note]),
    )
    publish(f"train_throughput_shapes-{cpu_kind()}", markdown, write=not args.no_write)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per preset per repeat")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-peer", action="store_true", help="skip the Keras original (no TensorFlow venv)")
    parser.add_argument("--shapes", action="store_true", help="MNIST's 1 x 28 x 28 against the sprites' 3 x 64 x 64")
    parser.add_argument("--note", default="", help="--shapes: a sentence added to the section (how loaded the machine was)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    if args.shapes:
        shapes(args)
        return

    mnist_dir = next(iter(data.ensure_files("mnist", args.data_dir).values())).parent
    images = torch.as_tensor(data.load_split("mnist", "train", args.data_dir)[0])
    runners = {p: PresetRunner(p, images) for p in ("seed", "default")}
    runners[BATCH_32] = PresetRunner("default", images, batch_size=32, lr=1e-3)
    for runner in runners.values():  # warm-up: oneDNN picks and caches its kernels on first use
        runner.images_per_second(1.0)
    rates = {p: [] for p in [*runners, *([] if args.no_peer else ["keras"])]}
    for r in range(args.repeats):
        for preset, runner in runners.items():
            rates[preset].append(runner.images_per_second(args.seconds))
        if not args.no_peer:
            rates["keras"].append(peer_images_per_second(mnist_dir)[0])
        print(f"repeat {r + 1}: " + ", ".join(f"{p} {v[-1]:.0f} img/s" for p, v in rates.items()), file=sys.stderr)

    med = {p: median(v) for p, v in rates.items()}
    peer = med.get("keras")
    # The arithmetic ceiling, in the same run: the GEMM peak in the precision `default` trains in, over the
    # FLOPs of one image's step (the Keras original computes the same layers, so the same FLOPs).
    bf16 = autocasts_to_bf16(runners["default"].training_step)
    peak = gemm_peak_gflops(torch.bfloat16 if bf16 else torch.float32)
    ceiling = peak * 1e9 / step_flops_per_image(runners["default"].training_step.model)
    rows = []
    if peer is not None:
        rows.append(f"| Keras original (`keras_seed_vae.py`) | TensorFlow + tf_keras, RMSprop, batch 16, float32 | "
                    f"{peer:,.0f} | {min(rates['keras']):,.0f}–{max(rates['keras']):,.0f} | 1.00× |")
    for preset, runner in runners.items():
        c = runner.config
        ratio = f"{med[preset] / peer:.2f}×" if peer else "–"
        name, _, variant = preset.partition(",")
        rows.append(f"| `{name}`{variant} | {c.optimizer}, batch {c.batch_size}, "
                    f"{'bf16 autocast' if autocasts_to_bf16(runner.training_step) else 'float32'}"
                    f"{', channels-last' if c.channels_last else ''}"
                    f"{f', encoder noise {c.encoder_noise:g}' if c.encoder_noise else ''} | {med[preset]:,.0f} | "
                    f"{min(rates[preset]):,.0f}–{max(rates[preset]):,.0f} | {ratio} |")
    peer_text = ("The Keras original ran in its own TensorFlow environment in the same run, one repeat of it "
                 "between each pair of preset repeats; its rate is (14,000 − 2,000) images / (fit time on 14,000 − fit "
                 "time on 2,000), so TensorFlow's start-up and the validation pass cancel out."
                 if peer else "The Keras original was not run (`--no-peer`): no ratio to it is claimed.")
    markdown = section(
        f"Training throughput on {cpu_kind()} (`benchmarks/train_throughput.py`)",
        f"Images per second on real MNIST, median of {args.repeats} alternating repeats ({args.seconds:g} s per preset), "
        f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads. {peer_text}",
        "",
        "| trainer | recipe | images/s (median) | range | vs Keras original, same run |",
        "|---|---|---:|---:|---:|",
        *rows,
        "",
        f"`default` trains **{med['default'] / med['seed']:.2f}×** as fast as `seed` in the same run"
        + (f", and **{med['default'] / peer:.2f}×** the Keras original (target: ≥ 3×)." if peer else ".")
        + f" Its batch of {runners['default'].config.batch_size} trains {med['default'] / med[BATCH_32]:.2f}× the images/s "
        f"of batch 32, the recipe before"
        + (f" ({med[BATCH_32] / peer:.2f}× the Keras original)." if peer else "."),
        "",
        f"The ceiling on this CPU: one image's training step is {peak / ceiling * 1000:.0f} MFLOP through the layers "
        f"(counted from their shapes), and a 2048³ {'bf16' if bf16 else 'float32'} matmul on every core ran at "
        f"{peak:,.0f} GFLOP/s after the repeats, so no trainer of this architecture in that precision passes "
        f"**{ceiling:,.0f} images/s** here"
        + (f", {ceiling / peer:.2f}× the Keras original (which sustained {peer * peak / ceiling:,.0f} GFLOP/s)." if peer else "."),
    )
    publish(f"train_throughput-{cpu_kind()}", markdown, write=not args.no_write)  # one section per kind of CPU


if __name__ == "__main__":
    main()
