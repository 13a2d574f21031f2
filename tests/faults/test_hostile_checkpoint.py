"""A checkpoint is data, never code, and a damaged one is skipped for the previous one.

Hostile files: a pickle that would run code, planted as DCP's `.metadata`, as a non-tensor
state entry, or as an older growdsl's `rng-rank0.pt`, even with a manifest rehashed to
match, never runs (a marker file it would create stays absent). A manifest with a missing
entry, an unlisted file, a link, or any malformed structure marks the checkpoint damaged:
`latest` warns and takes the previous one; nothing raises."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from growdsl.backend import checkpoint as ckpt
from growdsl.backend.safe_dcp import SafeLoadPlanner, UnsafeCheckpoint
from tests.test_checkpoint import state, trained

pytestmark = pytest.mark.torch


class Payload:
    """Unpickling this runs `touch MARKER`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, opt, sched = trained()
    root = tmp_path_factory.mktemp("hostile") / "checkpoints"
    for step in (1, 2):
        ckpt.save(root, model, opt, sched, state(step), keep=2)  # type: ignore[arg-type]
    return root


@pytest.fixture()
def saved(template: Path, tmp_path: Path) -> Path:
    """checkpoints/step-00000001 and step-00000002 of a tiny trained model (a fresh copy)."""
    shutil.copytree(template, tmp_path / "checkpoints")
    return tmp_path / "checkpoints"


def rehash(path: Path) -> None:
    """Rewrite the manifest to match the folder as it is (what an attacker would do)."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != ckpt.MANIFEST)
    listed = {str(p.relative_to(path)): {"size": p.stat().st_size,
                                         "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
              for p in files}
    (path / ckpt.MANIFEST).write_text(json.dumps({"files": listed}))


def skipped(root: Path, caplog: pytest.LogCaptureFixture) -> str:
    """The warning `latest` gave for the newest checkpoint; asserts it fell back."""
    with caplog.at_level(logging.WARNING, logger="growdsl.run"):
        assert ckpt.latest(root) == root / "step-00000001"
    lines = [r.getMessage() for r in caplog.records if "step-00000002" in r.getMessage()]
    caplog.clear()
    return lines[-1].split(": ", 1)[1]


def test_pickled_dcp_metadata_does_not_run(saved: Path, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "pwned"
    newest = saved / "step-00000002"
    (newest / "model_optim" / ".metadata").write_bytes(pickle.dumps(Payload(marker)))
    rehash(newest)
    assert skipped(saved, caplog) == ("DCP metadata refers to posix.system, which a checkpoint "
                                      "never holds (not loaded: it could run code)")
    assert not marker.exists()


def test_pickled_rng_file_of_an_older_format_is_refused(saved: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "pwned"
    newest = saved / "step-00000002"
    (newest / "rng-rank0.safetensors").unlink()
    torch.save({"x": Payload(marker)}, newest / "rng-rank0.pt")
    rehash(newest)
    assert skipped(saved, caplog) == "rng-rank0.pt is not a file a checkpoint holds"
    assert not marker.exists()


def test_pickled_state_entry_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    planner = SafeLoadPlanner()
    buffer = io.BytesIO()
    torch.save(Payload(marker), buffer)
    buffer.seek(0)

    class Item:
        class dest_index:
            fqn = "optim.param_groups.0.lr"

    with pytest.raises(UnsafeCheckpoint, match=r"optim\.param_groups\.0\.lr: not plain data"):
        planner.load_bytes(Item(), buffer)  # type: ignore[arg-type]
    assert not marker.exists()


def test_rng_file_with_wrong_contents_is_damaged(saved: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    from safetensors.torch import save_file

    newest = saved / "step-00000002"
    save_file({"python": torch.zeros(3)}, str(newest / "rng-rank0.safetensors"))
    rehash(newest)
    assert skipped(saved, caplog).startswith("rng-rank0.safetensors is not an RNG record")


MANIFESTS = {
    "not JSON": ("{", "unreadable manifest (Expecting property name enclosed in double quotes: "
                      "line 1 column 2 (char 1))"),
    "a list": ("[]", "malformed manifest (no `files` object)"),
    "files a list": ('{"files": []}', "malformed manifest (no `files` object)"),
    "entry a string": ('{"files": {"state.json": "x"}}', "malformed manifest (entry 'state.json')"),
    "size a string": ('{"files": {"state.json": {"size": "1", "sha256": "' + "0" * 64 + '"}}}',
                      "malformed manifest (entry 'state.json')"),
    "no digest": ('{"files": {"state.json": {"size": 1}}}',
                  "malformed manifest (entry 'state.json')"),
    "outside path": ('{"files": {"../x": {"size": 1, "sha256": "' + "0" * 64 + '"}}}',
                     "malformed manifest (entry '../x' is not a file of the checkpoint)"),
    "absolute path": ('{"files": {"/etc/passwd": {"size": 1, "sha256": "' + "0" * 64 + '"}}}',
                      "malformed manifest (entry '/etc/passwd' is not a file of the checkpoint)"),
}


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_malformed_manifest_is_damaged(saved: Path, kind: str,
                                       caplog: pytest.LogCaptureFixture) -> None:
    text, why = MANIFESTS[kind]
    (saved / "step-00000002" / ckpt.MANIFEST).write_text(text)
    assert skipped(saved, caplog) == why


def test_missing_manifest_entry_is_damaged(saved: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = saved / "step-00000002" / ckpt.MANIFEST
    raw = json.loads(path.read_text())
    del raw["files"]["rng-rank0.safetensors"]
    path.write_text(json.dumps(raw))
    assert skipped(saved, caplog) == "rng-rank0.safetensors is not in the manifest"


def test_unlisted_extra_file_is_damaged(saved: Path, caplog: pytest.LogCaptureFixture) -> None:
    (saved / "step-00000002" / "model_optim" / "__9_0.distcp").write_bytes(b"x")
    assert skipped(saved, caplog) == "model_optim/__9_0.distcp is not in the manifest"
    (saved / "step-00000002" / "model_optim" / "__9_0.distcp").unlink()
    (saved / "step-00000002" / "notes.txt").write_bytes(b"x")
    assert skipped(saved, caplog) == "notes.txt is not a file a checkpoint holds"


def test_link_in_a_checkpoint_is_damaged(saved: Path, caplog: pytest.LogCaptureFixture) -> None:
    newest = saved / "step-00000002"
    (newest / "scheduler.json").unlink()
    (newest / "scheduler.json").symlink_to("/etc/hostname")
    assert skipped(saved, caplog) == ("scheduler.json is a link (a checkpoint holds only its own "
                                      "files)")


def test_edited_state_is_reported_as_changed_not_truncated(
        saved: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = saved / "step-00000002" / "state.json"
    size = path.stat().st_size
    path.write_text(path.read_text().replace('"step": 2', '"step": 20'))
    assert skipped(saved, caplog) == (f"state.json has changed ({size + 1} bytes, the manifest "
                                      f"says {size})")


def test_state_of_the_wrong_types_is_damaged_even_when_rehashed(
        saved: Path, caplog: pytest.LogCaptureFixture) -> None:
    newest = saved / "step-00000002"
    raw = json.loads((newest / "state.json").read_text())
    (newest / "state.json").write_text(json.dumps({**raw, "step": "2"}))
    rehash(newest)
    assert skipped(saved, caplog) == ("state.json is not a run state (a count is not a whole "
                                      "number >= 0)")
    (newest / "state.json").write_text(json.dumps({**raw, "evil": 1}))
    rehash(newest)
    assert "state.json is not a run state" in skipped(saved, caplog)


def test_no_torch_load_or_pickle_of_user_files_in_the_package() -> None:
    """The only unpickling left is the allow-listed DCP metadata reader."""
    import re

    root = Path(__file__).resolve().parents[2] / "growdsl"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "weights_only=False" not in text.replace("weights_only=False)`", ""), path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
        if path.name != "safe_dcp.py":
            assert not re.search(r"\bpickle\.(load|Unpickler)", text), path
