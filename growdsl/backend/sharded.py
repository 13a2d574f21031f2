"""FSDP2-sharded models under `torchrun`, and the growth of a sharded model.

- `shard` wraps each Transformer layer, then the whole model, with FSDP2's `fully_shard`
  (parameters become `DTensor`s sharded on dim 0); on CUDA with bf16 the layers compute in
  bf16 and reduce gradients in fp32 (`MixedPrecisionPolicy`). One process: a no-op.
- `build_sharded`: a model built on `meta`, sharded, then only this rank's shards allocated.
- `gather_plain`: the whole model on rank 0 (for `save_pretrained`), one tensor at a time.
- `grow_sharded`: a growth step on the sharded model and its optimizer state through the
  same operators as `surgery.grow_state` and the same moment growth as
  `optim_state.grow_moments`. The grown model is built on `meta` and only this rank's
  shards are allocated (`build_sharded`), then filled one grown tensor at a time. Depth
  operators (stack, interleave, identity, unpool) only re-key or zero whole tensors, so
  each rank grows its own shards: nothing is gathered, no rank ever holds more than its
  shards. Any other operator indexes along the sharded dimension, so every old tensor is
  gathered (`full_tensor`, on every rank), grown one tensor at a time and cut to this
  rank's shard: the old model (then one old moment at a time) is held in full on each
  rank, and the log says so.

The process group and the collectives are `distributed`'s.
"""

from __future__ import annotations

import logging
from types import MethodType
from typing import Any

import torch
from torch import nn
from torch.distributed.fsdp import (
    MixedPrecisionPolicy,
    fully_shard,
    register_fsdp_forward_method,
)
from torch.distributed.tensor import DTensor, distribute_tensor
from transformers import PreTrainedModel

from growdsl.backend.distributed import current
from growdsl.backend.families import family
from growdsl.backend.models import build_from_config, load_state, shape_of, stored_keys
from growdsl.backend.optim_state import grow_moments, param_groups_like
from growdsl.backend.surgery import Grown, grow_lazy, plan_step, step_config
from growdsl.backend.surgery.core import lazy
from growdsl.backend.train import MASKED_LOGITS, masked_logits
from growdsl.ir import Growth
from growdsl.operators import REGISTRY
from growdsl.shapes import Shape

log = logging.getLogger("growdsl.run")


def layer_modules(model: nn.Module) -> list[nn.Module]:
    """The model's Transformer layers (one FSDP2 unit each)."""
    shape = shape_of(model.config)  # type: ignore[arg-type]
    dotted = family(shape.family).layer_prefix.partition(".{i}")[0]
    return list(model.get_submodule(dotted).children())


def shard(model: PreTrainedModel, bf16: bool = False) -> PreTrainedModel:
    """FSDP2: every layer, then the root (embeddings, head, tied weights) sharded on the mesh;
    one rank of one: returned as it is."""
    d = current()
    if not d.active:
        return model
    mp = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
          if bf16 else MixedPrecisionPolicy())
    for layer in layer_modules(model):
        fully_shard(layer, mesh=d.mesh, mp_policy=mp)
    # the root reshards after forward too: an evaluation (forward only) must not leave the
    # unsharded parameters registered, or the optimizer and checkpoints lose track of them
    fully_shard(model, mesh=d.mesh, mp_policy=mp, reshard_after_forward=True)
    if hasattr(model, "bert") and hasattr(model, "cls"):
        # BERT's loss runs the encoder and the head on the masked positions itself: a
        # forward of the root too, or its sharded parameters meet unsharded activations
        setattr(model, MASKED_LOGITS, MethodType(masked_logits, model))
        register_fsdp_forward_method(model, MASKED_LOGITS)
    return model


def build_sharded(config: Any, device: torch.device, bf16: bool) -> PreTrainedModel:
    """A model of `config` sharded without ever existing in full: built on `meta`, cut by
    `shard` (FSDP2), then only this rank's shards allocated on `device` (`to_empty`).
    Parameters and persistent buffers are left uninitialised (the caller fills them); the
    non-persistent buffers, which no state dict carries (LLaMA's rotary `inv_freq`, BERT's
    `position_ids`), are recomputed by the modules' own HF initialisation (`_init_weights`,
    as `from_pretrained` does after its meta build). MSG's gates are hooks reading
    `config.growdsl`, installed by `build_from_config` on the meta model as on any other."""
    with torch.device("meta"):
        built = build_from_config(config, seed=None)
    new = shard(built, bf16)
    new.to_empty(device=device)
    _init_outside_state(new)
    return new


def _init_outside_state(model: PreTrainedModel) -> None:
    """Recompute every non-persistent buffer with its module's HF initialisation; a buffer
    the model's `_init_weights` does not know would keep its sentinel: a bug, raised."""
    owners = [(m, sorted(m._non_persistent_buffers_set)) for m in model.modules()
              if m._non_persistent_buffers_set]
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        for module, names in owners:
            for name in names:
                buf = getattr(module, name)
                if buf is not None:
                    buf.fill_(float("nan") if buf.is_floating_point() else -1)
            model._init_weights(module)
    for module, names in owners:
        for name in names:
            buf = getattr(module, name)
            if buf is not None and (buf.isnan().any() if buf.is_floating_point()
                                    else bool((buf == -1).all())):
                raise ValueError(f"{type(module).__name__}.{name}: a non-persistent buffer "
                                 "that the model's _init_weights does not recompute")


def gather_plain(model: PreTrainedModel) -> PreTrainedModel | None:
    """Rank 0: an unsharded copy of `model` on the CPU (for `save_pretrained`), gathered one
    tensor at a time; other ranks: None. Every rank must call it (collective)."""
    sd = model.state_dict()
    full = {k: _read(sd[k], True).cpu() for k in stored_keys(model)}
    if not current().main:
        return None
    plain = build_from_config(model.config, seed=None)
    load_state(plain, full)
    return plain


# --- growth of a sharded model -------------------------------------------------------------

def _read(t: torch.Tensor, full: bool) -> torch.Tensor:
    """A DTensor's whole tensor (gathered) or this rank's shard; a plain tensor as it is."""
    if not isinstance(t, DTensor):
        return t.detach()
    return (t.full_tensor() if full else t.to_local()).detach()


def _placed_local(like: torch.Tensor, value: torch.Tensor, full: bool) -> torch.Tensor:
    """This rank's part of `value` laid out as `like` (a whole tensor is cut locally)."""
    if not isinstance(like, DTensor) or not full:
        return value
    placed = distribute_tensor(value.to(like.device), like.device_mesh, like.placements,
                               src_data_rank=None)
    return placed.to_local()


def _as_like(like: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    if not isinstance(like, DTensor):
        return local
    return DTensor.from_local(local, like.device_mesh, like.placements, shape=like.shape,
                              stride=like.stride(), run_check=False)


def grow_sharded(model: PreTrainedModel, optimizer: torch.optim.Optimizer, dst: Shape,
                 growth: Growth, policy: str, bf16: bool
                 ) -> tuple[PreTrainedModel, Grown, torch.optim.Optimizer | None]:
    """The growth step on a sharded model: (grown sharded model, `Grown` record without
    tensors, optimizer with grown state or None when `policy` is reset). The grown model is
    built on `meta` and only this rank's shards are allocated (`build_sharded`); they are
    filled one grown tensor at a time."""
    src = shape_of(model.config)
    final, steps = plan_step(src, dst, growth)
    names = [step.call.name for step in steps]
    consolidating = sorted({n for n in names if not REGISTRY[n].shard_local})
    full = bool(consolidating)
    if current().main:
        if full:
            log.warning("growth %s: %s index along the sharded dimension: CONSOLIDATING (every "
                        "tensor gathered on every rank, grown, re-sharded)", ", ".join(names),
                        ", ".join(consolidating))
        else:
            log.info("growth %s: shard to shard (nothing gathered)", ", ".join(names) or "-")
    old_sd = model.state_dict()
    keys = stored_keys(model)
    weights = grow_lazy(lazy({k: _read(old_sd[k], full) for k in keys}), steps, growth.seed,
                        "weight")
    config = step_config(final, steps)
    new = build_sharded(config, _read(old_sd[keys[0]], False).device, bf16)
    _fill(new, weights, full)
    del weights                         # consolidating: frees the gathered old weights
    grown = Grown(state={}, shape=final, config=config, steps=steps, seed=growth.seed)
    if policy == "reset" or not optimizer.state:
        return new, grown, None
    new_opt = type(optimizer)(param_groups_like(optimizer, model, new))  # type: ignore[call-arg]
    grow_moments(optimizer, model, new_opt, new, grown, policy, keys,
                 zeros=lambda k: torch.zeros_like(_read(old_sd[k], full)),
                 read=lambda t: _read(t, full),
                 place=lambda p, t: _as_like(p, _placed_local(p, t, full).to(p.dtype).clone()))
    return new, grown, new_opt


def _fill(new: nn.Module, weights: Any, full: bool) -> None:
    """Copy the grown tensors (a lazy state: one evaluated at a time) into this rank's
    shards; every stored tensor of `new` must be filled."""
    new_sd = new.state_dict()
    missing = set(stored_keys(new)) - set(weights)
    if missing:
        raise ValueError(f"growth leaves {sorted(missing)} of the grown model unfilled")
    with torch.no_grad():
        for key, thunk in weights.items():
            target = new_sd[key]
            local = _placed_local(target, thunk(), full)
            dest = target.to_local() if isinstance(target, DTensor) else target
            if dest.shape != local.shape:
                raise ValueError(f"grown {key}: shard {tuple(local.shape)} does not fit "
                                 f"{tuple(dest.shape)}")
            dest.copy_(local)
            del local
