"""Smaller variants of an exported fp32 pair, for the edge: int8 (CPU) and fp16 (GPU providers).

int8 is *static* QDQ quantization calibrated on training data. Dynamic quantization would turn the
convolutions into ConvInteger nodes, which ONNX Runtime's CPU provider cannot run. The first and
last layers of each network stay in float: they are a tiny share of the bytes, and quantizing the
latent heads or the output logits costs most of the accuracy.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx

from latent_atlas.runtime import bundle as fmt


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol: get_next() -> feed dict, None when done."""

    def __init__(self, input_name: str, data: np.ndarray, batch_size: int = 64):
        self._batches = iter([{input_name: data[i:i + batch_size]} for i in range(0, len(data), batch_size)])

    def get_next(self):
        return next(self._batches, None)


def _float_nodes(proto: onnx.ModelProto, role: str) -> list[str]:
    """Nodes kept in float: the encoder's latent heads; the decoder's output conv and every node after it,
    the likelihood's mean (a sigmoid for the Bernoulli, a few elementwise ops for the continuous Bernoulli)."""
    graph = proto.graph
    outputs = {o.name for o in graph.output}
    if role == "encoder":
        return [n.name for n in graph.node if set(n.output) & outputs]
    last_conv = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")][-1]
    after, kept = set(last_conv.output), [last_conv.name]
    for node in graph.node:  # in topological order, as ONNX requires
        if set(node.input) & after:
            after.update(node.output)
            kept.append(node.name)
    return kept


@contextmanager
def _root_logger_level(level: int):
    root = logging.getLogger()
    previous = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(previous)


def quantize_int8(fp32_dir: Path, out_dir: Path, calibration_images: np.ndarray, calibration_latents: np.ndarray) -> None:
    """Writes int8 QDQ encoder.onnx and decoder.onnx into out_dir (which may equal fp32_dir)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    jobs = [(fmt.ENCODER, "encoder", fmt.ENCODER_INPUT, calibration_images),
            (fmt.DECODER, "decoder", fmt.DECODER_INPUT, calibration_latents)]
    for filename, role, input_name, data in jobs:
        source, target = fp32_dir / filename, out_dir / filename
        tmp = target.with_suffix(".quant.onnx")
        # quantize_static warns on the root logger that a pre-processing pass may help; on this small
        # graph (already shape-inferred and optimised by the exporter) it changes nothing.
        with _root_logger_level(logging.ERROR):
            quantize_static(str(source), str(tmp), _Calibration(input_name, data.astype(np.float32)),
                            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                            nodes_to_exclude=_float_nodes(onnx.load(source), role))
        tmp.replace(target)


def convert_fp16(fp32_dir: Path, out_dir: Path) -> None:
    """Weights and arithmetic in float16, inputs and outputs still float32 (so callers need no change)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    for filename in (fmt.ENCODER, fmt.DECODER):
        proto = convert_float_to_float16(onnx.load(fp32_dir / filename), keep_io_types=True)
        _sort_topologically(proto.graph)
        (out_dir / filename).write_bytes(proto.SerializeToString(deterministic=True))


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """The fp16 converter appends its input Casts after the nodes that read them; ONNX requires
    producers first (the full checker rejects the graph otherwise). A stable Kahn's sort fixes that."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("graph has a cycle or an input nothing produces: " + ", ".join(n.name for n in pending))
        for node in ready:
            available.update(node.output)
        ordered += ready
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
