"""The seed's Keras VAE (`../shared/peers/keras_seed_vae.py`), run side by side with ours.

The peer runs in a virtual environment of its own (TensorFlow and the project's torch do not share
one), which this module creates on first use with the versions the peer's README pins. Its training
throughput is the difference of two runs of different sizes, so TensorFlow's start-up, graph
tracing and the validation pass cancel out: (big - small) images / (train_s(big) - train_s(small)).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_SCRIPT = ROOT.parent / "shared" / "peers" / "keras_seed_vae.py"
PEER_VENV = Path(os.environ.get("LATENT_ATLAS_PEER_VENV", ROOT / ".venv-keras"))
# As the peer's README pins them.
PEER_PACKAGES = ("tensorflow-cpu==2.21.0", "tf-keras==2.21.0", "scipy")


def peer_python() -> Path:
    """The peer venv's interpreter, creating the venv and installing the pinned packages if needed."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".installed"
    if stamp.is_file() and stamp.read_text() == "\n".join(PEER_PACKAGES):
        return python
    if not PEER_SCRIPT.is_file():
        raise FileNotFoundError(f"{PEER_SCRIPT}: the Keras peer is missing (expected ../shared/peers beside the repo)")
    print(f"creating the Keras peer's environment in {PEER_VENV} ({', '.join(PEER_PACKAGES)})", file=sys.stderr)
    venv.create(PEER_VENV, with_pip=True, clear=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    stamp.write_text("\n".join(PEER_PACKAGES))
    return python


def run_peer(mnist_dir: Path, limit: int, epochs: int = 1) -> dict:
    """One run of the peer on the first `limit` training images; its JSON result line."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([str(peer_python()), str(PEER_SCRIPT), str(mnist_dir), "--epochs", str(epochs),
                           "--limit", str(limit)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the Keras peer failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peer_images_per_second(mnist_dir: Path, small: int = 2000, big: int = 14000) -> tuple[float, dict]:
    """Training images/s free of start-up and validation, and the big run's full result."""
    low, high = run_peer(mnist_dir, small), run_peer(mnist_dir, big)
    return (big - small) / (high["train_s"] - low["train_s"]), high
