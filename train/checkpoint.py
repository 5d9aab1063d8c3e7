"""Checkpoints that survive Ctrl-C, SIGKILL and untrusted sources.

A run directory holds:
    checkpoint.json                     config, progress, metrics, optimizer settings, RNG states
    checkpoints/last-E-B.safetensors    model and optimizer tensors after E epochs and B batches
    checkpoints/best-E.safetensors      model weights of the epoch with the lowest test -ELBO

Tensors are stored as safetensors and everything else as JSON, so loading never unpickles
anything. Each file is written to a temporary name and renamed into place, and checkpoint.json is
renamed last: a crash at any moment leaves the previous consistent checkpoint in charge.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from latent_atlas.runtime.bundle import read_json, sha256_file
from latent_atlas.runtime.files import atomic_write

from .options import Weights
from .run_state import RunState, WeightsFile

CHECKPOINT_JSON = "checkpoint.json"


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Tensors as a safetensors file, through Python's own file writes so that a full disk is an OSError
    naming `path` (safetensors' writer reports it as a SafetensorError without the path)."""
    data = save(tensors)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def encode_rng(state: torch.Tensor) -> str:
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def decode_rng(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def split_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state -> (tensors for safetensors, JSON-able rest)."""
    tensors, scalars = {}, {}
    for index, slots in state_dict["state"].items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, slots in meta["scalars"].items():
        state.setdefault(int(index), {}).update(slots)
    return {"state": state, "param_groups": meta["param_groups"]}


@dataclass
class Checkpoint:
    run_dir: Path
    state: RunState  # the parsed checkpoint.json

    @property
    def epoch(self) -> int:
        return self.state.epoch

    def tensors(self, which: Weights = "last") -> dict[str, torch.Tensor]:
        """Tensors of the `last` or `best` weights file, after checking its SHA-256."""
        entry = self.state.weights_file(which)
        path = self.run_dir / entry.file
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights file named by {CHECKPOINT_JSON} is missing")
        if sha256_file(path) != entry.sha256:
            raise ValueError(f"{path}: SHA-256 does not match {CHECKPOINT_JSON} (corrupt or modified checkpoint)")
        try:
            return load_file(path)
        except SafetensorError as exc:
            raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc

    def model_state(self, which: Weights = "last") -> dict[str, torch.Tensor]:
        return {k[len("model."):]: v for k, v in self.tensors(which).items() if k.startswith("model.")}

    def weights_path(self, which: Weights) -> Path:
        return self.run_dir / self.state.weights_file(which).file


def has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / CHECKPOINT_JSON).is_file()


def load_checkpoint(run_dir: str | Path) -> Checkpoint:
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_JSON
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no {CHECKPOINT_JSON}); train one with "
                                f"'latent-atlas train --out {run_dir}'")
    try:
        values = read_json(path)
    except ValueError as exc:
        raise ValueError(f"{path}: corrupt checkpoint metadata ({exc.__cause__ or exc})") from None
    return Checkpoint(run_dir, RunState.from_json(values, path))


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: RunState,
                    is_best: bool) -> RunState:
    """Writes the tensors, then checkpoint.json (which makes them current), then prunes stale files;
    returns the state written (with its `last`, `best` and optimizer entries)."""
    weights_dir = run_dir / "checkpoints"
    model_tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optim_tensors, optim_meta = split_optimizer_state(optimizer.state_dict())

    last = weights_dir / f"last-{state.epoch:04d}-{state.batches_done:05d}.safetensors"
    atomic_write_tensors(last, {**model_tensors, **optim_tensors})
    state = dataclasses.replace(state, optimizer=optim_meta,
                                last=WeightsFile(str(last.relative_to(run_dir)), sha256_file(last)))
    if is_best:
        best = weights_dir / f"best-{state.epoch:04d}.safetensors"
        atomic_write_tensors(best, model_tensors)
        state.best = WeightsFile(str(best.relative_to(run_dir)), sha256_file(best), epoch=state.epoch)
    atomic_write_text(run_dir / CHECKPOINT_JSON, json.dumps(state.to_json(), indent=1, sort_keys=True))

    keep = {state.last.file, state.best.file if state.best else None}
    for stale in weights_dir.glob("*.safetensors"):
        if str(stale.relative_to(run_dir)) not in keep:
            stale.unlink()
    return state
