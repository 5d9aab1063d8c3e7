"""Mobile-ready forms of a bundle's ONNX files: a fixed batch size, and onnxruntime's ORT format.

Android's NNAPI and iOS's CoreML execution providers take no node whose input has a dynamic shape,
so with the dynamic batch axis they run none of either file; with a fixed batch they take all of the
encoder and all but the decoder's ConvTranspose (onnxruntime's check_onnx_model_mobile_usability,
benchmarks/mobile_usability.py). Both steps use onnxruntime's own tools, so a file fixed or converted
here is what onnxruntime's documentation tells mobile developers to produce.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from latent_atlas.runtime import bundle as fmt

from .onnx_export import save
from .verify import ExportError

# (file, input name) of each ONNX file in a bundle.
ONNX_FILES = ((fmt.ENCODER, fmt.ENCODER_INPUT), (fmt.DECODER, fmt.DECODER_INPUT))
# A static-batch file must give the dynamic file's numbers: same graph, same kernels.
STATIC_PARITY_TOLERANCE = 1e-6
# An ORT-format file may fuse ops (Conv + Relu) that the ONNX session ran apart: float rounding only.
ORT_PARITY_TOLERANCE = 1e-5
# onnxruntime's guidance: "Runtime" style for NNAPI / CoreML, which compile their own partitions (the
# "Fixed" style bakes in CPU-only fused contrib ops such as FusedConv that they cannot take), "Fixed"
# for the CPU provider.
ORT_STYLE_FOR_MOBILE_EPS = "Runtime"
ORT_STYLE_FOR_CPU = "Fixed"


def runtimes(variant: str, static_batch: int | None, ort_format: bool) -> list[str]:
    """bundle.json's "runtimes": what this bundle's files are meant to run in (see runtime/bundle.py)."""
    out = list(fmt.VARIANT_RUNTIMES[variant])
    if static_batch is not None:
        out += fmt.STATIC_BATCH_RUNTIMES
    if ort_format:
        out += fmt.ORT_FORMAT_RUNTIMES
    return out


def check_static_batch(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"static batch must be a positive integer, got {value!r}")
    return value


def _fixed(proto: onnx.ModelProto, input_name: str, batch: int) -> onnx.ModelProto:
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

    static = onnx.ModelProto()
    static.CopyFrom(proto)
    dims = static.graph.input[0].type.tensor_type.shape.dim
    if any(not d.HasField("dim_value") for d in dims[1:]):
        raise ExportError(f"{input_name}: only the batch axis may be dynamic, got shape {[d.dim_param or d.dim_value for d in dims]}")
    make_input_shape_fixed(static.graph, input_name, [batch, *(d.dim_value for d in dims[1:])])
    fix_output_shapes(static)
    return static


def _session(proto: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def make_static_batch(bundle_dir: Path, batch: int) -> dict[str, float]:
    """Rewrites encoder.onnx and decoder.onnx in bundle_dir with batch axis fixed to `batch`, after
    checking on random inputs that each gives the dynamic file's outputs; returns the max abs
    differences. Raises ExportError (writing nothing) when one does not."""
    batch = check_static_batch(batch)
    rng = np.random.default_rng(0)
    fixed, errors = {}, {}
    for filename, input_name in ONNX_FILES:
        proto = onnx.load(bundle_dir / filename)
        static = _fixed(proto, input_name, batch)
        shape = [batch, *(d.dim_value for d in static.graph.input[0].type.tensor_type.shape.dim[1:])]
        x = rng.random(shape, dtype=np.float32) if filename == fmt.ENCODER else rng.standard_normal(shape, dtype=np.float32)
        want, got = _session(proto).run(None, {input_name: x}), _session(static).run(None, {input_name: x})
        errors[filename] = max(float(np.abs(a - b).max()) for a, b in zip(want, got))
        if not errors[filename] <= STATIC_PARITY_TOLERANCE:
            raise ExportError(f"{filename} with batch fixed to {batch} differs from the dynamic file by "
                              f"{errors[filename]:.3g} (> {STATIC_PARITY_TOLERANCE:g}); the export was not written")
        fixed[filename] = static
    for filename, static in fixed.items():
        save(static, bundle_dir / filename)
    return errors


def ort_style(static_batch: int | None) -> str:
    """A fixed batch is for NNAPI / CoreML, which want the "Runtime" style; otherwise the CPU's "Fixed"."""
    return ORT_STYLE_FOR_MOBILE_EPS if static_batch is not None else ORT_STYLE_FOR_CPU


def write_ort(bundle_dir: Path, style: str) -> list[str]:
    """Converts encoder.onnx and decoder.onnx in bundle_dir to encoder.ort and decoder.ort with
    onnxruntime's converter (`python -m onnxruntime.tools.convert_onnx_models_to_ort`), checks that
    each loads and gives the ONNX file's outputs, and returns their file names."""
    written = []
    with tempfile.TemporaryDirectory(dir=bundle_dir.parent, prefix=".ort-") as scratch:
        for filename, _ in ONNX_FILES:
            source = Path(scratch) / filename
            source.write_bytes((bundle_dir / filename).read_bytes())
            result = subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(source),
                                     "--output_dir", str(Path(scratch) / "out"), "--optimization_style", style],
                                    capture_output=True, text=True)
            # The converter names a "Runtime"-style file decoder.with_runtime_opt.ort.
            converted = sorted((Path(scratch) / "out").glob(f"{Path(filename).stem}*.ort"))
            if result.returncode != 0 or len(converted) != 1:
                detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise ExportError(f"onnxruntime's ORT converter failed on {filename}: {detail}")
            target = bundle_dir / ort_name(filename)
            converted[0].replace(target)
            written.append(target.name)
    check_ort_parity(bundle_dir)
    return written


def ort_name(onnx_filename: str) -> str:
    return Path(onnx_filename).with_suffix(fmt.ORT_SUFFIX).name


def check_ort_parity(bundle_dir: Path) -> dict[str, float]:
    """Max abs difference between each .ort file and its .onnx on the same random inputs."""
    rng = np.random.default_rng(1)
    errors = {}
    for filename, input_name in ONNX_FILES:
        onnx_session = ort.InferenceSession(str(bundle_dir / filename), providers=["CPUExecutionProvider"])
        ort_session = ort.InferenceSession(str(bundle_dir / ort_name(filename)), providers=["CPUExecutionProvider"])
        shape = [d if isinstance(d, int) else 3 for d in onnx_session.get_inputs()[0].shape]
        x = rng.random(shape, dtype=np.float32)
        want, got = onnx_session.run(None, {input_name: x}), ort_session.run(None, {input_name: x})
        errors[filename] = max(float(np.abs(a - b).max()) for a, b in zip(want, got))
        if not errors[filename] <= ORT_PARITY_TOLERANCE:
            raise ExportError(f"{ort_name(filename)} differs from {filename} by {errors[filename]:.3g}; the export was not written")
    return errors
