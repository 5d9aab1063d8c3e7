"""ONNX Runtime sessions: which execution provider runs a model, and how a session is tuned.

`providers` names what the caller wants; `make_session` turns it into the list ONNX Runtime tries in
order, creates the session, and reports the provider that actually runs it. ONNX Runtime falls back
silently (CUDA libraries missing -> CPU), so the active provider is read back from the session, and
`strict=True` turns a fallback into an error.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import onnxruntime as ort

from .doctor import GPU_FIX

CPU = "CPUExecutionProvider"

# Short names accepted for `providers=`; full ONNX Runtime names are accepted too.
ALIASES = {
    "cpu": CPU,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}

# What "auto" tries, best first. CUDA comes before TensorRT on purpose: TensorRT builds an engine
# for each new input shape (seconds to minutes), which an interactive app feels on every batch size;
# and onnxruntime-gpu lists TensorRT as available even when the TensorRT libraries are absent.
AUTO_ORDER = ("CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider",
              "CoreMLExecutionProvider", "TensorrtExecutionProvider")

ProviderSpec = Union[str, Sequence[str]]


class ProviderError(ValueError):
    """The asked execution provider is unknown, unavailable, or (with strict=True) not the one running."""


def available_providers() -> list[str]:
    """Execution providers the installed onnxruntime package was built with, in its priority order."""
    return list(ort.get_available_providers())


def provider_name(name: str) -> str:
    """'cuda' -> 'CUDAExecutionProvider'; full names pass through. Raises ProviderError for unknown names."""
    if name.lower() in ALIASES:
        return ALIASES[name.lower()]
    if name in ort.get_all_providers():
        return name
    known = ", ".join(["auto", *ALIASES])
    raise ProviderError(f"unknown execution provider {name!r}; expected one of: {known} (or a full ONNX Runtime name)")


def requested_providers(providers: ProviderSpec = "auto") -> list[str]:
    """The provider list to hand to ONNX Runtime for `providers`, always ending with the CPU provider.

    "auto" -> the first available GPU provider (see AUTO_ORDER), then CPU. A name or a list of names
    -> those that are available, then CPU; an asked-for provider that this onnxruntime build lacks is
    dropped with a warning (make_session's strict mode turns that into an error)."""
    available = available_providers()
    if isinstance(providers, str) and providers.lower() == "auto":
        chosen = [p for p in AUTO_ORDER if p in available][:1]
    else:
        names = [providers] if isinstance(providers, str) else list(providers)
        if not names or not all(isinstance(n, str) for n in names):
            raise ProviderError(f"providers must be 'auto', a provider name or a list of names, got {providers!r}")
        wanted = [provider_name(n) for n in names]
        missing = [p for p in wanted if p not in available]
        if missing:
            warnings.warn(f"{', '.join(missing)} not available in this onnxruntime build "
                          f"(available: {', '.join(available)}); {_gpu_hint(missing)}", RuntimeWarning, stacklevel=3)
        chosen = [p for p in wanted if p in available]
    return list(dict.fromkeys([*chosen, CPU]))


def _gpu_hint(missing: Sequence[str]) -> str:
    if "CUDAExecutionProvider" in missing or "TensorrtExecutionProvider" in missing:
        return (f"for CUDA install onnxruntime-gpu in place of onnxruntime ({GPU_FIX}); "
                "run 'latent-atlas doctor' to check")
    return "run 'latent-atlas doctor' to see what is installed"


def cpu_count() -> int:
    return os.cpu_count() or 1


def session_options(threads: int = 1) -> ort.SessionOptions:
    """Options for small models called interactively on a small CPU."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: provider fallbacks are reported through `provider`
    return options


@dataclass(frozen=True)
class Session:
    """An ONNX Runtime session and the provider actually running it."""

    inference: ort.InferenceSession
    provider: str  # the active execution provider, e.g. "CPUExecutionProvider"


def make_session(path: str | Path, providers: ProviderSpec = "auto", strict: bool = False,
                 threads: int = 1) -> Session:
    """Creates an InferenceSession for the ONNX file at `path` with `threads` intra-op CPU threads.

    strict=True raises ProviderError unless the first provider asked for (the GPU one for "auto"
    when a GPU provider is available, else CPU) is the one that runs the model."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    if strict and not (isinstance(providers, str) and providers.lower() == "auto"):
        _require_available(providers)
    requested = requested_providers(providers)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    try:
        inference = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                         providers=requested)
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable or invalid graphs
        raise ValueError(f"{path}: not a loadable ONNX model ({type(exc).__name__}: {_first_line(exc)})") from exc
    active = inference.get_providers()[0]
    if strict and active != requested[0]:
        raise ProviderError(f"{path.name}: asked for {requested[0]} but ONNX Runtime runs it on {active} "
                            f"(its libraries or device are missing); run 'latent-atlas doctor'")
    return Session(inference, active)


def _require_available(providers: ProviderSpec) -> None:
    names = [providers] if isinstance(providers, str) else list(providers)
    available = available_providers()
    missing = [provider_name(n) for n in names if provider_name(n) not in available]
    if missing:
        raise ProviderError(f"asked for {', '.join(missing)} with strict=True, but this onnxruntime build only has "
                            f"{', '.join(available)}; {_gpu_hint(missing)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"
