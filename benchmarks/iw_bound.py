"""The K=100 importance-weighted bound on the first N test images of a run: PyTorch (what the export
used before) vs ONNX Runtime + numpy (runtime/evaluation.py, what it uses now), alternating repeats.

    python benchmarks/iw_bound.py N RUN_DIR
"""
import sys, time, tempfile, statistics
from pathlib import Path
import torch
from latent_atlas.export.onnx_export import export_onnx
from latent_atlas.runtime import evaluation
from latent_atlas.train import data
from latent_atlas.train.evaluate import iw_log_likelihood, load_model
n = int(sys.argv[1]); run = sys.argv[2]
model, _ = load_model(run, "best")
x = data.to_float(data.load_split("mnist", "test")[0][:n])
tmp = Path(tempfile.mkdtemp()); enc, dec = export_onnx(model, tmp)
encoder, decoder = evaluation.open_pair(enc, dec)
times = {"torch": [], "onnx": []}
for r in range(2):
    t = time.perf_counter(); a = -iw_log_likelihood(model, torch.from_numpy(x), 100, seed=0).mean().item(); times["torch"].append(time.perf_counter() - t)
    t = time.perf_counter(); b = -evaluation.iw_log_likelihood(encoder, decoder, x, 100, seed=0).mean(); times["onnx"].append(time.perf_counter() - t)
    print(f"repeat {r+1}: torch {times['torch'][-1]:.1f} s ({a:.3f} nats), onnx {times['onnx'][-1]:.1f} s ({b:.3f} nats)", flush=True)
print({k: statistics.median(v) for k, v in times.items()}, torch.get_num_threads())
