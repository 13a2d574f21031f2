"""A progress bar per stage (step, loss, tokens/s, ETA) with rich; a log line every
`LOG_EVERY` steps when the bar is off (quiet runs, tests) so the log still shows progress."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from growdsl.backend.train import StepLog
from growdsl.ir import Stage

log = logging.getLogger("growdsl.run")
LOG_EVERY = 50


@contextmanager
def stage_progress(stage: Stage, done: int, quiet: bool) -> Iterator[Callable[[StepLog], None]]:
    """Yield `advance(step_log)`, to be called after every optimizer step."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    show = not quiet and console.is_terminal
    columns = (TextColumn(f"stage {stage.name}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}  {task.fields[tps]:,.0f} tok/s"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not show) as bar:
        task = bar.add_task(stage.name, total=stage.steps, completed=done, loss=float("nan"),
                            tps=0.0)

        def advance(step: StepLog) -> None:
            bar.update(task, completed=step.state.step, loss=step.loss, tps=step.tokens_per_s)
            if not show and step.state.step % LOG_EVERY == 0:
                log.info("stage %s step %d/%d: loss %.4f, %.0f tok/s", stage.name,
                         step.state.step, stage.steps, step.loss, step.tokens_per_s)

        yield advance
