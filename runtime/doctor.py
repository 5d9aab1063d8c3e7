"""`latent-atlas doctor`: what onnxruntime is installed, which providers it offers and runs, which
models are bundled. The usual GPU problem it catches: onnxruntime and onnxruntime-gpu installed
side by side. Both ship the same `onnxruntime` module, so whichever was installed last wins, and the
CPU-only one hides the CUDA provider."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import metadata

# The pip distributions that provide the `onnxruntime` module.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-silicon",
                     "onnxruntime-openvino", "onnxruntime-qnn", "onnxruntime-rocm", "ort-nightly",
                     "ort-nightly-gpu")
GPU_FIX = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"


@dataclass
class Report:
    packages: dict[str, str]  # distribution -> version, for the onnxruntime family found
    module: str  # onnxruntime.__version__ and where it was imported from
    available: list[str]
    auto_provider: str  # the provider providers="auto" ends up running
    models: list[dict] = field(default_factory=list)  # name, latent_dim, variant, provider or error
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def installed(names=ORT_DISTRIBUTIONS) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def diagnose() -> Report:
    import onnxruntime as ort

    from . import bundle as bundle_format
    from .model import load
    from .session import AUTO_ORDER, CPU, available_providers

    packages = installed()
    available = available_providers()
    report = Report(packages, f"onnxruntime {ort.__version__} from {ort.__file__.rsplit('/', 2)[0]}", available,
                    "unknown (no bundled model loaded)")
    if "onnxruntime" in packages and len(packages) > 1:
        others = ", ".join(p for p in packages if p != "onnxruntime")
        report.warnings.append(f"both onnxruntime and {others} are installed: they share one module, so the "
                               f"CPU-only package can hide the GPU providers; fix: {GPU_FIX}")
    if not packages:
        report.warnings.append("no onnxruntime distribution found by importlib.metadata (a source build?)")
    names = bundle_format.bundled_names()
    if not names:
        report.errors.append(f"no bundled models in {bundle_format.BUNDLED_MODELS_DIR}")
    for name in names:
        try:
            model = load(name, verify=True)
        except (ValueError, OSError) as exc:
            report.models.append({"name": name, "error": str(exc)})
            report.errors.append(f"bundled model {name!r} does not load: {exc}")
            continue
        report.models.append({"name": name, "latent_dim": model.latent_dim, "variant": model.bundle.variant,
                              "provider": model.provider, "checksums": "ok"})
        report.auto_provider = model.provider
    gpu = [p for p in AUTO_ORDER if p in available]
    if gpu and report.auto_provider == CPU:
        report.warnings.append(f"{gpu[0]} is available but the models run on the CPU: its libraries (e.g. CUDA "
                               f"and cuDNN for onnxruntime-gpu) or the device are missing")
    return report


def format_report(report: Report) -> str:
    lines = [f"python        {sys.version.split()[0]} ({sys.executable})",
             "packages      " + (", ".join(f"{k} {v}" for k, v in report.packages.items()) or "none found"),
             f"module        {report.module}",
             f"available     {', '.join(report.available)}",
             f"auto runs on  {report.auto_provider}"]
    for model in report.models:
        if "error" in model:
            lines.append(f"model         {model['name']}: ERROR {model['error']}")
        else:
            lines.append(f"model         {model['name']}: {model['latent_dim']}-D latent, {model['variant']}, "
                         f"checksums {model['checksums']}, runs on {model['provider']}")
    lines += [f"warning: {w}" for w in report.warnings]
    lines += [f"error: {e}" for e in report.errors]
    if not report.warnings and not report.errors:
        lines.append("all good")
    return "\n".join(lines)
