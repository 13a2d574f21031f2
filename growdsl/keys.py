"""Every key the language knows: model dimensions, stage shapes and treatments, training
settings, limits, and the symbols usable in expressions. docs/language.md documents them;
`lower` is the only reader.
"""

from __future__ import annotations

from dataclasses import dataclass

# Symbols in expressions stand for the TARGET model's dimensions.
SYMBOLS: dict[str, str] = {
    "L": "layers", "layers": "layers", "depth": "layers",
    "D": "hidden", "hidden": "hidden",
    "H": "heads", "heads": "heads",
    "KV": "kv_heads", "kv_heads": "kv_heads",
    "F": "ffn", "ffn": "ffn",
    "V": "vocab", "vocab": "vocab",
    "T": "seq", "seq": "seq",
    "P": "positions", "positions": "positions",
}

# Model dimensions (`model bert(...)`) and the Shape field each sets.
MODEL_KEYS: dict[str, str] = {
    "layers": "layers", "depth": "layers", "hidden": "hidden", "heads": "heads",
    "kv_heads": "kv_heads", "head_dim": "head_dim", "ffn": "ffn", "vocab": "vocab",
    "seq": "seq", "positions": "positions", "tied": "tied",
}

# Stage keys that shape the stage's model (defaults: the target's values).
STAGE_SHAPE_KEYS: dict[str, str] = {
    "depth": "layers", "layers": "layers", "hidden": "hidden", "heads": "heads",
    "kv_heads": "kv_heads", "head_dim": "head_dim", "ffn": "ffn", "seq": "seq",
    "positions": "positions",
    # low-cost treatments
    "width": "ffn_share",        # FFN parameter sharing: the stored FFN width
    "rank": "ffn_rank",          # FFN factorization rank
    "pool": "pool",              # embedding pooling window, or mean(p) / max(p)
    "submodels": "submodels",    # bert2BERT two-stage training over k bottom sub-models
}
STAGE_OTHER_KEYS = ("name",)

POOL_MODES = ("mean", "max")


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainKey:
    """A training setting: its value type, allowed words, and whether it counts steps."""

    type: str                    # int | float | str | path | text | betas | bool
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    plan_wide: bool = False      # set in `train { }` only, not per stage


# The experiment trackers `report_to` may name -> the pip package (and module) each reports
# through (growdsl.backend.trackers opens them, through accelerate's tracker integrations).
TRACKERS: dict[str, str] = {
    "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio",
}

TRAIN_KEYS: dict[str, TrainKey] = {
    "batch": TrainKey(type="int", minimum=1, maximum=2**24),
    # samples one device holds per forward/backward; batch = micro_batch x accumulation x world
    "micro_batch": TrainKey(type="int", minimum=1, maximum=2**24),
    "checkpointing": TrainKey(type="bool"),     # activation checkpointing, per layer
    "optimizer": TrainKey(type="str", choices=("adamw", "adam", "sgd")),
    "lr": TrainKey(type="float", minimum=0),
    "betas": TrainKey(type="betas"),
    "eps": TrainKey(type="float", minimum=0),
    "weight_decay": TrainKey(type="float", minimum=0),
    "grad_clip": TrainKey(type="float", minimum=0),
    "warmup": TrainKey(type="int", minimum=0),
    "decay": TrainKey(type="str", choices=("linear", "cosine", "constant")),
    "min_lr": TrainKey(type="float", minimum=0),
    "schedule": TrainKey(type="str", choices=("restart", "continue")),
    "optimizer_state": TrainKey(type="str", choices=("reset", "transfer", "transform")),
    "precision": TrainKey(type="str", choices=("auto", "fp32", "bf16", "fp16")),
    "mlm_probability": TrainKey(type="float", minimum=0, maximum=1),
    "seed": TrainKey(type="int", minimum=0),
    "data": TrainKey(type="path", plan_wide=True),
    "tokenizer": TrainKey(type="path", plan_wide=True),
    "eval_every": TrainKey(type="int", minimum=0),
    "checkpoint_every": TrainKey(type="int", minimum=0),
    "keep_checkpoints": TrainKey(type="int", minimum=1, plan_wide=True),
    # what the memory plan sizes the run for: a device name from growdsl.devices or "80GiB",
    # and the number of devices (FSDP shards over them)
    "device": TrainKey(type="text", plan_wide=True),
    "world": TrainKey(type="int", minimum=1, maximum=2**20, plan_wide=True),
    # the experiment trackers: a name, a tuple of names, or `none` (only metrics.csv)
    "report_to": TrainKey(type="trackers", plan_wide=True),
}

GROWTH_KEYS = ("seed",)

LIMIT_METRICS: dict[str, tuple[str, ...]] = {
    "budget": ("flops", "tokens", "steps"),
    "expect": ("speedup", "saving"),
}

# Names other tools use for what the language calls otherwise: a did-you-mean offers the
# language's name when it is among the candidates (`gpt2-small` is the preset `gpt2`).
COMMON_NAMES: dict[str, str] = {
    "gpt2-small": "gpt2", "gpt2-base": "gpt2", "gpt-2": "gpt2", "llama2-7b": "llama-2-7b",
    "llama3-8b": "llama-3-8b", "tinyllama": "tinyllama-1.1b",
    "grad_accum": "micro_batch", "gradient_accumulation_steps": "micro_batch",
    "accumulate_grad_batches": "micro_batch", "grad_accumulation": "micro_batch",
    "learning_rate": "lr", "batch_size": "batch", "warmup_steps": "warmup",
    "max_grad_norm": "grad_clip", "clip_grad_norm": "grad_clip", "lr_scheduler": "decay",
    "num_layers": "layers", "n_layer": "layers", "num_hidden_layers": "layers",
    "n_embd": "hidden", "hidden_size": "hidden", "d_model": "hidden",
    "n_head": "heads", "num_attention_heads": "heads", "num_key_value_heads": "kv_heads",
    "intermediate_size": "ffn", "n_inner": "ffn", "vocab_size": "vocab",
    "max_position_embeddings": "positions", "n_positions": "positions", "seq_len": "seq",
    "context_length": "seq", "max_seq_len": "seq",
}
# A common name whose language name is not a candidate here: a hint instead of a guess.
NAME_HINTS: dict[str, str] = {
    name: "growdsl has no gradient-accumulation setting: `batch` is the global batch of one "
          "optimizer step" for name in COMMON_NAMES if COMMON_NAMES[name] == "micro_batch"
}

BOOLEANS = {"true": True, "false": False}
UNIT_SUFFIXES = {"k": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def format_count(x: float) -> str:
    """A count as a spec would write it: 3 significant figures with the language's unit
    suffixes (k, M, B, T), and scientific notation past 1000T (also valid `.grow` syntax).

    >>> [format_count(x) for x in (512, 1_500, 110e6, 4.24e13, 7.71e19)]
    ['512', '1.5k', '110M', '42.4T', '7.71e19']
    """
    if abs(x) >= 1000 * UNIT_SUFFIXES["T"]:
        mantissa, exponent = f"{x:.2e}".split("e")
        return f"{float(mantissa):.3g}e{int(exponent)}"
    for unit, size in sorted(UNIT_SUFFIXES.items(), key=lambda kv: -kv[1]):
        if abs(x) >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepKey:
    """A `sweep { }` setting: its value type, allowed words, bounds, and whether a tuple of
    choices (an open choice) is allowed."""

    type: str                    # int | float | str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    open: bool = False           # may be a tuple: the sweep tries each value
    help: str = ""


# `sweep { }` (growdsl sweep; docs/sweep.md). Open keys say what varies; the others bound it.
SWEEP_KEYS: dict[str, SweepKey] = {
    "timing": SweepKey(type="float", minimum=0, maximum=1, open=True,
                       help="share of the steps the small model trains before growth"),
    "factor": SweepKey(type="int", minimum=2, open=True,
                       help="growth factor g: the target's depth over the small model's"),
    "schedule": SweepKey(type="str", choices=("restart", "continue"), open=True,
                         help="the LR schedule at growth"),
    "warmup": SweepKey(type="int", minimum=0, open=True,
                       help="warmup steps of the stage after growth"),
    "steps": SweepKey(type="int", minimum=2, help="steps of each proxy run"),
    "flops": SweepKey(type="float", minimum=0,
                      help="FLOP budget of the whole sweep, scratch included"),
    "jobs": SweepKey(type="int", minimum=1, help="proxy runs at a time"),
    "search": SweepKey(type="str", choices=("grid", "optuna"), help="how candidates are chosen"),
    "trials": SweepKey(type="int", minimum=1, help="candidates an Optuna search tries"),
}
