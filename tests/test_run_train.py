"""The training loop's parts: BERT's MLM loss on masked positions equals HF's full-sequence
loss with the other labels ignored; the LR schedule (warmup, decay, restart / continue);
bert2BERT sub-model steps train the bottom layers only; a bert2BERT-style plan (`init from`
a smaller saved model, a 0-step starting stage, AKI + stacking, sub-models) runs."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from growdsl.backend.models import build_model
from growdsl.backend.train import loss_of, lr_factor, make_optimizer, submodel
from growdsl.ir import Train
from growdsl.shapes import Shape
from tests.test_run_e2e import cache, make_corpus, rows, run_spec, write_spec  # noqa: F401

pytestmark = pytest.mark.torch

BERT = Shape(family="bert", layers=3, hidden=16, heads=2, kv_heads=2, head_dim=8, ffn=32,
             vocab=50, seq=12, positions=12)


def test_mlm_loss_on_masked_positions_equals_hf_loss_with_ignored_labels() -> None:
    model = build_model(BERT, seed=1).eval()
    ids = torch.randint(5, 50, (3, 12))
    pos = torch.tensor([[1, 4], [2, 11], [3, 7]])
    labels = torch.randint(5, 50, (3, 2))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "token_type_ids": torch.zeros_like(ids), "mlm_positions": pos, "labels": labels}
    full = torch.full_like(ids, -100).scatter(1, pos, labels)
    expected = model(input_ids=ids, labels=full).loss
    assert torch.allclose(loss_of(model, batch), expected, atol=1e-6)


def test_lr_schedule_warmup_decay_and_floor() -> None:
    train = Train(lr=1.0, warmup=4, decay="linear", min_lr=0.1)
    got = [lr_factor(s, 10, train) for s in range(11)]
    assert got[:4] == [0.25, 0.5, 0.75, 1.0]
    assert got[4] == 1.0 and math.isclose(got[10], 0.1)
    assert all(a >= b for a, b in itertools.pairwise(got[3:]))
    cosine = Train(lr=1.0, warmup=0, decay="cosine")
    assert math.isclose(lr_factor(5, 10, cosine), 0.5)
    assert lr_factor(7, 10, Train(warmup=0, decay="constant")) == 1.0


def test_submodel_step_trains_the_bottom_layers_only() -> None:
    model = build_model(BERT, seed=0)
    opt = make_optimizer(model, Train(lr=1e-2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.randint(5, 50, (2, 12))
    with submodel(model, "bert", 1):
        assert len(model.bert.encoder.layer) == 1
        model(input_ids=ids, labels=ids).loss.backward()
    assert len(model.bert.encoder.layer) == 3
    opt.step()
    after = model.state_dict()
    changed = {k for k in before if not before[k].equal(after[k])}
    assert any(k.startswith("bert.encoder.layer.0.") for k in changed)
    assert not any(k.startswith(("bert.encoder.layer.1.", "bert.encoder.layer.2."))
                   for k in changed)


B2B = """
    model bert(layers=4, hidden=32, heads=2, ffn=64, seq=32, vocab=160)
    init from "small"
    train {
      batch = 4
      lr = 1e-3
      warmup = 2
      data = "corpus"
      checkpoint_every = 2
    }
    stage 0: depth=2 hidden=16 heads=1 ffn=32 -> aki, stack(remainder=top)
    stage 5: submodels=2
    stage 3:
"""


@pytest.mark.slow
def test_bert2bert_plan_from_a_smaller_saved_model(tmp_path: Path, cache: Path) -> None:  # noqa: F811
    make_corpus(tmp_path / "corpus")
    small = Shape(family="bert", layers=2, hidden=16, heads=1, kv_heads=1, head_dim=16, ffn=32,
                  vocab=160, seq=32, positions=32)
    build_model(small, seed=3).save_pretrained(str(tmp_path / "small"))
    out = tmp_path / "out"
    assert run_spec(write_spec(tmp_path / "b2b.grow", B2B), out) == 0
    growth = rows(out, "growth")
    assert [r["note"] for r in growth] == ["aki (none), stack (none)", "(no operator)"]
    assert float(growth[1]["max_abs_diff"]) == 0.0          # no operator: the same function
    assert [int(r["stage"]) for r in rows(out, "train")] == [1] * 5 + [2] * 3
    assert not (out / "stages" / "0-stage1").exists()      # the 0-step stage is not re-saved
    assert (out / "stages" / "1-stage2" / "model.safetensors").exists()
