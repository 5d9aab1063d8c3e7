"""The export variants side by side: file sizes, test -ELBO, decode latency.

Exports the run's best weights as fp32, int8 and fp16 bundles into a temporary directory, reads each
bundle's recorded test -ELBO (computed from its ONNX files), and times single-point and 30x30-grid
decodes with ONNX Runtime's CPU provider, alternating variants between repeats.

    python benchmarks/export_variants.py [RUN_DIR]   # default: runs/bundled-mnist
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import median, percentile, publish, section  # noqa: E402

from latent_atlas.export.exporter import export_bundle  # noqa: E402
from latent_atlas.runtime import bundle as fmt  # noqa: E402
from latent_atlas.runtime.options import VARIANTS  # noqa: E402


def time_calls(run, feed, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        run(None, feed)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    run_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/bundled-mnist")
    with tempfile.TemporaryDirectory() as tmp:
        bundles = {v: export_bundle(run_dir, Path(tmp) / v, variant=v, iw_samples=0, log=lambda _: None) for v in VARIANTS}
        manifests = {v: fmt.Manifest.load(p).to_json() for v, p in bundles.items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # single-point latency: threads cost more than they give
        decoders = {v: ort.InferenceSession(str(p / fmt.DECODER), options, providers=["CPUExecutionProvider"])
                    for v, p in bundles.items()}
        point = {fmt.DECODER_INPUT: np.zeros((1, 2), np.float32)}
        grid = {fmt.DECODER_INPUT: np.random.default_rng(0).standard_normal((900, 2)).astype(np.float32)}
        single, batch = {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS}
        for v in VARIANTS:  # warm-up
            time_calls(decoders[v].run, point, 50)
            time_calls(decoders[v].run, grid, 2)
        for _ in range(5):
            for v in VARIANTS:
                single[v] += time_calls(decoders[v].run, point, 400)
                batch[v] += time_calls(decoders[v].run, grid, 4)

    fp32 = manifests["fp32"]
    rows = []
    for v in VARIANTS:
        m = manifests[v]
        enc, dec = m["files"][fmt.ENCODER]["bytes"], m["files"][fmt.DECODER]["bytes"]
        ratio = fp32["files"][fmt.ENCODER]["bytes"] / enc
        delta = m["metrics"]["test_neg_elbo"] - fp32["metrics"]["test_neg_elbo"]
        rows.append(f"| {v} | {enc / 1024:,.0f} KiB ({ratio:.2f}× smaller) | {dec / 1024:,.0f} KiB | "
                    f"{m['metrics']['test_neg_elbo']:.2f} ({delta:+.2f}) | {median(single[v]) * 1e6:,.0f} µs / "
                    f"{percentile(single[v], 99) * 1e6:,.0f} µs | {median(batch[v]) * 1e3:.1f} ms |")
    markdown = section(
        "Export variants (`benchmarks/export_variants.py`)",
        f"Run `{run_dir}` (best weights), exported three ways. −ELBO: test set, nats per image, computed from each "
        f"variant's ONNX files. Decode latency: ONNX Runtime {ort.__version__}, CPU provider, 1 intra-op thread, "
        f"medians over 2,000 single-point calls and 20 grids, variants alternating.",
        "",
        "| variant | encoder.onnx | decoder.onnx | test −ELBO (Δ vs fp32) | decode 1 point p50 / p99 | decode 30×30 grid |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Targets for int8: ≤ 4× smaller encoder, ≤ 1 nat worse. fp16 is meant for GPU providers; on the CPU provider "
        "ONNX Runtime runs it through casts, which is why it is not faster here.",
    )
    publish("export_variants", markdown)


if __name__ == "__main__":
    main()
