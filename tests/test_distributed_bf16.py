"""FSDP2 mixed precision over gloo, on the CPU: 2 ranks, bf16 weights gathered for compute
and fp32 gradient reduction (`sharded.shard(model, bf16=True)`), bf16 autocast, gradient
accumulation (micro batches of 2 of each rank's 4 samples): the layers compute in bf16, and
the losses follow one fp32 process's within bf16 rounding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.gloo import gloo_rank

pytestmark = [pytest.mark.torch, pytest.mark.slow]

WORLD = 2


def _losses(dev: Any, shard: bool) -> tuple[list[float], list[str]]:
    from growdsl.backend import distributed, sharded
    from growdsl.backend.train import make_optimizer, make_schedule
    from tests.test_scale import loop_for, stage, train

    st = stage("gpt2", micro_batch=2)
    loop = loop_for(st, dev=dev)
    seen: list[str] = []
    if shard:
        loop.model = sharded.shard(loop.model, bf16=True)
        loop.optimizer = make_optimizer(loop.model, st.train)
        loop.scheduler = make_schedule(loop.optimizer, st.train, 0, st.steps)
        d = distributed.current()
        loop.rank, loop.world = d.rank, d.world
    layer = loop.model.transformer.h[0].mlp.c_fc
    layer.register_forward_hook(lambda m, i, o: seen.append(str(o.dtype)))
    return train(loop), seen


def _worker(rank: int, init: str, out: str) -> None:
    from growdsl.backend.train import pick_device

    with gloo_rank(rank, WORLD, init):
        losses, seen = _losses(pick_device("bf16"), shard=True)
    Path(out, f"rank{rank}.json").write_text(json.dumps({"losses": losses, "seen": seen}))


def test_fsdp2_mixed_precision_over_gloo(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    from tests.test_scale import CPU

    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert ranks[0]["losses"] == ranks[1]["losses"]          # the mean over the ranks
    assert set(ranks[0]["seen"]) == {"torch.bfloat16"}         # the layers computed in bf16
    reference, _ = _losses(CPU, shard=False)
    got = ranks[0]["losses"]
    assert all(np.isfinite(got)) and got != reference
    assert np.allclose(got, reference, rtol=0.03)
