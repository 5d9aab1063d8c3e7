"""How long a default `latent-atlas export` takes, end to end, and where the time goes.

    python benchmarks/export_time.py RUN_DIR [--repeats 3] [--baseline-src DIR]

Each repeat runs `latent-atlas export RUN_DIR --out TMP` in a fresh process (interpreter start, torch
import, ONNX export, parity, the -ELBO and the K=100 importance-weighted bound). --baseline-src names
an unpacked older commit of this repository (`git archive COMMIT | tar -x -C DIR`); its export runs
in the same way, alternating with this one, for a before/after comparison on the same machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import median, stamp, write_section  # noqa: E402

PACKAGES = ("cli", "train", "export", "runtime", "desktop_app")


def baseline_path(src: Path, into: Path) -> str:
    """A PYTHONPATH under which `latent_atlas.*` imports from the unpacked older commit `src`."""
    namespace = into / "latent_atlas"
    namespace.mkdir(parents=True)
    for name in PACKAGES:
        (namespace / name).symlink_to(src.resolve() / name)
    return str(into)


def time_export(run_dir: str, python_path: str | None, data_dir: str | None) -> float:
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "latent_atlas.cli.main", "export", run_dir, "--out", str(Path(tmp) / "b")]
        if data_dir:
            command += ["--data-dir", data_dir]
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env, cwd=tmp, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-src", default=None, help="an unpacked older commit to compare with")
    parser.add_argument("--baseline-name", default="before", help="how the table names the baseline")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        variants = {"this version": None}
        if args.baseline_src:
            variants = {args.baseline_name: baseline_path(Path(args.baseline_src), Path(tmp)), **variants}
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(args.repeats):
            for name, python_path in variants.items():  # alternating, so load on the machine hits both alike
                seconds[name].append(time_export(args.run_dir, python_path, args.data_dir))
            print(f"repeat {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f} s" for n, v in seconds.items()), file=sys.stderr)

    rows = [f"| {name} | {median(v):.1f} | {min(v):.1f}–{max(v):.1f} |" for name, v in seconds.items()]
    lines = ["## Export time (`benchmarks/export_time.py`)", "", stamp(), "",
             f"`latent-atlas export RUN --out DIR` with the defaults (fp32, parity check, K = 100 importance-weighted "
             f"bound over the 10,000 test images), a fresh process each time, median of {args.repeats} alternating "
             f"repeats, {os.cpu_count()} logical CPUs.", "",
             "| version | seconds (median) | range |", "|---|---:|---:|", *rows]
    if args.baseline_src:
        before, after = (median(v) for v in seconds.values())
        lines += ["", f"This version takes {after / before:.2f}× the time of {args.baseline_name} "
                      f"({before / after:.1f}× faster)."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("export_time", markdown)


if __name__ == "__main__":
    main()
