"""Writes one benchmark's results into its own section of docs/benchmarks.md.

Each script owns the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`, so scripts can be
re-run one at a time without clobbering each other's figures."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nFigures written by the scripts in `benchmarks/`; each section names its machine and date.\n"


def _cpuinfo() -> tuple[str, set[str]]:
    """The CPU's model name and feature flags from /proc/cpuinfo (the platform's name and no flags elsewhere)."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if flags and cpu:
                break
    except OSError:
        pass
    return cpu, flags


# What the CPU's matrix/vector units do in hardware, which sets a training step's peak: the same model
# name ("AMD EPYC") comes with and without AVX-512 and bf16 on these VMs. (flag, description, key)
VECTOR_UNITS = (("amx_bf16", "AMX, AVX512-BF16", "amx"), ("avx512_bf16", "AVX512-BF16", "bf16"),
                ("avx512f", "AVX-512, no bf16", "avx512"), ("avx2", "AVX2, no AVX-512, no bf16", "avx2"))


def vector_units(flags: set[str]) -> tuple[str, str]:
    """(description, key) of the best vector unit among the CPU's flags."""
    return next(((text, key) for flag, text, key in VECTOR_UNITS if flag in flags), ("no AVX2", "plain"))


def cpu_kind() -> str:
    """A short key for the kind of CPU ("xeon-amx", "epyc-avx2", ...): benchmarks whose figures the
    issue wants on every kind keep one docs section per kind."""
    cpu, flags = _cpuinfo()
    name = next((w for w in ("xeon", "epyc") if w in cpu.lower()), re.sub(r"\W+", "-", cpu.lower()).strip("-"))
    return f"{name}-{vector_units(flags)[1]}"


def machine() -> str:
    cpu, flags = _cpuinfo()
    units = f" ({vector_units(flags)[0]})" if flags else ""
    return (f"{cpu}{units}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def stamp() -> str:
    return f"_Machine: {machine()}. Date: {datetime.date.today().isoformat()}._"


def median(values) -> float:
    return statistics.median(values)


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def write_section(name: str, markdown: str, path: Path = BENCHMARKS_MD) -> None:
    """Replaces (or appends) the section `name` in docs/benchmarks.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def table(columns: list[str], rows: list[list], right_aligned_from: int | None = None) -> str:
    """A markdown table; columns from index `right_aligned_from` on are right-aligned (figures)."""
    align = ["---:" if right_aligned_from is not None and i >= right_aligned_from else "---" for i in range(len(columns))]
    lines = [columns, align, *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)


def section(title: str, *lines: str) -> str:
    """A section's markdown: its `## title`, the machine and date, then `lines` (blank-line separated
    blocks are passed as "" entries, as in a "\\n".join)."""
    return "\n".join([f"## {title}", "", stamp(), "", *lines])


def publish(name: str, markdown: str, write: bool = True) -> None:
    """Prints a section and, unless `write` is False, puts it into docs/benchmarks.md as `name`."""
    print(markdown)
    if write:
        write_section(name, markdown)
