"""Hostile input: how long each hostile bundle takes to be refused and how much memory that takes, and the
site server under stalled and normal clients.

Each hostile case is built in a scratch folder and refused in a fresh Python process (its own peak RSS,
ru_maxrss, and the RSS it had just before the refusal, after the imports); the issue's target is each
refused within 1 s and 200 MB. The server serves a folder with the MNIST bundle in it on 127.0.0.1:
`--stalled` connections send half a request line and then nothing, while `--clients` threads each fetch
the bundle's files `--requests` times; the same clients alone give the baseline.

    python benchmarks/untrusted_input.py [--stalled 200] [--clients 50] [--requests 20] [--no-write]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import median, percentile, publish, section, table  # noqa: E402

from latent_atlas.runtime import bundle as fmt  # noqa: E402
from latent_atlas.runtime.limits import SERVER_IDLE_TIMEOUT_S  # noqa: E402

# What the child process does: read the bundle as the runtime does (manifest, then the atlas), timed.
REFUSE = """
import json, resource, sys, time
from latent_atlas.runtime import bundle as fmt
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
before = rss_mb()
start = time.perf_counter()
try:
    fmt.read(sys.argv[1], verify=True).read_atlas()
    outcome = "accepted"
except fmt.BundleError as exc:
    outcome = str(exc).replace(sys.argv[1], "BUNDLE")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"outcome": outcome, "seconds": seconds, "rss_before_mb": before, "peak_mb": peak}))
"""


def manifest_of(bundle: Path) -> dict:
    return json.loads((bundle / fmt.MANIFEST).read_text())


def set_manifest(bundle: Path, values: dict) -> None:
    values["files"].update(fmt.file_entries(bundle, [f for f in values["files"] if (bundle / f).is_file()]))
    (bundle / fmt.MANIFEST).write_text(json.dumps(values))


def header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def zip_of(bundle: Path, members: dict[str, tuple[bytes, int]]) -> None:
    """atlas.npz of members {name: (header, zero bytes after it)}, deflated as written; manifest resealed."""
    with zipfile.ZipFile(bundle / fmt.ATLAS, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, (head, zeros) in members.items():
            with archive.open(name, "w", force_zip64=True) as member:
                member.write(head)
                block = bytes(1 << 24)
                while zeros:
                    zeros -= member.write(block[: min(zeros, len(block))])
    set_manifest(bundle, manifest_of(bundle))


def hostile_cases(root: Path) -> dict[str, Path]:
    """name -> a hostile copy of the MNIST bundle."""
    cases = {}

    def copy(name: str) -> Path:
        cases[name] = root / name.replace(" ", "-").replace(",", "")
        shutil.copytree(fmt.BUNDLED_MODELS_DIR / "mnist", cases[name])
        return cases[name]

    (root / "secret.txt").write_text("private")
    bundle = copy("files entry ../secret.txt")
    values = manifest_of(bundle)
    values["files"]["../secret.txt"] = {"sha256": "0" * 64, "bytes": 7}
    (bundle / fmt.MANIFEST).write_text(json.dumps(values))
    bundle = copy("bundle.json of 200 MB")
    with open(bundle / fmt.MANIFEST, "r+b") as f:
        f.truncate(200 << 20)
    copy("bundle.json nested 100,000 deep")
    (cases["bundle.json nested 100,000 deep"] / fmt.MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    bundle = copy("NaN in bundle.json")
    (bundle / fmt.MANIFEST).write_text(json.dumps(manifest_of(bundle)).replace('"p01": [', '"p01": [NaN, ', 1))
    bundle = copy("an integer of 5,000 digits")
    (bundle / fmt.MANIFEST).write_text(json.dumps(manifest_of(bundle)).replace('"latent_dim": 2', '"latent_dim": ' + "9" * 5000))
    rows = (9 << 29) // 8  # float32 [rows, 2]: 4.5 GiB of zeros, a few MB deflated
    zip_of(copy("atlas of 4.5 GiB zeros (zip bomb)"), {"z_mean.npy": (header((rows, 2)), rows * 8),
                                                       "labels.npy": (header((rows,), "|u1"), rows)})
    zip_of(copy("an .npy header claiming 4 TB"), {"z_mean.npy": (header((1 << 39, 2)), 64),
                                                  "labels.npy": (header((1 << 39,), "|u1"), 64)})
    zip_of(copy("labels and means of different lengths"), {"z_mean.npy": (header((10_000, 2)), 80_000),
                                                           "labels.npy": (header((9_999,), "|u1"), 9_999)})
    bundle = copy("a pickled object array")
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(bundle / fmt.ATLAS, "w") as archive:
        archive.writestr("z_mean.npy", pickled.getvalue())
        archive.writestr("labels.npy", header((1,), "|u1") + b"\0")
    set_manifest(bundle, manifest_of(bundle))
    copy("the bundled MNIST model (accepted)")
    return cases


def measure_hostile(cases: dict[str, Path]) -> list[list]:
    rows = []
    for name, bundle in cases.items():
        result = json.loads(subprocess.run([sys.executable, "-c", REFUSE, str(bundle)], capture_output=True, text=True,
                                           check=True).stdout)
        print(f"{name}: {result}", file=sys.stderr)
        outcome = result["outcome"] if len(result["outcome"]) <= 110 else result["outcome"][:107] + "..."
        rows.append([name, outcome, f"{result['seconds'] * 1000:.1f}", f"{result['peak_mb']:.0f}",
                     f"{result['peak_mb'] - result['rss_before_mb']:.0f}"])
    return rows


# --- the server ------------------------------------------------------------------------------------

def clients(url: str, count: int, requests: int, paths: list[str]) -> tuple[list[float], int]:
    """(latency of every request in seconds, failures) of `count` threads fetching `paths` in turn."""
    latencies, failures, lock = [], [0], threading.Lock()

    def client():
        for i in range(requests):
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(url + paths[i % len(paths)], timeout=30) as response:
                    response.read()
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
            except OSError:
                with lock:
                    failures[0] += 1

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures[0]


def measure_server(stalled: int, count: int, requests: int) -> tuple[list[list], str]:
    from latent_atlas.web.serve import serve_in_thread

    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch) / "site"
        shutil.copytree(fmt.BUNDLED_MODELS_DIR / "mnist", site / "models" / "mnist")
        (site / "index.html").write_text("<p>site</p>")
        server, url = serve_in_thread(site)
        paths = ["index.html", "models/mnist/bundle.json", "models/mnist/atlas.npz", "models/mnist/decoder.onnx"]
        try:
            rows = []
            base, base_failures = clients(url, count, requests, paths)
            rows.append([f"{count} clients alone", len(base), base_failures, *latency_columns(base)])
            sockets = []
            for _ in range(stalled):
                connection = socket.create_connection(server.server_address[:2], timeout=SERVER_IDLE_TIMEOUT_S * 3)
                connection.sendall(b"GET /index.html HT")  # and then nothing
                sockets.append(connection)
            started = time.monotonic()
            loaded, loaded_failures = clients(url, count, requests, paths)
            rows.append([f"{count} clients + {stalled} stalled", len(loaded), loaded_failures, *latency_columns(loaded)])
            dropped = 0
            for connection in sockets:  # each is closed by the server once idle for the timeout
                try:
                    dropped += connection.recv(1) == b""
                except OSError:
                    pass
                connection.close()
            note = (f"The {stalled} stalled connections: {dropped} closed by the server, all within "
                    f"{time.monotonic() - started:.1f} s of the clients' start (idle timeout {SERVER_IDLE_TIMEOUT_S:g} s).")
        finally:
            server.shutdown()
            server.server_close()
    return rows, note


def latency_columns(latencies: list[float]) -> list[str]:
    ms = [t * 1000 for t in latencies] or [float("nan")]
    return [f"{median(ms):.1f}", f"{percentile(ms, 95):.1f}", f"{max(ms):.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stalled", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        hostile = measure_hostile(hostile_cases(Path(scratch)))
    server_rows, note = measure_server(args.stalled, args.clients, args.requests)
    markdown = section(
        "Hostile input: refusal time and memory, the site server under stalled clients",
        "Each hostile copy of the MNIST bundle read as `runtime.load` reads it (bundle.json, checksums, then "
        "the atlas) in a fresh process; peak is the process's ru_maxrss, increase is that minus its RSS just "
        "before the read (after the imports). Target: each refused within 1 s and 200 MB.", "",
        table(["case", "outcome", "time (ms)", "peak RSS (MB)", "increase (MB)"], hostile, right_aligned_from=2), "",
        f"`latent-atlas web --serve`'s server on 127.0.0.1: {args.clients} client threads each fetch the bundle's "
        f"files (index.html, bundle.json, atlas.npz, decoder.onnx) {args.requests} times, alone and beside "
        f"{args.stalled} connections that sent half a request line and then nothing.", "",
        table(["load", "requests", "failed", "median (ms)", "p95 (ms)", "max (ms)"], server_rows, right_aligned_from=1),
        "", note, "", f"Load average before the run: {load:.1f} (other jobs shared the machine).",
        "", "`python benchmarks/untrusted_input.py`")
    publish("untrusted-input", markdown, write=not args.no_write)


if __name__ == "__main__":
    main()
