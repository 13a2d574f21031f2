"""Under torchrun (CPU, gloo, 2 ranks): a write that fails on one rank only (its RNG file,
a full disk there) stops every rank within seconds with E716, not at the process group's
timeout; the last complete checkpoint is kept, and `--resume` (built on `meta`, each rank
filling only its shards) finishes with the same log as an uninterrupted 2-rank run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.util import log, tiny_plan
from tests.test_distributed import growdsl as launch
from tests.test_distributed import ok

pytestmark = [pytest.mark.torch, pytest.mark.slow]


def test_disk_full_on_one_rank_stops_every_rank_with_e716(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tiny_plan(tmp_path)
    cache = tmp_path / "cache"
    ok(launch(spec, tmp_path / "ref", cache, ranks=2))
    out = tmp_path / "out"
    monkeypatch.setenv("GROWDSL_FAIL_WRITE", "checkpoint-rng@1:2")   # rank 1, 2nd checkpoint
    start = time.perf_counter()
    done = launch(spec, out, cache, ranks=2)
    took = time.perf_counter() - start
    assert done.returncode != 0
    # torchrun's launcher prints its own ChildFailedError; no traceback comes from growdsl
    assert "growdsl/backend" not in done.stderr and "growdsl/cli" not in done.stderr, \
        done.stderr[-4000:]
    assert (f"{spec}: error[E716]: cannot write a checkpoint at step 4: the disk is full"
            in done.stderr), done.stderr[-4000:]
    assert took < 180                     # the gloo timeout is 30 minutes
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002"]
    monkeypatch.delenv("GROWDSL_FAIL_WRITE")
    ok(launch(spec, out, cache, ranks=2, resume=True, quiet=False))
    assert "(model built on meta, only this rank's shards allocated)" in (out / "run.log").read_text()
    assert log(out) == log(tmp_path / "ref")
