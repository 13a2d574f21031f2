"""A full disk, a read-only target and a failed write: `run` stops with E716 and `grow`
with E739, nothing partial is left under a final name, the last complete checkpoint is
kept, and a resumed run still ends bitwise where an uninterrupted one does.

Two ways to fill a disk: a small tmpfs mounted under the test's folder (needs root and a
kernel that lets the container mount; skipped with a message otherwise), and a fault
injected at the write call (`GROWDSL_FAIL_WRITE`, always)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from growdsl.backend import checkpoint as ckpt
from growdsl.errors import GrowError
from tests.faults.util import tiny_plan
from tests.test_run_e2e import run_spec

pytestmark = [pytest.mark.torch, pytest.mark.slow]


@contextlib.contextmanager
def tmpfs(where: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of `size_kb` at `where`, or a skip saying why there is none."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'}); the "
                    "injected-fault tests cover the same paths")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def run_error(spec: Path, out: Path, **kw: object) -> GrowError:
    with pytest.raises(GrowError) as info:
        run_spec(spec, out, **kw)
    return info.value


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(spec, output of an uninterrupted in-process run), once for the module."""
    root = tmp_path_factory.mktemp("full")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GROWDSL_CACHE", str(root / "cache"))
        mp.delenv("GROWDSL_FAIL_WRITE", raising=False)
        spec = tiny_plan(root)
        assert run_spec(spec, root / "ref") == 0
    return spec, root / "ref"


@pytest.fixture()
def plan(reference: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """`reference`, with its corpus cache and the write-fault counters fresh."""
    from growdsl.backend import faults

    faults._hits.clear()
    monkeypatch.setenv("GROWDSL_CACHE", str(reference[1].parent / "cache"))
    return reference


def assert_nothing_lost_then_resume(spec: Path, out: Path, ref: Path, err: GrowError,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.faults.util import log

    assert [d.code for d in err.diagnostics] == ["E716"], err.render()
    latest = ckpt.latest(out / "checkpoints")
    assert latest is not None
    assert not list((out / "checkpoints").glob(".tmp-*"))
    assert not list((out / "stages").glob("*.tmp")) if (out / "stages").exists() else True
    rows = log(out)
    assert rows == log(ref)[:len(rows)]                     # the log as written, intact
    assert len(rows) >= ckpt.read_state(latest).log_rows
    monkeypatch.delenv("GROWDSL_FAIL_WRITE", raising=False)
    assert run_spec(spec, out, resume=True) == 0
    assert log(out) == log(ref)


@pytest.mark.parametrize("point", ["checkpoint-rng:2", "metrics:7", "stage-dir", "report"])
def test_injected_write_failure_in_run(plan: tuple[Path, Path], tmp_path: Path, point: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec, ref = plan
    monkeypatch.setenv("GROWDSL_FAIL_WRITE", point)
    out = tmp_path / "out"
    err = run_error(spec, out)
    what = {"checkpoint-rng:2": "a checkpoint at step 4", "metrics:7": "the metrics log at step",
            "stage-dir": "the model of stage stage1 at step 4",
            "report": f"the report in {out}"}[point]
    assert f"error[E716]: cannot write {what}" in err.render()
    assert "the disk is full" in err.render()
    assert_nothing_lost_then_resume(spec, out, ref, err, monkeypatch)


def test_full_tmpfs_in_run(plan: tuple[Path, Path], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    spec, ref = plan
    one = sum(p.stat().st_size for p in (ref / "checkpoints" / "step-00000008").rglob("*")
              if p.is_file())
    with tmpfs(tmp_path / "disk", size_kb=int(1.6 * one / 1024) + 64) as disk:
        out = disk / "out"
        err = run_error(spec, out)
        assert "error[E716]: cannot write" in err.render() and "the disk is full" in err.render()
        remount(disk, "size=64m")                               # space freed
        assert_nothing_lost_then_resume(spec, out, ref, err, monkeypatch)


def test_read_only_target_in_run(plan: tuple[Path, Path], tmp_path: Path) -> None:
    spec, _ref = plan
    with tmpfs(tmp_path / "ro", size_kb=1024) as disk:
        remount(disk, "ro")
        err = run_error(spec, disk / "out")
        assert [d.code for d in err.diagnostics] == ["E716"]
        assert f"error[E716]: cannot write {disk / 'out'}: Read-only file system" in err.render()


# --- grow ---------------------------------------------------------------------------------

def small_model(path: Path) -> Path:
    from growdsl.backend.models import build_model
    from tests.faults.test_sizes import SMALL

    build_model(SMALL).save_pretrained(str(path))
    return path


def grow(src: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    from growdsl.cli import app

    result = CliRunner().invoke(app, ["grow", str(src), str(out), "--to", "depth=2*L", "--ops",
                                      "stack", *extra], env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_injected_write_failure_in_grow_keeps_the_old_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = small_model(tmp_path / "src")
    out = tmp_path / "out"
    monkeypatch.setenv("GROWDSL_FAIL_WRITE", "grow-weights")
    code, output = grow(src, out)
    assert code == 1 and (f"{out}: error[E739]: cannot write the grown model: the disk is full"
                          in output), output
    assert not out.exists() and leftovers(tmp_path) == []
    monkeypatch.delenv("GROWDSL_FAIL_WRITE")
    assert grow(src, out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setenv("GROWDSL_FAIL_WRITE", "grow-weights")
    code, output = grow(src, out, "--replace")
    assert code == 1 and "error[E739]" in output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before     # the old one, whole
    assert leftovers(tmp_path) == []


def test_full_or_read_only_tmpfs_in_grow(tmp_path: Path) -> None:
    src = small_model(tmp_path / "src")
    with tmpfs(tmp_path / "disk", size_kb=16) as disk:
        code, output = grow(src, disk / "out")
        assert code == 1 and (f"{disk / 'out'}: error[E739]: cannot write the grown model: the "
                              "disk is full") in output, output
        assert list(disk.iterdir()) == []                       # nothing, not even a temp
        remount(disk, "size=4m,ro")
        code, output = grow(src, disk / "out")
        assert code == 1 and ("error[E739]: cannot write the grown model: Read-only file system"
                              in output), output
