"""Helpers of the fault suite: a tiny run in a child process (so that SIGKILL, flock and
real exit codes are what a user meets), its log rows, and checkpoints written directly."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from growdsl.backend.report import TIMING_COLUMNS
from tests.test_run_e2e import make_corpus, write_spec

SPEC = """
    model gpt2(layers=2, hidden=16, heads=2, ffn=32, seq=16, vocab=300)
    train {
      batch = 2
      lr = 1e-3
      warmup = 1
      data = "corpus"
      eval_every = 3
      checkpoint_every = 2
      keep_checkpoints = 2
    }
    stage 4: depth=L/2 -> stack
    stage 4:
"""


def tiny_plan(root: Path, text: str = SPEC) -> Path:
    """A two-stage GPT-2 plan (8 steps, a growth step) and its corpus under `root`."""
    if not (root / "corpus").exists():
        make_corpus(root / "corpus", docs=4, words=300)
    return write_spec(root / "plan.grow", text)


def growdsl(*args: str, cache: Path, env: dict[str, str] | None = None,
            timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """`python -m growdsl ARGS` in a child process."""
    full = {**os.environ, "GROWDSL_CACHE": str(cache), "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "GROWDSL_KILL_AT": "", "GROWDSL_FAIL_WRITE": "",
            **(env or {})}
    return subprocess.run([sys.executable, "-m", "growdsl", *args], env=full,
                          capture_output=True, text=True, timeout=timeout)


def run(spec: Path, out: Path, cache: Path, resume: bool = False,
        **env: str) -> subprocess.CompletedProcess[str]:
    """`growdsl run SPEC --out OUT -q [--resume]`; env: GROWDSL_KILL_AT=... and such."""
    return growdsl("run", str(spec), "--out", str(out), "-q", *(["--resume"] * resume),
                   cache=cache, env=env)


def killed(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode == -signal.SIGKILL


def ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr[-3000:]


def log(out: Path) -> list[tuple[str, ...]]:
    """Every metrics row without its timing columns (wall clock, tokens/s, MFU)."""
    with open(out / "metrics.csv", newline="") as f:
        return [tuple(v for k, v in r.items() if k not in TIMING_COLUMNS) for r in csv.DictReader(f)]


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The diagnostic's first line (no traceback allowed)."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "error[" in line]
    assert lines, done.stderr[-3000:]
    return lines[0]


@pytest.fixture()
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "growdsl-cache"
