"""Running at scale on the CPU: gradient accumulation gives the update of the whole batch
(within float rounding) and resumes bitwise; activation checkpointing gives the same
gradients on every family; the loader's workers build the loop's batches exactly; bf16
autocast and `torch.compile` run on the CPU; the vectorized masking depends on the sample
index only."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from growdsl.backend.data import Corpus, Specials
from growdsl.backend.loader import MicroBatches, load
from growdsl.backend.models import build_model
from growdsl.backend.state import RunState
from growdsl.backend.testing import tiny_shape
from growdsl.backend.train import Device, Loop, loss_of, make_optimizer, make_schedule, steps
from growdsl.ir import Stage, Train
from growdsl.shapes import Shape

pytestmark = pytest.mark.torch

CPU = Device(device=torch.device("cpu"), autocast=None)
FAMILIES = ("bert", "gpt2", "llama")


def corpus(family: str, vocab: int = 23) -> Corpus:
    ids = np.random.default_rng(0).integers(5, vocab, 4000).astype(np.int32)
    specials = Specials(sep=1, cls=2, mask=3, first_normal=5) if family == "bert" else Specials(
        sep=1, first_normal=5)
    return Corpus(family=family, train_ids=ids[:3600], val_ids=ids[3600:], specials=specials,
                  vocab=vocab, seed=3)


def stage(family: str, **train: Any) -> Stage:
    shape = tiny_shape(family, kv_heads=1 if family == "llama" else None)
    t = Train(batch=8, lr=1e-2, warmup=0, grad_clip=1.0, **train)
    return Stage(index=0, name="s", steps=4, tokens=4 * 8 * shape.seq, shape=shape, train=t)


def no_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """Dropout draws from the RNG in batch order: off, so that micro batches must agree."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "attn_pdrop",
                "resid_pdrop", "embd_pdrop", "attention_dropout"):
        if hasattr(model.config, key):
            setattr(model.config, key, 0.0)
    return model


def loop_for(st: Stage, dev: Device = CPU, seed: int = 0) -> Loop:
    model = no_dropout(build_model(st.shape, seed=seed)).to(dev.device)
    opt = make_optimizer(model, st.train)
    state = RunState(stage=0, step=0, global_step=0, data_offset=0, flops=0.0, tokens=0,
                     wall=0.0)
    return Loop(model=model, optimizer=opt, scheduler=make_schedule(opt, st.train, 0, st.steps),
                corpus=corpus(st.shape.family), stage=st, dev=dev, state=state, step_flops=1.0)


def train(loop: Loop, until: int | None = None) -> list[float]:
    losses = []
    for log in steps(loop, lambda: False):
        losses.append(log.loss)
        if until is not None and log.state.step == until:
            break
    return losses


@pytest.mark.parametrize("family", FAMILIES)
def test_accumulation_gives_the_whole_batch_update(family: str) -> None:
    whole = loop_for(stage(family))
    halves = loop_for(stage(family, micro_batch=2))       # 4 micro batches of 2
    a, b = train(whole), train(halves)
    assert np.allclose(a, b, rtol=1e-5, atol=1e-6)
    for (name, x), y in zip(whole.model.state_dict().items(),
                            halves.model.state_dict().values(), strict=True):
        assert torch.allclose(x, y, rtol=1e-4, atol=1e-5), name
    assert halves.state.data_offset == whole.state.data_offset == 4 * 8


def test_accumulation_resumes_bitwise() -> None:
    st = stage("bert", micro_batch=2)
    straight = loop_for(st)
    train(straight)
    first = loop_for(st)
    train(first, until=2)                   # stop after step 2, then carry everything over
    again = loop_for(st, seed=9)
    again.model.load_state_dict(first.model.state_dict())
    again.optimizer.load_state_dict(first.optimizer.state_dict())
    again.scheduler.load_state_dict(first.scheduler.state_dict())
    again.state = first.state
    train(again)
    for x, y in zip(straight.model.state_dict().values(), again.model.state_dict().values(),
                    strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("family,extra", [("bert", {}), ("gpt2", {}), ("llama", {}),
                                          ("bert", {"pool": 2}), ("gpt2", {"ffn_rank": 4})])
def test_checkpointing_gives_the_same_gradients(family: str, extra: dict[str, Any]) -> None:
    from growdsl.backend.train import set_checkpointing

    shape: Shape = tiny_shape(family, kv_heads=1 if family == "llama" else None, **extra)
    batch = MicroBatches(corpus(family), offset=0, batch=4, micro=4, seq=shape.seq,
                         mlm_probability=0.15)[0]
    grads = []
    for on in (False, True):
        model = no_dropout(build_model(shape, seed=0))
        set_checkpointing(model, on)
        model.train()
        loss_of(model, batch).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()
                      if p.grad is not None})
        layers = [m for m in model.modules() if getattr(m, "gradient_checkpointing", False)]
        assert bool(layers) == on
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_loader_workers_build_the_loops_batches(family: str) -> None:
    data = MicroBatches(corpus(family), offset=40, batch=8, micro=2, seq=16,
                        mlm_probability=0.15, rank=1, world=2)
    assert data.parts_per_step == 2
    inline = list(load(data, 3, cuda=False))
    import os

    os.environ["GROWDSL_DATA_WORKERS"] = "2"
    try:
        workers = list(load(data, 3, cuda=False))
    finally:
        del os.environ["GROWDSL_DATA_WORKERS"]
    assert len(inline) == len(workers) == 6
    for a, b in zip(inline, workers, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # rank 1 of 2, step 1, second micro batch: samples 40 + 8 + 4 + 2 .. +3
    c = corpus(family)
    assert torch.equal(inline[3]["input_ids"][:, 1:] if family == "bert" else inline[3][
        "input_ids"], c.batch(54, 2, 16, 0.15)["input_ids"][:, 1:] if family == "bert" else
        c.batch(54, 2, 16, 0.15)["input_ids"])


def test_masking_depends_on_the_sample_index_only() -> None:
    c = corpus("bert")
    whole = c.batch(100, 6, 16, 0.15)
    one = c.batch(103, 1, 16, 0.15)
    for k in whole:
        assert torch.equal(whole[k][3:4], one[k])
    other_seed = replace(c, seed=4).batch(100, 6, 16, 0.15)
    assert not torch.equal(whole["mlm_positions"], other_seed["mlm_positions"])


def test_bf16_autocast_runs_on_the_cpu() -> None:
    from growdsl.backend.train import pick_device

    dev = pick_device("bf16")
    assert dev.device.type == "cpu" and dev.autocast is torch.bfloat16
    assert pick_device("auto").autocast is None                  # fp32 on a CPU by default
    fp32, bf16 = loop_for(stage("gpt2")), loop_for(stage("gpt2"), dev=dev)
    a, b = train(fp32), train(bf16)
    assert all(np.isfinite(b)) and a != b                         # bf16 really ran
    assert np.allclose(a, b, rtol=0.05)
    model = bf16.model
    assert all(p.dtype == torch.float32 for p in model.parameters())     # fp32 master weights
    with dev.context():
        logits = model(input_ids=torch.zeros(1, 4, dtype=torch.long)).logits
    assert logits.dtype == torch.bfloat16


def test_optimizer_uses_a_multi_tensor_kernel_on_the_cpu() -> None:
    model = build_model(tiny_shape("gpt2"), seed=0)
    opt = make_optimizer(model, Train())
    assert opt.defaults["foreach"] is True and not opt.defaults.get("fused")


@pytest.mark.slow
def test_compiled_run_on_the_cpu_matches_eager() -> None:
    st = replace(stage("gpt2"), steps=2)
    eager = train(loop_for(st))
    compiled = train(loop_for(st, dev=replace(CPU, compile=True)))
    assert np.allclose(eager, compiled, rtol=1e-4)
