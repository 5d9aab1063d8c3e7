"""Which bundle variants OpenCV's DNN module runs, and whether it gives ONNX Runtime's numbers.

OpenCV is not a dependency of the project: install the versions to compare into folders of their own,
e.g. `pip install --no-deps --target /tmp/cv4 "opencv-python-headless<5"`, and pass them with --opencv
(each runs in its own process, as one process can import only one cv2).

    python benchmarks/opencv_dnn.py --opencv /tmp/cv4 --opencv /tmp/cv5 BUNDLE [BUNDLE ...]

For each bundle's encoder.onnx and decoder.onnx, at batch 1 and 3: max |OpenCV - ONNX Runtime| over
random inputs, or the error OpenCV raised. The result decides bundle.json's "runtimes" (runtime/bundle.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import publish, section, table  # noqa: E402

from latent_atlas.export.mobile import ONNX_FILES  # noqa: E402
from latent_atlas.runtime import bundle as fmt  # noqa: E402

BATCHES = (1, 3)
OUTPUTS = {fmt.ENCODER: list(fmt.ENCODER_OUTPUTS), fmt.DECODER: [fmt.DECODER_OUTPUT]}


def feed(filename: str, batch: int, latent_dim: int) -> np.ndarray:
    rng = np.random.default_rng(batch)
    if filename == fmt.ENCODER:
        return rng.random((batch, 1, 28, 28), dtype=np.float32)
    return rng.standard_normal((batch, latent_dim), dtype=np.float32)


def compare(bundle: Path) -> dict[str, str]:
    """In a process that imported one cv2: {"decoder.onnx @ 1": "1.2e-07" or "error: ..."}."""
    import cv2

    manifest = fmt.read(bundle)
    cells = {}
    for filename, input_name in ONNX_FILES:
        session = ort.InferenceSession(str(bundle / filename), providers=["CPUExecutionProvider"])
        for batch in BATCHES:
            x = feed(filename, batch, manifest.latent_dim)
            want = session.run(OUTPUTS[filename], {input_name: x})
            try:
                net = cv2.dnn.readNetFromONNX(str(bundle / filename))
                net.setInput(x)
                got = net.forward(OUTPUTS[filename])
                error = max(float(np.abs(np.asarray(g).reshape(w.shape) - w).max()) for g, w in zip(got, want))
                cells[f"{filename} @ {batch}"] = f"{error:.2g}"
            except cv2.error as exc:
                detail = str(exc).strip().splitlines()[-1].split("error: ", 1)[-1]
                cells[f"{filename} @ {batch}"] = f"error: {detail}"
    return {"opencv": cv2.__version__, **cells}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opencv", action="append", required=True, help="a folder holding one cv2 (pip --target)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("bundles", nargs="+")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps([compare(fmt.resolve(b)) for b in args.bundles]))
        return
    rows = []
    for folder in args.opencv:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([folder, os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, __file__, "--worker", "--opencv", folder, *args.bundles], env=env,
                             capture_output=True, text=True, check=True).stdout
        for bundle, cells in zip(args.bundles, json.loads(out.strip().splitlines()[-1])):
            rows.append([cells.pop("opencv"), fmt.read(bundle).variant, *cells.values()])
            print(rows[-1], flush=True)
    columns = [f"{name} @ batch {b}" for name, _ in ONNX_FILES for b in BATCHES]
    runs = {json.dumps(fmt.read(b).manifest.training["config"], sort_keys=True) for b in args.bundles}
    provenance = ", ".join(f"{c['dataset']}, {c['epochs']} epoch(s), {c.get('limit') or 'all'} training images"
                           for c in map(json.loads, sorted(runs)))
    markdown = section(
        "OpenCV DNN vs ONNX Runtime per variant (`benchmarks/opencv_dnn.py`)",
        f"opencv-python-headless wheels against onnxruntime {ort.__version__} on the same random inputs: max abs "
        f"difference of every output, or the error OpenCV raised. Bundles trained on: {provenance} (what OpenCV "
        "runs depends on the graph, which is the same for any run of the architecture, not on the weights).",
        "",
        table(["OpenCV", "variant", *columns], rows, right_aligned_from=2),
        "",
        "OpenCV 4's int8 figures at batch 3 change from one run of this script to the next, while batch 1 is right. "
        "OpenCV 5.0 refuses the int8 graph.",
    )
    publish("opencv_dnn", markdown)


if __name__ == "__main__":
    main()
