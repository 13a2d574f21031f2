"""The one FLOP formula of growdsl: training cost of a stage, of a plan, and of scratch.

Convention (Kaplan et al. 2020; PaLM, Chowdhery et al. 2022, appendix B; nanoGPT's
`estimate_mfu`): only matrix multiplications count (embedding lookups, norms, softmax,
activations and biases are left out, as `torch.utils.flop_counter.FlopCounterMode` does).
A matmul with N weights costs 2N FLOPs per token forward and 4N backward (gradient of the
input and of the weight): training costs 3x the forward pass, 6N per token. Attention
scores Q K^T and the weighted sum A V cost 2 * Tq * Tk * H * d each forward, so with no
pooling 12 * L * H * d * T per token for training -- the PaLM term 12 L H Q T.

Causal attention (GPT-2, LLaMA) is counted in full, T keys for every query, not T/2: this
is PaLM's and nanoGPT's convention and what the dense kernels actually compute.

Model-specific terms:
- BERT's masked-LM head (transform D x D and decoder D x V) runs on the masked positions
  only (`mlm_probability`, 15%), as in Google's BERT; GPT-2 / LLaMA heads run on every
  position. The BERT pooler is not part of BertForMaskedLM and is not counted.
- CompoundGrow's embedding pooling with window p, as growdsl.backend.pooling runs it: the
  first layer's queries are the [CLS] position plus ceil((T-1)/p) pooled windows, and for
  BERT the M = mlm_probability * T masked positions appended unpooled (so the MLM head
  still predicts per token). The first layer's query projection, scores, output projection
  and FFN run on those T' = 1 + ceil((T-1)/p) + M positions while its keys and values stay
  at T; every later layer runs on T'. The MLM head stays per masked token.
- FFN parameter sharing by k counts the stored (narrow) width ffn/k: a tiled FFN computes
  what the narrow one computes, and is implemented as such. A factorized FFN of rank r
  counts r * (D + F) weights per matrix.
- bert2BERT's sub-model stage (`submodels` = n > 1): each step trains one of n sub-models
  made of the bottom L*j/n layers (j = 1..n, rounded up) with the shared head; the stage
  costs the average over the n sub-models.
The reference run a plan is compared with (`scratch`) is defined in growdsl.reference and
priced here, by `stage_flops`, like any stage.
"""

from __future__ import annotations

import math

from growdsl import families
from growdsl.ir import Plan, Stage
from growdsl.shapes import Shape

TRAIN_FACTOR = 3  # forward + backward = 3 x forward


def ffn_weights(shape: Shape) -> int:
    """Weights one layer's FFN multiplies with (stored width; factorized counted by rank)."""
    mats = 3 if families.get(shape.family).gated_ffn else 2    # SwiGLU: gate, up, down
    width = shape.ffn_stored
    if shape.ffn_rank > 0:
        return mats * shape.ffn_rank * (shape.hidden + width)
    return mats * shape.hidden * width


def attention_weights(shape: Shape) -> tuple[int, int, int]:
    """(query, key+value, output) projection weights of one layer."""
    inner = shape.heads * shape.head_dim
    kv = 2 * shape.kv_heads * shape.head_dim * shape.hidden
    return shape.hidden * inner, kv, inner * shape.hidden


def head_weights(shape: Shape) -> int:
    """Weights of the output head (BERT: MLM transform + decoder; others: LM head)."""
    transform = shape.hidden * shape.hidden if families.get(shape.family).mlm_transform else 0
    return transform + shape.hidden * shape.vocab


def pooled_length(shape: Shape, seq: int, mlm_probability: float = 0.15) -> float:
    """Positions every layer after the first query projection sees (seq when unpooled)."""
    if shape.pool <= 1:
        return float(seq)
    appended = seq * mlm_probability if _mlm(shape) else 0.0
    return 1 + math.ceil((seq - 1) / shape.pool) + appended


def layer_forward(shape: Shape, seq: int, first: bool, mlm_probability: float = 0.15) -> float:
    """Forward FLOPs of one layer on one sequence of `seq` tokens (pooling applied)."""
    pooled = pooled_length(shape, seq, mlm_probability)
    q_len = pooled
    kv_len = seq if first else pooled
    q_w, kv_w, o_w = attention_weights(shape)
    attn = 2 * 2 * q_len * kv_len * shape.heads * shape.head_dim   # Q K^T and A V
    return 2 * (q_w * q_len + kv_w * kv_len + (o_w + ffn_weights(shape)) * q_len) + attn


def forward_flops(shape: Shape, seq: int | None = None, mlm_probability: float = 0.15,
                  layers: int | None = None) -> float:
    """Forward FLOPs of `shape` (or its bottom `layers` layers) on one sequence."""
    seq = seq or shape.seq
    depth = shape.layers if layers is None else layers
    body = 0.0
    if depth > 0:
        body = (layer_forward(shape, seq, True, mlm_probability)
                + (depth - 1) * layer_forward(shape, seq, False, mlm_probability))
    head_tokens = seq * mlm_probability if _mlm(shape) else seq
    return body + 2 * head_weights(shape) * head_tokens


def submodel_depths(shape: Shape) -> list[int]:
    """Depths of bert2BERT's sub-models: the bottom ceil(L*j/n) layers, j = 1..n."""
    n = max(shape.submodels, 1)
    return [math.ceil(shape.layers * j / n) for j in range(1, n + 1)]


def submodel_depth_sum(shape: Shape) -> int:
    """The sum of `submodel_depths` in closed form, without listing them (a spec may ask for
    millions of layers or sub-models: `check` must still answer at once, in constant memory).

    With g = gcd(L, n): sum_{j=1..n} floor(L j / n) = ((L-1)(n-1) + g - 1) / 2 + L, and
    ceil differs from floor for the n - g values of j where n does not divide L j.

    >>> from growdsl.shapes import PRESETS
    >>> shape = PRESETS["bert-base"].replace(submodels=5)
    >>> submodel_depth_sum(shape) == sum(submodel_depths(shape))
    True
    """
    n, layers = max(shape.submodels, 1), shape.layers
    if layers < 1:
        return layers * n
    g = math.gcd(layers, n)
    return ((layers - 1) * (n - 1) + g - 1) // 2 + layers + n - g


def train_flops_per_sequence(shape: Shape, seq: int | None = None,
                             mlm_probability: float = 0.15) -> float:
    """Training (forward + backward) FLOPs on one sequence, sub-models averaged (forward
    FLOPs are affine in the depth, so the average is the FLOPs at the mean depth)."""
    n = max(shape.submodels, 1)
    if n == 1 or shape.layers < 1:
        return TRAIN_FACTOR * forward_flops(shape, seq, mlm_probability)
    mean = submodel_depth_sum(shape) / n
    seq = seq or shape.seq
    first = layer_forward(shape, seq, True, mlm_probability)
    rest = layer_forward(shape, seq, False, mlm_probability)
    head_tokens = seq * mlm_probability if _mlm(shape) else seq
    fwd = first + (mean - 1) * rest + 2 * head_weights(shape) * head_tokens
    return TRAIN_FACTOR * fwd


def train_flops_per_step(shape: Shape, batch: int, seq: int | None = None,
                         mlm_probability: float = 0.15) -> float:
    """Training FLOPs of one optimizer step on `batch` sequences."""
    return batch * train_flops_per_sequence(shape, seq, mlm_probability)


def train_flops_per_token(shape: Shape, seq: int | None = None,
                          mlm_probability: float = 0.15) -> float:
    """Training FLOPs per input token (6N + 12 L H d T when nothing is pooled or shared)."""
    seq = seq or shape.seq
    return train_flops_per_sequence(shape, seq, mlm_probability) / seq


def stage_flops(stage: Stage) -> float:
    """Training FLOPs of a whole stage."""
    return stage.steps * train_flops_per_step(stage.shape, stage.train.batch, stage.shape.seq,
                                              stage.train.mlm_probability)


def total_steps(plan: Plan) -> int:
    return sum(s.steps for s in plan.stages)


def param_count(shape: Shape) -> int:
    """Stored parameters of the Hugging Face model for `shape` (with its treatments): the
    sum over the family's weight map, tied copies counted once."""
    return families.stored_parameters(shape)


def _mlm(shape: Shape) -> bool:
    """True for a masked-LM family: the head reads only the masked positions."""
    return families.get(shape.family).objective == "mlm"
