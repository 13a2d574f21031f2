"""What a run checks before it touches its output directory: that it is this plan's
(`run.json` holds the plan's key; a directory holding another run, or anything else, is
refused). Whether the plan may run at all is `growdsl.gate.admit`'s decision, made by the
caller before the executor starts."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from growdsl.backend.run_errors import fail
from growdsl.ir import Plan
from growdsl.source import Source

log = logging.getLogger("growdsl.run")


def plan_key(plan: Plan) -> str:
    """A hash of what the plan computes (spans and the file's name left out)."""
    from growdsl.ir_json import to_json

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("span", "init_span", "source")}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    text = json.dumps(strip(to_json(plan)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def claim(out: Path, key: str, resume: bool, source: Source) -> None:
    """Make `out` this plan's output directory, or refuse one that holds another run."""
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
                 "a different plan (or this spec, changed since) -- choose another --out",
                 source)
        if not resume:
            fail("E715", f"output directory {out} already holds a run of this plan",
                 "pass --resume to continue it, or choose another --out", source)
        return
    if resume:
        log.info("--resume: %s holds no run yet; starting from the beginning", out)
    if out.exists() and any(out.iterdir()):
        fail("E715", f"output directory {out} is not empty and holds no growdsl run",
             "choose another --out", source)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"plan_key": key, "source": source.path}, indent=1))
