"""How a run starts: fresh (the first stage's model, new or read from the spec's `init from`
checkpoint, its shape and config checked) or resumed (the model built from a checkpoint's
config, then filled by the checkpoint with its optimizer, schedule, RNG and run state).
The corpus and tokenizer paths come resolved in the IR (`SpecPath`); `--data` overrides the
corpus.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, PreTrainedModel

from growdsl import families
from growdsl.backend import checkpoint as ckpt
from growdsl.backend import distributed, sharded, sizes
from growdsl.backend.data import TOKENIZER_FILES
from growdsl.backend.init_from import load_init
from growdsl.backend.models import build_from_config, build_model, shape_of
from growdsl.backend.run_errors import fail
from growdsl.backend.state import RunState
from growdsl.backend.train import Device, make_optimizer
from growdsl.backend.transition import schedule_for
from growdsl.families import INERT
from growdsl.hf_config import METADATA, config_problem
from growdsl.ir import Plan
from growdsl.operators import structural_diff
from growdsl.shapes import Shape
from growdsl.source import Source

log = logging.getLogger("growdsl.run")


@dataclass(kw_only=True)
class Started:
    """What training starts from: model, optimizer, schedule and where the run stands."""

    model: PreTrainedModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    state: RunState


def fresh(plan: Plan, source: Source, dev: Device, key: str,
          drop: tuple[str, ...] = ()) -> Started:
    """The first stage's model on `dev` (sharded under torchrun), its optimizer and
    schedule, at step 0 (`drop`: `run --drop`'s globs, `initial_model`)."""
    model = initial_model(plan, source, drop)
    model.to(dev.device)  # type: ignore[arg-type]
    model = sharded.shard(model, dev.autocast is not None)
    first = plan.stages[0]
    optimizer = make_optimizer(model, first.train)
    return Started(model=model, optimizer=optimizer,
                   scheduler=schedule_for(plan, first, optimizer), state=RunState.fresh(key))


def resumed(plan: Plan, found: Path, dev: Device) -> Started:
    """The run as the checkpoint `found` left it. Under torchrun the model is built on
    `meta` and only this rank's shards are allocated before the checkpoint fills them."""
    d = distributed.current()
    log.info("resuming from %s%s", found, " (model built on meta, only this rank's "
             "shards allocated)" if d.active else "")
    config = AutoConfig.from_pretrained(str(found), local_files_only=True)
    if d.active:
        model = sharded.build_sharded(config, dev.device, dev.autocast is not None)
    else:
        model = build_from_config(config, seed=None)
        model.to(dev.device)  # type: ignore[arg-type]
    stage = plan.stages[ckpt.read_state(found).stage]
    optimizer = make_optimizer(model, stage.train)
    scheduler = schedule_for(plan, stage, optimizer)
    state = ckpt.load_into(found, model, optimizer, scheduler)
    return Started(model=model, optimizer=optimizer, scheduler=scheduler, state=state)


def data_path(plan: Plan, source: Source, override: Path | None) -> Path:
    """The corpus: `--data`, else the first stage's `data` (E710 when neither names one)."""
    if override is not None:
        return override
    given = plan.stages[0].train.data or plan.train.data
    if given is None:
        fail("E710", "the plan names no corpus",
             'add `data = "PATH"` to the train block, or pass --data PATH', source)
    return given.path


def tokenizer_path(plan: Plan) -> Path | None:
    """The first stage's `tokenizer`; with none, and `init from DIR`, the checkpoint's own
    tokenizer (the one its embeddings were trained with) when DIR holds one; else None (one
    is trained on the corpus)."""
    given = plan.stages[0].train.tokenizer
    if given is not None:
        return given.path
    if plan.init is None:
        return None
    path = plan.init.path
    return path if any((path / name).is_file() for name in TOKENIZER_FILES) else None


def _json_or_none(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def settings_diff(loaded: Shape, wanted: Shape) -> list[str]:
    """Config fields that the starting checkpoint and the plan's model both set, to
    different values."""
    return [f"{key} {loaded.settings[key]!r} (the plan's model has {wanted.settings[key]!r})"
            for key in sorted(set(loaded.settings) & set(wanted.settings))
            if key not in METADATA and loaded.settings[key] != wanted.settings[key]
            and _functional(wanted, key)]


def _functional(shape: Shape, key: str) -> bool:
    spec = families.get(shape.family).field(key)
    return spec is None or spec.effect != INERT


def initial_model(plan: Plan, source: Source, drop: tuple[str, ...] = ()) -> PreTrainedModel:
    """The first stage's model: fresh, or the spec's starting checkpoint (shape checked; its
    tensors outside the model's map known inert or matched by `drop`, `init_from`)."""
    first = plan.stages[0]
    if plan.init is None:
        return build_model(first.shape, seed=first.train.seed)
    path = plan.init.path

    def refuse(why: str, hint: str) -> None:
        fail("E714", f"starting checkpoint {plan.init}: {why}", hint, source, plan.init_span)

    if not (path / "config.json").exists():
        fail("E714", f"starting checkpoint {plan.init} has no config.json",
             "give a local Hugging Face model directory", source, plan.init_span)
    problem = config_problem(first.shape.family, _json_or_none(path / "config.json"))
    if problem:                 # `check`'s own test (sizes bounded), before any build
        refuse(f"config.json: {problem}", "docs/operators.md lists the config fields growdsl "
               "carries")
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    got = shape_of(config)
    diff = structural_diff(got, first.shape)
    if diff:
        shown = ", ".join(f"{k} {getattr(got, k)} (stage wants {getattr(first.shape, k)})"
                          for k in diff)
        fail("E714", f"starting checkpoint {plan.init} does not match the first stage: {shown}",
             "make the first stage's shape that of the checkpoint", source, plan.init_span)
    files = sorted(path.glob("*.safetensors"))
    if not files:
        refuse("no *.safetensors weights", "save it with `save_pretrained` (safetensors)")
    problem = sizes.tensor_shapes_problem(config, files)      # from the headers: no memory
    if problem:
        refuse(problem, "is config.json the one saved with these weights?")
    model = load_init(path, config, files, seed=first.train.seed, drop=drop, source=source,
                      span=plan.init_span)
    fields = settings_diff(shape_of(model.config), first.shape)
    if fields:
        fail("E714", f"starting checkpoint {plan.init} has another config than the plan's "
             f"model: {', '.join(fields)}",
             f"read the model from the checkpoint: `model {first.shape.family} from "
             f"\"{plan.init}\"`", source, plan.init_span)
    return model
