"""A stage's micro batches, built ahead by a `torch.utils.data.DataLoader`.

Micro batch i of a stage (counted from where the loop starts, e.g. a resumed step) is a pure
function of the data position: step `i // accumulation` reads this rank's slice of the
global batch at `data_offset + step * batch` (`data.shard`), and the micro batch is part
`i % accumulation` of that slice. So the loader's workers (forked processes reading the
token store by position) build exactly the batches the loop would build itself, in order,
and resuming or resharding stays bitwise. Pinned memory on CUDA lets the copy to the device
overlap the step (`non_blocking`).

Workers: `GROWDSL_DATA_WORKERS` if set, else 2 on CUDA and 0 (batches built in the loop's
process) on a CPU, whose cores train.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from growdsl.backend.data import Corpus, shard


def micro_batches(offset: int, size: int, micro: int) -> list[tuple[int, int]]:
    """(offset, size) of each micro batch of a rank's `size` samples at `offset`."""
    return [(offset + i, min(micro, size - i)) for i in range(0, size, micro)]


class MicroBatches(Dataset[dict[str, torch.Tensor]]):
    """Micro batch `i` of a stage from a data offset on (see the module docstring)."""

    def __init__(self, corpus: Corpus, *, offset: int, batch: int, micro: int, seq: int,
                 mlm_probability: float, rank: int = 0, world: int = 1) -> None:
        self.corpus, self.offset, self.batch, self.seq = corpus, offset, batch, seq
        self.mlm_probability, self.rank, self.world = mlm_probability, rank, world
        self.parts_per_step = len(micro_batches(0, batch // world, micro))
        self.micro = micro

    def part(self, i: int) -> tuple[int, int]:
        step, part = divmod(i, self.parts_per_step)
        at, size = shard(self.offset + step * self.batch, self.batch, self.rank, self.world)
        return micro_batches(at, size, self.micro)[part]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        at, n = self.part(i)
        return self.corpus.batch(at, n, self.seq, self.mlm_probability)


def workers(cuda: bool) -> int:
    given = os.environ.get("GROWDSL_DATA_WORKERS")
    return int(given) if given else (2 if cuda else 0)


def load(data: MicroBatches, steps: int, cuda: bool) -> Iterator[dict[str, torch.Tensor]]:
    """The micro batches of the next `steps` steps, in order (prefetched by workers)."""
    count = steps * data.parts_per_step
    n = workers(cuda)
    if n == 0 and not cuda:
        return (data[i] for i in range(count))
    return iter(DataLoader(data, batch_size=None, sampler=range(count), num_workers=n,
                           pin_memory=cuda, prefetch_factor=4 if n else None,
                           persistent_workers=False))
