"""The experiment trackers a run reports to, through accelerate's tracker integrations
(`accelerate.tracking`): TensorBoard (the default), Weights & Biases, MLflow and Trackio.

`report_to` names them: in the spec (`train { report_to = (tensorboard, wandb) }`, checked
while lowering: an unknown name is E722 at the name), or on the command line (`growdsl run
--report-to tensorboard,wandb`, `growdsl.run(..., report_to=(...))`), which overrides the
spec; `run.json` records both. Each gets every metric row (`train/loss`, `val/val_loss`, ...) at its
global step, and each growth step as an annotated point: its measured logit difference as
a scalar, and its operators and verdicts as text where the tracker keeps text (TensorBoard's
text panel, an MLflow run artifact, a W&B run's log). A tracker whose library is not
installed is a located error (E722) naming the package to install. Only the process that
writes the metrics (rank 0) opens trackers. `metrics.csv` stays: the report reads it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from growdsl.backend.run_errors import fail
from growdsl.keys import TRACKERS as PACKAGES

log = logging.getLogger("growdsl.run")

# name -> (the module the tracker needs, the pip package that provides it): the language's
# table (growdsl.keys.TRACKERS), where each package's module has its name
TRACKERS: dict[str, tuple[str, str]] = {name: (package, package)
                                        for name, package in PACKAGES.items()}
DEFAULT = ("tensorboard",)


def available(name: str) -> bool:
    """Whether the library `name` reports through is installed."""
    return importlib.util.find_spec(TRACKERS[name][0]) is not None


def check_names(names: tuple[str, ...]) -> None:
    """E722 for an unknown tracker or one whose library is missing."""
    for name in names:
        if name not in TRACKERS:
            fail("E722", f"unknown tracker `{name}`",
                 "report_to takes " + ", ".join(TRACKERS))
        if not available(name):
            fail("E722", f"tracker `{name}` needs the `{TRACKERS[name][1]}` package, which is "
                 "not installed", f"pip install {TRACKERS[name][1]}, or leave `{name}` out of "
                 "report_to")


def _open(name: str, out: Path, run_name: str, purge_step: int | None) -> Any:
    from accelerate import PartialState, tracking

    PartialState()      # accelerate's trackers log through it (it reuses a torchrun group)

    tracker: Any
    if name == "tensorboard":
        kwargs = {} if purge_step is None else {"purge_step": purge_step}
        tracker = tracking.TensorBoardTracker("tb", str(out), **kwargs)
    elif name == "wandb":
        tracker = tracking.WandBTracker(run_name, dir=str(out), name=run_name)
    elif name == "mlflow":
        tracker = tracking.MLflowTracker(experiment_name=run_name, run_name=run_name)
    else:
        tracker = tracking.TrackioTracker(run_name)
    tracker.main_process_only = False     # growdsl opens trackers on its writing rank only
    tracker.start()
    return tracker


class Trackers:
    """The open trackers of one run: `log` a metric row, `annotate` a growth step."""

    def __init__(self, names: tuple[str, ...], out: Path, run_name: str,
                 purge_step: int | None = None) -> None:
        check_names(names)
        self.names = names
        self.open = [_open(name, out, run_name, purge_step) for name in names]

    def log(self, values: dict[str, float], step: int) -> None:
        for tracker in self.open:
            tracker.log(values, step=step)

    def annotate(self, step: int, text: str) -> None:
        """A growth step's description, as text where the tracker keeps text."""
        for name, tracker in zip(self.names, self.open, strict=True):
            if name == "tensorboard":
                tracker.writer.add_text("growth", text, step)
            elif name == "wandb":
                tracker.run.log({"growth/note": text}, step=step)
            elif name == "mlflow":
                import mlflow

                mlflow.log_text(text, f"growth/step-{step:08d}.txt")

    def finish(self) -> None:
        for tracker in self.open:
            tracker.finish()
