"""Crash and resume: a run SIGKILLed mid-stage, while a checkpoint is written (before and
after its manifest) and right after a growth step, then resumed each time, ends with the
same loss log and bitwise the same final weights as a run never interrupted (CPU)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.test_run_e2e import make_corpus, write_spec

pytestmark = pytest.mark.torch

SPEC = """
    model bert(layers=4, hidden=32, heads=2, ffn=64, seq=32, vocab=160)
    train {
      batch = 4
      lr = 2e-3
      warmup = 2
      data = "corpus"
      eval_every = 4
      checkpoint_every = 3
      keep_checkpoints = 2
    }
    stage 8: depth=L/2 width=ffn/4 pool=2 -> stack, unshare, unpool
    stage 8: optimizer_state = transfer
"""


def growdsl_run(spec: Path, out: Path, cache: Path, kill_at: str = "",
                resume: bool = False) -> int:
    env = {**os.environ, "GROWDSL_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "GROWDSL_KILL_AT": kill_at, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "growdsl", "run", str(spec), "--out", str(out), "-q"]
    done = subprocess.run(cmd + (["--resume"] if resume else []), env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(done.stderr)
    return done.returncode


def loss_log(out: Path) -> list[tuple[str, ...]]:
    """Every metrics row without its wall-clock column."""
    with open(out / "metrics.csv", newline="") as f:
        return [tuple(v for k, v in r.items() if k != "wall") for r in csv.DictReader(f)]


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_is_bitwise_identical(tmp_path: Path) -> None:
    make_corpus(tmp_path / "corpus")
    spec = write_spec(tmp_path / "plan.grow", SPEC)
    cache = tmp_path / "cache"
    ref, crashed = tmp_path / "ref", tmp_path / "crashed"
    assert growdsl_run(spec, ref, cache) == 0

    kills = ["step-5",                    # mid-stage (last checkpoint: step 3)
             "checkpoint-8-files",        # stage end, checkpoint written but no manifest
             "growth-1",                  # right after the growth step
             "checkpoint-14-manifest"]    # manifest written, folder not renamed yet
    assert growdsl_run(spec, crashed, cache, kill_at=kills[0]) == -signal.SIGKILL
    for kill in kills[1:]:
        assert growdsl_run(spec, crashed, cache, kill_at=kill, resume=True) == -signal.SIGKILL
    assert growdsl_run(spec, crashed, cache, resume=True) == 0

    assert loss_log(crashed) == loss_log(ref)
    assert len([r for r in loss_log(ref) if r[0] == "train"]) == 16
    name = "stages/1-stage2/model.safetensors"
    a, b = load_file(str(ref / name)), load_file(str(crashed / name))
    assert a.keys() == b.keys()
    assert all(a[k].equal(b[k]) for k in a)
    # only the newest complete checkpoints are kept; no temporary folder is left behind
    left = sorted(p.name for p in (crashed / "checkpoints").iterdir())
    assert left == ["step-00000014", "step-00000016"]
