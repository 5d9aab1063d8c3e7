"""What Android NNAPI and iOS CoreML accept of a bundle's files, dynamic batch vs static batch.

Runs onnxruntime's own usability checker (`python -m onnxruntime.tools.check_onnx_model_mobile_usability`)
on each bundle's encoder.onnx and decoder.onnx as exported (dynamic batch), and on the same files with
the batch fixed to 1 by the exporter's `--static-batch` step (export/mobile.py), and tabulates the nodes
each execution provider can take. The checker only reads the graphs, so no phone is needed.

    python benchmarks/mobile_usability.py [BUNDLE ...]   # default: the bundled mnist model (fp32)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import publish, section, table  # noqa: E402

from latent_atlas.export import mobile  # noqa: E402
from latent_atlas.runtime import bundle as fmt  # noqa: E402

PROVIDERS = ("NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram")
STATIC_BATCH = 1


def check(path: Path) -> dict[str, str]:
    """{provider: "13/14 nodes, 2 partitions (MAYBE; not ConvTranspose)"} from the checker's report."""
    result = subprocess.run([sys.executable, "-m", "onnxruntime.tools.check_onnx_model_mobile_usability", str(path)],
                            capture_output=True, text=True, check=True)
    report = result.stdout + result.stderr
    cells = {}
    for provider in PROVIDERS:
        # The section on the model as it is: from "Checking <provider>" to the checker's "as is" verdict.
        section = re.search(rf"Checking {provider}\n(.*?)as is: (\w+)", report, re.S)
        nodes = re.search(r"(\d+) partitions with a total of (\d+/\d+) nodes", section.group(1))
        unsupported = re.search(r"Unsupported ops: (.*)", section.group(1))
        dynamic = re.search(r"input having a dynamic shape=(\d+)", section.group(1))
        notes = [section.group(2)]
        if unsupported:
            notes.append("no " + unsupported.group(1).strip().replace("ai.onnx:", ""))
        if dynamic and dynamic.group(1) != "0":
            notes.append(f"{dynamic.group(1)} nodes refused for a dynamic shape")
        cells[provider] = f"{nodes.group(2)} nodes, {nodes.group(1)} partition(s) ({'; '.join(notes)})"
    return cells


def main() -> None:
    bundles = [fmt.resolve(b) for b in (sys.argv[1:] or ["mnist"])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for bundle in bundles:
            manifest = fmt.read(bundle)
            static = Path(tmp) / f"{bundle.name}-static"
            shutil.copytree(bundle, static)
            mobile.make_static_batch(static, STATIC_BATCH)
            for filename in (fmt.DECODER, fmt.ENCODER):
                for batch, directory in (("dynamic N", bundle), (f"static {STATIC_BATCH}", static)):
                    cells = check(directory / filename)
                    rows.append([f"{manifest.name} {manifest.variant}", filename, batch, *(cells[p] for p in PROVIDERS)])
                    print(rows[-1], flush=True)
    markdown = section(
        "Mobile execution providers: dynamic vs static batch (`benchmarks/mobile_usability.py`)",
        f"onnxruntime {ort.__version__}'s `check_onnx_model_mobile_usability` on each file as exported and with the "
        f"batch fixed to {STATIC_BATCH} (`latent-atlas export --static-batch {STATIC_BATCH}`): the nodes each provider "
        "can take, in how many partitions, and the checker's verdict for the model as it is (YES / MAYBE / NO).",
        "",
        table(["bundle", "file", "batch", *PROVIDERS], rows),
        "",
        "With a dynamic batch no provider takes a single node. With a fixed batch the encoder goes whole to all three; "
        "the decoder goes whole to CoreML MLProgram, while NNAPI and CoreML NeuralNetwork lack ConvTranspose (the "
        "final depth-to-space) and take the other 13 nodes in 2 partitions, the ConvTranspose running on the CPU.",
    )
    publish("mobile_usability", markdown)


if __name__ == "__main__":
    main()
