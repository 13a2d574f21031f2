"""Crash injection for the crash/resume tests: `GROWDSL_KILL_AT=name[,name...]` makes the
process SIGKILL itself when it reaches a named point (nothing is flushed, nothing cleaned
up: exactly what a dying machine does). Unset, `point` is a no-op.

Points: `step-<global step>` (after a training step is logged), `growth-<stage index>`
(right after growing into that stage, before its first checkpoint),
`checkpoint-<global step>-files` (checkpoint files written, manifest not yet) and
`checkpoint-<global step>-manifest` (manifest written, folder not yet renamed into place).
"""

from __future__ import annotations

import os
import signal


def point(name: str) -> None:
    """SIGKILL this process if `name` is listed in `GROWDSL_KILL_AT`."""
    wanted = os.environ.get("GROWDSL_KILL_AT")
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
