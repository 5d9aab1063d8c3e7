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


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


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
