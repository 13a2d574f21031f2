"""Fault injection for the crash/resume and fault tests.

`GROWDSL_KILL_AT=name[,name...]` makes the process SIGKILL itself when it reaches a named
point (nothing is flushed, nothing cleaned up: exactly what a dying machine does);
`GROWDSL_SIGINT_AT=name` sends SIGINT instead (a Ctrl-C at a known moment).
`GROWDSL_FAIL_WRITE=name[@rank][,...]` makes the write call at a named write point raise
`OSError(ENOSPC)` (on every rank, or on the one named): a full disk where a real one cannot
be arranged (no tmpfs without root). Unset, `point` and `write_point` are no-ops.

Crash points: `step-<global step>` (after a training step is logged), `growth-<stage
index>` (right after growing into that stage, before its first checkpoint),
`checkpoint-<global step>-files` (checkpoint files written, manifest not yet),
`checkpoint-<global step>-manifest` (manifest written, folder not yet renamed into place),
`metrics-rebuilt` (a resumed metrics log rewritten, not yet renamed into place) and
`rank<r>-step-<global step>` under torchrun.

Write points: `checkpoint-rng` (each rank's RNG file), `metrics` (a metrics row),
`stage-dir` (a stage's model folder), `report` (the report), `grow-weights` (the grown
model's safetensors file).
"""

from __future__ import annotations

import errno
import os
import signal


def point(name: str) -> None:
    """SIGKILL (SIGINT) this process if `name` is listed in `GROWDSL_KILL_AT` (`_SIGINT_AT`)."""
    for var, sig in (("GROWDSL_KILL_AT", signal.SIGKILL), ("GROWDSL_SIGINT_AT", signal.SIGINT)):
        wanted = os.environ.get(var)
        if wanted and name in wanted.split(","):
            os.kill(os.getpid(), sig)


def write_point(name: str) -> None:
    """Raise OSError(ENOSPC) if `name` (or `name@<this rank>`) is in `GROWDSL_FAIL_WRITE`."""
    wanted = os.environ.get("GROWDSL_FAIL_WRITE")
    if not wanted:
        return
    rank = os.environ.get("RANK", "0") if "LOCAL_RANK" in os.environ else "0"
    if name in wanted.split(",") or f"{name}@{rank}" in wanted.split(","):
        raise OSError(errno.ENOSPC, "No space left on device (injected)", name)
