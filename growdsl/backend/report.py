"""Metrics and the final report of a run.

`Metrics` appends one CSV row per event (`train` every step, `val` at each evaluation,
`growth` at each growth step with its measured difference) and mirrors them to the run's
trackers (`trackers`: TensorBoard by default, W&B, MLflow, Trackio; growth steps annotated).
On `--resume` it first rebuilds the log to exactly the rows the checkpoint had seen (their
count is in its state; the rows come from the copy each checkpoint keeps, so a deleted or
cut log is restored; written aside and renamed into place; TensorBoard purges the steps
after it), so the log reads as if nothing had happened. The report and its plots are also
written aside and renamed.
Under torchrun only rank 0 writes (`write=False` elsewhere: rows are counted, not written);
the values it logs are already reduced over the ranks.

`write_report` draws training and validation loss against steps and against cumulative
FLOPs (growth points marked; the scratch baseline beside the plan when there is one) and
writes `report.md`: which reference run `scratch` is (growdsl.reference: the baseline is
that run), the FLOPs and wall time each run needed to reach the scratch run's final
validation loss, and the iso-loss ladder (`growdsl.isoloss`) when there is a baseline.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growdsl import isoloss
from growdsl.atomic import replace_with
from growdsl.backend import faults, trackers

COLUMNS = ("event", "stage", "step", "global_step", "tokens", "flops", "wall", "lr",
           "loss", "val_loss", "max_abs_diff", "max_rel_diff", "note", "tokens_per_s", "mfu")
# The columns that measure time: they differ between two runs that compute the same thing.
TIMING_COLUMNS = ("wall", "tokens_per_s", "mfu")


class Metrics:
    """The run's metrics: `metrics.csv` plus TensorBoard under `tb/`.

    On resume (`resume_rows` given) the log is rebuilt to exactly the checkpoint's rows:
    from `saved` (the checkpoint's own copy of the log) when there is one, else from the
    live file, which must then hold them all. The rebuilt log is written to a temporary
    file, fsynced and renamed over `metrics.csv`: a crash at any moment leaves either the
    old log or the rebuilt one, never an empty or partial one."""

    def __init__(self, out: Path, resume_rows: int | None = None,
                 resume_step: int = 0, write: bool = True, saved: Path | None = None,
                 report_to: tuple[str, ...] | None = None) -> None:
        self.path = out / "metrics.csv"
        self._file: Any = None
        self._tb: Any = None
        if not write:
            self.rows = resume_rows or 0
            return
        keep: list[dict[str, str]] = []
        if resume_rows:
            source = saved if saved is not None and saved.exists() else self.path
            keep = read_rows(source)[:resume_rows]
            if len(keep) != resume_rows:
                raise MetricsLost(f"{source} holds {len(keep)} of the {resume_rows} rows the "
                                  "checkpoint has seen")
        self.rows = len(keep)
        _rewrite(self.path, keep)
        self._file = open(self.path, "a+", newline="")  # noqa: SIM115
        self._csv = csv.DictWriter(self._file, COLUMNS)
        names = report_to if report_to is not None else tuple(
            n for n in trackers.DEFAULT if trackers.available(n))
        purge = None if resume_rows is None else resume_step + 1
        self._tb = trackers.Trackers(names, out, out.name, purge) if names else None

    def log(self, event: str, **values: Any) -> None:
        if self._file is None:
            self.rows += 1
            return
        row = {k: _fmt(values.get(k, "")) for k in COLUMNS if k != "event"}
        faults.write_point("metrics")
        self._csv.writerow({"event": event, **row})
        self.rows += 1
        self._file.flush()
        if self._tb is not None:
            step = int(values["global_step"])
            self._tb.log({f"{event}/{key}": float(values[key]) for key in
                          ("loss", "val_loss", "lr", "max_abs_diff")
                          if values.get(key) not in (None, "")}, step)
            if event == "growth":
                self._tb.annotate(step, str(values.get("note", "")))

    def snapshot(self, dest: Path) -> None:
        """Copy the log as written so far to `dest` (through the open file: a log deleted
        under a running run is still copied whole)."""
        if self._file is None:
            dest.write_text("")
            return
        self._file.flush()
        fd, offset = self._file.fileno(), 0
        with open(dest, "wb") as out:
            while chunk := os.pread(fd, 1 << 20, offset):
                out.write(chunk)
                offset += len(chunk)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.finish()


class MetricsLost(Exception):
    """The metrics log a resumed run needs is not there (a bug, or a hand-edited folder)."""


def _rewrite(path: Path, rows: list[dict[str, str]]) -> None:
    """`path` holding the header and `rows`, replaced atomically (growdsl.atomic)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        faults.point("metrics-rebuilt")

    replace_with(path, write)


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@dataclass(frozen=True, kw_only=True, slots=True)
class Curve:
    """One run's curves read back from its metrics.csv."""

    label: str
    train: list[tuple[int, float, float]]     # (global step, flops, loss)
    val: list[tuple[int, float, float, float]]  # (global step, flops, val loss, wall)
    growth: list[tuple[int, float]]           # (global step, flops)


def curve(label: str, path: Path) -> Curve:
    rows = read_rows(path)
    train = [(int(r["global_step"]), float(r["flops"]), float(r["loss"]))
             for r in rows if r["event"] == "train"]
    val = [(int(r["global_step"]), float(r["flops"]), float(r["val_loss"]), float(r["wall"]))
           for r in rows if r["event"] == "val"]
    growth = [(int(r["global_step"]), float(r["flops"])) for r in rows if r["event"] == "growth"]
    return Curve(label=label, train=train, val=val, growth=growth)


def reach(c: Curve, target: float) -> tuple[float, float] | None:
    """(FLOPs, wall seconds) at the first evaluation with val loss <= target."""
    for _, flops, loss, wall in c.val:
        if loss <= target:
            return flops, wall
    return None


def _smooth(values: list[float], window: int = 10) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot(curves: list[Curve], x: str, path: Path) -> None:
    """Training (smoothed) and validation loss against `steps` or `flops`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    col = 0 if x == "steps" else 1
    for i, c in enumerate(curves):
        color = f"C{i}"
        ax.plot([t[col] for t in c.train], _smooth([t[2] for t in c.train]), color=color,
                alpha=0.5, label=f"{c.label} train")
        ax.plot([v[col] for v in c.val], [v[2] for v in c.val], "o-", color=color,
                label=f"{c.label} val")
        for j, g in enumerate(c.growth):
            ax.axvline(g[col], color=color, linestyle="--", alpha=0.6,
                       label=f"{c.label} growth" if j == 0 else None)
    ax.set_xlabel("optimizer steps" if x == "steps" else "cumulative training FLOPs")
    ax.set_ylabel("loss")
    ax.set_title(f"loss vs {'steps' if x == 'steps' else 'FLOPs'}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    replace_with(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def growth_lines(path: Path) -> list[str]:
    """One markdown line per growth event of a metrics file."""
    return [f"- into stage {r['stage']} at step {r['global_step']}: {r['note']}; max |logit "
            f"diff| {float(r['max_abs_diff']):.3g} (relative {float(r['max_rel_diff']):.3g})"
            for r in read_rows(path) if r["event"] == "growth"]


def isoloss_section(out: Path, plan_csv: Path, baseline_csv: Path,
                    scratch: str | None = None) -> list[str]:
    """The iso-loss ladder of the plan against scratch (growdsl.isoloss) and its plot;
    `scratch` says which reference run that is."""
    rungs = isoloss.ladder(isoloss.read_curve(baseline_csv), isoloss.read_curve(plan_csv))
    if not rungs:
        return []
    replace_with(out / "speedup_vs_loss.png", lambda tmp: isoloss.plot(
        rungs, tmp, "plan vs scratch: speedup by loss level"))
    return ["", "## Iso-loss ladder", "",
            "What each run spent to first reach each validation-loss level, from scratch's "
            "first evaluation down to its final loss (speedup = scratch / plan; > 1: the "
            "plan got there cheaper)" + (f"; scratch is {scratch}" if scratch else "") + ":",
            "", *isoloss.markdown(rungs),
            "", "![speedup vs loss level](speedup_vs_loss.png)"]


def write_report(out: Path, title: str, plan_csv: Path,
                 baseline_csv: Path | None = None, scratch: str | None = None) -> Path:
    """Write `report.md`, `loss_vs_steps.png` and `loss_vs_flops.png` into `out`; `scratch`
    says what the reference run is (growdsl.reference.describe), trained or not."""
    curves = [curve("plan", plan_csv)]
    base = baseline_csv if baseline_csv is not None and baseline_csv.exists() else None
    if base is not None:
        curves.append(curve("scratch", base))
    plot(curves, "steps", out / "loss_vs_steps.png")
    plot(curves, "flops", out / "loss_vs_flops.png")
    lines = [f"# growdsl run: {title}", ""]
    if scratch is not None:
        lines += [f"Reference run (`scratch`): {scratch}; "
                  + ("trained beside the plan (`--baseline`, in `baseline/`)." if base
                     else "not trained (`--baseline` trains it)."), ""]
    lines += ["| run | steps | FLOPs | wall (s) | final val loss |", "|---|---|---|---|---|"]
    for c in curves:
        last = c.val[-1] if c.val else (0, 0.0, math.nan, 0.0)
        lines.append(f"| {c.label} | {last[0]} | {last[1]:.3g} | {last[3]:.1f} | {last[2]:.4f} |")
    if len(curves) == 2 and curves[1].val:
        target = curves[1].val[-1][2]
        lines += ["", f"To reach the scratch run's final validation loss ({target:.4f}):", ""]
        for c in curves:
            hit = reach(c, target)
            lines.append(f"- {c.label}: " + (f"{hit[0]:.3g} FLOPs, {hit[1]:.1f} s" if hit
                                             else "not reached"))
    if base is not None:
        lines += isoloss_section(out, plan_csv, base, scratch)
    lines += ["", "## Growth steps", "", *(growth_lines(plan_csv) or ["(none)"]), "",
              "![loss vs steps](loss_vs_steps.png)", "", "![loss vs FLOPs](loss_vs_flops.png)",
              ""]
    path = out / "report.md"
    faults.write_point("report")
    replace_with(path, lambda tmp: tmp.write_text("\n".join(lines)))
    return path
