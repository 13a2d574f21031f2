"""`growdsl plan --memory`: each stage's peak memory per device, part by part (no torch).
The estimate is `growdsl.memory`'s; this module only prints it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from growdsl.devices import resolve
from growdsl.ir import Plan
from growdsl.memory import gib, largest_micro, plan_memory, uses_bf16


def print_memory(plan: Plan, console: Console) -> None:
    """A row per stage: micro batch, accumulation, the parts of the peak, the growth
    transient into the stage, the peak and the largest micro batch that fits."""
    assert plan.train.device is not None
    device, world = resolve(plan.train.device), plan.train.world
    table = Table(title=f"{plan.source}: peak memory per device (GiB) on {world} x "
                        f"{device.name} ({gib(device.usable)} GiB usable each)",
                  title_justify="left")
    for col in ("stage", "micro", "accum", "ckpt", "prec", "weights", "grads", "optimizer",
                "gathered", "activations", "growth", "peak", "fits", "max micro"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for stage, est in zip(plan.stages, plan_memory(plan, device, world), strict=True):
        train = stage.train
        table.add_row(stage.name, str(est.micro), str(train.accumulation(world)),
                      "yes" if est.checkpointing else "no",
                      "bf16" if uses_bf16(train.precision, device) else "fp32",
                      gib(est.weights), gib(est.grads), gib(est.optimizer), gib(est.gathered),
                      gib(est.activations), gib(est.growth) if est.growth else "",
                      gib(est.worst), "yes" if est.worst <= device.usable else "NO",
                      str(largest_micro(stage, device, world)))
    console.print(table)
