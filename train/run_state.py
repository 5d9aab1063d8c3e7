"""The state of a training run, typed: what checkpoint.json holds, and the one place that says which
epoch a set of weights comes from.

checkpoint.json keeps the keys it always had (config, epoch, batches_done, early_stopping, commands,
torch_version, metrics, stopped, rng, optimizer, last, best, format, version; a fine-tune adds
initialized_from), so runs written before this type existed resume and export unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .config import TrainConfig
from .options import Weights

FORMAT = "latent-atlas-checkpoint"
FORMAT_VERSION = 1


@dataclass
class WeightsFile:
    """One safetensors file of the run, with its SHA-256 (checked before loading)."""

    file: str  # relative to the run directory
    sha256: str
    epoch: int | None = None  # the epoch whose weights these are (recorded for `best`)

    def to_json(self) -> dict:
        out = {"file": self.file, "sha256": self.sha256}
        return out if self.epoch is None else {**out, "epoch": self.epoch}


# A split's prefix on its figures in metrics.jsonl ("val_neg_elbo", "test_neg_elbo").
SPLIT_PREFIX = {"validation": "val", "test": "test"}


@dataclass
class EarlyStopping:
    best: float | None = None  # the lowest value of `metric` on the selection split (RunState.selected_on) so far
    bad_epochs: int = 0  # epochs since it last improved
    # The metrics.jsonl figure that is watched, after the split's prefix: "neg_elbo", or "neg_iwae" (the
    # K-sample bound an IWAE run trains). Runs saved before it was recorded watched -ELBO.
    metric: str = "neg_elbo"


@dataclass
class RunState:
    config: TrainConfig
    epoch: int = 0  # epochs completed
    batches_done: int = 0  # batches of the next epoch already done (a mid-epoch checkpoint after Ctrl-C)
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    commands: list[str] = field(default_factory=list)  # the command lines of every session, for provenance
    torch_version: str = ""
    metrics: dict | None = None  # the last completed epoch's metrics.jsonl record
    stopped: str | None = None  # "completed", "early-stopped", "interrupted" or None (still going)
    last: WeightsFile | None = None  # model + optimizer after `epoch` epochs and `batches_done` batches
    best: WeightsFile | None = None  # model weights of the epoch with the lowest early_stopping.metric on `selected_on`
    optimizer: dict | None = None  # the optimizer's JSON-able state (its tensors are in `last`)
    rng: dict | None = None  # generator states, base64
    world_size: int = 1  # data-parallel processes (train/distributed.py); a resume must use as many
    # The split that picks `best` and stops early: "validation", or "test" for runs with --val-size 0
    # and runs saved before the validation split existed.
    selected_on: str = "test"
    dataset: dict | None = None  # what the run trains on: own_data.PreparedData.record() (source, checksum, split)
    # A fine-tune (config.init_from): the weights it started from, {"run", "file", "sha256", "epoch"}.
    initialized_from: dict | None = None

    @property
    def selected_by(self) -> str:
        """The metrics.jsonl key that picks `best` and stops early, e.g. "val_neg_elbo" or "val_neg_iwae"."""
        return f"{SPLIT_PREFIX[self.selected_on]}_{self.early_stopping.metric}"

    def resolve_weights(self, which: Weights) -> Weights:
        """`best` falls back to `last` for a run interrupted during its first epoch (nothing evaluated yet)."""
        return "last" if which == "best" and self.best is None else which

    def weights_file(self, which: Weights) -> WeightsFile:
        return self.best if self.resolve_weights(which) == "best" else self.last

    def weights_epoch(self, which: Weights) -> int:
        """The epoch the `best` or `last` weights come from."""
        return self.best.epoch if self.resolve_weights(which) == "best" else self.epoch

    def to_json(self) -> dict:
        out = {"format": FORMAT, "version": FORMAT_VERSION, "config": self.config.to_dict(), "epoch": self.epoch,
               "batches_done": self.batches_done, "early_stopping": dataclasses.asdict(self.early_stopping),
               "commands": list(self.commands), "torch_version": self.torch_version,
               "world_size": self.world_size, "selected_on": self.selected_on}
        if self.dataset is not None:
            out["dataset"] = self.dataset
        optional = {"metrics": self.metrics, "stopped": self.stopped, "optimizer": self.optimizer, "rng": self.rng,
                    "initialized_from": self.initialized_from,
                    "last": self.last.to_json() if self.last else None,
                    "best": self.best.to_json() if self.best else None}
        return {**out, **{k: v for k, v in optional.items() if v is not None}}

    @classmethod
    def from_json(cls, values: dict, source) -> "RunState":
        """Raises ValueError naming `source` for a file that is not a checkpoint of this format."""
        if not isinstance(values, dict) or values.get("format") != FORMAT:
            raise ValueError(f"{source}: not a Latent Atlas checkpoint (expected \"format\": \"{FORMAT}\")")
        if values.get("version") != FORMAT_VERSION:
            raise ValueError(f"{source}: checkpoint format version {values.get('version')} is not supported "
                             f"(this version reads {FORMAT_VERSION})")
        try:
            return cls(config=TrainConfig.from_dict(values["config"]), epoch=values["epoch"],
                       batches_done=values.get("batches_done", 0),
                       early_stopping=EarlyStopping(**values.get("early_stopping", {})),
                       commands=list(values.get("commands", [])), torch_version=values.get("torch_version", ""),
                       metrics=values.get("metrics"), stopped=values.get("stopped"),
                       last=WeightsFile(**values["last"]) if values.get("last") else None,
                       best=WeightsFile(**values["best"]) if values.get("best") else None,
                       optimizer=values.get("optimizer"), rng=values.get("rng"),
                       world_size=values.get("world_size", 1), selected_on=values.get("selected_on", "test"),
                       dataset=values.get("dataset"), initialized_from=values.get("initialized_from"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source}: corrupt checkpoint metadata (missing or malformed {exc})") from None
