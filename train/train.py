"""The training loop: `train(config, run_dir)`.

Every epoch: train, evaluate the validation and test -ELBO in nats (the best epoch and early stopping
follow the validation split; the test set only reports), write metrics.jsonl and plots, checkpoint.
Resuming restores weights, optimizer and every RNG, so on a CPU "2 epochs" and "1 epoch, resume,
1 more" give bit-identical weights. Ctrl-C (or SIGTERM) finishes the current batch, checkpoints
mid-epoch and returns; a second Ctrl-C aborts at once. SIGKILL loses at most the current epoch.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import data, distributed
from .checkpoint import decode_rng, encode_rng, has_checkpoint, join_optimizer_state, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .evaluate import evaluate_elbo, images_to_tensor, iw_log_likelihood
from .model import VAE, LossTerms, StepNoise, elbo_loss, keras_seed_loss
from .plots import save_epoch_plots

METRICS_FILE = "metrics.jsonl"


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but PyTorch sees no CUDA device")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def bf16_supported(device: torch.device) -> bool:
    """bfloat16 autocast pays off only with native bf16 math (AVX512-BF16/AMX on CPUs, Ampere+ GPUs);
    elsewhere it is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def make_optimizer(config: TrainConfig, model: VAE) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        # Decoupled weight decay on the encoder only (zero by default, where AdamW is exactly Adam).
        groups = [{"params": list(model.encoder.parameters()), "weight_decay": config.encoder_weight_decay},
                  {"params": list(model.decoder.parameters()), "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=config.lr)
    # Keras' RMSprop defaults: rho=0.9 (PyTorch calls it alpha), epsilon=1e-7.
    return torch.optim.RMSprop(model.parameters(), lr=config.lr, alpha=0.9, eps=1e-7)


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


def _resolve_config(config: TrainConfig, run_dir: Path, resume: bool):
    """On resume the saved config rules; only `epochs` (the total to reach) and `device` may change."""
    if not resume:
        if has_checkpoint(run_dir):
            raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it, "
                                  f"or choose another --out")
        return config, None
    checkpoint = load_checkpoint(run_dir)
    saved = TrainConfig.from_dict(checkpoint.meta["config"])
    try:
        return dataclasses.replace(saved, epochs=config.epochs, device=config.device), checkpoint  # re-validated
    except ValueError as exc:
        if saved.lr_schedule == "cosine" and config.epochs > saved.lr_decay_epochs:
            raise ValueError(f"{run_dir} follows a cosine schedule that reaches a learning rate of 0 at epoch "
                             f"{saved.lr_decay_epochs}; it cannot learn past that. Start a new run with "
                             f"--epochs {config.epochs} --lr-decay-epochs {config.epochs}") from exc
        raise


def train(config: TrainConfig, run_dir: str | Path, data_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, plots: bool = True, command: str | None = None) -> dict:
    """Trains (or resumes) the run in `run_dir`; returns the final checkpoint metadata.

    Under torchrun every rank calls this; rank 0 alone evaluates and writes (train/distributed.py).
    `command` (the command line that started this session) is kept in the checkpoint for provenance."""
    run_dir = Path(run_dir)
    job = distributed.from_environment()
    device = distributed.local_device(job, pick_device(config.device))
    distributed.setup(job, device)
    try:
        return _train(config, run_dir, job, device, data_dir, resume, progress and job.is_main,
                      plots and job.is_main, command)
    finally:
        distributed.teardown(job)


def _train(config: TrainConfig, run_dir: Path, job: distributed.Distributed, device: torch.device,
           data_dir, resume: bool, progress: bool, plots: bool, command: str | None) -> dict:
    config, checkpoint = _resolve_config(config, run_dir, resume)
    if checkpoint is not None and checkpoint.meta.get("world_size", 1) != job.world_size:
        raise ValueError(f"{run_dir} was trained by {checkpoint.meta.get('world_size', 1)} process(es) and this job "
                         f"has {job.world_size}: the global batch, and so the run, would change. Resume it with "
                         f"--nproc {checkpoint.meta.get('world_size', 1)}")
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format

    dataset = data.load_dataset(config.dataset, data_dir)
    train_index, val_index = data.validation_split(len(dataset.train_images), config.val_size)
    train_images = dataset.train_images[train_index[: config.limit] if config.limit else train_index]
    x_train = torch.as_tensor(train_images).to(device)  # uint8: 4x less memory; scaled per batch
    x_test = images_to_tensor(dataset.test_images, device)
    # Model selection and early stopping: the validation split, or the test set with --val-size 0.
    x_select = images_to_tensor(dataset.train_images[val_index], device) if config.val_size else x_test
    selected_on = "validation" if config.val_size else "test"

    torch.manual_seed(config.seed)  # weight init only; training randomness has its own generators
    model = VAE(config.latent_dim, config.bottleneck_bias).to(device=device, memory_format=memory_format)
    optimizer = make_optimizer(config, model)
    # The same generators on every rank: each draws the global batch's permutation and noise.
    shuffle_rng = torch.Generator().manual_seed(config.seed)
    noise_rng = torch.Generator(device=device).manual_seed(config.seed + 1)
    meta = {"config": config.to_dict(), "epoch": 0, "batches_done": 0, "early_stopping": {"best": None, "bad_epochs": 0},
            "commands": [command] if command else [], "torch_version": torch.__version__,
            "world_size": job.world_size, "selected_on": selected_on}

    if checkpoint is not None:
        tensors = checkpoint.tensors("last")
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        optimizer.load_state_dict(join_optimizer_state(tensors, checkpoint.meta["optimizer"]))
        shuffle_rng.set_state(decode_rng(checkpoint.meta["rng"]["shuffle_at_epoch_start"]))
        noise_rng.set_state(decode_rng(checkpoint.meta["rng"]["noise"]))
        meta = {k: v for k, v in checkpoint.meta.items() if k not in ("optimizer", "last", "rng")}
        meta.update(config=config.to_dict(), world_size=job.world_size, selected_on=selected_on)
        if job.is_main:
            _truncate_metrics(run_dir / METRICS_FILE, meta["epoch"])
        if command:
            meta["commands"] = [*meta.get("commands", []), command]
        if meta.get("stopped") == "early-stopped":
            if job.is_main:
                print(f"{run_dir}: this run already stopped early at epoch {meta['epoch']}; nothing to do.", file=sys.stderr)
            return meta
    if job.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    step_module = TrainingStep(model, objective_for(config))
    if job.enabled:
        step_module = DistributedDataParallel(step_module, device_ids=[device.index] if device.type == "cuda" else None)
    global_batch = config.batch_size * job.world_size
    n_batches = -(-len(x_train) // global_batch)
    autocast = autocast_for(config, device)

    with _graceful_interrupts(job.enabled) as interrupted:
        for epoch in range(meta["epoch"], config.epochs):
            epoch_start_rng = shuffle_rng.get_state()
            order = torch.randperm(len(x_train), generator=shuffle_rng).split(global_batch)
            beta = config.beta_at(epoch)
            model.train()
            totals = torch.zeros(4, dtype=torch.float64, device=device)  # summed on device: no sync per batch
            start, done = time.perf_counter(), meta["batches_done"]
            bar = _progress(n_batches, done, epoch, config.epochs, progress)
            for b in range(done, n_batches):
                part, loss_scale = job.shard(order[b])
                noise = StepNoise.draw(noise_rng, len(order[b]), config.latent_dim, config.encoder_noise > 0, device)[part]
                x = x_train[order[b][part].to(device)].unsqueeze(1).float().div_(255.0)
                x = x.contiguous(memory_format=memory_format)
                lr = config.lr_at(epoch * n_batches + b, n_batches)
                terms = training_step(step_module, optimizer, x, beta, lr, noise, autocast, loss_scale)
                if b % 20 == 0 and not torch.isfinite(terms.loss):
                    # Checked every 20 batches (a check is a device sync); the last checkpoint is intact.
                    raise FloatingPointError(f"the loss became {terms.loss.item()} at epoch {epoch + 1}, batch {b + 1}; "
                                             f"lower --lr (the last good checkpoint in {run_dir} is kept)")
                totals += torch.stack([terms.loss.detach(), terms.recon.detach(), terms.kl.detach(),
                                       torch.ones((), device=device)]).double() * len(x)
                bar.update(1)
                if b % 20 == 0:
                    bar.set_postfix(loss=f"{terms.loss.item():.4g}", recon=f"{terms.recon.item():.1f}", kl=f"{terms.kl.item():.2f}")
                if job.any(interrupted(), device):  # every rank stops after the same step
                    bar.close()
                    meta.update(batches_done=b + 1, stopped="interrupted")
                    _save(job, run_dir, model, optimizer, meta, epoch_start_rng, noise_rng, is_best=False)
                    if job.is_main:
                        print(f"Saved a checkpoint at epoch {epoch + 1}, batch {b + 1}/{n_batches}; continue with "
                              f"'latent-atlas train --out {run_dir} --resume'.", file=sys.stderr)
                    return meta
            bar.close()
            seconds = time.perf_counter() - start
            if job.enabled:
                dist.all_reduce(totals)
            seen = totals[3].item()
            train_loss, train_recon, train_kl = (totals[:3] / max(seen, 1)).tolist()
            record = {"epoch": epoch + 1, "beta": beta, "train_loss": train_loss, "train_recon": train_recon,
                      "train_kl": train_kl, "seconds": round(seconds, 3), "images_per_s": round(seen / max(seconds, 1e-9), 1)}

            is_best = stop_early = False
            if job.is_main:  # evaluation is rank 0's alone, so its figures are a single process's
                record.update(_evaluate_epoch(model, config, x_select, x_test, selected_on))
                with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                if progress:
                    print(f"epoch {epoch + 1}/{config.epochs}: {_summary(record, selected_on)}, "
                          f"{record['images_per_s']:.0f} img/s", file=sys.stderr)
                if plots:
                    save_epoch_plots(model, x_test, dataset.test_labels, list(dataset.info.class_names),
                                     run_dir / "plots", epoch + 1, seed=config.seed)
                # Early stopping watches the true -ELBO on the selection split (the seed preset
                # watched its own Keras loss, which we do not recompute).
                stopping = meta["early_stopping"]
                selection = record[f"{_prefix(selected_on)}_neg_elbo"]
                is_best = stopping["best"] is None or selection < stopping["best"]
                if is_best:
                    stopping.update(best=selection, bad_epochs=0)
                else:
                    stopping["bad_epochs"] += 1
                stop_early = stopping["bad_epochs"] >= config.patience
            stop_early = job.any(stop_early, device)
            meta.update(epoch=epoch + 1, batches_done=0, metrics=record,
                        stopped="early-stopped" if stop_early else ("completed" if epoch + 1 == config.epochs else None))
            _save(job, run_dir, model, optimizer, meta, shuffle_rng.get_state(), noise_rng, is_best=is_best)
            if stop_early:
                if job.is_main:
                    print(f"Early stopping: no improvement for {config.patience} epochs.", file=sys.stderr)
                break
            if job.any(interrupted(), device):
                meta["stopped"] = "interrupted"
                return meta
    return meta


def _prefix(split: str) -> str:
    return "val" if split == "validation" else "test"


def _evaluate_epoch(model: VAE, config: TrainConfig, x_select: torch.Tensor, x_test: torch.Tensor,
                    selected_on: str) -> dict:
    """The epoch's figures in nats: validation (when held out) and test -ELBO, and the optional IW bound."""
    out = {"selected_on": selected_on}
    splits = {"val": x_select, "test": x_test} if selected_on == "validation" else {"test": x_test}
    for prefix, x in splits.items():
        figures = evaluate_elbo(model, x, seed=config.seed)
        out.update({f"{prefix}_neg_elbo": figures["neg_elbo"], f"{prefix}_recon": figures["recon"],
                    f"{prefix}_kl": figures["kl"]})
    if config.eval_iw_samples:
        subset = x_test[: config.eval_iw_images]
        iw_nll = -iw_log_likelihood(model, subset, config.eval_iw_samples, seed=config.seed).mean().item()
        out.update(test_iw_nll=iw_nll, iw_samples=config.eval_iw_samples, iw_images=len(subset))
    return out


def _summary(record: dict, selected_on: str) -> str:
    test = f"test -ELBO {record['test_neg_elbo']:.2f} nats (recon {record['test_recon']:.2f}, KL {record['test_kl']:.2f})"
    return f"validation -ELBO {record['val_neg_elbo']:.2f}, {test}" if selected_on == "validation" else test


def objective_for(config: TrainConfig):
    """(model, x, beta, noise) -> LossTerms for the configured objective."""
    if config.objective == "keras-seed":
        return lambda model, x, beta, noise: keras_seed_loss(model, x, noise)
    return lambda model, x, beta, noise: elbo_loss(model, x, noise, beta, config.encoder_noise)


class TrainingStep(nn.Module):
    """The model and its objective as one module, so DistributedDataParallel sees the whole loss
    computation in its forward (it synchronises gradients of what forward touched)."""

    def __init__(self, model: VAE, objective):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, x: torch.Tensor, beta: float, noise: StepNoise, loss_scale: float = 1.0) -> tuple:
        terms = self.objective(self.model, x, beta, noise)
        return terms.loss * loss_scale, terms


def autocast_for(config: TrainConfig, device: torch.device):
    """A context-manager factory: bf16 autocast where it pays off, else a no-op."""
    if config.bf16 and bf16_supported(device):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext


def training_step(step: TrainingStep | DistributedDataParallel, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                  beta: float, lr: float, noise: StepNoise, autocast, loss_scale: float = 1.0) -> LossTerms:
    """One optimizer step on batch x; the loss runs under `autocast`, the update in float32.
    `loss_scale` weights this rank's share of a global batch (distributed.Distributed.shard)."""
    with autocast():
        scaled_loss, terms = step(x, beta, noise, loss_scale)
    optimizer.zero_grad(set_to_none=True)
    scaled_loss.backward()
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return terms


def _save(job: distributed.Distributed, run_dir: Path, model, optimizer, meta: dict, shuffle_state: torch.Tensor,
          noise_rng: torch.Generator, is_best: bool) -> None:
    """Rank 0 writes the checkpoint; the others wait, so no rank runs ahead of a checkpoint in progress."""
    meta["rng"] = {"shuffle_at_epoch_start": encode_rng(shuffle_state), "noise": encode_rng(noise_rng.get_state())}
    if job.is_main:
        written = save_checkpoint(run_dir, model, optimizer, meta, is_best=is_best)
        if is_best:
            meta["best"] = written["best"]
    job.barrier()


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
