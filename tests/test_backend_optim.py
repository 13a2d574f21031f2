"""Optimizer state through growth: new parameters always reach the optimizer; `transform`
makes the first AdamW step after growth move every copy exactly as its source moved."""

from __future__ import annotations

import copy

import pytest
import torch

from growdsl.backend.models import build_model, stored_state
from growdsl.backend.optim_state import grow_optimizer
from growdsl.backend.surgery import grow_lazy, grow_model
from growdsl.backend.surgery.core import lazy, materialize
from growdsl.backend.testing import batch_for, growth, tiny_shape

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict, steps: int) -> None:
    model.eval()                        # dropout off: identical gradients run to run
    for _ in range(steps):
        opt.zero_grad()
        model(**batch, labels=batch["input_ids"]).loss.backward()
        opt.step()


def _setup(family: str) -> tuple:
    src = tiny_shape(family, layers=2, tied=True)
    model = build_model(src, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0, eps=1e-16)
    batch = batch_for(src, 2, 6, 0)
    _train(model, opt, batch, 3)
    return src, model, opt, batch


def _without_key_bias(key: str, t: torch.Tensor) -> torch.Tensor:
    """Attention key biases get an identically zero gradient (softmax is shift-invariant),
    so Adam normalizes float noise there: leave them out of the comparison."""
    if key.endswith("key.bias"):
        return torch.zeros_like(t)
    if key.endswith("c_attn.bias"):
        n = t.shape[0] // 3
        return torch.cat([t[:n], torch.zeros_like(t[n:2 * n]), t[2 * n:]])
    return t


def _updates(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict) -> dict:
    before = {k: v.clone() for k, v in stored_state(model).items()}
    _train(model, opt, batch, 1)
    return {k: before[k] - v for k, v in stored_state(model).items()}


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
@pytest.mark.parametrize("ops", [("clone",), (("fpi", {"mapping": "random"}),)])
def test_transform_preserves_the_adam_step(family: str, ops: tuple) -> None:
    """Function-preserving width growth, x2 uniform (clone) or FFN 16 -> 23 with uneven
    copy counts (fpi random): each copy's AdamW update equals its source's."""
    src, model, opt, batch = _setup(family)
    dst = src.replace(hidden=16, heads=4, kv_heads=4, ffn=32) if ops == ("clone",) else \
        src.replace(ffn=23)
    grown, record = grow_model(model, dst, growth(*ops))
    new_opt = grow_optimizer(opt, model, grown, record, "transform")
    small_delta = _updates(*copy.deepcopy((model, opt)), batch)
    expected = materialize(grow_lazy(lazy(small_delta), record.steps, 0, "copy"))
    got = _updates(grown, new_opt, batch)
    for key, want in expected.items():
        want, got[key] = _without_key_bias(key, want), _without_key_bias(key, got[key])
        scale = want.abs().max().item() or 1.0
        assert (got[key] - want).abs().max().item() <= 1e-4 * scale + 1e-6, key  # fp32 ulp

    # transfer keeps the old moments unscaled: the grown model's first step differs
    grown2, record2 = grow_model(model, dst, growth(*ops))
    moved = _updates(grown2, grow_optimizer(opt, model, grown2, record2, "transfer"), batch)
    worst = max((moved[k] - v).abs().max().item() for k, v in expected.items())
    assert worst > 1e-5


@pytest.mark.parametrize("policy", ["reset", "transfer", "transform"])
def test_every_new_parameter_reaches_the_optimizer(policy: str) -> None:
    src, model, opt, batch = _setup("gpt2")
    groups = [{"params": [p for n, p in model.named_parameters() if n.endswith("bias")],
               "weight_decay": 0.0},
              {"params": [p for n, p in model.named_parameters() if not n.endswith("bias")]}]
    opt = torch.optim.AdamW(groups, lr=1e-3)
    _train(model, opt, batch, 1)
    grown, record = grow_model(model, src.replace(layers=5), growth("stack"))
    new_opt = grow_optimizer(opt, model, grown, record, policy)
    held = {id(p) for g in new_opt.param_groups for p in g["params"]}
    assert held == {id(p) for p in grown.parameters()}
    names = {id(p): n for n, p in grown.named_parameters()}
    assert all(names[id(p)].endswith("bias") for p in new_opt.param_groups[0]["params"])
    assert new_opt.param_groups[0]["weight_decay"] == 0.0
    assert (len(new_opt.state) == 0) == (policy == "reset")
    if policy == "transfer":
        fourth = grown.transformer.h[4].attn.c_attn.weight      # a copy of layer 0: zero moments
        assert not new_opt.state[fourth]["exp_avg"].any()
        first = grown.transformer.h[0].attn.c_attn.weight       # the original keeps its moments
        assert new_opt.state[first]["exp_avg"].any()
    _train(grown, new_opt, batch, 1)


def test_retune_sets_each_group_by_its_role_not_its_position() -> None:
    """A stage's weight decay reaches the decayed weights' group wherever it stands (here
    last), never the biases and norm gains; LR and betas reach every group."""
    from growdsl.backend.train import DECAYED, make_optimizer, retune
    from growdsl.ir import Train

    model = build_model(tiny_shape("gpt2", layers=2), seed=0)
    opt = make_optimizer(model, Train(weight_decay=0.01))
    opt.param_groups.reverse()                  # order is not what retune goes by
    retune(opt, Train(lr=5e-4, weight_decay=0.25, betas=(0.8, 0.9)))
    decayed = [g for g in opt.param_groups if g["role"] == DECAYED]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.25]
    assert len(decayed) == 1 and all(p.ndim >= 2 for p in decayed[0]["params"])
    assert {(g["lr"], g["betas"]) for g in opt.param_groups} == {(5e-4, (0.8, 0.9))}
