"""Atomic, resumable checkpoints of a run.

One checkpoint is a folder `checkpoints/step-<global step>/`:

- `model_optim/`: model and optimizer state through `torch.distributed.checkpoint` (DCP),
  keyed by parameter name (`get_state_dict`), so that a sharded FSDP2 run writes and reads
  the same layout and can reshard it;
- `config.json`: the model's HF config (its shape and treatments: what to build before
  loading);
- `scheduler.json`: the LR scheduler's state;
- `rng-rank<r>.pt`: python, numpy, torch and CUDA RNG states (one file per rank);
- `state.json`: stage index, step within the stage, global step, data position (a global
  sample offset), cumulative FLOPs and tokens, wall time, the run's plan key;
- `manifest.json`, written LAST: every file's size and SHA-256.

It is written to a temporary folder, every file fsynced, the manifest written and fsynced,
then the folder renamed into place (and the parent fsynced). A folder without its manifest,
or whose files do not match it, is never loaded: `latest` skips it with a warning and falls
back to the previous one. Only the newest `keep` checkpoints are kept.

Under torchrun every rank writes its own DCP shards and `rng-rank<r>.pt`; rank 0 alone
writes the other files, fsyncs everything, hashes it into the manifest and renames the
folder, with a barrier before and after. Loading reshards onto any number of ranks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from growdsl.backend import faults

log = logging.getLogger("growdsl.run")

MANIFEST = "manifest.json"
PREFIX = "step-"


@dataclass(frozen=True, kw_only=True, slots=True)
class RunState:
    """Where a run stands: what `state.json` holds."""

    stage: int                  # index of the stage being trained
    step: int                   # optimizer steps done in that stage
    global_step: int            # optimizer steps done in the whole run
    data_offset: int            # global sample offset: samples consumed so far
    flops: float                # cumulative training FLOPs
    tokens: int                 # cumulative training tokens
    wall: float                 # seconds spent training so far
    stage_done: bool = False    # the stage finished (growth into the next one comes next)
    log_rows: int = 0           # metrics rows written so far (a resumed log is cut there)
    plan_key: str = ""


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


def rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _dcp_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_state_dict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model_sd, optim_sd = get_state_dict(model, optimizer)
    return {"model": model_sd, "optim": optim_sd}


def save(root: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
         scheduler: torch.optim.lr_scheduler.LRScheduler, state: RunState,
         keep: int) -> Path:
    """Write a checkpoint atomically under `root`; drop all but the newest `keep`.

    Under torchrun every rank writes its DCP shards and its RNG file; rank 0 alone writes
    the rest, the manifest, and renames the folder into place, with barriers around it."""
    import torch.distributed.checkpoint as dcp

    from growdsl.backend import distributed

    d = distributed.current()
    name = f"{PREFIX}{state.global_step:08d}"
    final, tmp = root / name, root / f".tmp-{name}"
    if d.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    distributed.barrier()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(_dcp_state(model, optimizer), checkpoint_id=str(tmp / "model_optim"))
    torch.save(rng_state(), tmp / f"rng-rank{d.rank}.pt")
    distributed.barrier()
    if d.main:
        _finalise(root, tmp, final, model, scheduler, state, keep)
    distributed.barrier()
    return final


def _finalise(root: Path, tmp: Path, final: Path, model: nn.Module,
              scheduler: torch.optim.lr_scheduler.LRScheduler, state: RunState,
              keep: int) -> None:
    """Rank 0: the run's files, fsync, manifest last, rename into place, prune."""
    model.config.to_json_file(str(tmp / "config.json"))  # type: ignore[union-attr,operator]
    (tmp / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))
    (tmp / "state.json").write_text(json.dumps(asdict(state), indent=1))
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
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    complete = [p for p in candidates(root) if (p / MANIFEST).exists()]
    for old in complete[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def candidates(root: Path) -> list[Path]:
    """Checkpoint folders under `root`, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def problem(path: Path) -> str | None:
    """Why the checkpoint at `path` cannot be loaded, or None when it is complete."""
    manifest = path / MANIFEST
    if not manifest.exists():
        return "no manifest (the write never finished)"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as exc:
        return f"unreadable manifest ({exc})"
    for name, meta in files.items():
        f = path / name
        if not f.is_file():
            return f"{name} is missing"
        if f.stat().st_size != meta["size"]:
            return f"{name} is truncated ({f.stat().st_size} of {meta['size']} bytes)"
        if _sha256(f) != meta["sha256"]:
            return f"{name} is corrupt (checksum mismatch)"
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
    return RunState(**json.loads((path / "state.json").read_text()))


def load_into(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
              scheduler: torch.optim.lr_scheduler.LRScheduler) -> RunState:
    """Load a checkpoint's model, optimizer, scheduler and RNG states in place. DCP reshards
    the saved model and optimizer onto however many ranks load them (1 included)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
    from torch.distributed.checkpoint.state_dict import set_state_dict

    from growdsl.backend import distributed

    rank = distributed.current().rank

    where = str(path / "model_optim")
    state = _dcp_state(model, optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = set(dcp.FileSystemReader(where).read_metadata().state_dict_metadata)
        dcp.load(state, checkpoint_id=where,
                 planner=DefaultLoadPlanner(allow_partial_load=True))
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
    state_file = path / f"rng-rank{rank}.pt"
    if state_file.exists():
        set_rng_state(torch.load(state_file, weights_only=False))
    else:                       # more ranks now than when saved: a fresh, deterministic seed
        saved_state = read_state(path)
        log.warning("rank %d: %s has no RNG state for this rank (saved on fewer ranks); "
                    "seeding it from the step", rank, path.name)
        seed = saved_state.global_step * 1_000_003 + rank
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
    return read_state(path)
