"""BERT's masked-LM loss on an FSDP2-sharded model (2 gloo ranks, in-process): the loss runs
the encoder and the head on the masked positions itself, outside the model's `forward`, so
`sharded.shard` registers it as a forward of the root module; without that its sharded
parameters met unsharded activations ("mixed torch.Tensor and DTensor") under torchrun."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.gloo import gloo_rank

pytestmark = [pytest.mark.torch, pytest.mark.slow]

WORLD = 2


def _model_and_batch() -> tuple[Any, dict[str, torch.Tensor]]:
    from growdsl.backend.models import build_model
    from growdsl.backend.testing import tiny_shape

    model = build_model(tiny_shape("bert", layers=2), seed=0).eval()     # no dropout
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 23, (2, 12), generator=gen)
    positions = torch.tensor([[1, 4, 7], [0, 5, 11]])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "token_type_ids": torch.zeros_like(ids), "mlm_positions": positions,
             "labels": ids.gather(1, positions)}
    return model, batch


def _loss_and_grad(shard: bool) -> tuple[float, float]:
    from growdsl.backend import sharded
    from growdsl.backend.train import loss_of

    model, batch = _model_and_batch()
    if shard:
        model = sharded.shard(model)
    loss = loss_of(model, batch)
    loss.backward()
    embed = model.bert.embeddings.word_embeddings.weight.grad
    norm = embed.full_tensor().norm() if hasattr(embed, "full_tensor") else embed.norm()
    return float(loss), float(norm)


def _worker(rank: int, init: str, out: str) -> None:
    with gloo_rank(rank, WORLD, init):
        loss, grad = _loss_and_grad(shard=True)
    Path(out, f"rank{rank}.json").write_text(json.dumps({"loss": loss, "grad": grad}))


def test_bert_masked_lm_loss_on_a_sharded_model(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    loss, grad = _loss_and_grad(shard=False)
    for got in ranks:       # every rank saw the whole batch: the one-process loss, gradient
        assert got["loss"] == pytest.approx(loss, rel=1e-5)
        assert got["grad"] == pytest.approx(grad, rel=1e-4)
