"""Every file of a checkpoint, damaged in each way a disk or a person damages it (cut
short, a byte flipped, deleted, its manifest entry deleted), is detected: `latest` skips
the checkpoint with a warning and takes the previous one. `CORRUPTIONS` x the files of a
real checkpoint is the count docs/reliability.md quotes (`python -m tests.faults.figures`)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from growdsl.backend import checkpoint as ckpt
from tests.faults.test_hostile_checkpoint import template  # noqa: F401 (a fixture)

pytestmark = pytest.mark.torch


def _truncate(path: Path, _root: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-1])


def _flip(path: Path, _root: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _delete(path: Path, _root: Path) -> None:
    path.unlink()


def _unlist(path: Path, root: Path) -> None:
    manifest = root / ckpt.MANIFEST
    raw = json.loads(manifest.read_text())
    del raw["files"][str(path.relative_to(root))]
    manifest.write_text(json.dumps(raw))


CORRUPTIONS: dict[str, Callable[[Path, Path], None]] = {
    "truncated": _truncate, "byte flipped": _flip, "deleted": _delete,
    "manifest entry deleted": _unlist}


def test_every_corruption_of_every_file_is_detected(template: Path, tmp_path: Path,  # noqa: F811
                                                    caplog: pytest.LogCaptureFixture) -> None:
    newest = template / "step-00000002"
    files = sorted(str(p.relative_to(newest)) for p in newest.rglob("*")
                   if p.is_file() and p.name != ckpt.MANIFEST)
    assert len(files) == 7        # config, scheduler, state, metrics, rng, DCP metadata + shard
    detected = []
    for name in files:
        for kind, corrupt in CORRUPTIONS.items():
            root = tmp_path / f"{name.replace('/', '_')}-{kind.replace(' ', '_')}"
            shutil.copytree(template, root)
            target = root / "step-00000002" / name
            if target.stat().st_size == 0 and kind in ("truncated", "byte flipped"):
                target.write_text("event\n")           # give an empty file bytes to damage
                _rehash_one(root / "step-00000002", name)
            corrupt(target, root / "step-00000002")
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="growdsl.run"):
                assert ckpt.latest(root) == root / "step-00000001", (name, kind)
            assert "skipping checkpoint" in caplog.text, (name, kind)
            detected.append((name, kind))
    assert len(detected) == len(files) * len(CORRUPTIONS) == 28


def _rehash_one(root: Path, name: str) -> None:
    import hashlib

    manifest = root / ckpt.MANIFEST
    raw = json.loads(manifest.read_text())
    data = (root / name).read_bytes()
    raw["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest.write_text(json.dumps(raw))
