"""`--verify` for `growdsl grow`: re-run a growth step one operator at a time in memory and
measure each operator's effect on the logits, next to its static verdict.

A bare checkpoint (`BertModel`, `GPT2Model`, `LlamaModel`: no LM head) is measured on its
last hidden states. Width growth makes those wider: a probe tensor in the residual space
(`PROBE`, values 0..D-1) goes through the same operators, and the grown probe says which
source unit every grown unit copies, so the source's states are compared unit for unit
with the grown ones (every copy, not a mean over copies).

An operator whose verdict is exact must keep the output within `ATOL` (or `RTOL` of its
largest entry); the caller exits non-zero when one does not. Models run in fp32.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel

from growdsl.backend.equivalence import Diff, compare
from growdsl.backend.families import D_O
from growdsl.backend.models import build_for_layout, load_state
from growdsl.backend.streaming import Checkpoint, open_checkpoint
from growdsl.backend.surgery import grow_lazy, step_config
from growdsl.backend.surgery.core import lazy, materialize
from growdsl.operators import OpResult
from growdsl.operators.base import EXACT
from growdsl.shapes import Shape

ATOL = 1e-5
RTOL = 1e-5
# A verification-only tensor in the residual space: unit j of the grown probe holds the
# source unit it copies (the operators move it like any produced residual axis).
PROBE = "growdsl.verify.residual_units"


@dataclass(frozen=True, kw_only=True, slots=True)
class OpCheck:
    """One operator's verdict and measured logit (bare models: hidden state) difference."""

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
    if shape.pool > 1:
        batch["mlm_positions"] = torch.randint(1, length, (2, 3), generator=gen)
    return batch


def _model(source: Checkpoint, state: dict[str, torch.Tensor], shape: Shape,
           steps: list[OpResult]) -> PreTrainedModel:
    """A fp32 model of `source`'s layout holding `state` (canonical keys)."""
    config = step_config(shape, steps, base=source.config) if steps else source.config
    model = build_for_layout(config, source.layout).float()
    layout = source.layout
    load_state(model, {layout.stored_key(k): v.float() for k, v in state.items()})
    return model


def _source_state(source: Checkpoint) -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in materialize(source.state).items()}


def verify_steps(src_dir: str | Path, steps: list[OpResult], growth_seed: int,
                 seed: int = 0, drop: tuple[str, ...] = ()) -> list[OpCheck]:
    """Each operator of the step applied on top of the previous ones, measured against the
    model before it (bare models: last hidden states, lined up through the probe); `drop`:
    `grow --drop`'s globs."""
    with ExitStack() as stack:
        source = open_checkpoint(stack, Path(src_dir), drop)
        state = _source_state(source)
    probed = source.layout.with_extra({PROBE: (D_O,)})
    before = _model(source, state, source.shape, [])
    checks: list[OpCheck] = []
    for i, step in enumerate(steps):
        call, src, after, verdict = step.call, step.before, step.after, step.verdict
        state[PROBE] = torch.arange(src.hidden, dtype=torch.float32)
        state = materialize(grow_lazy(lazy(state), steps[i:i + 1], growth_seed, "weight",
                                      layout=probed, start=i))
        units = state.pop(PROBE).round().long()
        grown = _model(source, state, after, steps[: i + 1])
        diff = compare(before, grown, _batch(src, seed),
                       units=None if source.layout.head else units)
        checks.append(OpCheck(op=call.name, verdict=verdict.kind, reason=verdict.reason,
                              diff=diff))
        before = grown
    return checks


def verify_written(src_dir: str | Path, out_dir: str | Path, steps: list[OpResult],
                   growth_seed: int, drop: tuple[str, ...] = ()) -> Diff:
    """The written checkpoint against the in-memory growth of the whole step."""
    with ExitStack() as stack:
        source = open_checkpoint(stack, Path(src_dir), drop)
        grown_state = materialize(grow_lazy(lazy(_source_state(source)), steps, growth_seed,
                                            "weight", layout=source.layout))
        final = steps[-1].after
        grown = _model(source, grown_state, final, steps)
        written = open_checkpoint(stack, Path(out_dir))
        loaded = build_for_layout(written.config, written.layout).float()
        load_state(loaded, {written.layout.stored_key(k): v.float()
                            for k, v in materialize(written.state).items()})
    return compare(grown, loaded, _batch(final, 1))
