"""The training loop of one stage, readable top to bottom, and what it needs: device and
precision, optimizer, learning-rate schedule, the loss of each family, evaluation.

- Device: CUDA when present, the CPU otherwise; the same spec runs on both. `precision`:
  bf16 autocast when `bf16` (on either device) or `auto` on CUDA, fp32 otherwise;
  `torch.compile` on request (either device). AdamW's fused kernel on CUDA, foreach elsewhere.
- Accumulation: a rank's slice of the global `batch` runs as micro batches of
  `micro_batch` samples, their gradients summed before the one optimizer step
  (batch = micro_batch x accumulation x world); `checkpointing` recomputes every layer's
  activations in backward (Hugging Face's gradient checkpointing, non-reentrant).
- Loss: GPT-2 / LLaMA: causal LM on every position (HF shifts the labels). BERT: masked LM
  with the head on the masked positions only (`mlm_positions`), as Google's BERT computes it
  and as growdsl.flops counts it; a pooled BERT takes the positions itself.
- Schedule: linear warmup, then linear / cosine decay to `min_lr` (or constant);
  `restart` runs it anew over each stage, `continue` runs one schedule over the whole plan.
- bert2BERT's two-stage training (`submodels` = n > 1): step s trains the sub-model made of
  the bottom ceil(L (s mod n + 1) / n) layers with the shared head (Chen et al. ACL 2022,
  sec. 4.3); layers above it get no gradient and no update that step.
- The loop stops cleanly (after a whole step) when `should_stop()` says so (Ctrl-C), and
  raises E717 at the first non-finite loss, before the optimizer touches the weights.
- Under torchrun each rank reads its consecutive slice of the step's global batch
  (`data.shard`); the loss logged (and checked for NaN) is the mean over ranks, and the
  validation loss is reduced over the ranks' slices of each held-out batch.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from growdsl.backend import distributed
from growdsl.backend.data import Corpus
from growdsl.backend.families import family
from growdsl.backend.loader import MicroBatches, load
from growdsl.backend.run_errors import fail
from growdsl.backend.state import RunState
from growdsl.backend.treatments import ramp_mask
from growdsl.devices import from_cuda_name
from growdsl.flops import submodel_depths
from growdsl.ir import Stage, Train

VAL_BATCHES = 4


@dataclass(frozen=True, kw_only=True, slots=True)
class Device:
    """Where and in which precision a run trains."""

    device: torch.device
    autocast: torch.dtype | None        # None: plain fp32
    compile: bool = False
    peak_flops: float = 0.0             # dense peak FLOP/s at this precision; 0: unknown

    def mfu(self, flops: float, seconds: float) -> float | None:
        """Model FLOPs utilization: the planner's FLOPs of a step over the peak's."""
        return flops / seconds / self.peak_flops if self.peak_flops and seconds > 0 else None

    def context(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)


def pick_device(precision: str, compile: bool = False) -> Device:
    """CUDA when present, else the CPU. bf16 autocast when asked for, and by default (`auto`)
    on CUDA; fp32 otherwise. `torch.compile` on either device when asked for."""
    if precision == "fp16":
        fail("E719", "precision fp16 is not supported by `growdsl run`", "use bf16 or fp32")
    cuda = torch.cuda.is_available()
    bf16 = precision == "bf16" or (precision == "auto" and cuda)
    peak = 0.0
    if cuda:
        props = torch.cuda.get_device_properties(0)
        known = from_cuda_name(props.name, props.total_memory)
        peak = known.peak(bf16) if known else 0.0
    return Device(device=torch.device("cuda" if cuda else "cpu"),
                  autocast=torch.bfloat16 if bf16 else None, compile=compile, peak_flops=peak)


def decays(param: torch.Tensor) -> bool:
    """Whether weight decay applies: weights do, biases and norm gains (1-D tensors) do not."""
    return param.ndim >= 2


# a param group's role: what of the stage's settings it takes (`retune`)
DECAYED, NOT_DECAYED = "decayed", "not decayed"


def make_optimizer(model: nn.Module, train: Train) -> torch.optim.Optimizer:
    """The spec's optimizer: a group of decayed weights, then one of the rest (`decays`),
    each group marked with its role."""
    decay = [p for p in model.parameters() if p.requires_grad and decays(p)]
    other = [p for p in model.parameters() if p.requires_grad and not decays(p)]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": train.weight_decay, "role": DECAYED},
        {"params": other, "weight_decay": 0.0, "role": NOT_DECAYED}]
    # the fused kernel on CUDA, the multi-tensor (foreach) one elsewhere; FSDP2's DTensors
    # take foreach
    every = [*decay, *other]
    fused = all(p.device.type == "cuda" for p in every) and not any(map(_is_dtensor, every))
    kernel: dict[str, bool] = {"fused": True} if fused else {"foreach": True}
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=train.lr, momentum=train.betas[0], **kernel)
    # AdamW is Adam with decoupled weight decay (torch.optim.AdamW subclasses it); built as
    # Adam so that the optimizer's own defaults rebuild it after growth.
    return torch.optim.Adam(groups, lr=train.lr, betas=train.betas, eps=train.eps,
                            decoupled_weight_decay=train.optimizer == "adamw", **kernel)


def retune(optimizer: torch.optim.Optimizer, train: Train) -> None:
    """Set every group's LR, betas and weight decay to `train`'s, each group by its role
    (`make_optimizer` marks it; a group without one, from an optimizer of the user's, takes
    the role of its parameters), never by its position."""
    for group in optimizer.param_groups:
        role = group.get("role") or (DECAYED if all(decays(p) for p in group["params"])
                                     else NOT_DECAYED)
        group["lr"] = train.lr
        group["weight_decay"] = train.weight_decay if role == DECAYED else 0.0
        if "betas" in group:
            group["betas"] = train.betas
        group.pop("initial_lr", None)


def _is_dtensor(t: torch.Tensor) -> bool:
    return type(t).__name__ == "DTensor"


def set_checkpointing(model: nn.Module, on: bool) -> None:
    """Activation checkpointing of every layer (Hugging Face's, non-reentrant), or none."""
    hf: Any = model
    new = hasattr(hf, "activation_checkpointing_enable")     # transformers >= 5 names
    active = hf.is_activation_checkpointing if new else hf.is_gradient_checkpointing
    if on and not active:
        kwargs = {"use_reentrant": False}
        if new:
            hf.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    elif not on and active:
        (hf.activation_checkpointing_disable if new else hf.gradient_checkpointing_disable)()


def lr_factor(step: int, total: int, train: Train) -> float:
    """Multiplier of the peak LR after `step` of `total` steps of one schedule."""
    if step < train.warmup:
        return (step + 1) / train.warmup
    if train.decay == "constant":
        return 1.0
    floor = train.min_lr / train.lr if train.lr else 0.0
    progress = min(1.0, (step - train.warmup) / max(1, total - train.warmup))
    shape = 1 - progress if train.decay == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
    return floor + (1 - floor) * shape


def make_schedule(optimizer: torch.optim.Optimizer, train: Train, offset: int,
                  total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR whose step i is schedule step `offset + i` of `total`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: lr_factor(offset + i, total, train))


def loss_of(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The training loss of `batch` (see the module docstring for each family)."""
    if "mlm_positions" not in batch:
        return model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
    if int(getattr(model.config, "growdsl", {}).get("pool", 1)) > 1:
        return model(**batch).loss
    # sharded (FSDP2): the same computation registered as a forward of the root module, so
    # that its parameters (embeddings, head) are gathered around it (`sharded.shard`)
    forward = getattr(model, MASKED_LOGITS, None)
    logits_BMV = (forward(batch) if forward is not None else masked_logits(model, batch))
    return F.cross_entropy(logits_BMV.flatten(0, 1).float(), batch["labels"].flatten())


MASKED_LOGITS = "growdsl_masked_logits"


def masked_logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """BERT's MLM logits on the masked positions only (`mlm_positions`)."""
    h_BTD = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       token_type_ids=batch["token_type_ids"]).last_hidden_state
    pos_BM = batch["mlm_positions"]
    h_BMD = h_BTD.gather(1, pos_BM[..., None].expand(-1, -1, h_BTD.shape[-1]))
    return model.cls(h_BMD)


@contextlib.contextmanager
def submodel(model: nn.Module, family_name: str, depth: int) -> Iterator[None]:
    """Run `model` on its bottom `depth` layers only (the layer list truncated, then restored)."""
    dotted = family(family_name).layer_prefix.partition(".{i}")[0]
    parent_name, _, leaf = dotted.rpartition(".")
    parent = model.get_submodule(parent_name)
    full = getattr(parent, leaf)
    if depth >= len(full):
        yield
        return
    setattr(parent, leaf, nn.ModuleList(list(full)[:depth]))
    try:
        yield
    finally:
        setattr(parent, leaf, full)


def to_device(batch: dict[str, torch.Tensor], dev: Device) -> dict[str, torch.Tensor]:
    return {k: v.to(dev.device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def evaluate(model: nn.Module, corpus: Corpus, stage: Stage, dev: Device) -> float:
    """Mean loss on the fixed held-out batches at the stage's length (dropout off); under
    torchrun each rank takes a slice of every batch and the slices' losses are reduced."""
    was_training = model.training
    model.eval()
    losses = []
    d = distributed.current()
    for batch in corpus.val_batches(stage.shape.seq, stage.train.batch, VAL_BATCHES,
                                    stage.train.mlm_probability):
        with dev.context():
            if not d.active:
                losses.append(float(loss_of(model, to_device(batch, dev))))
                continue
            rows = len(batch["input_ids"])
            lo, hi = rows * d.rank // d.world, rows * (d.rank + 1) // d.world
            part = {k: v[lo:hi] for k, v in batch.items()}
            if hi == lo:        # fewer rows than ranks: this rank repeats row 0, weight 0
                part = {k: v[:1] for k, v in batch.items()}
            loss = float(loss_of(model, to_device(part, dev)))
            losses.append(distributed.weighted_mean(loss * (hi - lo), hi - lo))
    model.train(was_training)
    return sum(losses) / max(1, len(losses))


@dataclass(kw_only=True)
class Loop:
    """What one stage's loop works on; `state` advances with every step."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    corpus: Corpus
    stage: Stage
    dev: Device
    state: RunState
    step_flops: float
    rank: int = 0                   # this process's rank and the number of ranks:
    world: int = 1                  # each reads its slice of every global batch


@dataclass(frozen=True, kw_only=True, slots=True)
class StepLog:
    """What one finished step reports."""

    state: RunState
    loss: float
    lr: float
    tokens_per_s: float
    mfu: float | None = None            # None where the device's peak is unknown (CPU)


def steps(loop: Loop, should_stop: Callable[[], bool]) -> Iterator[StepLog]:
    """Train `loop.stage` from `loop.state.step` to its end, yielding after every step.
    Each rank's slice of the global batch runs as micro batches of `micro_batch` samples
    whose gradients add up (each loss weighted by its share of the slice), so a step's
    update is the same, up to float rounding, whatever the micro batch."""
    stage, train, state = loop.stage, loop.stage.train, loop.state
    # compile the loss as a whole: BERT's path calls the encoder and the head separately
    loss_fn: Callable[..., torch.Tensor] = torch.compile(loss_of) if loop.dev.compile else loss_of
    depths = submodel_depths(stage.shape)
    set_checkpointing(loop.model, train.checkpointing)
    sync: Any = getattr(loop.model, "set_requires_gradient_sync", None)   # FSDP2
    data = MicroBatches(loop.corpus, offset=state.data_offset, batch=train.batch,
                        micro=train.micro(loop.world), seq=stage.shape.seq,
                        mlm_probability=train.mlm_probability, rank=loop.rank, world=loop.world)
    batches = load(data, stage.steps - state.step, loop.dev.device.type == "cuda")
    size = train.batch // loop.world
    loop.model.train()
    while state.step < stage.steps and not should_stop():
        state = loop.state                      # the caller may have added wall time
        start = time.perf_counter()
        ramp_mask(loop.model, state.step)
        depth = depths[state.step % len(depths)]
        total = torch.zeros((), device=loop.dev.device)
        for i in range(data.parts_per_step):
            batch = next(batches)
            n = len(batch["input_ids"])
            if sync is not None:
                sync(i == data.parts_per_step - 1)      # reduce gradients on the last only
            with loop.dev.context(), submodel(loop.model, stage.shape.family, depth):
                loss = loss_fn(loop.model, to_device(batch, loop.dev)) * (n / size)
            loss.backward()
            total = total + loss.detach().float()
        value = distributed.mean(total)         # loss.item() in one process
        if not math.isfinite(value):
            loop.optimizer.zero_grad(set_to_none=True)
            fail("E717", f"loss is {value} at step {state.global_step + 1} "
                 f"(stage {stage.name}, step {state.step + 1}); stopped before updating the weights",
                 "the last good checkpoint is kept; lower `lr`, raise `warmup` or set grad_clip")
        if train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(loop.model.parameters(), train.grad_clip)
        lr = loop.optimizer.param_groups[0]["lr"]
        loop.optimizer.step()
        loop.scheduler.step()
        loop.optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - start
        tokens = train.batch * stage.shape.seq
        state = replace(state, step=state.step + 1, global_step=state.global_step + 1,
                        data_offset=state.data_offset + train.batch,
                        flops=state.flops + loop.step_flops, tokens=state.tokens + tokens,
                        wall=state.wall + elapsed)
        loop.state = state
        yield StepLog(state=state, loss=value, lr=float(lr),
                      tokens_per_s=tokens / max(elapsed, 1e-9),
                      mfu=loop.dev.mfu(loop.step_flops, elapsed))
