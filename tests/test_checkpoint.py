"""Checkpoints: an exact round trip of model, optimizer, scheduler and RNG; incomplete,
truncated or corrupt ones skipped with a warning in favour of the previous one; keep-last-k."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from growdsl.backend import checkpoint as ckpt
from growdsl.backend.models import build_model
from growdsl.backend.state import RunState
from growdsl.backend.train import make_optimizer, make_schedule
from growdsl.ir import Train
from growdsl.shapes import Shape

pytestmark = pytest.mark.torch

SHAPE = Shape(family="gpt2", layers=2, hidden=16, heads=2, kv_heads=2, head_dim=8, ffn=32,
              vocab=64, seq=8, positions=8)
TRAIN = Train(lr=1e-2, warmup=2)


def trained(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer, object]:
    model = build_model(SHAPE, seed=seed)
    opt = make_optimizer(model, TRAIN)
    sched = make_schedule(opt, TRAIN, 0, 10)
    torch.manual_seed(seed)
    for _ in range(2):
        ids = torch.randint(0, 64, (2, 8))
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    return model, opt, sched


def state(step: int) -> RunState:
    return RunState(stage=0, step=step, global_step=step, data_offset=4 * step, flops=1.5 * step,
                    tokens=32 * step, wall=0.1, plan_key="k")


def test_round_trip_restores_everything_exactly(tmp_path: Path) -> None:
    model, opt, sched = trained()
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    path = ckpt.save(tmp_path, model, opt, sched, state(2), keep=2)  # type: ignore[arg-type]
    expected = (random.random(), np.random.rand(), torch.rand(1))
    model2, opt2, sched2 = trained(seed=1)
    got_state = ckpt.load_into(path, model2, opt2, sched2)  # type: ignore[arg-type]
    assert got_state == state(2)
    assert all(a.equal(b) for a, b in zip(model.state_dict().values(),
                                          model2.state_dict().values(), strict=True))
    for p, p2 in zip(model.parameters(), model2.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert opt.state[p][key].equal(opt2.state[p2][key])
    assert sched2.state_dict() == sched.state_dict()  # type: ignore[attr-defined]
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.rand(1).equal(expected[2])


def _three(tmp_path: Path) -> list[Path]:
    model, opt, sched = trained()
    return [ckpt.save(tmp_path, model, opt, sched, state(s), keep=3)  # type: ignore[arg-type]
            for s in (1, 2, 3)]


@pytest.mark.parametrize("damage", ["truncate", "flip", "no-manifest", "missing-file"])
def test_damaged_newest_checkpoint_is_skipped_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    paths = _three(tmp_path)
    newest = paths[-1]
    victim = next((newest / "model_optim").glob("*.distcp"))
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    elif damage == "flip":
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "no-manifest":
        (newest / ckpt.MANIFEST).unlink()
    else:
        (newest / "state.json").unlink()
    with caplog.at_level(logging.WARNING, logger="growdsl.run"):
        assert ckpt.latest(tmp_path) == paths[-2]
    assert f"skipping checkpoint {newest}" in caplog.text


def test_keep_last_k_and_stale_temporaries_removed(tmp_path: Path) -> None:
    (tmp_path / ".tmp-step-00000099").mkdir(parents=True)
    model, opt, sched = trained()
    for s in (1, 2, 3, 4):
        ckpt.save(tmp_path, model, opt, sched, state(s), keep=2)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000003", "step-00000004"]


def test_no_checkpoint_at_all(tmp_path: Path) -> None:
    assert ckpt.latest(tmp_path / "nothing") is None


def test_parameters_without_optimizer_state_stay_without(tmp_path: Path) -> None:
    """A sub-model step leaves the upper layers without Adam state; a resumed optimizer must
    not invent any (DCP's loader would otherwise initialise it with step 1)."""
    model, opt, sched = trained()
    top = [p for n, p in model.named_parameters() if n.startswith("transformer.h.1.")]
    for p in top:
        del opt.state[p]
    path = ckpt.save(tmp_path, model, opt, sched, state(2), keep=2)  # type: ignore[arg-type]
    model2, opt2, sched2 = trained(seed=1)
    ckpt.load_into(path, model2, opt2, sched2)  # type: ignore[arg-type]
    names2 = {id(p): n for n, p in model2.named_parameters()}
    with_state = {names2[id(p)] for p in opt2.state}
    assert with_state and not any(n.startswith("transformer.h.1.") for n in with_state)
    assert len(with_state) == len(opt.state)
