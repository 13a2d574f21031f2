"""Fault injection for the crash/resume and fault tests.

`GROWDSL_KILL_AT=name[,name...]` makes the process SIGKILL itself when it reaches a named
point (nothing is flushed, nothing cleaned up: exactly what a dying machine does);
`GROWDSL_SIGINT_AT=name` sends SIGINT instead (a Ctrl-C at a known moment).
`GROWDSL_FAIL_WRITE=name[@rank][:n][,...]` makes the write call at a named write point
raise `OSError(ENOSPC)` (on every rank, or on the one named; from its n-th time on, 1 by
default): a full disk where a real one cannot be arranged (no tmpfs without root).
Unset, `point` and `write_point` are no-ops.

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


_hits: dict[str, int] = {}


def write_point(name: str) -> None:
    """Raise OSError(ENOSPC) if `GROWDSL_FAIL_WRITE` names this point (see above)."""
    wanted = os.environ.get("GROWDSL_FAIL_WRITE")
    if not wanted:
        return
    _hits[name] = _hits.get(name, 0) + 1
    rank = os.environ.get("RANK", "0") if "LOCAL_RANK" in os.environ else "0"
    for item in wanted.split(","):
        where, _, nth = item.partition(":")
        if where in (name, f"{name}@{rank}") and _hits[name] >= int(nth or 1):
            raise OSError(errno.ENOSPC, "No space left on device (injected)", name)
