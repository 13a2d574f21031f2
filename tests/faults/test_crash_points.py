"""SIGKILL at every kind of named crash point, one after another in a single run, with
the metrics log deleted and cut short between two of them: the run still ends with the
loss log and the final weights bitwise those of a run never interrupted (CPU).

Crash points (`growdsl.backend.faults`): a training step before any checkpoint, a
checkpoint's files written (no manifest yet), its manifest written (folder not yet renamed),
the metrics log rebuilt on resume (not yet renamed into place), right after a growth step,
a step after the growth. `KILLS` is the count docs/reliability.md quotes."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.faults.util import cache, killed, log, ok, run, tiny_plan  # noqa: F401 (cache)

pytestmark = [pytest.mark.torch, pytest.mark.slow]

# (crash point, what is done to the folder before resuming into it)
KILLS = [("step-1", None),                   # before any checkpoint: starts over
         ("checkpoint-2-files", None),       # no manifest: never loaded
         ("checkpoint-4-manifest", None),    # not renamed into place: never loaded
         ("metrics-rebuilt", "delete"),      # metrics.csv deleted, then a kill while rebuilding
         ("growth-1", None),                 # right after growing into stage 1
         ("step-7", "cut")]                  # metrics.csv cut short, then a kill mid-stage


def test_sigkill_at_every_crash_point_then_resume_is_bitwise_identical(
        tmp_path: Path, cache: Path) -> None:  # noqa: F811
    spec = tiny_plan(tmp_path)
    ref, out = tmp_path / "ref", tmp_path / "crashed"
    ok(run(spec, ref, cache))
    for i, (point, damage) in enumerate(KILLS):
        if damage == "delete":
            (out / "metrics.csv").unlink()
        elif damage == "cut":
            text = (out / "metrics.csv").read_text().splitlines(keepends=True)
            (out / "metrics.csv").write_text("".join(text[:len(text) // 2]))
        done = run(spec, out, cache, resume=i > 0, GROWDSL_KILL_AT=point)
        assert killed(done), (point, done.returncode, done.stderr[-2000:])
    ok(run(spec, out, cache, resume=True))
    assert log(out) == log(ref)
    assert sum(1 for r in log(ref) if r[0] == "train") == 8
    final = "stages/1-stage2/model.safetensors"
    a, b = load_file(str(ref / final)), load_file(str(out / final))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step-00000006", "step-00000008"]
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
