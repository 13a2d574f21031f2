"""Crash injection for the crash/resume tests: `GROWDSL_KILL_AT=name[,name...]` makes the
process SIGKILL itself when it reaches a named point (nothing is flushed, nothing cleaned
up: exactly what a dying machine does); `GROWDSL_SIGINT_AT=name` sends SIGINT instead (a
Ctrl-C at a known moment). Unset, `point` is a no-op.

Points: `step-<global step>` (after a training step is logged), `growth-<stage index>`
(right after growing into that stage, before its first checkpoint),
`checkpoint-<global step>-files` (checkpoint files written, manifest not yet) and
`checkpoint-<global step>-manifest` (manifest written, folder not yet renamed into place).
"""

from __future__ import annotations

import os
import signal


def point(name: str) -> None:
    """SIGKILL (SIGINT) this process if `name` is listed in `GROWDSL_KILL_AT` (`_SIGINT_AT`)."""
    for var, sig in (("GROWDSL_KILL_AT", signal.SIGKILL), ("GROWDSL_SIGINT_AT", signal.SIGINT)):
        wanted = os.environ.get(var)
        if wanted and name in wanted.split(","):
            os.kill(os.getpid(), sig)
