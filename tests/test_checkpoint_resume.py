"""Crash and resume: a run SIGKILLed mid-stage, while a checkpoint is written (before and
after its manifest) and right after a growth step, then resumed each time, ends with the
same loss log and bitwise the same final weights as a run never interrupted (CPU); so does
a run stopped by Ctrl-C, which first saves a checkpoint where it stands."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from growdsl.backend.report import TIMING_COLUMNS
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
                resume: bool = False, sigint_at: str = "") -> int:
    env = {**os.environ, "GROWDSL_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "GROWDSL_KILL_AT": kill_at, "GROWDSL_SIGINT_AT": sigint_at, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "growdsl", "run", str(spec), "--out", str(out), "-q"]
    done = subprocess.run(cmd + (["--resume"] if resume else []), env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode not in (0, 130, -signal.SIGKILL):
        raise AssertionError(done.stderr)
    return done.returncode


def loss_log(out: Path) -> list[tuple[str, ...]]:
    """Every metrics row without its timing columns (wall clock, tokens/s, MFU)."""
    with open(out / "metrics.csv", newline="") as f:
        return [tuple(v for k, v in r.items() if k not in TIMING_COLUMNS)
                for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(spec, cache, output of an uninterrupted run)."""
    root = tmp_path_factory.mktemp("resume")
    make_corpus(root / "corpus")
    spec = write_spec(root / "plan.grow", SPEC)
    assert growdsl_run(spec, root / "ref", root / "cache") == 0
    return spec, root / "cache", root / "ref"


def same_weights(a_dir: Path, b_dir: Path) -> bool:
    name = "stages/1-stage2/model.safetensors"
    a, b = load_file(str(a_dir / name)), load_file(str(b_dir / name))
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_is_bitwise_identical(
        tmp_path: Path, reference: tuple[Path, Path, Path]) -> None:
    spec, cache, ref = reference
    crashed = tmp_path / "crashed"

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
    assert same_weights(ref, crashed)
    # only the newest complete checkpoints are kept; no temporary folder is left behind
    left = sorted(p.name for p in (crashed / "checkpoints").iterdir())
    assert left == ["step-00000014", "step-00000016"]


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_is_identical(
        tmp_path: Path, reference: tuple[Path, Path, Path]) -> None:
    spec, cache, ref = reference
    out = tmp_path / "interrupted"
    assert growdsl_run(spec, out, cache, sigint_at="step-11") == 130
    newest = sorted((out / "checkpoints").iterdir())[-1]
    assert newest.name == "step-00000011"            # saved right where it stopped
    assert growdsl_run(spec, out, cache, resume=True) == 0
    assert loss_log(out) == loss_log(ref)
    assert same_weights(ref, out)
    # the growth happened before the interruption; the report still lists it
    assert "stack (none), unshare (exact), unpool (none)" in (out / "report.md").read_text()
