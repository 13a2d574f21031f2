"""Data-parallel runs under `torchrun`: process group, device mesh, FSDP2 sharding, rank-aware
helpers, and growth of a sharded model.

- `init_from_env` starts the process group from torchrun's environment (`RANK`,
  `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`/`MASTER_PORT` or a rendezvous): NCCL on CUDA,
  gloo on the CPU, one 1-D device mesh over all ranks. A plain `growdsl run` never calls it:
  `current()` then describes one process and every helper here is a no-op.
- `shard` wraps each Transformer layer, then the whole model, with FSDP2's `fully_shard`
  (parameters become `DTensor`s sharded on dim 0); on CUDA with bf16 the layers compute in
  bf16 and reduce gradients in fp32 (`MixedPrecisionPolicy`).
- `mean`, `any_true`, `barrier`, `on_main_first`, `broadcast`: the collectives the executor
  needs (metrics reduced across ranks, Ctrl-C agreed on, rank 0 writing while others wait,
  rank 0's user error raised on every rank).
- `grow_sharded`: a growth step on the sharded model and its optimizer state through the
  same operators as `surgery.grow_state`. The grown model is built on `meta` and only this
  rank's shards are allocated (`build_sharded`), then filled one grown tensor at a time.
  Depth operators (stack, interleave, identity, unpool) only re-key or zero whole tensors,
  so each rank grows its own shards: nothing is gathered, no rank ever holds more than its
  shards. Any other operator indexes along the sharded dimension, so every old tensor is
  gathered (`full_tensor`, on every rank), grown one tensor at a time and cut to this
  rank's shard: the old model (then one old moment at a time) is held in full on each
  rank, and the log says so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from transformers import PreTrainedModel

from growdsl.errors import GrowError
from growdsl.ir import Growth
from growdsl.operators import REGISTRY
from growdsl.shapes import Shape

log = logging.getLogger("growdsl.run")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class Dist:
    """This process's place in the job (one process: rank 0 of 1, no mesh)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""
    mesh: Any = None

    @property
    def active(self) -> bool:
        """True under torchrun (even with one rank): the FSDP2 path."""
        return self.mesh is not None

    @property
    def main(self) -> bool:
        return self.rank == 0


_current = Dist()


def current() -> Dist:
    return _current


def under_torchrun() -> bool:
    """torchrun (torch.distributed.run) sets these for every worker."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env() -> Dist:
    """Join the job torchrun started: process group, device, 1-D device mesh."""
    global _current
    from torch.distributed.device_mesh import init_device_mesh

    if _current.active:
        return _current
    local_rank = int(os.environ["LOCAL_RANK"])
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    world = dist.get_world_size()
    mesh = init_device_mesh("cuda" if cuda else "cpu", (world,), mesh_dim_names=("dp",))
    _current = Dist(rank=dist.get_rank(), world=world, local_rank=local_rank,
                    backend=backend, mesh=mesh)
    return _current


def shutdown() -> None:
    global _current
    if dist.is_initialized():
        dist.destroy_process_group()
    _current = Dist()


def layer_modules(model: nn.Module) -> list[nn.Module]:
    """The model's Transformer layers (one FSDP2 unit each)."""
    from growdsl.backend.families import family
    from growdsl.backend.models import shape_of

    shape = shape_of(model.config)  # type: ignore[arg-type]
    dotted = family(shape.family).layer_prefix.partition(".{i}")[0]
    return list(model.get_submodule(dotted).children())


def shard(model: PreTrainedModel, bf16: bool = False) -> PreTrainedModel:
    """FSDP2: every layer, then the root (embeddings, head, tied weights) sharded on the mesh;
    one rank of one: returned as it is."""
    d = current()
    if not d.active:
        return model
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
          if bf16 else MixedPrecisionPolicy())
    for layer in layer_modules(model):
        fully_shard(layer, mesh=d.mesh, mp_policy=mp)
    # the root reshards after forward too: an evaluation (forward only) must not leave the
    # unsharded parameters registered, or the optimizer and checkpoints lose track of them
    fully_shard(model, mesh=d.mesh, mp_policy=mp, reshard_after_forward=True)
    return model


def mean(value: torch.Tensor) -> float:
    """The mean of a scalar over all ranks (the value itself in one process)."""
    if not current().active:
        return value.item()
    t = value.detach().float().reshape(1).clone()
    dist.all_reduce(t)
    return t.item() / current().world


def weighted_mean(total: float, count: float) -> float:
    """sum(total) / sum(count) over all ranks."""
    if not current().active:
        return total / max(count, 1e-30)
    t = torch.tensor([total, count], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0] / t[1].clamp_min(1e-30))


def any_true(flag: bool) -> bool:
    """True on every rank when any rank says True (Ctrl-C agreed on)."""
    if not current().active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def agree(error: OSError | None) -> None:
    """Raise on every rank the OSError any rank met (its own, or the first failing rank's,
    rebuilt from its errno and message); also a barrier. So a full disk on one rank stops
    every rank at once instead of leaving the others waiting for the process-group
    timeout."""
    if not current().active:
        if error is not None:
            raise error
        return
    if not any_true(error is not None):         # the common case: one small all-reduce
        return
    mine = None if error is None else (error.errno, error.strerror, str(error.filename or ""))
    every: list[Any] = [None] * current().world
    dist.all_gather_object(every, mine)
    if error is not None:
        raise error
    for rank, other in enumerate(every):
        if other is not None:
            code, reason, filename = other
            raise OSError(code, f"{reason} (on rank {rank})", filename or None)


def barrier() -> None:
    if current().active:
        dist.barrier()


def broadcast(value: T) -> T:
    """Rank 0's `value` on every rank."""
    if not current().active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main_first(fn: Callable[[], T], others: bool = True) -> T | None:
    """Run `fn` on rank 0; its GrowError is raised on every rank; then (when `others`) the
    other ranks run it too (e.g. reading the cache rank 0 filled). Returns `fn`'s result
    (None on ranks that did not run it)."""
    d = current()
    if not d.active:
        return fn()
    result: T | None = None
    error: GrowError | None = None
    if d.main:
        try:
            result = fn()
        except GrowError as exc:
            error = exc
    error = broadcast(error)
    if error is not None:
        raise error
    if others and not d.main:
        result = fn()
    return result


# --- growth of a sharded model -------------------------------------------------------------

def _is_dtensor(t: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def _read(t: torch.Tensor, full: bool) -> torch.Tensor:
    """A DTensor's whole tensor (gathered) or this rank's shard; a plain tensor as it is."""
    if not _is_dtensor(t):
        return t.detach()
    return (t.full_tensor() if full else t.to_local()).detach()  # type: ignore[attr-defined]


def _placed_local(like: torch.Tensor, value: torch.Tensor, full: bool) -> torch.Tensor:
    """This rank's part of `value` laid out as `like` (a whole tensor is cut locally)."""
    if not _is_dtensor(like):
        return value
    if not full:
        return value
    from torch.distributed.tensor import distribute_tensor

    placed = distribute_tensor(value.to(like.device), like.device_mesh,  # type: ignore[attr-defined]
                               like.placements, src_data_rank=None)  # type: ignore[attr-defined]
    return placed.to_local()


def _as_like(like: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    if not _is_dtensor(like):
        return local
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(local, like.device_mesh, like.placements,  # type: ignore[attr-defined]
                              shape=like.shape, stride=like.stride(), run_check=False)


def stored_names(model: nn.Module) -> list[str]:
    """State-dict keys without tied copies (a shared parameter is stored once)."""
    seen: set[int] = set()
    drop: set[str] = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            drop.add(name)
        seen.add(id(p))
    return [k for k in model.state_dict() if k not in drop]


def grow_sharded(model: PreTrainedModel, optimizer: torch.optim.Optimizer, dst: Shape,
                 growth: Growth, policy: str, bf16: bool
                 ) -> tuple[PreTrainedModel, Any, torch.optim.Optimizer | None]:
    """The growth step on a sharded model: (grown sharded model, `Grown` record without
    tensors, optimizer with grown state or None when `policy` is reset). The grown model is
    built on `meta` and only this rank's shards are allocated (`build_sharded`); they are
    filled one grown tensor at a time."""
    from growdsl.backend.models import shape_of
    from growdsl.backend.surgery import Grown, grow_lazy, plan_step, step_config
    from growdsl.backend.surgery.core import lazy

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
    keys = stored_names(model)
    weights = grow_lazy(lazy({k: _read(old_sd[k], full) for k in keys}), steps, growth.seed,
                        "weight")
    config = step_config(final, steps)
    new = build_sharded(config, _read(old_sd[keys[0]], False).device, bf16)
    _fill(new, weights, full)
    del weights                         # consolidating: frees the gathered old weights
    grown = Grown(state={}, shape=final, config=config, steps=steps, seed=growth.seed)
    if policy == "reset" or not optimizer.state:
        return new, grown, None
    from growdsl.backend.optim_state import _groups

    new_opt = type(optimizer)(_groups(optimizer, model, new))  # type: ignore[call-arg]
    _grow_moments(optimizer, model, new_opt, new, grown, policy, keys, full)
    return new, grown, new_opt


def build_sharded(config: Any, device: torch.device, bf16: bool) -> PreTrainedModel:
    """A model of `config` sharded without ever existing in full: built on `meta`, cut by
    `shard` (FSDP2), then only this rank's shards allocated on `device` (`to_empty`).
    Parameters and persistent buffers are left uninitialised (the caller fills them); the
    non-persistent buffers, which no state dict carries (LLaMA's rotary `inv_freq`, BERT's
    `position_ids`), are recomputed by the modules' own HF initialisation (`_init_weights`,
    as `from_pretrained` does after its meta build). MSG's gates are hooks reading
    `config.growdsl`, installed by `build_from_config` on the meta model as on any other."""
    from growdsl.backend.models import build_from_config

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


def _fill(new: nn.Module, weights: Any, full: bool) -> None:
    """Copy the grown tensors (a lazy state: one evaluated at a time) into this rank's
    shards; every stored tensor of `new` must be filled."""
    new_sd = new.state_dict()
    missing = set(stored_names(new)) - set(weights)
    if missing:
        raise ValueError(f"growth leaves {sorted(missing)} of the grown model unfilled")
    with torch.no_grad():
        for key, thunk in weights.items():
            target = new_sd[key]
            local = _placed_local(target, thunk(), full)
            dest = target.to_local() if _is_dtensor(target) else target
            if dest.shape != local.shape:
                raise ValueError(f"grown {key}: shard {tuple(local.shape)} does not fit "
                                 f"{tuple(dest.shape)}")
            dest.copy_(local)
            del local


def _grow_moments(old_opt: torch.optim.Optimizer, old: nn.Module, new_opt: torch.optim.Optimizer,
                  new: nn.Module, grown: Any, policy: str, keys: list[str], full: bool) -> None:
    """The optimizer's moments through the same operators (see `optim_state`)."""
    from growdsl.backend.optim_state import _MOMENT_KIND
    from growdsl.backend.surgery import grow_lazy
    from growdsl.backend.surgery.core import lazy

    old_names = {id(p): n for n, p in old.named_parameters()}
    by_name = {old_names[id(p)]: s for p, s in old_opt.state.items()}
    old_sd = old.state_dict()
    sample = next(iter(by_name.values()))
    moments = [k for k, v in sample.items() if torch.is_tensor(v) and v.dim() > 0]
    params = dict(new.named_parameters())
    entries: dict[str, dict[str, Any]] = {n: {} for n in params}
    for moment in moments:
        kind = "transfer" if policy == "transfer" else _MOMENT_KIND.get(moment, "exp_avg")
        state = {k: _read(by_name[k][moment], full) if k in by_name
                 else torch.zeros_like(_read(old_sd[k], full)) for k in keys}
        grown_m = grow_lazy(lazy(state), grown.steps, grown.seed, kind)
        for name, p in params.items():      # one grown moment tensor at a time
            local = _placed_local(p, grown_m[name](), full).to(p.dtype)
            entries[name][moment] = _as_like(p, local.clone())
        del grown_m, state
    step = sample.get("step")
    for name, p in params.items():
        if step is not None:
            entries[name]["step"] = step.clone() if torch.is_tensor(step) else step
        new_opt.state[p] = entries[name]


def gather_plain(model: PreTrainedModel) -> PreTrainedModel | None:
    """Rank 0: an unsharded copy of `model` on the CPU (for `save_pretrained`), gathered one
    tensor at a time; other ranks: None. Every rank must call it (collective)."""
    from growdsl.backend.models import build_from_config, load_state

    sd = model.state_dict()
    full = {k: _read(sd[k], True).cpu() for k in stored_names(model)}
    if not current().main:
        return None
    plain = build_from_config(model.config, seed=None)
    load_state(plain, full)
    return plain
