"""What a run checks before it touches its output directory (whether the plan may run at all
is `growdsl.gate.admit`'s decision, made by the caller): that the directory is this run's: `run.json`
holds the run's key (the plan, and every command-line input that changes the result: a
`--data` override); a directory holding another run, or anything else, is refused.

One writer per output directory: `lock` takes an exclusive `flock` on `OUT/.lock` (holding
the holder's pid) for as long as the run lasts; a second run on the same directory gets
E715 naming that pid. The kernel drops the lock when its process dies, however it dies, so
resuming after a crash needs no manual unlock."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from transformers import AutoConfig

from growdsl.atomic import write_text
from growdsl.backend import checkpoint as ckpt
from growdsl.backend.models import shape_of
from growdsl.backend.run_errors import fail
from growdsl.hf_config import config_problem, field_problem
from growdsl.ir import Plan
from growdsl.ir_json import to_json
from growdsl.operators import structural_diff
from growdsl.source import Source

log = logging.getLogger("growdsl.run")


# What the plan key leaves out: where things were written, the trackers a run reports to, and
# the reference run it is compared with (none of them changes what the run computes).
_NOT_COMPUTED = ("span", "init_span", "source", "report_to", "scratch")


def plan_key(plan: Plan, data: Path | None = None) -> str:
    """A hash of what the run computes: the plan (spans, the file's name, its trackers and
    reference run left out) and, when given, the `--data` corpus that overrides the plan's."""
    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in _NOT_COMPUTED}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    what: Any = strip(to_json(plan))
    if data is not None:
        what = {"plan": what, "data": str(data.resolve())}
    text = json.dumps(what, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


LOCK = ".lock"
_held: dict[Path, int] = {}         # output directories this process holds: their lock fds


def lock(out: Path, source: Source) -> bool:
    """Take (or keep) the exclusive lock on `out`, creating the directory; E715 naming the
    holder's pid when another process holds it. Released by `unlock` or the process's end.
    Returns True when this call took it (False: this process already held it)."""
    if out.exists() and not out.is_dir():
        fail("E715", f"output directory {out} is a file", "choose another --out", source)
    key = out.resolve()
    if key in _held:
        return False
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        fail("E715", f"output directory {out} is in use by another growdsl run (pid {holder})",
             "wait for it to finish, or choose another --out; a crashed run's lock goes with "
             "its process", source)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = fd
    return True


def unlock(out: Path) -> None:
    """Release `lock(out)` (a no-op when this process does not hold it)."""
    fd = _held.pop(out.resolve(), None)
    if fd is not None:
        os.close(fd)


def _ours(path: Path) -> bool:
    return path.name == LOCK


def claim(out: Path, key: str, resume: bool, source: Source,
          overrides: tuple[str, ...] = (),
          report_to: dict[str, list[str] | None] | None = None,
          drop: tuple[str, ...] = ()) -> None:
    """Make `out` this run's output directory, or refuse one that holds another run. The
    caller holds `lock(out)`. `run.json` records the plan's key, its spec, the `--set`
    overrides and `--drop` globs it started with, and the trackers the spec and the command
    line named (those of the latest start or resume)."""
    marker = out / "run.json"
    if out.exists() and not out.is_dir():
        fail("E715", f"output directory {out} is a file", "choose another --out", source)
    if marker.exists():
        try:
            other = json.loads(marker.read_text())
        except ValueError:
            other = {}
        if not isinstance(other, dict):
            other = {}
        if other.get("plan_key") != key:
            fail("E715", f"output directory {out} holds another run "
                 f"(of {other.get('source', '?')}); not touching it",
                 "a different plan or --data (or this spec, changed since) -- choose another "
                 "--out", source)
        if not resume:
            fail("E715", f"output directory {out} already holds a run of this plan",
                 "pass --resume to continue it, or choose another --out", source)
        if report_to is not None and other.get("report_to") != report_to:
            _record(marker, {**other, "report_to": report_to})     # this resume's trackers
        return
    if resume:
        log.info("--resume: %s holds no run yet; starting from the beginning", out)
    if out.exists() and any(not _ours(p) for p in out.iterdir()):
        fail("E715", f"output directory {out} is not empty and holds no growdsl run",
             "choose another --out", source)
    out.mkdir(parents=True, exist_ok=True)
    _record(marker, {"plan_key": key, "source": source.path, "overrides": list(overrides),
                     "drop": list(drop), "report_to": report_to or {"spec": None, "command_line": None}})


def _record(marker: Path, content: dict[str, Any]) -> None:
    """Write `run.json` atomically (growdsl.atomic)."""
    write_text(marker, json.dumps(content, indent=1))


def resumable(plan: Plan, out: Path, key: str) -> Path | None:
    """The newest checkpoint under `out` that is complete (`checkpoint.problem`) and this
    run's: its key is the run's and its model has the shape of the stage it is in. Others
    are skipped with a warning, the previous one used."""
    for path in reversed(ckpt.candidates(out / "checkpoints")):
        why = ckpt.problem(path) or _foreign(plan, path, key)
        if why is None:
            return path
        log.warning("skipping checkpoint %s: %s", path, why)
    return None


def _foreign(plan: Plan, path: Path, key: str) -> str | None:
    """Why the (complete) checkpoint at `path` is not this run's, or None."""
    state = ckpt.read_state(path)
    if state.plan_key not in (key, ""):
        return "written by another run (its key differs)"
    if state.stage >= len(plan.stages):
        return f"its stage {state.stage} is not in the plan"
    want = plan.stages[state.stage].shape
    try:
        raw = json.loads((path / "config.json").read_text())
        problem = config_problem(want.family, raw)    # its sizes (fields: growdsl wrote them)
        problem = f"config.json: {problem}" if problem and problem != field_problem(
            want.family, raw) else None
        if problem is None:
            got = shape_of(AutoConfig.from_pretrained(str(path), local_files_only=True))
            diff = structural_diff(got, want)
            problem = f"its model differs from stage {state.stage}'s in {', '.join(diff)}" \
                if diff else None
    except Exception as exc:            # transformers raises many kinds for a bad config
        problem = f"config.json cannot be read ({exc})"
    return problem
