"""Data-parallel training over processes and machines: torchrun + DistributedDataParallel.

One machine, N processes:  latent-atlas train ... --nproc N   (relaunches itself under torchrun)
M machines, N each:        torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d \\
                               --rdzv-endpoint HOST:PORT --rdzv-id RUN -m latent_atlas.cli train ...

Every rank draws the same epoch permutation (and the same noise) from the run's seed and trains on
its slice of each global batch of `batch_size x world_size` images; DDP averages the gradients. The
loss of a short last batch is rescaled so that the averaged gradient is still the mean over the
global batch: N processes with batch b follow one process with batch N*b up to float rounding.
gloo on CPUs, NCCL on CUDA. Rank 0 alone evaluates and writes; the others wait at a barrier.
"""

from __future__ import annotations

import datetime
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

# How long a rank waits for the others (rendezvous, a collective) before failing with an error
# instead of hanging: a crashed peer is usually noticed at once, this bounds the rest.
TIMEOUT = datetime.timedelta(minutes=10)
# The command a user typed, passed by `--nproc` to the workers it starts, for the checkpoint's record.
COMMAND_ENV = "LATENT_ATLAS_COMMAND"


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job; the defaults are a single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, global_batch: torch.Tensor) -> tuple[slice, float]:
        """This rank's part of a global batch (as a slice of it) and the factor its mean loss is scaled
        by, so that DDP's average over ranks is the mean over the whole global batch."""
        n = len(global_batch)
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        size = base + (1 if self.rank < extra else 0)
        return slice(start, start + size), size * self.world_size / n

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is True on any: ranks stop at the same step."""
        if not self.enabled:
            return flag
        value = torch.tensor([int(flag)], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def from_environment() -> Distributed:
    """The job torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    return Distributed(rank=int(os.environ["RANK"]), world_size=world_size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def setup(job: Distributed, device: torch.device) -> None:
    """Joins the process group: NCCL for CUDA (one GPU per local rank), gloo on CPUs."""
    if not job.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(job.local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)


def teardown(job: Distributed, finished: bool) -> None:
    """Leaves the process group. After a finished run every rank first waits for the others: a rank that
    tears gloo down while a peer is still talking to it can die in C++ ("terminate called without an
    active exception"). After an error there is no waiting:
    the failed rank may never arrive, and torchrun ends the job."""
    if job.enabled and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def local_device(job: Distributed, device: torch.device) -> torch.device:
    """Each local rank gets its own GPU; CPU ranks share the CPU."""
    return torch.device("cuda", job.local_rank) if device.type == "cuda" else device


def launch_local(nproc: int, argv: list[str]) -> int:
    """Runs `latent-atlas ARGV` (without --nproc) as nproc workers on this machine under torchrun.

    Each CPU worker gets an equal share of the cores (OMP_NUM_THREADS), so N processes do not
    oversubscribe them. SIGTERM is passed on to torchrun, which passes it to the workers: they stop
    after the same step and rank 0 saves. A Ctrl-C reaches torchrun and the workers from the terminal."""
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env.setdefault(COMMAND_ENV, shlex.join(["latent-atlas", *argv[:1], f"--nproc={nproc}", *argv[1:]]))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "latent_atlas.cli", *argv]
    process = subprocess.Popen(command, env=env)
    received = []

    def forward(signum, frame):
        received.append(signum)
        if signum == signal.SIGTERM:
            process.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        returncode = process.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        print("latent-atlas train: interrupted; the workers saved a checkpoint: continue with --resume", file=sys.stderr)
        return 130
    if returncode != 0:
        print(f"latent-atlas train: a worker failed (torchrun exit {returncode}); its error is above. "
              f"The last complete checkpoint is kept.", file=sys.stderr)
    return returncode
