"""Training across processes and nodes (Lightning DDP): who is the main process, how each global
batch is shared out, and how the processes part once the model is trained.

The contract (tests/training/test_ddp_train.py): a run on W processes draws the same global batches
as one process with the same seed and splits each one across the processes, so each optimizer step
sees the same rows and DDP's averaged gradient is the one-process gradient (exactly when the
batch divides evenly; a last uneven batch weighs its rows slightly differently). Every process
validates on all validation rows, so early stopping and the best epoch agree everywhere. Once the
model is trained the other processes leave, and the main process evaluates, calibrates and saves
alone, on one process, as a one-process run does.

Lightning starts the other processes by running the same command again with LOCAL_RANK (and
NODE_RANK, WORLD_SIZE) set; torchrun and SLURM set RANK / SLURM_PROCID. Every process therefore
prepares the data itself, deterministically, before the processes meet in the first fit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, Sampler

from plait.config import TrainSpec

_RANK_VARS = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "JSM_NAMESPACE_RANK")
_single = False  # set once the processes have parted: later fits in this process run on one


def is_main_process() -> bool:
    """True unless this process was started as a worker of a distributed run (a rank above 0)."""
    return all(int(os.environ.get(name, "0") or 0) == 0 for name in _RANK_VARS)


def require_one_process(train: TrainSpec, what: str) -> None:
    """Refuse a multi-process `train` section where `what` trains many models one after another
    (the processes part after the first one, so the others would train on one process)."""
    processes = train.devices * train.num_nodes
    if processes > 1:
        from plait.errors import ConfigError

        raise ConfigError(
            f"{what} trains many models one after another and runs on one process, but train.devices × "
            f"train.num_nodes is {processes}; set train.devices: 1 (and num_nodes: 1) for it, or drop "
            "--devices/--num-nodes"
        )


def is_distributed(train: TrainSpec) -> bool:
    """Whether `train` asks for more than one process (and this process has not parted already)."""
    return not _single and train.devices * train.num_nodes > 1


def trainer_placement(train: TrainSpec) -> dict[str, object]:
    """The Trainer's accelerator, devices, num_nodes and strategy for `train`: one process once the
    processes of a distributed run have parted (evaluation and retraining after the fit)."""
    if not is_distributed(train):
        return {"accelerator": train.accelerator, "devices": 1, "num_nodes": 1, "strategy": "auto"}
    return {
        "accelerator": train.accelerator,
        "devices": train.devices,
        "num_nodes": train.num_nodes,
        "strategy": train.strategy if train.strategy != "auto" else "ddp",
        "use_distributed_sampler": False,  # TableDataModule shares each global batch out itself
    }


class GlobalBatchShare(Sampler[list[int]]):
    """Process `rank`'s share of each of `batches`' global batches (every `world`-th row from `rank`).
    All processes draw the same global batches (same generator seed), so each step of the run sees
    the rows one process would. A last global batch with fewer rows than processes joins the one
    before, so no process ever gets an empty batch (and all take the same number of steps)."""

    def __init__(self, batches: BatchSampler, rank: int, world: int) -> None:
        self.batches = batches
        self.rank = rank
        self.world = world

    def __iter__(self) -> Iterator[list[int]]:
        batches = [list(b) for b in self.batches]  # one epoch's row positions: small
        if len(batches) > 1 and len(batches[-1]) < self.world:  # only the last can be short
            batches[-2:] = [batches[-2] + batches[-1]]
        for batch in batches:
            yield batch[self.rank :: self.world]

    def __len__(self) -> int:
        n = len(self.batches)
        last = len(self.batches.sampler) % self.batches.batch_size  # type: ignore[arg-type]
        return n - 1 if n > 1 and 0 < last < self.world else n


def check_ranks_agree(parameters: torch.Tensor) -> None:
    """Raise if the processes' flattened parameters differ: DDP keeps them equal unless something
    updated one process alone (a per-process statistic, a callback writing weights)."""
    if not dist.is_available() or not dist.is_initialized():
        return
    # NCCL reduces CUDA tensors only (the model is back on the CPU once the fit ends)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    mine = parameters.detach().double().sum().reshape(1).to(device)
    biggest, smallest = mine.clone(), mine.clone()
    dist.all_reduce(biggest, op=dist.ReduceOp.MAX)
    dist.all_reduce(smallest, op=dist.ReduceOp.MIN)
    if float(biggest - smallest) > 1e-6 * max(1.0, abs(float(mine))):
        raise RuntimeError(
            "the training processes ended with different parameters (checksums "
            f"{float(smallest):.9g} … {float(biggest):.9g}); a per-process update broke DDP's contract"
        )


def part_processes() -> None:
    """End the distributed part of the run: the processes meet once more; the workers exit here
    (without tearing the process group down, which can hang when one side still talks), and the
    main process leaves the group and goes on alone."""
    global _single
    _single = True
    if not dist.is_available() or not dist.is_initialized():
        return
    dist.barrier()
    if not is_main_process():
        os._exit(0)
    dist.destroy_process_group()
