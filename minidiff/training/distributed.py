"""Data-parallel training across processes launched by ``torchrun``.

Each of the ``world_size`` processes holds a full copy of the model and trains on a
disjoint shard of every global batch: rank r takes items ``r*b .. (r+1)*b - 1`` of the
global batch of size ``world_size * b``, drawn in the same order as a single process
would draw it. `torch.nn.parallel.DistributedDataParallel` averages the gradients over the
ranks after each backward pass, so, with equal shards, every rank sees the gradient of the
mean loss over the global batch -- the single-process gradient up to the order of the
floating-point additions in the all-reduce (which is why the weights agree to round-off,
not bit for bit). Only rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistributedContext", "setup_distributed", "cleanup_distributed", "shard", "shard_step",
]  # fmt: skip

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a data-parallel run.

    Attributes:
        rank: this process's index in 0..world_size-1.
        world_size: the number of processes (1: not distributed).
        local_rank: the index on this machine (selects the GPU).
        device: the device this process trains on.
        backend: "nccl" (CUDA), "gloo" (CPU), or None when not distributed.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes logs and checkpoints)."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def setup_distributed() -> DistributedContext:
    """Join the process group described by torchrun's environment variables.

    Reads RANK, WORLD_SIZE and LOCAL_RANK (MASTER_ADDR and MASTER_PORT are read by
    ``init_process_group``). Without WORLD_SIZE, or with WORLD_SIZE=1, nothing is
    initialised and a single-process context is returned. The backend is NCCL with one
    GPU per process (``cuda:LOCAL_RANK``) when CUDA is available, else Gloo on the CPU.

    Raises:
        ValueError: a malformed variable, or a rank outside 0..WORLD_SIZE-1.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK must be in [0, {world_size}), got {rank}")
    cuda = torch.cuda.is_available()
    if cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size == 1:
        return DistributedContext(device=device)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ValueError(f"environment variable {name} must be set when WORLD_SIZE > 1")
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, device, backend)


def cleanup_distributed() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current_rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, or ``(0, 1)``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous share of a global batch (first dimension).

    Raises:
        ValueError: the batch size is not a multiple of ``world_size``.
    """
    if batch.shape[0] % world_size != 0:
        raise ValueError(
            f"the global batch size {batch.shape[0]} must be a multiple of world_size {world_size}"
        )
    size = batch.shape[0] // world_size
    return batch[rank * size : (rank + 1) * size]


def shard_step(
    x0: torch.Tensor, draws: dict[str, torch.Tensor], y: torch.Tensor | None,
    rank: int, world_size: int,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
    """Rank ``rank``'s share of one training step's global batch: x_0, the process's draws
    (t, eps, ...) and the conditions ``y`` (or None), each by `shard`; as they are for a
    single process."""
    if world_size == 1:
        return x0, draws, y
    draws = {k: shard(v, rank, world_size) for k, v in draws.items()}
    y = None if y is None else shard(y, rank, world_size)
    return shard(x0, rank, world_size), draws, y
