"""`--verify` for `growdsl grow`: re-run a growth step one operator at a time in memory and
measure each operator's effect on the logits, next to its static verdict.

An operator whose verdict is exact must keep the logits within `ATOL` (or `RTOL` of the
largest logit); the caller exits non-zero when one does not. Models run in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from growdsl.backend.equivalence import Diff, compare
from growdsl.backend.models import build_from_config, load_model, load_state, stored_state
from growdsl.backend.surgery import grow_lazy, step_config
from growdsl.backend.surgery.core import lazy, materialize
from growdsl.operators import OpResult
from growdsl.operators.base import EXACT
from growdsl.shapes import Shape

ATOL = 1e-5
RTOL = 1e-5


@dataclass(frozen=True, kw_only=True, slots=True)
class OpCheck:
    """One operator's verdict and measured logit difference."""

    op: str
    verdict: str
    reason: str
    diff: Diff

    @property
    def broken(self) -> bool:
        return self.verdict == EXACT and not self.diff.within(ATOL, RTOL)


def _batch(shape: Shape, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    length = min(16, shape.positions)
    ids = torch.randint(0, shape.vocab, (2, length), generator=gen)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if shape.family == "bert" and shape.pool > 1:
        batch["mlm_positions"] = torch.randint(1, length, (2, 3), generator=gen)
    return batch


def verify_steps(src_dir: str | Path, steps: list[OpResult], growth_seed: int,
                 seed: int = 0) -> list[OpCheck]:
    """Each operator of the step applied on top of the previous ones, measured."""
    model = load_model(src_dir).float()
    state = stored_state(model)
    checks: list[OpCheck] = []
    before = model
    for i, (call, src, after, verdict) in enumerate(steps):
        grown_state = materialize(grow_lazy(lazy(state), steps[: i + 1], growth_seed, "weight"))
        grown = build_from_config(step_config(after, steps[: i + 1]), seed=None).float()
        load_state(grown, grown_state)
        diff = compare(before, grown, _batch(src, seed))
        checks.append(OpCheck(op=call.name, verdict=verdict.kind, reason=verdict.reason,
                              diff=diff))
        before = grown
    return checks


def verify_written(src_dir: str | Path, out_dir: str | Path, steps: list[OpResult],
                   growth_seed: int) -> Diff:
    """The written checkpoint against the in-memory growth of the whole step."""
    model = load_model(src_dir).float()
    grown_state = materialize(grow_lazy(lazy(stored_state(model)), steps, growth_seed, "weight"))
    final = steps[-1][2]
    grown = build_from_config(step_config(final, steps), seed=None).float()
    load_state(grown, grown_state)
    return compare(grown, load_model(out_dir).float(), _batch(final, 1))
