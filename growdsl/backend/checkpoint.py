"""Atomic, resumable checkpoints of a run.

One checkpoint is a folder `checkpoints/step-<global step>/`:

- `model_optim/`: model and optimizer state through `torch.distributed.checkpoint` (DCP),
  keyed by parameter name (`get_state_dict`), so that a sharded FSDP2 run writes and reads
  the same layout and can reshard it;
- `config.json`: the model's HF config (its shape and treatments: what to build before
  loading);
- `scheduler.json`: the LR scheduler's state;
- `rng-rank<r>.safetensors`: python, numpy, torch and CUDA RNG states as tensors (one file
  per rank; no pickle: nothing in a checkpoint is unpickled beyond DCP's own metadata
  records, see `safe_dcp`);
- `metrics.csv`: the run's metrics log as it stood (the rows a resumed log is rebuilt to);
- `state.json`: stage index, step within the stage, global step, data position (a global
  sample offset), cumulative FLOPs and tokens, wall time, the run's plan key;
- `manifest.json`, written LAST: every file's size and SHA-256.

It is written to a temporary folder, every file fsynced, the manifest written and fsynced,
then the folder renamed into place (and the parent fsynced). A folder is never loaded
when its manifest is missing or malformed, lists a file that is missing, truncated or
changed, or does not list a file the folder holds; nor when its state, RNG or DCP metadata
cannot be read as plain data. `latest` skips such a folder with a warning and falls back
to the previous one. Only the newest `keep` checkpoints are kept.

Under torchrun every rank writes its own DCP shards and `rng-rank<r>.safetensors`; rank 0
alone writes the other files, fsyncs everything, hashes it into the manifest and renames
the folder, with a barrier before and after; a write error on any rank is agreed on by all
(`distributed.agree`), so every rank raises it at once. Loading reshards onto any number
of ranks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from growdsl.backend import distributed, faults
from growdsl.backend.rng import read_rng, save_rng, set_rng_state
from growdsl.backend.safe_dcp import SafeLoadPlanner, SafeReader, UnsafeCheckpoint, read_metadata
from growdsl.backend.state import RunState

log = logging.getLogger("growdsl.run")

MANIFEST = "manifest.json"
PREFIX = "step-"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _dcp_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_state_dict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_sd, optim_sd = get_state_dict(model, optimizer)
    return {"model": model_sd, "optim": optim_sd}


def save(root: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
         scheduler: torch.optim.lr_scheduler.LRScheduler, state: RunState,
         keep: int, metrics: Callable[[Path], None] | None = None) -> Path:
    """Write a checkpoint atomically under `root`; drop all but the newest `keep`.
    `metrics(path)` writes the metrics log as it stands (`state.log_rows` rows) into it
    (without it, an empty log).

    Under torchrun every rank writes its DCP shards and its RNG file; rank 0 alone writes
    the rest, the manifest, and renames the folder into place. An OSError on any rank is
    raised on every rank (agreed at each phase: no rank waits for one that failed)."""
    import torch.distributed.checkpoint as dcp

    d = distributed.current()
    name = f"{PREFIX}{state.global_step:08d}"
    final, tmp = root / name, root / f".tmp-{name}"

    def begin() -> None:
        if d.main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)

    def shards() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dcp.save(_dcp_state(model, optimizer), checkpoint_id=str(tmp / "model_optim"))
        faults.write_point("checkpoint-rng")
        save_rng(tmp / f"rng-rank{d.rank}.safetensors")

    def finish() -> None:
        if d.main:
            _finalise(root, tmp, final, model, scheduler, state, keep, metrics)

    for phase in (begin, shards, finish):
        distributed.agree(attempt(phase))
    return final


def attempt(fn: Any) -> OSError | None:
    """Run `fn`; the OSError it raised (also from inside DCP's wrapper), or None."""
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        fn()
    except OSError as exc:
        return exc
    except CheckpointException as exc:
        for error, _trace in exc.failures.values():
            if isinstance(error, OSError):
                return error
        raise
    return None


def _finalise(root: Path, tmp: Path, final: Path, model: nn.Module,
              scheduler: torch.optim.lr_scheduler.LRScheduler, state: RunState,
              keep: int, metrics: Callable[[Path], None] | None) -> None:
    """Rank 0: the run's files, fsync, manifest last, rename into place, prune."""
    model.config.to_json_file(str(tmp / "config.json"))  # type: ignore[union-attr,operator]
    (tmp / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))
    (tmp / "state.json").write_text(json.dumps(asdict(state), indent=1))
    if metrics is None:
        (tmp / "metrics.csv").write_text("")
    else:
        metrics(tmp / "metrics.csv")
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    for path in files:
        _fsync_file(path)
    faults.point(f"checkpoint-{state.global_step}-files")
    manifest = {str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": _sha256(p)}
                for p in files}
    (tmp / MANIFEST).write_text(json.dumps({"files": manifest, "state": asdict(state)}, indent=1))
    _fsync_file(tmp / MANIFEST)
    _fsync_dir(tmp)
    faults.point(f"checkpoint-{state.global_step}-manifest")
    if final.exists():
        old = root / f".old-{final.name}"
        final.rename(old)
        shutil.rmtree(old)
    tmp.rename(final)
    _fsync_dir(root)
    prune(root, keep)


def prune(root: Path, keep: int) -> None:
    """Remove all but the newest `keep` complete checkpoints, and any leftover temp folder."""
    for stale in [*root.glob(".tmp-*"), *root.glob(".old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    complete = [p for p in candidates(root) if (p / MANIFEST).exists()]
    for old in complete[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def candidates(root: Path) -> list[Path]:
    """Checkpoint folders under `root`, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


KNOWN = re.compile(r"(config|scheduler|state)\.json|metrics\.csv|rng-rank\d+\.safetensors|"
                   r"model_optim/(\.metadata|__\d+_\d+\.distcp)")
REQUIRED = ("config.json", "scheduler.json", "state.json", "metrics.csv",
            "model_optim/.metadata", "rng-rank0.safetensors")


def _listed(path: Path) -> dict[str, tuple[int, str]] | str:
    """The manifest's {file: (size, sha256)}, or what is wrong with it."""
    try:
        raw = json.loads((path / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"unreadable manifest ({exc})"
    files = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(files, dict):
        return "malformed manifest (no `files` object)"
    out: dict[str, tuple[int, str]] = {}
    for name, meta in files.items():
        size = meta.get("size") if isinstance(meta, dict) else None
        digest = meta.get("sha256") if isinstance(meta, dict) else None
        if (not isinstance(size, int) or isinstance(size, bool) or not isinstance(digest, str)
                or len(digest) != 64):
            return f"malformed manifest (entry {name!r})"
        if Path(name).is_absolute() or ".." in Path(name).parts or name == MANIFEST:
            return f"malformed manifest (entry {name!r} is not a file of the checkpoint)"
        out[name] = (size, digest)
    return out


def problem(path: Path) -> str | None:
    """Why the checkpoint at `path` cannot be loaded, or None when it is complete: the
    manifest must be well formed and list exactly the folder's files (no link among them),
    each of the listed size and SHA-256, and the state, RNG and DCP metadata must read as
    plain data."""
    if not (path / MANIFEST).exists():
        return "no manifest (the write never finished)"
    listed = _listed(path)
    if isinstance(listed, str):
        return listed
    present = {}
    for p in sorted(path.rglob("*")):
        name = str(p.relative_to(path))
        if p.is_symlink():
            return f"{name} is a link (a checkpoint holds only its own files)"
        if p.is_file() and name != MANIFEST:
            present[name] = p
    for name in sorted(present):
        if not KNOWN.fullmatch(name):
            return f"{name} is not a file a checkpoint holds"
        if name not in listed:
            return f"{name} is not in the manifest"
    for name in (*REQUIRED, *listed):
        if name not in present:
            return f"{name} is missing"
    for name, (size, digest) in listed.items():
        got = present[name].stat().st_size
        if got < size:
            return f"{name} is truncated ({got} of {size} bytes)"
        if got != size:
            return f"{name} has changed ({got} bytes, the manifest says {size})"
        if _sha256(present[name]) != digest:
            return f"{name} is corrupt (checksum mismatch)"
    return _contents_problem(path, present)


def _contents_problem(path: Path, present: dict[str, Path]) -> str | None:
    """What of the state, RNG and DCP metadata does not read as plain data."""
    try:
        read_state(path)
        for name in present:
            if name.startswith("rng-rank"):
                read_rng(present[name])
        read_metadata(str(path / "model_optim"))
    except (ValueError, UnsafeCheckpoint) as exc:
        return str(exc)
    return None


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint; incomplete or corrupt ones are skipped with a warning."""
    for path in reversed(candidates(root)):
        why = problem(path)
        if why is None:
            return path
        log.warning("skipping checkpoint %s: %s", path, why)
    return None


def _flat_keys(tree: dict[str, Any], prefix: str) -> list[str]:
    return [f"{prefix}.{k}" for k in tree]


def read_state(path: Path) -> RunState:
    """The checkpoint's `state.json`; ValueError when it is not a run state."""
    try:
        raw = json.loads((path / "state.json").read_text())
        state = RunState(**raw)
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise ValueError(f"state.json is not a run state ({exc})") from None
    ints = (state.stage, state.step, state.global_step, state.data_offset, state.tokens,
            state.log_rows)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
        raise ValueError("state.json is not a run state (a count is not a whole number >= 0)")
    if not all(isinstance(v, int | float) for v in (state.flops, state.wall)):
        raise ValueError("state.json is not a run state (flops or wall is not a number)")
    return state


def load_into(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
              scheduler: torch.optim.lr_scheduler.LRScheduler) -> RunState:
    """Load a checkpoint's model, optimizer, scheduler and RNG states in place. DCP reshards
    the saved model and optimizer onto however many ranks load them (1 included); nothing is
    unpickled but DCP's allow-listed metadata records (`safe_dcp`)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_state_dict

    rank = distributed.current().rank

    where = str(path / "model_optim")
    state = _dcp_state(model, optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = set(read_metadata(where).state_dict_metadata)
        dcp.load(state, storage_reader=SafeReader(where),
                 planner=SafeLoadPlanner(allow_partial_load=True))
        set_state_dict(model, optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optim"])
    missing = sorted(k for k in _flat_keys(state["model"], "model") if k not in saved)
    if missing:
        raise ValueError(f"{path}: the model's {missing[:3]}... are not in the checkpoint")
    # parameters that had no optimizer state when saved (never stepped yet) get none again
    names = {id(p): n for n, p in model.named_parameters()}
    for param in list(optimizer.state):
        if f"optim.state.{names[id(param)]}.step" not in saved:
            del optimizer.state[param]
    scheduler.load_state_dict(json.loads((path / "scheduler.json").read_text()))
    state_file = path / f"rng-rank{rank}.safetensors"
    if state_file.exists():
        set_rng_state(read_rng(state_file))
    else:                       # more ranks now than when saved: a fresh, deterministic seed
        saved_state = read_state(path)
        log.warning("rank %d: %s has no RNG state for this rank (saved on fewer ranks); "
                    "seeding it from the step", rank, path.name)
        seed = saved_state.global_step * 1_000_003 + rank
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
    return read_state(path)
