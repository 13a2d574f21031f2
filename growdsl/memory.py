"""The memory plan: each stage's peak memory per device, before anything runs. No torch.

Per device, for a stage of P parameters trained on `world` devices (FSDP2 shards the
parameters, gradients and optimizer moments evenly over them; one device keeps them whole):

    weights      4 P / world                      fp32 master weights
    grads        4 P / world                      fp32 gradients
    optimizer    8 P / world (adam, adamw)        two fp32 moments; sgd: 4 P (momentum)
    gathered     2 x e x P_layer  (world > 1)     one layer's weights gathered for compute
                                                  and its unsharded gradient (e: 2 in bf16)
    activations  what backward keeps for one micro batch of b samples of T tokens, and the
                 largest transient of backward:
                 no checkpointing:  L x layer(b, T) + embed(b, T) + max(head(b, T), grad(b, T))
                 checkpointing:     L x e b T D (each layer's input) + embed(b, T)
                                    + max(head(b, T), layer(b, T) + grad(b, T))
                                    (the head's backward, or one layer recomputed at a time)
                 in bf16 on one device, + 2 P: autocast's bf16 copies of the weights
    peak         the larger of the backward's and the optimizer step's:
                 weights + optimizer + gathered + activations + live gradients, where the
                 live gradients are all of them when accumulating (micro batch < the
                 device's batch), else the head's and one layer's: 4 min(P, V D + P_layer)
                 / world; and weights + grads + optimizer + gathered + step, where step is
                 4 P / world for AdamW on a CPU (foreach's temporary of the second moment's
                 square root), 0 with an accelerator's fused kernel

`layer(b, T)` = b T (c_D D + c_F F) e + b T n_m D m + [b H T^2 n_s e, when the device's
attention kernel materializes the scores]: c_D, c_F count the hidden-size and FFN-size
tensors one layer saves for backward, n_m its dropout masks (m bytes per element: 1 on an
accelerator, whose fused dropout keeps a bool mask; e on a CPU, whose dropout multiplies by a
mask of the input's type) and n_s the score-sized tensors kept (softmax output, dropout
mask, dropped output; none where the kernel is fused). `grad(b, T)` = b T (2 D + F) e is what
a layer's backward holds besides what the layer saved (the gradients of its output and input
and of one FFN-size tensor). The coefficients are the family's (`FAMILY_MEMORY`, by the
registry's kind of layer), counted from the Hugging Face implementations (the tensors autograd
saves) and checked against measured peaks by `bench/memory_plan.py` (docs/benchmarks.md).
e is 4 bytes in fp32, 2 in bf16 (autocast keeps matmul outputs in bf16).

The head keeps its logits: causal families b T V floats three times (the log-softmax saved,
and the gradients of it and of the logits at the start of backward), BERT only on its
M = mlm_probability x T masked positions.

A growth step's transient (the old and the new model with their moments, while the new
one is built: `(4 + 8) (P_old + P_new) / world`) is reported beside the stage it leads
into. A stage fits when its peak, and the transient into it, is at most `HEADROOM` of the
device's memory (growdsl.devices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from growdsl import families
from growdsl.devices import Device
from growdsl.errors import Diagnostic
from growdsl.flops import param_count, pooled_length
from growdsl.ir import Plan, Stage
from growdsl.shapes import Shape


@dataclass(frozen=True, kw_only=True, slots=True)
class FamilyMemory:
    """What one layer of a family keeps for backward, per token (see the module docstring)."""

    c_hidden: float          # hidden-size tensors kept (elements per token / D)
    c_ffn: float             # FFN-size tensors kept (elements per token / F)
    masks: float             # hidden-size dropout masks kept (elements per token / D)
    scores: float            # score-sized tensors kept when the scores are materialized
    embed_hidden: float      # hidden-size tensors the embeddings and final norm keep


# What a layer keeps, by the layer's kind; `kind_of` asks the family registry which kind a
# family's layer is (its FFN gated or not, its objective).
FAMILY_MEMORY: dict[str, FamilyMemory] = {
    # BERT, post-LN: q/k/v input, q, k, v, attention out, two LN inputs, LN out; exact GELU's
    # input and output; dropout on the attention probabilities and both residual branches
    "mlm": FamilyMemory(c_hidden=8, c_ffn=2, masks=2, scores=3, embed_hidden=2),
    # GPT-2, pre-LN: two LN inputs and outputs, q, k, v, attention out, c_proj input; the
    # tanh GELU (`gelu_new`, computed op by op) keeps five FFN-size tensors; dropout as BERT's
    "clm": FamilyMemory(c_hidden=8, c_ffn=5, masks=2, scores=3, embed_hidden=3),
    # LLaMA-like (LLaMA, Qwen2, Mistral): RMSNorm input, normalized and output twice, q, k
    # and their rotated halves, v, attention out (a fused attention kernel, no dropout);
    # SwiGLU: gate, up, SiLU, product
    "gated": FamilyMemory(c_hidden=10, c_ffn=4, masks=0, scores=0, embed_hidden=3),
}


def kind_of(family: str) -> str:
    """The `FAMILY_MEMORY` row of a family, from the registry's facts about it."""
    fam = families.get(family)
    return "gated" if fam.gated_ffn else fam.objective
OPTIMIZER_BYTES = {"adamw": 8, "adam": 8, "sgd": 4}


@dataclass(frozen=True, kw_only=True, slots=True)
class StageMemory:
    """One stage's peak per device, in bytes, by part."""

    stage: str
    micro: int
    checkpointing: bool
    weights: float
    grads: float
    optimizer: float
    gathered: float
    activations: float
    grads_live: float = 0.0      # gradients that exist at the backward's peak
    step: float = 0.0            # the optimizer step's temporaries
    growth: float = 0.0          # transient of the growth step into this stage

    @property
    def peak(self) -> float:
        """The larger of the backward's peak and the optimizer step's."""
        state = self.weights + self.optimizer + self.gathered
        return max(state + self.grads_live + self.activations,
                   state + self.grads + self.step)

    @property
    def worst(self) -> float:
        return max(self.peak, self.growth)


def _elem(bf16: bool) -> int:
    return 2 if bf16 else 4


def layer_params(shape: Shape) -> float:
    """Parameters of one layer (the rest of the model's are embeddings and head)."""
    one = shape.replace(layers=1, submodels=1)
    return param_count(one) - param_count(one.replace(layers=0))


def _ffn_width(shape: Shape) -> int:
    return shape.ffn_stored if shape.ffn_rank == 0 else shape.ffn_stored + shape.ffn_rank


def layer_activations(shape: Shape, micro: int, seq: int, bf16: bool, flash: bool,
                      mlm_probability: float = 0.15) -> float:
    """Bytes one layer keeps for backward for `micro` samples of `seq` tokens (`flash`: an
    accelerator's fused attention and dropout kernels)."""
    fam = FAMILY_MEMORY[kind_of(shape.family)]
    e = _elem(bf16)
    tokens = micro * pooled_length(shape, seq, mlm_probability)
    inner = shape.heads * shape.head_dim
    per_token = (fam.c_hidden * max(shape.hidden, inner) + fam.c_ffn * _ffn_width(shape)) * e
    per_token += fam.masks * shape.hidden * (1 if flash else e)
    scores = 0.0 if flash else micro * shape.heads * seq * seq * fam.scores * e
    return tokens * per_token + scores


def backward_transient(shape: Shape, micro: int, seq: int, bf16: bool) -> float:
    """Bytes a layer's backward holds beyond what the layer saved: the gradients of its
    output and input, and of one FFN-size tensor."""
    return micro * seq * (2 * shape.hidden + _ffn_width(shape)) * _elem(bf16)


def head_activations(shape: Shape, micro: int, seq: int, mlm_probability: float = 0.15) -> float:
    """Bytes the output head keeps: the logits (fp32 for the loss) and their copies."""
    if families.get(shape.family).objective == "mlm":
        masked = micro * max(1, round(mlm_probability * seq))
        return masked * (3 * shape.hidden * 4 + 2 * shape.vocab * 4)
    return micro * seq * shape.vocab * 4 * 3


def activations(shape: Shape, micro: int, seq: int, checkpointing: bool, bf16: bool,
                flash: bool, mlm_probability: float = 0.15) -> float:
    """Activation bytes of one micro batch (the bottom sub-model's depth is the deepest)."""
    fam = FAMILY_MEMORY[kind_of(shape.family)]
    layer = layer_activations(shape, micro, seq, bf16, flash, mlm_probability)
    embed = micro * seq * shape.hidden * fam.embed_hidden * _elem(bf16)
    head = head_activations(shape, micro, seq, mlm_probability)
    grad = backward_transient(shape, micro, seq, bf16)
    if checkpointing:       # each layer's input; the head's backward, or one layer recomputed
        inputs = shape.layers * micro * seq * shape.hidden * _elem(bf16)
        return inputs + embed + max(head, layer + grad)
    return shape.layers * layer + embed + max(head, grad)


def stage_memory(stage: Stage, world: int, bf16: bool, flash: bool,
                 micro: int | None = None) -> StageMemory:
    """`stage`'s peak per device on `world` devices at `micro` samples (the spec's micro
    batch when not given)."""
    shape, train = stage.shape, stage.train
    p = float(param_count(shape))
    b = micro or train.micro(world)
    gathered = 2 * _elem(bf16) * layer_params(shape) if world > 1 else 0.0
    accumulating = max(1, train.batch // world) > b
    # one micro batch per step: at the backward's peak only the head's and one layer's
    # gradients exist; accumulating, every gradient exists from the first micro batch on
    live = p if accumulating else min(p, shape.vocab * shape.hidden + layer_params(shape))
    # foreach AdamW (CPU) holds one parameter-size temporary (the second moment's square
    # root); an accelerator's fused kernel none
    step = 4 * p if train.optimizer in ("adam", "adamw") and not flash else 0.0
    # bf16 autocast on one device keeps a bf16 copy of every weight for backward (FSDP2's
    # mixed precision gathers bf16 weights a layer at a time instead: `gathered`)
    casts = 2 * p if bf16 and world == 1 else 0.0
    return StageMemory(
        stage=stage.name, micro=b, checkpointing=train.checkpointing,
        weights=4 * p / world, grads=4 * p / world,
        optimizer=OPTIMIZER_BYTES[train.optimizer] * p / world, gathered=gathered,
        activations=casts + activations(shape, b, shape.seq, train.checkpointing, bf16, flash,
                                        train.mlm_probability),
        grads_live=4 * live / world, step=step / world)


def growth_transient(src: Stage, dst: Stage, world: int) -> float:
    """Bytes per device while a growth step holds the old and the new model and moments."""
    state = 4 + OPTIMIZER_BYTES[dst.train.optimizer]
    return state * (param_count(src.shape) + param_count(dst.shape)) / world


def uses_bf16(precision: str, device: Device) -> bool:
    """bf16 autocast: asked for, or `auto` on an accelerator (fp32 on a CPU)."""
    return precision == "bf16" or (precision == "auto" and device.name != "cpu")


def plan_memory(plan: Plan, device: Device, world: int) -> list[StageMemory]:
    """Every stage's peak per device, with the growth step's transient into it."""
    out = []
    for i, stage in enumerate(plan.stages):
        est = stage_memory(stage, world, uses_bf16(stage.train.precision, device), device.flash)
        if i > 0:
            est = _with_growth(est, growth_transient(plan.stages[i - 1], stage, world))
        out.append(est)
    return out


def _with_growth(est: StageMemory, growth: float) -> StageMemory:
    return replace(est, growth=growth)


def sized_for(plan: Plan, device: str | None, world: int | None) -> Plan:
    """`plan` with its `device` and `world` replaced (by `growdsl plan --device --world`)."""
    changes: dict[str, Any] = {}
    if device is not None:
        changes["device"] = device
    if world is not None:
        changes["world"] = world
    return replace(plan, train=replace(plan.train, **changes),
                   stages=tuple(replace(s, train=replace(s.train, **changes))
                                for s in plan.stages))


def largest_micro(stage: Stage, device: Device, world: int) -> int:
    """The largest micro batch whose peak fits the device (0: not even one sample)."""
    bf16 = uses_bf16(stage.train.precision, device)
    per_device = max(1, stage.train.batch // world)

    def fits(b: int) -> bool:
        return stage_memory(stage, world, bf16, device.flash, b).peak <= device.usable

    small = [b for b in range(1, math.isqrt(per_device) + 1) if per_device % b == 0]
    divisors = sorted({*small, *(per_device // b for b in small)})
    lo, hi = 0, len(divisors)           # activations grow with b: bisect the divisors
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(divisors[mid]):
            lo = mid + 1
        else:
            hi = mid
    return divisors[lo - 1] if lo else 0


def gib(n: float) -> str:
    return f"{n / 2**30:.1f}"


def fit_diagnostics(plan: Plan, device: Device, world: int) -> list[Diagnostic]:
    """E802 for every stage whose peak (or growth transient) exceeds the device."""
    found = []
    for stage, est in zip(plan.stages, plan_memory(plan, device, world), strict=True):
        if est.worst <= device.usable or stage.steps == 0:     # a 0-step stage never trains
            continue
        where = f"stage {stage.name} needs {gib(est.worst)} GiB per device"
        if est.peak <= device.usable:
            found.append(Diagnostic(
                code="E802", span=stage.span,
                message=f"{where} while growing into it, over the {gib(device.usable)} GiB "
                        f"usable on {device.name}",
                help=f"use more devices (world = {math.ceil(world * est.worst / device.usable)})"))
            continue
        best = largest_micro(stage, device, world)
        help = (f"the largest micro batch that fits is micro_batch = {best}" if best else
                "not even micro_batch = 1 fits: set checkpointing = true or a larger world"
                if not stage.train.checkpointing else
                "not even micro_batch = 1 fits: use a larger world")
        found.append(Diagnostic(
            code="E802", span=stage.span,
            message=f"{where} at micro_batch {est.micro}, over the {gib(device.usable)} GiB "
                    f"usable on {device.name}", help=help))
    return found
