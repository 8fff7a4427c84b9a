"""Multi-process training through ``torchrun``: process-group set-up and the few collectives the trainer uses.

``torchrun --nproc_per_node N train.py ...`` (or ``--nnodes M --node_rank k --rdzv_endpoint host:port`` across
machines) sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`init_distributed` then joins the process group
(NCCL when the run uses CUDA, Gloo on CPU) and pins each process to the GPU of its local rank. Without those
variables (or with ``WORLD_SIZE=1``) everything here is a no-op, so the same code runs on one process.
Collectives time out after ``REPOSE_DIST_TIMEOUT_S`` seconds (default 3600: rank 0 evaluates while the others wait).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, List

import torch
import torch.distributed as dist

TIMEOUT_ENV = "REPOSE_DIST_TIMEOUT_S"


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job.

    Attributes:
        rank: global rank (0 on a single process).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        backend: process-group backend ("nccl", "gloo"), or None on a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = None

    @property
    def distributed(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that evaluates, logs and writes checkpoints)."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an int; got {value!r}") from None


def init_distributed(device_type: str) -> DistInfo:
    """Join the torchrun process group if this process was started by torchrun with several processes.

    Args:
        device_type: "cuda" or "cpu": the device the run trains on (decides NCCL vs Gloo).

    Returns:
        :class:`DistInfo` for this process.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistInfo()
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        # Rank 0 evaluates while the others wait in a collective: allow long evaluations.
        timeout = datetime.timedelta(seconds=_env_int(TIMEOUT_ENV, 3600))
        dist.init_process_group(backend=backend, timeout=timeout)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, backend=backend)


def cleanup(info: DistInfo) -> None:
    """Leave the process group (no-op on a single process)."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every process (no-op on a single process)."""
    if info.distributed:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over all processes, in place, and return it (unchanged on a single process)."""
    if info.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj: Any, info: DistInfo, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process (picklable objects)."""
    if not info.distributed:
        return obj
    holder = [obj if info.rank == src else None]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def all_gather_object(obj: Any, info: DistInfo) -> List[Any]:
    """Every process's ``obj``, as a list indexed by rank (a one-element list on a single process)."""
    if not info.distributed:
        return [obj]
    out: List[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
