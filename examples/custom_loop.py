"""A `.grow` plan's stages in a plain PyTorch training loop, through growdsl's hook API
(`growdsl.integrations.loop.GrowthPlan`): the plan gives each stage's model, optimizer and
LR schedule, and grows model and optimizer between stages; the loop is yours.

    python examples/custom_loop.py             # a tiny GPT-2 on random tokens, seconds on a CPU
"""

from __future__ import annotations

import torch

import growdsl
from growdsl.integrations.loop import GrowthPlan

SPEC = """
model gpt2(layers=2, hidden=32, heads=2, ffn=64, seq=16, vocab=128)
train {
  batch = 4
  lr = 3e-3
  warmup = 2
  optimizer_state = transfer
}
stage 5: depth=L/2 -> stack
stage 5:
"""


def batches(vocab: int, seq: int, batch: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Your data: here random token blocks (a language model's inputs and labels)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        ids = torch.randint(0, vocab, (batch, seq), generator=generator)
        yield {"input_ids": ids, "labels": ids}


def main() -> None:
    plan = GrowthPlan(growdsl.load(text=SPEC, name="custom_loop.grow"))
    model = plan.initial_model()
    optimizer, schedule = plan.optimizer(model, plan.stages[0])
    held_out = next(batches(plan.plan.target.vocab, 16, 2, seed=1))
    for stage in plan.stages:
        data = batches(plan.plan.target.vocab, stage.shape.seq, stage.train.batch, stage.index)
        model.train()
        for step in range(stage.steps):
            loss = model(**next(data)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), stage.train.grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            print(f"stage {stage.name} step {step + 1}: loss {loss.item():.4f}")
        if stage.index + 1 < len(plan.stages):
            grown = plan.grow(model, optimizer, after=stage, batch=held_out)
            model, optimizer, schedule = grown
            print(f"grew {stage.name} -> {plan.stages[stage.index + 1].name}: {grown.ops}, "
                  f"logits moved by up to {grown.diff.max_abs:.3g}")
    print(f"final model: {model.config.n_layer} layers")


if __name__ == "__main__":
    main()
