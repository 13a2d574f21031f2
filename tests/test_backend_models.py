"""Models from shapes: weight maps cover every tensor, shapes round-trip through configs,
low-cost stage models train and save, and grown models save and load with tied weights."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import BertForMaskedLM

from growdsl import families
from growdsl.backend.equivalence import compare
from growdsl.backend.families import weight_map
from growdsl.backend.models import build_model, load_model, save_model, shape_of, stored_state
from growdsl.backend.surgery import grow_model
from growdsl.backend.testing import batch_for, growth, tiny_shape
from growdsl.backend.treatments import ramp_mask
from growdsl.shapes import Shape

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

CASES = [(f, tied, rank) for f in families.BUILTIN for tied in (True, False)
         for rank in (0, 3)]


def _shape(family: str, tied: bool = True, **extra: object) -> Shape:
    kv = 1 if families.get(family).grouped_query else 2
    return tiny_shape(family, heads=2, kv_heads=kv, tied=tied, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("family", "tied", "rank"), CASES)
def test_weight_map_covers_every_tensor(family: str, tied: bool, rank: int) -> None:
    shape = _shape(family, tied, ffn_rank=rank)
    model = build_model(shape)
    state, wmap = stored_state(model), weight_map(shape)
    assert set(state) == set(wmap)
    size = {"D": shape.hidden, "Q": shape.heads * shape.head_dim, "F": shape.ffn,
            "KV": shape.kv_heads * shape.head_dim, "V": shape.vocab, "P": shape.positions,
            "T": 2, "R": rank}
    size["QKV"] = size["Q"] + 2 * size["KV"]
    for key, axes in wmap.items():
        assert tuple(state[key].shape) == tuple(size[space] for space, _ in axes), key
    assert shape_of(model.config) == shape


def test_pool_one_equals_plain_bert_and_pooling_changes_the_function() -> None:
    plain = build_model(_shape("bert"), seed=3)
    pooled = build_model(_shape("bert", pool=2), seed=3)
    assert type(plain) is BertForMaskedLM and type(pooled) is not BertForMaskedLM
    batch = batch_for(_shape("bert"), 2, 9, 0)
    pooled.config.growdsl["pool"] = 1          # window 1: the hand-written first layer is BERT's
    assert compare(plain, pooled, batch).max_abs <= 1e-5
    pooled.config.growdsl["pool"] = 2
    batch["mlm_positions"] = torch.tensor([[1, 4], [2, 8]])
    with torch.no_grad():
        for p in pooled.parameters():
            p.mul_(20)
        for p in plain.parameters():
            p.mul_(20)
    assert compare(plain, pooled, batch).max_abs > 1e-4


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_pooled_bert_trains_on_masked_positions(mode: str) -> None:
    shape = _shape("bert", pool=2, pool_mode=mode)
    model = build_model(shape)
    batch = batch_for(shape, 2, 9, 0)
    positions = torch.tensor([[1, 4], [2, 8]])
    labels = batch["input_ids"].gather(1, positions)
    out = model(**batch, mlm_positions=positions, labels=labels)
    assert out.logits.shape == (2, 2, shape.vocab) and math.isfinite(float(out.loss.detach()))
    out.loss.backward()
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad is not None


@pytest.mark.parametrize("treatment", [{"ffn_rank": 3}, {"ffn_share": 2, "ffn": 32},
                                       {"pool": 2}])
def test_low_cost_models_save_and_load(tmp_path: Path, treatment: dict) -> None:
    shape = _shape("bert", **treatment)
    model = build_model(shape, seed=1)
    batch = batch_for(shape, 2, 8, 1)
    labels = batch["input_ids"]
    if shape.pool > 1:
        batch["mlm_positions"] = torch.tensor([[1, 2], [3, 4]])
        labels = labels.gather(1, batch["mlm_positions"])
    loss = model(**batch, labels=labels).loss
    loss.backward()                                   # trainable
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    save_model(model, tmp_path)
    back = load_model(tmp_path)
    assert shape_of(back.config) == shape
    assert compare(model, back, batch).max_abs == 0.0


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
@pytest.mark.parametrize("tied", [True, False])
def test_grown_model_round_trips_with_tied_weights(tmp_path: Path, family: str,
                                                  tied: bool) -> None:
    src = _shape(family, tied)
    dst = src.replace(layers=4, hidden=16, heads=4, kv_heads=2 * src.kv_heads, ffn=32)
    grown, _ = grow_model(build_model(src), dst, growth("clone", "stack"))
    save_model(grown, tmp_path)
    back = load_model(tmp_path)
    assert shape_of(back.config) == dst
    emb, head = back.get_input_embeddings().weight, back.get_output_embeddings().weight
    assert (emb.data_ptr() == head.data_ptr()) == tied
    assert compare(grown, back, batch_for(dst, 2, 7, 0)).max_abs == 0.0


def test_masked_model_saves_its_gate_and_ramps(tmp_path: Path) -> None:
    src = _shape("bert")
    dst = src.replace(layers=3, ffn=20)
    small = build_model(src)
    grown, _ = grow_model(small, dst, growth(("masked", {"ramp": 4})))
    batch = batch_for(src, 2, 6, 0)
    assert compare(small, grown, batch).max_abs == 0.0
    save_model(grown, tmp_path)
    back = load_model(tmp_path)
    assert compare(grown, back, batch).max_abs == 0.0
    assert ramp_mask(back, 2) == 0.5
    with torch.no_grad():
        for p in back.parameters():
            p.mul_(10)
    assert compare(small, back, batch).max_abs > 1e-4
