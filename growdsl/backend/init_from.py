"""`init from "DIR"`: the starting checkpoint's stored tensors checked against the model the
run trains, and the checkpoint loaded into it.

The run trains the family's full model (`LlamaForCausalLM`, `BertForMaskedLM`, ...). A
checkpoint of that class loads with stock `from_pretrained`. A bare one (`LlamaModel`,
`BertModel`: all-MiniLM-L6-v2 is one) gives the base model's weights, and the LM head it
lacks starts fresh (initialised as the class initialises it, seeded by the first stage's
`seed`; a tied decoder is the embedding table), as when a pretrained encoder is trained on
with a new head; the run's log says so.

Stored tensors outside the full model's weight map are left out only when the family knows
them to be inert (`Family.inert`: a position-ids or rotary buffer, BertModel's pooler,
which BertForMaskedLM does not have) or the user drops them by name (`growdsl run --drop
GLOB`); any other is E742 at `init from`, and a `--drop` glob that matches none of them
E743. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import PretrainedConfig, PreTrainedModel

from growdsl.backend.families import family, weight_map
from growdsl.backend.families.layout import Layout, detect
from growdsl.backend.models import build_from_config, load_model, shape_of, tied_keys
from growdsl.backend.run_errors import fail
from growdsl.backend.sizes import stored_shapes
from growdsl.backend.streaming import unused_drops
from growdsl.errors import GrowError
from growdsl.source import Source, Span

log = logging.getLogger("growdsl.run")


def load_init(path: Path, config: PretrainedConfig, files: list[Path], *, seed: int,
              drop: tuple[str, ...], source: Source, span: Span) -> PreTrainedModel:
    """The run's first model from the checkpoint at `path` (config and safetensors `files`
    already read and checked): its tensors sorted (module docstring), then loaded; a bare
    checkpoint's missing head made fresh with `seed`. E714 / E742 / E743 located at `span`
    (`init from`) of `source`."""
    shape = shape_of(config)
    fam = family(shape.family)
    stored = list(stored_shapes(files))
    layout = detect(shape.family, getattr(config, "architectures", None), stored)
    if isinstance(layout, str):
        fail("E714", f"starting checkpoint {path.name}: {layout}", None, source, span)
    full = weight_map(shape)            # the run's model: the full class, with its head
    outside = [k for k in stored if layout.canonical_key(k) not in full]
    left = layout.left_out(outside, drop, head=True)
    if left.unused:
        raise GrowError(unused_drops(left, path))
    if left.unknown:
        message, hint = left.refusal(shape.family, "growdsl run --drop")
        fail("E742", message, hint, source, span)
    for note in left.notes():
        log.warning("init from %s: %s", path, note)
    have = {layout.canonical_key(k) for k in stored}
    fresh = [k for k in full if k not in have]
    lacking = [k for k in fresh if not (fam.is_head(k) and not layout.head)]
    if lacking:
        more = f" and {len(lacking) - 4} more" if len(lacking) > 4 else ""
        fail("E714", f"starting checkpoint {path.name} lacks tensors its config.json implies: "
             f"{', '.join(lacking[:4])}{more}", "is config.json the one saved with these "
             "weights?", source, span)
    if layout.head:
        return load_model(path)
    return _bare_into_full(path, config, layout, files, fresh, seed)


def _bare_into_full(path: Path, config: PretrainedConfig, layout: Layout, files: list[Path],
                    fresh: list[str], seed: int) -> PreTrainedModel:
    """The full model of a bare checkpoint: its head fresh (seeded), the rest loaded."""
    fam = family(layout.family)
    config.architectures = [fam.model_class]
    model = build_from_config(config, seed=seed)
    full = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                canonical = layout.canonical_key(key)
                if canonical in full:
                    state[canonical] = handle.get_tensor(key)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(tied_keys(model))
    assert not unexpected and all(k in tied or k in fresh for k in missing), (missing, unexpected)
    model.tie_weights()
    if fresh:
        log.warning("init from %s: a bare %s without an LM head; the head of %s starts fresh: "
                    "%s", path, layout.architecture, fam.model_class, ", ".join(fresh))
    return model
