"""The training loop: `train(config, run_dir)`.

Every epoch: train, evaluate the validation and test -ELBO in nats (the best epoch and early stopping
follow the validation split; the test set only reports), write metrics.jsonl and plots, checkpoint.
Under torchrun every rank runs this loop on its slice of each batch (train/distributed.py).
Resuming restores weights, optimizer and every RNG, so on a CPU "2 epochs" and "1 epoch, resume,
1 more" give bit-identical weights. Ctrl-C (or SIGTERM) finishes the current batch, checkpoints
mid-epoch and returns; a second Ctrl-C aborts at once. SIGKILL loses at most the current epoch.
A checkpoint is never written with a non-finite loss or weights: the last good one stays.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from latent_atlas.runtime.bundle import bundled_names
from latent_atlas.runtime.image_shape import shape_text
from latent_atlas.runtime.files import append_text, check_output_dir, directory_lock

from . import bundle_weights, distributed, own_data
from .checkpoint import decode_rng, encode_rng, has_checkpoint, join_optimizer_state, load_checkpoint, save_checkpoint
from .config import TrainConfig, resolve_config
from .device import bf16_supported, pick_device  # noqa: F401  (pick_device: part of this module's API)
from .evaluate import BINARIZATION_SEED, binarized, evaluate_elbo, images_to_tensor, iw_log_likelihood
from .model import VAE, LossTerms, StepNoise, elbo_loss, iwae_loss, keras_seed_loss, load_weights
from .plots import save_epoch_plots
from .run_state import SPLIT_PREFIX, EarlyStopping, RunState

METRICS_FILE = "metrics.jsonl"
# The finite-loss check is a device sync, so within an epoch it runs every this many batches; the
# epoch's summed loss and the weights are checked again before every checkpoint.
FINITE_CHECK_EVERY = 20


def make_optimizer(config: TrainConfig, model: VAE) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        # Decoupled weight decay on the encoder only (zero by default, where AdamW is exactly Adam).
        groups = [{"params": list(model.encoder.parameters()), "weight_decay": config.encoder_weight_decay},
                  {"params": list(model.decoder.parameters()), "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=config.lr)
    # Keras' RMSprop defaults: rho=0.9 (PyTorch calls it alpha), epsilon=1e-7.
    return torch.optim.RMSprop(model.parameters(), lr=config.lr, alpha=0.9, eps=1e-7)


def objective_for(config: TrainConfig):
    """(model, x, beta, noise) -> LossTerms for the configured objective."""
    if config.objective == "keras-seed":
        return lambda model, x, beta, noise: keras_seed_loss(model, x, noise)
    if config.objective == "iwae":  # beta does not apply: the bound is the objective
        return lambda model, x, beta, noise: iwae_loss(model, x, noise, config.encoder_noise, config.iwae_gradient)
    return lambda model, x, beta, noise: elbo_loss(model, x, noise, beta, config.encoder_noise)


class _Loss(nn.Module):
    """The model and its objective as one module, so that DistributedDataParallel sees the whole loss
    in its forward (it synchronises the gradients of what forward touched)."""

    def __init__(self, model: VAE, objective):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, x: torch.Tensor, beta: float, noise: StepNoise, loss_scale: float) -> tuple:
        terms = self.objective(self.model, noise.binarized(x), beta, noise)
        return terms.loss * loss_scale, terms


def autocast_for(config: TrainConfig, device: torch.device):
    """A context-manager factory: bf16 autocast where it pays off, else a no-op."""
    if config.bf16 and bf16_supported(device):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext


@dataclass
class TrainingStep:
    """A model, its optimizer and one optimizer step, built from a config by `build_training_step`:
    the trainer, the tests and the benchmarks all train through this one object."""

    config: TrainConfig
    device: torch.device
    model: VAE
    optimizer: torch.optim.Optimizer
    loss: nn.Module  # _Loss, wrapped in DistributedDataParallel when several processes train
    autocast: object
    memory_format: torch.memory_format

    def batch(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """uint8 images (grey [N, H, W], colour [N, H, W, 3]) on the device, indexed and scaled per batch:
        4x less memory than floats."""
        x = images_to_tensor(images[indices.to(self.device)], self.device)
        return x.contiguous(memory_format=self.memory_format)

    def noise(self, generator: torch.Generator, global_size: int, part: slice = slice(None)) -> StepNoise:
        """The step's noise for this rank's part of the batch, drawn for the whole global batch so that
        every rank slices the same numbers a single process would draw."""
        config = self.config
        return StepNoise.draw(generator, global_size, config.latent_dim, config.encoder_noise > 0, self.device,
                              samples=config.importance_samples if config.objective == "iwae" else 1,
                              binarize=config.binarize == "dynamic", image_shape=config.image_shape)[part]

    def __call__(self, x: torch.Tensor, beta: float, lr: float, noise: StepNoise, loss_scale: float = 1.0) -> LossTerms:
        """One optimizer step on batch x; the loss runs under autocast, the update in float32.
        `loss_scale` weights this rank's share of a global batch (distributed.Distributed.shard)."""
        with self.autocast():
            scaled_loss, terms = self.loss(x, beta, noise, loss_scale)
        self.optimizer.zero_grad(set_to_none=True)
        scaled_loss.backward()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        return terms


def build_training_step(config: TrainConfig, device: torch.device | None = None,
                        job: distributed.Distributed = distributed.Distributed()) -> TrainingStep:
    """The model (initialised from config.seed), optimizer, objective and autocast of a config; under
    several processes (an initialised process group) the loss runs through DistributedDataParallel."""
    device = device or pick_device(config.device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    torch.manual_seed(config.seed)  # weight init only; training randomness has its own generators
    model = VAE.for_config(config).to(device=device, memory_format=memory_format)
    loss: nn.Module = _Loss(model, objective_for(config))
    if job.enabled:
        loss = DistributedDataParallel(loss, device_ids=[device.index] if device.type == "cuda" else None)
    return TrainingStep(config, device, model, make_optimizer(config, model), loss, autocast_for(config, device),
                        memory_format)


# Under torchrun a Ctrl-C reaches a worker twice, from the terminal and forwarded by torchrun: a
# second signal this soon after the first is the same interrupt, not a request to abort.
SAME_INTERRUPT_S = 2.0


@contextmanager
def _graceful_interrupts(distributed_job: bool = False):
    """Turns the first SIGINT/SIGTERM into a flag checked between batches, so a checkpoint is never
    taken halfway through an optimizer step; a second signal raises KeyboardInterrupt at once."""
    flag = {"set": False, "at": 0.0}

    def handler(signum, frame):
        if flag["set"]:
            if distributed_job and time.monotonic() - flag["at"] < SAME_INTERRUPT_S:
                return
            raise KeyboardInterrupt
        flag.update(set=True, at=time.monotonic())
        print("\nInterrupt: finishing this batch and saving a checkpoint (again to abort).", file=sys.stderr)

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals cannot be caught here
        previous = {}
    try:
        yield lambda: flag["set"]
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@dataclass
class _Run:
    """Everything one training session holds: what it trains, on what, with which generators."""

    run_dir: Path
    config: TrainConfig
    step: TrainingStep
    dataset: own_data.PreparedData
    job: distributed.Distributed
    x_train: torch.Tensor  # uint8 on the device
    x_select: torch.Tensor  # float on the device: the split that picks the best epoch (validation, or test)
    x_test: torch.Tensor  # float on the device
    shuffle_rng: torch.Generator
    noise_rng: torch.Generator
    state: RunState
    progress: bool
    plots: bool

    @property
    def global_batch(self) -> int:
        return self.config.batch_size * self.job.world_size

    @property
    def n_batches(self) -> int:
        return -(-len(self.x_train) // self.global_batch)

    def save(self, shuffle_state: torch.Tensor, is_best: bool, totals: torch.Tensor | None = None) -> None:
        """Checkpoints the run unless its loss or weights went non-finite (then the last good one stays).
        Rank 0 writes; the others wait, so none runs ahead of a checkpoint in progress."""
        _check_finite(self, totals)
        self.state.rng = {"shuffle_at_epoch_start": encode_rng(shuffle_state),
                          "noise": encode_rng(self.noise_rng.get_state())}
        if self.job.is_main:
            self.state = save_checkpoint(self.run_dir, self.step.model, self.step.optimizer, self.state, is_best)
        self.job.barrier()


def train(config: TrainConfig, run_dir: str | Path, data_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, plots: bool = True, command: str | None = None) -> RunState:
    """Trains (or resumes) the run in `run_dir`; returns the final run state.

    `command` (the command line that started this session) is kept in the checkpoint for provenance.
    Under torchrun every rank calls this; rank 0 alone evaluates and writes (train/distributed.py)."""
    run_dir = check_output_dir(Path(run_dir))  # before any work: a file in the way fails here
    job = distributed.from_environment()
    device = distributed.local_device(job, pick_device(config.device))
    distributed.setup(job, device)
    finished = False
    try:
        # One writer per run directory: rank 0 writes for a torchrun job (train/distributed.py).
        with directory_lock(run_dir, command) if job.is_main else nullcontext():
            state = _train(config, run_dir, job, device, data_dir, resume, progress and job.is_main,
                           plots and job.is_main, command)
        finished = True
        return state
    finally:
        distributed.teardown(job, finished)


def _train(config: TrainConfig, run_dir: Path, job: distributed.Distributed, device: torch.device, data_dir,
           resume: bool, progress: bool, plots: bool, command: str | None) -> RunState:
    config, checkpoint = _resolve_run(config, run_dir, resume)
    if checkpoint is not None and checkpoint.state.world_size != job.world_size:
        raise ValueError(f"{run_dir} was trained by {checkpoint.state.world_size} process(es) and this job has "
                         f"{job.world_size}: the global batch, and so the run, would change. Resume it with "
                         f"--nproc {checkpoint.state.world_size}")
    # A fine-tune's source is checked before the data loads; a resumed one carries on from its own weights.
    initial = _initial_weights(config) if checkpoint is None and config.init_from else None
    dataset = _prepare_data(config, run_dir, data_dir, checkpoint, job)
    run = _start(config, run_dir, job, device, dataset, progress, plots)
    if initial is not None:
        load_weights(run.step.model, initial.state, initial.source)
        run.state.initialized_from = initial.record
    if checkpoint is not None:
        _restore(run, checkpoint)
        if run.state.stopped == "early-stopped":
            if job.is_main:
                print(f"{run_dir}: this run already stopped early at epoch {run.state.epoch}; nothing to do.",
                      file=sys.stderr)
            return run.state
    run.state.commands = [*run.state.commands, *([command] if command else [])]
    if job.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    with _graceful_interrupts(job.enabled) as interrupted:
        for epoch in range(run.state.epoch, config.epochs):
            epoch_start_rng = run.shuffle_rng.get_state()
            totals, seen, seconds, stopped_at = _train_epoch(run, epoch, interrupted)
            if stopped_at is not None:
                run.state = dataclasses.replace(run.state, batches_done=stopped_at, stopped="interrupted")
                run.save(epoch_start_rng, is_best=False, totals=totals)
                if job.is_main:
                    print(f"Saved a checkpoint at epoch {epoch + 1}, batch {stopped_at}/{run.n_batches}; continue "
                          f"with 'latent-atlas train --out {run_dir} --resume'.", file=sys.stderr)
                return run.state
            is_best = stop_early = False
            if job.is_main:  # evaluation is rank 0's alone, so its figures are a single process's
                record = _evaluate_epoch(run, epoch, totals, seen, seconds)
                is_best, stop_early = _early_stopping(run, record[run.state.selected_by])
            else:
                record = None
            stop_early = job.any(stop_early, device)
            run.state = dataclasses.replace(run.state, epoch=epoch + 1, batches_done=0, metrics=record, stopped=(
                "early-stopped" if stop_early else ("completed" if epoch + 1 == config.epochs else None)))
            run.save(run.shuffle_rng.get_state(), is_best=is_best, totals=totals)
            if stop_early:
                if job.is_main:
                    print(f"Early stopping: no improvement for {config.patience} epochs.", file=sys.stderr)
                break
            if job.any(interrupted(), device):
                run.state.stopped = "interrupted"
                return run.state
    return run.state


def _resolve_run(config: TrainConfig, run_dir: Path, resume: bool):
    """(the config to train with, the checkpoint to resume or None); the rules are `resolve_config`'s."""
    if not resume:
        if has_checkpoint(run_dir):
            raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it, "
                                  f"or choose another --out")
        return config, None
    checkpoint = load_checkpoint(run_dir)
    return resolve_config(checkpoint.state.config, {"epochs": config.epochs, "device": config.device}, run_dir), checkpoint


@dataclass(frozen=True)
class _InitialWeights:
    state: dict[str, torch.Tensor]  # the model's weights
    source: str  # the weights' file or bundle, for errors
    record: dict  # checkpoint.json's `initialized_from`


def _initial_weights(config: TrainConfig) -> _InitialWeights:
    """The weights a fine-tune (config.init_from) starts from: a run's `best` weights, or a model bundle's
    (a bundled model's name or an exported directory, read back from its ONNX files), checked to fit this
    run's model. The record names them by SHA-256 and carries the commands that trained them (and, for a
    fine-tune of a fine-tune, what that one started from), so a bundle exported from this run says how
    its weights were made from scratch."""
    if bundle_weights.is_bundle(config.init_from) and not has_checkpoint(Path(config.init_from)):
        bundle = bundle_weights.read(config.init_from)
        _check_fits(config, bundle.manifest.latent_dim, bundle.manifest.image_shape)
        return _InitialWeights(bundle.state, str(bundle.path), bundle.record(str(config.init_from)))
    if not Path(config.init_from).is_dir():
        raise FileNotFoundError(f"--init-from {config.init_from}: no such run directory, and not a bundled model "
                                f"({', '.join(bundled_names())})")
    source = load_checkpoint(config.init_from)
    _check_fits(config, source.state.config.latent_dim, source.state.config.image_shape)
    lineage = {"commands": source.state.commands,
               **({"initialized_from": source.state.initialized_from} if source.state.initialized_from else {})}
    return _InitialWeights(source.model_state("best"), str(source.weights_path("best")),
                           {"run": str(config.init_from), **source.state.weights_file("best").to_json(),
                            "epoch": source.state.weights_epoch("best"), **lineage})


def _check_fits(config: TrainConfig, latent_dim: int, image_shape) -> None:
    """A fine-tune starts from a model of the same latent size and image shape, or is refused in one line."""
    if latent_dim != config.latent_dim:
        raise ValueError(f"--init-from {config.init_from}: that model has a {latent_dim}-D latent space and this one "
                         f"{config.latent_dim}-D; pass --latent-dim {latent_dim} to fine-tune it")
    if tuple(image_shape) != tuple(config.image_shape):
        channels, height, width = image_shape
        raise ValueError(f"--init-from {config.init_from}: that model reads {shape_text(tuple(image_shape))} images and "
                         f"this one {shape_text(config.image_shape)}; pass --image-size {height}x{width} --channels "
                         f"{channels} to fine-tune it")


def _prepare_data(config: TrainConfig, run_dir: Path, data_dir, checkpoint, job: distributed.Distributed):
    """Built-in or your own images; own images are preprocessed once (cached in the run) and split, and a
    resumed run must find the source it started with (its checksum is in the checkpoint). Under several
    processes rank 0 prepares first and writes the cache and dataset.json; the others then read its cache
    and write nothing, so no file in the run is written by two processes at once."""
    recorded = checkpoint.state.dataset if checkpoint else None
    if not job.is_main:
        job.barrier()  # rank 0 is preparing
    dataset = own_data.prepare(config, run_dir, data_dir, recorded=recorded, log=_stderr if job.is_main else _quiet,
                               write=job.is_main)
    if job.is_main:
        job.barrier()
    return dataset


def _start(config: TrainConfig, run_dir: Path, job: distributed.Distributed, device: torch.device,
           dataset: own_data.PreparedData, progress: bool, plots: bool) -> _Run:
    """Data on the device, a freshly initialised model and optimizer, generators from the seed (the
    same on every rank: each draws the global batch's permutation and noise and takes its slice)."""
    step = build_training_step(config, device, job)
    train_images = dataset.train_images[: config.limit] if config.limit else dataset.train_images
    # A model of binarized pixels is measured on binarized images, drawn once (evaluate.BINARIZATION_SEED).
    as_evaluated = binarized if config.binarize == "dynamic" else (lambda x: x)
    # --eval-images slices after binarizing, so its first N images are drawn as in a full evaluation.
    x_test = as_evaluated(images_to_tensor(dataset.test_images, step.device))[: config.eval_images]
    # Model selection and early stopping: the validation split (--val-size 0: the test set).
    selected_on = dataset.eval_split
    x_select = (as_evaluated(images_to_tensor(dataset.validation_images, step.device))[: config.eval_images]
                if selected_on == "validation" else x_test)
    state = RunState(config, commands=[], torch_version=torch.__version__, world_size=job.world_size,
                     selected_on=selected_on, dataset=dataset.record(),
                     early_stopping=EarlyStopping(metric=selection_metric(config)))
    return _Run(run_dir, config, step, dataset, job, x_train=torch.as_tensor(train_images).to(step.device),
                x_select=x_select, x_test=x_test, shuffle_rng=torch.Generator().manual_seed(config.seed),
                noise_rng=torch.Generator(device=step.device).manual_seed(config.seed + 1),
                state=state, progress=progress, plots=plots)


def _restore(run: _Run, checkpoint) -> None:
    """Weights, optimizer, generators and progress of the checkpoint; the config is the resolved one."""
    tensors = checkpoint.tensors("last")
    load_weights(run.step.model, {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")},
                 checkpoint.weights_path("last"))
    run.step.optimizer.load_state_dict(join_optimizer_state(tensors, checkpoint.state.optimizer))
    run.shuffle_rng.set_state(decode_rng(checkpoint.state.rng["shuffle_at_epoch_start"]))
    run.noise_rng.set_state(decode_rng(checkpoint.state.rng["noise"]))
    run.state = dataclasses.replace(checkpoint.state, config=run.config, optimizer=None, last=None, rng=None,
                                    selected_on=run.state.selected_on, dataset=run.state.dataset)
    if run.job.is_main:
        _truncate_metrics(run.run_dir / METRICS_FILE, run.state.epoch)


def _train_epoch(run: _Run, epoch: int, interrupted):
    """One pass over the training set (from a mid-epoch checkpoint's batch on). Returns the summed
    (loss, recon, KL) x images, the images seen, the seconds, and the batch count if interrupted."""
    config, step = run.config, run.step
    order = torch.randperm(len(run.x_train), generator=run.shuffle_rng).split(run.global_batch)
    beta = config.beta_at(epoch)
    step.model.train()
    totals = torch.zeros(4, dtype=torch.float64, device=step.device)  # summed on device: no sync per batch
    start, done = time.perf_counter(), run.state.batches_done
    bar = _progress(run.n_batches, done, epoch, config.epochs, run.progress)
    try:
        for b in range(done, run.n_batches):
            part, loss_scale = run.job.shard(order[b])
            noise = step.noise(run.noise_rng, len(order[b]), part)
            x = step.batch(run.x_train, order[b][part])
            terms = step(x, beta, config.lr_at(epoch * run.n_batches + b, run.n_batches), noise, loss_scale)
            if b % FINITE_CHECK_EVERY == 0 and not torch.isfinite(terms.loss):
                raise FloatingPointError(f"the loss became {terms.loss.item()} at epoch {epoch + 1}, batch {b + 1}; "
                                         f"lower --lr (the last good checkpoint in {run.run_dir} is kept)")
            totals += torch.stack([terms.loss.detach(), terms.recon.detach(), terms.kl.detach(),
                                   torch.ones((), device=step.device)]).double() * len(x)
            bar.update(1)
            if b % FINITE_CHECK_EVERY == 0:
                bar.set_postfix(loss=f"{terms.loss.item():.4g}", recon=f"{terms.recon.item():.1f}", kl=f"{terms.kl.item():.2f}")
            if run.job.any(interrupted(), step.device):  # every rank stops after the same step
                return totals[:3], None, None, b + 1
    finally:
        bar.close()
    if run.job.enabled:
        dist.all_reduce(totals)  # the epoch's sums over every rank's images
    return totals[:3], int(totals[3].item()), time.perf_counter() - start, None


def _check_finite(run: _Run, totals: torch.Tensor | None) -> None:
    """Raises FloatingPointError before a checkpoint with a non-finite loss or weights is written."""
    bad_loss = totals is not None and not bool(torch.isfinite(totals).all())
    bad_weights = [name for name, p in run.step.model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad_loss or bad_weights:
        what = " and ".join((["the training loss"] if bad_loss else []) +
                            ([f"the weights ({bad_weights[0]})"] if bad_weights else []))
        raise FloatingPointError(f"{what} became non-finite during epoch {run.state.epoch + 1}; nothing was saved "
                                 f"and the last good checkpoint in {run.run_dir} is kept; lower --lr")



def selection_metric(config: TrainConfig) -> str:
    """The figure that picks the best epoch and stops early: the bound the run maximises. An IWAE run is
    judged by its K-sample bound, which keeps improving while its ELBO may not: the objective trades the
    ELBO's tightness for the likelihood (Burda et al. 2015, section 3; Cremer et al. 2017)."""
    return "neg_iwae" if config.objective == "iwae" else "neg_elbo"


def _evaluate_epoch(run: _Run, epoch: int, totals: torch.Tensor, seen: int, seconds: float) -> dict:
    """The validation and test -ELBO (and IW bound if asked), logged to metrics.jsonl, the terminal and
    the plots. Rank 0's alone."""
    config, model = run.config, run.step.model
    _check_finite(run, totals)  # before metrics.jsonl gets a line for an epoch that cannot be saved
    train_loss, train_recon, train_kl = (totals / max(seen, 1)).tolist()
    record = {"epoch": epoch + 1, "beta": config.beta_at(epoch), "train_loss": train_loss, "train_recon": train_recon,
              "train_kl": train_kl, "selected_on": run.state.selected_on}
    if config.binarize == "dynamic":
        record.update(binarized=True, binarization_seed=BINARIZATION_SEED)
    splits = {"val": run.x_select, "test": run.x_test} if run.state.selected_on == "validation" else {"test": run.x_test}
    watches_iwae = selection_metric(config) == "neg_iwae"
    for prefix, x in splits.items():
        figures = evaluate_elbo(model, x, seed=config.seed)
        record.update({f"{prefix}_neg_elbo": figures["neg_elbo"], f"{prefix}_recon": figures["recon"],
                       f"{prefix}_kl": figures["kl"], f"{prefix}_bits_per_dim": figures["bits_per_dim"],
                       f"{prefix}_images": len(x)})
        if watches_iwae:  # the trained bound itself, with fixed noise so epochs compare
            record[f"{prefix}_neg_iwae"] = -iw_log_likelihood(model, x, config.importance_samples,
                                                              seed=config.seed).mean().item()
    if watches_iwae:
        record["iwae_k"] = config.importance_samples
    record.update(seconds=round(seconds, 3), images_per_s=round(seen / max(seconds, 1e-9), 1))
    if config.eval_iw_samples:
        subset = run.x_test[: config.eval_iw_images]
        iw_nll = -iw_log_likelihood(model, subset, config.eval_iw_samples, seed=config.seed).mean().item()
        record.update(test_iw_nll=iw_nll, iw_samples=config.eval_iw_samples, iw_images=len(subset))
    if not all(math.isfinite(v) for v in record.values() if isinstance(v, float)):
        raise FloatingPointError(f"epoch {epoch + 1} evaluated to a non-finite -ELBO ({record['test_neg_elbo']}); "
                                 f"nothing was saved and the last good checkpoint in {run.run_dir} is kept; lower --lr")
    append_text(run.run_dir / METRICS_FILE, json.dumps(record) + "\n")
    if run.progress:
        test = (f"test -ELBO {record['test_neg_elbo']:.2f} nats (recon {record['test_recon']:.2f}, "
                f"KL {record['test_kl']:.2f})")
        if config.likelihood != "bernoulli":  # nats per image of other sizes do not compare; bits per dim do
            test += f" = {record['test_bits_per_dim']:.4f} bits/dim ({config.likelihood})"
        validation = f"validation -ELBO {record['val_neg_elbo']:.2f}, " if "val_neg_elbo" in record else ""
        if "iwae_k" in record:  # the bound the run trains and is selected on
            split = run.state.selected_on
            validation = f"{validation}{split} -IWAE(K={record['iwae_k']}) {record[f'{SPLIT_PREFIX[split]}_neg_iwae']:.2f}, "
        print(f"epoch {epoch + 1}/{config.epochs}: {validation}{test}, {record['images_per_s']:.0f} img/s", file=sys.stderr)
    if run.plots:
        save_epoch_plots(model, run.x_test, run.dataset.test_labels[: len(run.x_test)], list(run.dataset.class_names),
                         run.run_dir / "plots", epoch + 1, seed=config.seed)
    return record


def _early_stopping(run: _Run, value: float) -> tuple[bool, bool]:
    """(is this epoch the best so far, should training stop), from the watched bound (selection_metric) on
    the selection split (validation; the test set with --val-size 0). The seed preset watched its own
    Keras loss, which we do not recompute."""
    stopping = run.state.early_stopping
    is_best = stopping.best is None or value < stopping.best
    if is_best:
        stopping.best, stopping.bad_epochs = value, 0
    else:
        stopping.bad_epochs += 1
    return is_best, stopping.bad_epochs >= run.config.patience


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _quiet(message: str) -> None:
    """Ranks other than 0 keep the data report to themselves: it would print once per process."""


def _truncate_metrics(path: Path, epochs_done: int) -> None:
    """Drops metric lines of epochs the checkpoint does not contain (an epoch cut short by SIGKILL)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip() and json.loads(line)["epoch"] <= epochs_done]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _progress(total: int, initial: int, epoch: int, epochs: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                disable=not enabled, file=sys.stderr, dynamic_ncols=True, leave=False)
