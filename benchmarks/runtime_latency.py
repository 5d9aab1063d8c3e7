"""ONNX Runtime (the shipped runtime) vs PyTorch eager on the same weights, side by side in one run.

    python benchmarks/runtime_latency.py [--quick]

Same weights: a VAE(2) built with torch.manual_seed(0) is exported with the project's exporter, so
both sides compute exactly the same function (trained or not makes no difference to the cost).
Measured: single-point decode latency (p50/p99 over thousands of calls), a 30x30 grid in one call,
single-image encode, the seed's way of drawing a 10x10 grid (100 separate single-point calls), and
cold start to the first decoded image in a fresh process. The two sides are timed in alternating
blocks, so a background load that comes and goes hits both alike. Beside them, in the same run, the
image shapes of issue 49: one point, a batch and a 10x10 grid (one call) decoded at 1x28x28 and at
3x64x64 (the sprites demo's shape), each shape's VAE(2) exported the same way. Results go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import percentile, publish, section  # noqa: E402

from latent_atlas.runtime.bench import GRID_SIDE, timings  # noqa: E402
from latent_atlas.runtime.model import CPU_CHUNK, PARALLEL_BATCH  # noqa: E402
from latent_atlas.runtime.session import cpu_count  # noqa: E402

# Cold start: the child reports, from the launch timestamp the parent passes in, when it finished
# importing, loading and decoding its first image. time.time() is shared by both processes, so the
# interval includes interpreter start-up, which is part of what a user waits for.
COLD_START_ORT = """
import sys, time
launched = float(sys.argv[1])
import numpy as np
import latent_atlas.runtime as runtime
imported = time.time()
model = runtime.load(sys.argv[2])
loaded = time.time()
image = model.decode(np.zeros((1, model.latent_dim), np.float32))
done = time.time()
print(imported - launched, loaded - launched, done - launched)
"""

COLD_START_TORCH = """
import sys, time
launched = float(sys.argv[1])
import torch
from latent_atlas.train.model import VAE
imported = time.time()
model = VAE(2)
model.load_state_dict(torch.load(sys.argv[3], weights_only=True))
model.eval()
loaded = time.time()
with torch.inference_mode():
    image = model.decode_probs(torch.zeros(1, 2))
done = time.time()
print(imported - launched, loaded - launched, done - launched)
"""


def cold_start(code: str, runs: int, *args: str) -> list[float]:
    """Median (import, load, first image) seconds since launch over `runs` fresh processes."""
    samples = []
    for _ in range(runs):
        launched = time.time()
        out = subprocess.run([sys.executable, "-c", code, repr(launched), *args], capture_output=True, text=True,
                             check=True).stdout
        samples.append([float(v) for v in out.split()])
    return [statistics.median(column) for column in zip(*samples)]


def bare_python(runs: int) -> float:
    samples = []
    for _ in range(runs):
        launched = time.time()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append(time.time() - launched)
    return statistics.median(samples)


def alternating(calls: dict, repeats: int, blocks: int, warmup: int = 20) -> dict[str, np.ndarray]:
    """Times each call `repeats` times, in `blocks` alternating rounds; returns all samples per name."""
    per_block = max(1, repeats // blocks)
    samples = {name: [] for name in calls}
    for _ in range(blocks):
        for name, call in calls.items():
            samples[name].append(timings(call, per_block, warmup))
    return {name: np.concatenate(parts) for name, parts in samples.items()}


def node_profile(decoder_path: Path, point: np.ndarray, calls: int = 1000) -> str:
    """Median kernel time per node of a single-point decode, from ONNX Runtime's own profiler."""
    import json

    import onnxruntime as ort

    from latent_atlas.runtime.session import session_options

    options = session_options(1)
    options.enable_profiling = True
    options.profile_file_prefix = str(decoder_path.parent / "profile")
    session = ort.InferenceSession(str(decoder_path), options, providers=["CPUExecutionProvider"])
    for _ in range(calls):
        session.run(None, {"z": point})
    events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[str, list[float]] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_node.setdefault(f"{event['args']['op_name']} ({event['name'][:-len('_kernel_time')]})", []).append(event["dur"])
    medians = sorted(((statistics.median(v), k) for k, v in per_node.items()), reverse=True)
    return ", ".join(f"{name} {us:.0f} µs" for us, name in medians)


# The image shapes timed side by side (issue 49): the seed's, and the colour demo's 64 x 64 RGB.
SHAPES = ((1, 28, 28), (3, 64, 64))
BATCH = 256  # the decode-batch row: images per call
SHAPE_GRID_SIDE = 10  # a 10 x 10 grid, decoded in one call


def shape_timings(work: Path, scale: int) -> list[tuple]:
    """Per image shape: (shape, ORT and PyTorch seconds for one point, a batch of BATCH, a 10x10 grid)."""
    import torch

    from latent_atlas.export.onnx_export import export_onnx
    from latent_atlas.runtime import Decoder
    from latent_atlas.train.model import VAE

    rng = np.random.default_rng(1)
    point = rng.standard_normal((1, 2)).astype(np.float32)
    batch = rng.standard_normal((BATCH, 2)).astype(np.float32)
    grid = rng.standard_normal((SHAPE_GRID_SIDE ** 2, 2)).astype(np.float32)
    rows = []
    for shape in SHAPES:
        torch.manual_seed(0)
        vae = VAE(2, image_shape=shape).eval()
        folder = work / "x".join(map(str, shape))
        decoder = Decoder(export_onnx(vae, folder)[1], providers="cpu")
        print(f"timing decodes at {'x'.join(map(str, shape))} ...", flush=True)
        with torch.inference_mode():
            calls = {}
            for name, z in (("one", point), ("batch", batch), ("grid", grid)):
                t_z = torch.from_numpy(z)
                calls[f"ort {name}"] = lambda z=z: decoder.decode(z)
                calls[f"torch {name}"] = lambda t_z=t_z: vae.decode_probs(t_z)
            one = alternating({k: v for k, v in calls.items() if k.endswith("one")}, repeats=2000 // scale, blocks=10)
            many = alternating({k: v for k, v in calls.items() if not k.endswith("one")},
                               repeats=max(4, 40 // scale), blocks=4, warmup=2)
        rows.append((shape, {**one, **many}))
    return rows


def shape_table(rows: list[tuple]) -> list[str]:
    table = ["| image shape | decode one point, p50 | decode a batch of 256 | 10×10 grid, one call | PyTorch eager: one "
             "point / batch / grid |", "|---|---:|---:|---:|---|"]
    for shape, t in rows:
        batch_ms = float(np.median(t["ort batch"])) * 1e3
        table.append(
            f"| {' × '.join(map(str, shape))} | {percentile(t['ort one'].tolist(), 50) * 1e6:.0f} µs | "
            f"{batch_ms:.1f} ms ({BATCH / batch_ms * 1e3:,.0f} images/s) | {float(np.median(t['ort grid'])) * 1e3:.1f} ms | "
            f"{percentile(t['torch one'].tolist(), 50) * 1e6:.0f} µs / {float(np.median(t['torch batch'])) * 1e3:.1f} ms"
            f" / {float(np.median(t['torch grid'])) * 1e3:.1f} ms |")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, not for the docs)")
    parser.add_argument("--bundle", default="mnist", help="the bundle the ORT cold start loads (default mnist)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1

    import torch

    from latent_atlas.export.onnx_export import export_onnx
    from latent_atlas.runtime import Decoder, Encoder
    from latent_atlas.train.model import VAE

    torch.manual_seed(0)
    vae = VAE(2).eval()
    work = Path(tempfile.mkdtemp(prefix="latent-atlas-bench-"))
    encoder_path, decoder_path = export_onnx(vae, work)
    weights = work / "vae.pt"
    torch.save(vae.state_dict(), weights)
    encoder, decoder = Encoder(encoder_path, providers="cpu"), Decoder(decoder_path, providers="cpu")

    rng = np.random.default_rng(0)
    point = rng.standard_normal((1, 2)).astype(np.float32)
    grid = rng.standard_normal((GRID_SIDE * GRID_SIDE, 2)).astype(np.float32)
    image = decoder.decode(point)[:, None]  # [1, 1, 28, 28] in [0, 1], the encoder's input layout
    t_point, t_grid, t_image = torch.from_numpy(point), torch.from_numpy(grid), torch.from_numpy(image)
    seed_grid = [rng.standard_normal((1, 2)).astype(np.float32) for _ in range(100)]
    t_seed_grid = [torch.from_numpy(z) for z in seed_grid]

    with torch.inference_mode():
        np.testing.assert_allclose(decoder.decode(grid), vae.decode_probs(t_grid)[:, 0].numpy(), atol=1e-5)

        def torch_decode(z):
            return lambda: vae.decode_probs(z)

        print("timing single-point decode ...", flush=True)
        single = alternating({"ort": lambda: decoder.decode(point), "torch": torch_decode(t_point)},
                             repeats=10000 // scale, blocks=10)
        print("timing 30x30 grid ...", flush=True)
        grids = alternating({"ort": lambda: decoder.decode(grid), "torch": torch_decode(t_grid)},
                            repeats=max(4, 40 // scale), blocks=4, warmup=2)
        print("timing single-image encode ...", flush=True)
        encodes = alternating({"ort": lambda: encoder.encode(image), "torch": lambda: vae.encode(t_image)},
                              repeats=4000 // scale, blocks=10)
        print("timing the seed's 10x10 grid (100 single-point calls) ...", flush=True)
        seed = alternating({"ort": lambda: [decoder.decode(z) for z in seed_grid],
                            "torch": lambda: [vae.decode_probs(z) for z in t_seed_grid]},
                           repeats=max(4, 40 // scale), blocks=4, warmup=2)

    shapes = shape_timings(work, scale)
    profile = node_profile(decoder_path, point)
    print("timing cold start ...", flush=True)
    runs = 3 if args.quick else 9
    python_start = bare_python(runs)
    ort_cold = cold_start(COLD_START_ORT, runs, args.bundle)
    torch_cold = cold_start(COLD_START_TORCH, runs, args.bundle, str(weights))

    def us(samples, q=50):
        return percentile(samples.tolist(), q) * 1e6

    def ms(samples):
        return float(np.median(samples)) * 1e3

    rows = [
        ("single-point decode, p50", f"{us(single['ort']):.0f} µs", f"{us(single['torch']):.0f} µs",
         us(single["torch"]) / us(single["ort"]), "≤ 80 µs, ≥ 2× faster"),
        ("single-point decode, p99", f"{us(single['ort'], 99):.0f} µs", f"{us(single['torch'], 99):.0f} µs",
         us(single["torch"], 99) / us(single["ort"], 99), ""),
        ("30×30 grid, one call", f"{ms(grids['ort']):.1f} ms", f"{ms(grids['torch']):.1f} ms",
         ms(grids["torch"]) / ms(grids["ort"]), "≤ 60 ms"),
        ("single-image encode, p50", f"{us(encodes['ort']):.0f} µs", f"{us(encodes['torch']):.0f} µs",
         us(encodes["torch"]) / us(encodes["ort"]), ""),
        ("seed-style 10×10 grid (100 calls)", f"{ms(seed['ort']):.1f} ms", f"{ms(seed['torch']):.1f} ms",
         ms(seed["torch"]) / ms(seed["ort"]), "Keras seed: ≈ 3.5 s"),
        ("cold start → first image", f"{ort_cold[2] * 1e3:.0f} ms", f"{torch_cold[2] * 1e3:.0f} ms",
         torch_cold[2] / ort_cold[2], "≤ 300 ms"),
    ]
    table = ["| | ONNX Runtime | PyTorch eager | PyTorch / ORT | target |", "|---|---:|---:|---:|---|"]
    table += [f"| {name} | {a} | {b} | {ratio:.1f}× | {target} |" for name, a, b, ratio, target in rows]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    markdown = section(
        "Runtime latency: ONNX Runtime vs PyTorch eager",
        f"onnxruntime {__import__('onnxruntime').__version__} ({decoder.provider}; one thread for batches under "
        f"{PARALLEL_BATCH}, larger ones in slices of {CPU_CHUNK} on {cpu_count()} threads), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), the same VAE(2) weights. "
        f"Load average at the end: {load:.1f}." + (" **Quick run: few repetitions.**" if args.quick else ""),
        "",
        *table,
        "",
        f"Cold start is measured from just before the parent launches a fresh `python -c` to the first decoded "
        f"image, so it includes interpreter start-up (a bare `python -c pass` takes {python_start * 1e3:.0f} ms "
        f"here). ORT breakdown: `import latent_atlas.runtime` done at {ort_cold[0] * 1e3:.0f} ms, "
        f"`load({args.bundle!r})` at {ort_cold[1] * 1e3:.0f} ms, first image at {ort_cold[2] * 1e3:.0f} ms "
        f"(PyTorch: import at {torch_cold[0] * 1e3:.0f} ms, weights loaded at {torch_cold[1] * 1e3:.0f} ms). "
        f"Medians of {runs} runs.",
        "",
        f"Where a single-point decode's time goes (ONNX Runtime's profiler, median kernel time per node): "
        f"{profile}.",
        "",
        f"Image shapes (issue 49), same run: each shape's VAE(2) (train/family.py) exported the same way; medians "
        f"(one point: p50 of {2000 // scale:,} calls). ONNX Runtime as above, PyTorch eager beside it.",
        "",
        *shape_table(shapes),
        "",
        "Reproduce: `python benchmarks/runtime_latency.py`; `latent-atlas bench` gives the ORT figures alone "
        "on any machine, torch not needed.",
    )
    publish("runtime_latency", markdown, write=not args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
