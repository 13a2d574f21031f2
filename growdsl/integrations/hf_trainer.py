"""A plan's stages inside a Hugging Face `Trainer`: `GrowthTrainer` trains each stage with
the Trainer's own loop (its logging, callbacks, checkpoints, `accelerate launch`), and between
stages grows the model, its optimizer state (per the plan's `optimizer_state`) and its LR
schedule through the same `transition` as `growdsl run`, verifying the step on a batch.

What the plan decides, the Trainer follows: each stage's steps (`max_steps`), global batch
(`per_device_train_batch_size` = batch / processes / accumulation), gradient clipping,
optimizer and LR schedule (the `TrainingArguments`' own learning rate, scheduler and
optimizer are not used). The training set is consumed in order, stage after stage (sample
`k` of the plan is `train_dataset[k]`): shuffle it beforehand if you want it shuffled.
Under `accelerate launch` each process grows its replica (DDP keeps them equal); FSDP and
DeepSpeed are not supported. Stages with sub-models (`submodels`) or a mask ramp
(`masked`) need growdsl's loop and are refused (E721). See docs/integrations.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, SequentialSampler, Subset
from transformers import PreTrainedModel, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import TrainOutput, set_seed

from growdsl import gate
from growdsl.api import Spec
from growdsl.backend.run_errors import fail
from growdsl.integrations.loop import GrowthPlan
from growdsl.ir import Stage


class _StageRng(TrainerCallback):
    """The dropout RNG continues across stages as in `growdsl run`: the state a stage ended
    with (or the seed's, at the start) is restored before the next stage's first step,
    undoing what the Trainer's new data loader drew from it."""

    def __init__(self) -> None:
        self.state: torch.Tensor | None = None

    def on_step_begin(self, args: TrainingArguments, state: Any, control: Any,
                      **kwargs: Any) -> None:
        if self.state is not None:
            torch.set_rng_state(self.state)
            self.state = None


class GrowthTrainer(Trainer):
    """`Trainer` that runs a `.grow` plan's stages: `GrowthTrainer(plan=..., args=...,
    train_dataset=...)`, then `train()`. `model` defaults to the plan's first-stage model;
    `verify_batch` (default: the first samples of `eval_dataset`, else of the training
    set) is where each growth step is compared with the model before it."""

    def __init__(self, *, plan: Spec | str | Path | GrowthPlan, args: TrainingArguments,
                 train_dataset: Dataset, model: PreTrainedModel | None = None,
                 verify_batch: dict[str, torch.Tensor] | None = None,
                 allow_unverified: bool = False, **kwargs: Any) -> None:
        self.growth = plan if isinstance(plan, GrowthPlan) else GrowthPlan(
            plan, allow_unverified=allow_unverified)
        for stage in self.growth.stages:
            _refuse_unsupported(self.growth, stage)
        self._rng = _StageRng()
        callbacks = [*(kwargs.pop("callbacks", None) or []), self._rng]
        super().__init__(model=model if model is not None else self.growth.initial_model(),
                         args=args, train_dataset=train_dataset, callbacks=callbacks, **kwargs)
        # The loss of a step is the model's own mean over its batch, as in `growdsl run`
        # (not a sum over a token count the Trainer estimates).
        self.model_accepts_loss_kwargs = False
        self._plan_dataset = train_dataset
        self._verify_batch = verify_batch
        self.growth_log: list[dict[str, Any]] = []     # one entry per growth step
        self.history: list[dict[str, Any]] = []        # every stage's log, `stage` added

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler:
        data: Any = train_dataset if train_dataset is not None else self.train_dataset
        return SequentialSampler(data)

    def train(self, *args: Any, **kwargs: Any) -> TrainOutput:
        """Every stage of the plan, growth steps between them; the last stage's output."""
        first = self.growth.stages[0]
        set_seed(first.train.seed + self.args.process_index)     # as `growdsl run` seeds
        self._rng.state = torch.get_rng_state()
        offset, out = 0, None
        for stage in self.growth.stages:
            if stage.index > 0:
                self._grow(self.growth.stages[stage.index - 1])
            if stage.steps == 0:
                continue
            self._configure(stage, offset)
            out = super().train(*args, **kwargs)
            self._rng.state = torch.get_rng_state()
            self.history += [{**entry, "stage": stage.index} for entry in self.state.log_history]
            offset += stage.steps * stage.train.batch
        self.train_dataset = self._plan_dataset
        assert out is not None, "a plan trains at least one step"
        return out

    def _configure(self, stage: Stage, offset: int) -> None:
        """The Trainer's settings for `stage`: steps, batch, clipping, optimizer, schedule."""
        per_step = self.args.world_size * self.args.gradient_accumulation_steps
        gate.split(self.growth.spec.plan, self.growth.spec.source, self.args.world_size,
                   self.args.gradient_accumulation_steps)
        self.args.max_steps = stage.steps
        self.args.per_device_train_batch_size = stage.train.batch // per_step
        self._train_batch_size = self.args.per_device_train_batch_size
        self.args.max_grad_norm = stage.train.grad_clip
        self.train_dataset = Subset(self._plan_dataset,
                                    range(offset, offset + stage.steps * stage.train.batch))
        if stage.index == 0 or self.optimizer is None:
            self.optimizer, self.lr_scheduler = self.growth.optimizer(self._model(), stage)

    def _grow(self, src: Stage) -> None:
        """The growth step after `src`: model, optimizer and schedule replaced."""
        optimizer = getattr(self.optimizer, "optimizer", self.optimizer)   # accelerate's wrap
        batch = {k: v.to(self.args.device) for k, v in self._held_out(src).items()}
        assert optimizer is not None
        grown = self.growth.grow(self._model(), optimizer, after=src, batch=batch)
        self.model = self.model_wrapped = grown.model
        self.optimizer, self.lr_scheduler = grown.optimizer, grown.schedule
        entry = {"growth/stage": src.index + 1, "growth/max_abs_diff": grown.diff.max_abs,
                 "growth/max_rel_diff": grown.diff.max_rel}
        self.growth_log.append({**entry, "ops": grown.ops})
        self.log(entry)

    def _model(self) -> PreTrainedModel:
        assert isinstance(self.model, PreTrainedModel)
        return self.model

    def _held_out(self, src: Stage) -> dict[str, torch.Tensor]:
        if self._verify_batch is not None:
            return self._verify_batch
        data: Any = self.eval_dataset if isinstance(self.eval_dataset, Dataset) \
            else self._plan_dataset
        count = min(4, src.train.batch, len(data))
        return self.data_collator([data[i] for i in range(count)])


def _refuse_unsupported(plan: GrowthPlan, stage: Stage) -> None:
    masked = stage.growth is not None and any(op.name == "masked" for op in stage.growth.ops)
    if stage.shape.submodels > 1 or masked:
        what = "sub-models" if stage.shape.submodels > 1 else "a masked (ramped) growth step"
        fail("E721", f"stage {stage.name} trains {what}, which the Trainer integration does "
             "not run", "run this plan with `growdsl run`", plan.spec.source, stage.span)


class CorpusSamples(Dataset):
    """growdsl's packed corpus as a map-style dataset of model inputs: sample `k` is what
    `growdsl run` trains on as global sample `k` (BERT: 80/10/10 masking, labels -100
    outside the masked positions, as Hugging Face MLM models take them)."""

    def __init__(self, corpus: Any, seq: int, mlm_probability: float = 0.15,
                 length: int | None = None) -> None:
        self.corpus, self.seq, self.mlm_p = corpus, seq, mlm_probability
        self.length = length if length is not None else 10 ** 9

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        batch = self.corpus.batch(k, 1, self.seq, self.mlm_p)
        positions = batch.pop("mlm_positions", None)
        if positions is not None:           # labels at every position, -100 unless masked
            labels = torch.full_like(batch["input_ids"], -100)
            labels.scatter_(1, positions, batch["labels"])
            batch["labels"] = labels
        return {k: v[0] for k, v in batch.items()}
