"""One rank of a gloo process group in a spawned test worker: the environment torchrun
would set, the group from a shared file, growdsl's distributed state, and shutdown."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from growdsl.backend import distributed


@contextmanager
def gloo_rank(rank: int, world: int, init: str) -> Iterator[None]:
    """Run the body as `rank` of `world` gloo processes meeting at the file `init`."""
    torch.set_num_threads(1)
    os.environ.update(LOCAL_RANK=str(rank), RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    distributed.init_from_env()
    try:
        yield
    finally:
        distributed.shutdown()
