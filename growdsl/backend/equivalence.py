"""Runtime verification: do two models compute the same function on a batch?

`compare` runs both in eval mode (dropout off), without gradients, and reports the largest
absolute logit difference and that difference relative to the largest logit. A bare model
(`BertModel`, `GPT2Model`, `LlamaModel`: no LM head) is compared on its last hidden
states; after width growth those live in a wider space, and `units` (grown unit -> source
unit, what the operators copied) lines the source's states up with the grown ones. A
pooled BERT predicts only at `mlm_positions`; the other model's outputs are gathered at
those positions so the two line up. The executor calls this at every growth step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from growdsl.backend.pooling import PooledBertForMaskedLM


@dataclass(frozen=True, kw_only=True, slots=True)
class Diff:
    """max |a - b| over all logits, and the same divided by max |a| (the logit scale)."""

    max_abs: float
    max_rel: float

    def within(self, atol: float, rtol: float = 0.0) -> bool:
        return self.max_abs <= atol or self.max_rel <= rtol


def logits(model: PreTrainedModel, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The model's logits on `batch` in eval mode (mode restored afterwards), as float32;
    a bare model's last hidden states."""
    inputs = dict(batch)
    positions = inputs.pop("mlm_positions", None)
    inputs.pop("labels", None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(model, PooledBertForMaskedLM):
                out = model(**inputs, mlm_positions=positions).logits
            else:
                result = model(**inputs)
                out = getattr(result, "logits", None)
                out = result.last_hidden_state if out is None else out
                if positions is not None:
                    out = out.gather(1, positions[..., None].expand(-1, -1, out.shape[-1]))
    finally:
        model.train(was_training)
    return out.float()


def compare(model_a: PreTrainedModel, model_b: PreTrainedModel,
            batch: Mapping[str, torch.Tensor], *, units: torch.Tensor | None = None) -> Diff:
    """How far apart the two models' logits (bare models: last hidden states) are on
    `batch`; `units[j]` is the unit of `model_a`'s output that `model_b`'s unit j copies."""
    a = logits(model_a, batch)
    if units is not None:
        a = a.index_select(-1, units.to(a.device))
    b = logits(model_b, batch).to(a.device)
    if a.shape != b.shape:
        raise ValueError(f"logit shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    delta = (a - b).abs()
    scale = float(a.abs().max()) or 1.0
    return Diff(max_abs=float(delta.max()), max_rel=float(delta.max()) / scale)
