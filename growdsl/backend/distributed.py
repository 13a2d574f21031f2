"""Data-parallel runs under `torchrun`: the process group, the device mesh and the rank-aware
collectives. Sharded models (FSDP2) and their growth are `sharded`'s.

- `init_from_env` starts the process group from torchrun's environment (`RANK`,
  `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`/`MASTER_PORT` or a rendezvous): NCCL on CUDA,
  gloo on the CPU, one 1-D device mesh over all ranks. A plain `growdsl run` never calls it:
  `current()` then describes one process and every helper here is a no-op.
- `mean`, `any_true`, `barrier`, `on_main_first`, `broadcast`: the collectives the executor
  needs (metrics reduced across ranks, Ctrl-C agreed on, rank 0 writing while others wait,
  rank 0's user error raised on every rank).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh

from growdsl.errors import GrowError

log = logging.getLogger("growdsl.run")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class Dist:
    """This process's place in the job (one process: rank 0 of 1, no mesh)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""
    mesh: Any = None

    @property
    def active(self) -> bool:
        """True under torchrun (even with one rank): the FSDP2 path."""
        return self.mesh is not None

    @property
    def main(self) -> bool:
        return self.rank == 0


_current = Dist()


def current() -> Dist:
    return _current


def under_torchrun() -> bool:
    """torchrun (torch.distributed.run) sets these for every worker."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env() -> Dist:
    """Join the job torchrun started: process group, device, 1-D device mesh."""
    global _current
    if _current.active:
        return _current
    local_rank = int(os.environ["LOCAL_RANK"])
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    world = dist.get_world_size()
    mesh = init_device_mesh("cuda" if cuda else "cpu", (world,), mesh_dim_names=("dp",))
    _current = Dist(rank=dist.get_rank(), world=world, local_rank=local_rank,
                    backend=backend, mesh=mesh)
    return _current


def shutdown() -> None:
    global _current
    if dist.is_initialized():
        dist.destroy_process_group()
    _current = Dist()


def mean(value: torch.Tensor) -> float:
    """The mean of a scalar over all ranks (the value itself in one process)."""
    if not current().active:
        return value.item()
    t = value.detach().float().reshape(1).clone()
    dist.all_reduce(t)
    return t.item() / current().world


def weighted_mean(total: float, count: float) -> float:
    """sum(total) / sum(count) over all ranks."""
    if not current().active:
        return total / max(count, 1e-30)
    t = torch.tensor([total, count], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0] / t[1].clamp_min(1e-30))


def any_true(flag: bool) -> bool:
    """True on every rank when any rank says True (Ctrl-C agreed on)."""
    if not current().active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def agree(error: OSError | None) -> None:
    """Raise on every rank the OSError any rank met (its own, or the first failing rank's,
    rebuilt from its errno and message); also a barrier. So a full disk on one rank stops
    every rank at once instead of leaving the others waiting for the process-group
    timeout."""
    if not current().active:
        if error is not None:
            raise error
        return
    if not any_true(error is not None):         # the common case: one small all-reduce
        return
    mine = None if error is None else (error.errno, error.strerror, str(error.filename or ""))
    every: list[Any] = [None] * current().world
    dist.all_gather_object(every, mine)
    if error is not None:
        raise error
    for rank, other in enumerate(every):
        if other is not None:
            code, reason, filename = other
            raise OSError(code, f"{reason} (on rank {rank})", filename or None)


def barrier() -> None:
    if current().active:
        dist.barrier()


def broadcast(value: T) -> T:
    """Rank 0's `value` on every rank."""
    if not current().active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main_first(fn: Callable[[], T], others: bool = True) -> T | None:
    """Run `fn` on rank 0; its GrowError is raised on every rank; then (when `others`) the
    other ranks run it too (e.g. reading the cache rank 0 filled). Returns `fn`'s result
    (None on ranks that did not run it)."""
    d = current()
    if not d.active:
        return fn()
    result: T | None = None
    error: GrowError | None = None
    if d.main:
        try:
            result = fn()
        except GrowError as exc:
            error = exc
    error = broadcast(error)
    if error is not None:
        raise error
    if others and not d.main:
        result = fn()
    return result
