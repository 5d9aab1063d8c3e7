"""The training loop: `train(config, run_dir)`.

Every epoch: train, evaluate the test -ELBO in nats, write metrics.jsonl and plots, checkpoint.
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

import numpy as np
import torch

from . import own_data
from .checkpoint import decode_rng, encode_rng, has_checkpoint, join_optimizer_state, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .evaluate import evaluate_elbo, images_to_tensor, iw_log_likelihood
from .model import VAE, LossTerms, elbo_loss, keras_seed_loss
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


@contextmanager
def _graceful_interrupts():
    """Turns the first SIGINT/SIGTERM into a flag checked between batches, so a checkpoint is never
    taken halfway through an optimizer step; a second signal raises KeyboardInterrupt at once."""
    flag = {"set": False}

    def handler(signum, frame):
        if flag["set"]:
            raise KeyboardInterrupt
        flag["set"] = True
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

    `command` (the command line that started this session) is kept in the checkpoint for provenance."""
    run_dir = Path(run_dir)
    config, checkpoint = _resolve_config(config, run_dir, resume)
    device = pick_device(config.device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format

    # Built-in or your own images; own images are preprocessed once (cached in the run) and split, and a
    # resumed run must find the source it started with (its checksum is in the checkpoint).
    dataset = own_data.prepare(config, run_dir, data_dir, recorded=checkpoint.meta.get("dataset") if checkpoint else None)
    train_images = dataset.train_images[: config.limit] if config.limit else dataset.train_images
    x_train = torch.as_tensor(train_images).to(device)  # uint8: 4x less memory; scaled per batch
    x_test = images_to_tensor(dataset.eval_images, device)  # the validation split where there is one

    torch.manual_seed(config.seed)  # weight init only; training randomness has its own generators
    model = VAE(config.latent_dim, config.bottleneck_bias).to(device=device, memory_format=memory_format)
    optimizer = make_optimizer(config, model)
    shuffle_rng = torch.Generator().manual_seed(config.seed)
    noise_rng = torch.Generator(device=device).manual_seed(config.seed + 1)
    meta = {"config": config.to_dict(), "epoch": 0, "batches_done": 0, "early_stopping": {"best": None, "bad_epochs": 0},
            "commands": [command] if command else [], "torch_version": torch.__version__, "dataset": dataset.record()}

    if checkpoint is not None:
        tensors = checkpoint.tensors("last")
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        optimizer.load_state_dict(join_optimizer_state(tensors, checkpoint.meta["optimizer"]))
        shuffle_rng.set_state(decode_rng(checkpoint.meta["rng"]["shuffle_at_epoch_start"]))
        noise_rng.set_state(decode_rng(checkpoint.meta["rng"]["noise"]))
        meta = {k: v for k, v in checkpoint.meta.items() if k not in ("optimizer", "last", "rng")}
        meta["config"] = config.to_dict()
        meta["dataset"] = dataset.record()
        _truncate_metrics(run_dir / METRICS_FILE, meta["epoch"])
        if command:
            meta["commands"] = [*meta.get("commands", []), command]
        if meta.get("stopped") == "early-stopped":
            print(f"{run_dir}: this run already stopped early at epoch {meta['epoch']}; nothing to do.", file=sys.stderr)
            return meta
    run_dir.mkdir(parents=True, exist_ok=True)

    objective = objective_for(config)
    n_batches = -(-len(x_train) // config.batch_size)
    autocast = autocast_for(config, device)

    with _graceful_interrupts() as interrupted:
        for epoch in range(meta["epoch"], config.epochs):
            epoch_start_rng = shuffle_rng.get_state()
            order = torch.randperm(len(x_train), generator=shuffle_rng).split(config.batch_size)
            beta = config.beta_at(epoch)
            model.train()
            totals = torch.zeros(3, dtype=torch.float64, device=device)  # summed on device: no sync per batch
            start, done = time.perf_counter(), meta["batches_done"]
            bar = _progress(n_batches, done, epoch, config.epochs, progress)
            for b in range(done, n_batches):
                x = x_train[order[b].to(device)].unsqueeze(1).float().div_(255.0)
                x = x.contiguous(memory_format=memory_format)
                lr = config.lr_at(epoch * n_batches + b, n_batches)
                terms = training_step(model, optimizer, objective, x, beta, lr, noise_rng, autocast)
                if b % 20 == 0 and not torch.isfinite(terms.loss):
                    # Checked every 20 batches (a check is a device sync); the last checkpoint is intact.
                    raise FloatingPointError(f"the loss became {terms.loss.item()} at epoch {epoch + 1}, batch {b + 1}; "
                                             f"lower --lr (the last good checkpoint in {run_dir} is kept)")
                totals += torch.stack([terms.loss.detach(), terms.recon.detach(), terms.kl.detach()]).double() * len(x)
                bar.update(1)
                if b % 20 == 0:
                    bar.set_postfix(loss=f"{terms.loss.item():.4g}", recon=f"{terms.recon.item():.1f}", kl=f"{terms.kl.item():.2f}")
                if interrupted():
                    bar.close()
                    meta.update(batches_done=b + 1, stopped="interrupted")
                    _save(run_dir, model, optimizer, meta, epoch_start_rng, noise_rng, is_best=False)
                    print(f"Saved a checkpoint at epoch {epoch + 1}, batch {b + 1}/{n_batches}; continue with "
                          f"'latent-atlas train --out {run_dir} --resume'.", file=sys.stderr)
                    return meta
            bar.close()
            seconds = time.perf_counter() - start
            seen = sum(len(order[b]) for b in range(done, n_batches))

            test = evaluate_elbo(model, x_test, seed=config.seed)
            train_loss, train_recon, train_kl = (totals / max(seen, 1)).tolist()
            record = {"epoch": epoch + 1, "eval_split": dataset.eval_split, "beta": beta, "train_loss": train_loss, "train_recon": train_recon,
                      "train_kl": train_kl,
                      "test_neg_elbo": test["neg_elbo"], "test_recon": test["recon"], "test_kl": test["kl"],
                      "seconds": round(seconds, 3), "images_per_s": round(seen / max(seconds, 1e-9), 1)}
            if config.eval_iw_samples:
                subset = x_test[: config.eval_iw_images]
                iw_nll = -iw_log_likelihood(model, subset, config.eval_iw_samples, seed=config.seed).mean().item()
                record.update(test_iw_nll=iw_nll, iw_samples=config.eval_iw_samples, iw_images=len(subset))
            with open(run_dir / METRICS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            if progress:
                print(f"epoch {epoch + 1}/{config.epochs}: test -ELBO {test['neg_elbo']:.2f} nats "
                      f"(recon {test['recon']:.2f}, KL {test['kl']:.2f}), {record['images_per_s']:.0f} img/s",
                      file=sys.stderr)
            if plots:
                save_epoch_plots(model, x_test, dataset.eval_labels, list(dataset.class_names),
                                 run_dir / "plots", epoch + 1, seed=config.seed)

            # Early stopping watches the training objective on the test set (the true -ELBO for the
            # default preset); the seed preset watched its own Keras loss, which we do not recompute.
            stopping = meta["early_stopping"]
            is_best = stopping["best"] is None or test["neg_elbo"] < stopping["best"]
            if is_best:
                stopping.update(best=test["neg_elbo"], bad_epochs=0)
            else:
                stopping["bad_epochs"] += 1
            stop_early = stopping["bad_epochs"] >= config.patience
            meta.update(epoch=epoch + 1, batches_done=0, metrics=record,
                        stopped="early-stopped" if stop_early else ("completed" if epoch + 1 == config.epochs else None))
            _save(run_dir, model, optimizer, meta, shuffle_rng.get_state(), noise_rng, is_best=is_best)
            if stop_early:
                print(f"Early stopping: no improvement for {config.patience} epochs.", file=sys.stderr)
                break
            if interrupted():
                meta["stopped"] = "interrupted"
                return meta
    return meta


def objective_for(config: TrainConfig):
    """(model, x, beta, rng) -> LossTerms for the configured objective."""
    if config.objective == "keras-seed":
        return lambda model, x, beta, rng: keras_seed_loss(model, x, rng)
    return lambda model, x, beta, rng: elbo_loss(model, x, beta, rng, config.encoder_noise)


def autocast_for(config: TrainConfig, device: torch.device):
    """A context-manager factory: bf16 autocast where it pays off, else a no-op."""
    if config.bf16 and bf16_supported(device):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext


def training_step(model: VAE, optimizer: torch.optim.Optimizer, objective, x: torch.Tensor, beta: float, lr: float,
                  rng: torch.Generator, autocast) -> LossTerms:
    """One optimizer step on batch x; the loss runs under `autocast`, the update in float32."""
    with autocast():
        terms = objective(model, x, beta, rng)
    optimizer.zero_grad(set_to_none=True)
    terms.loss.backward()
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return terms


def _save(run_dir: Path, model, optimizer, meta: dict, shuffle_state: torch.Tensor, noise_rng: torch.Generator,
          is_best: bool) -> None:
    meta["rng"] = {"shuffle_at_epoch_start": encode_rng(shuffle_state), "noise": encode_rng(noise_rng.get_state())}
    written = save_checkpoint(run_dir, model, optimizer, meta, is_best=is_best)
    if is_best:
        meta["best"] = written["best"]


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
