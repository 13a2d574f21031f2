"""The front end's commands as a user meets them: exit codes, located messages, no
tracebacks, formatting in place, JSON on stdout, and no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from growdsl.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

BAD = {
    "typo": ("model bert-base\nstage 10k: dpeth=L/2 -> stack\nstage 10k:\n", "2:12: error[E204]"),
    "truncated": ("model bert-base\nstage 10k: depth=L/2 -> stack(\n", "error[E103]"),
    "unknown-op": ("model bert-base\nstage 10k: depth=L/2 -> stakc\nstage 10k:\n", "2:25: error[E203]"),
    "zero-divisor": ("model bert-base\nstage 10k: depth=L/0 -> stack\nstage 10k:\n", "2:20: error[E301]"),
    "negative": ("model bert-base\nstage -10k: depth=L/2 -> stack\nstage 10k:\n", "2:7: error[E304]"),
    "empty": ("", "1:1: error[E101]"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_user_mistakes_exit_1_with_a_located_message(name: str, tmp_path: Path) -> None:
    text, expected = BAD[name]
    path = tmp_path / f"{name}.grow"
    path.write_text(text)
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:" in result.output and expected in result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert ("^" in result.output) == bool(text)


def test_a_binary_file_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x7fELF\x02\x01\x00\x00binary")
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1 and f"{path}:1:7: error[E702]" in result.output


def test_a_missing_file_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope.grow")])
    assert result.exit_code == 1 and "error[E701]: no such file" in result.output


def test_bad_usage_exits_2() -> None:
    assert runner.invoke(app, ["check"]).exit_code == 2
    assert runner.invoke(app, ["check", "--no-such-flag", "x.grow"]).exit_code == 2


def test_check_is_silent_when_well_and_summarises_with_v() -> None:
    spec = str(REPO / "specs" / "tiny" / "bert-stack.grow")
    quiet = runner.invoke(app, ["check", spec])
    assert quiet.exit_code == 0 and quiet.output == ""
    loud = runner.invoke(app, ["check", "-v", spec, spec])
    assert loud.exit_code == 0 and loud.output == "checked 2 file(s): 2 ok, 0 with errors\n"


def test_check_reports_every_failing_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.grow", tmp_path / "b.grow"
    a.write_text("model bert-bse\nstage 1:\n")
    b.write_text("")
    result = runner.invoke(app, ["check", str(a), str(b)])
    assert result.exit_code == 1 and "a.grow:1:7" in result.output and "b.grow:1:1" in result.output


def test_fmt_rewrites_in_place_and_check_mode_reports(tmp_path: Path) -> None:
    path = tmp_path / "messy.grow"
    path.write_text("model   bert-base # target\nstage 10k :depth = L / 2->stack\nstage 10k:\n")
    assert runner.invoke(app, ["fmt", "--check", str(path)]).exit_code == 1
    assert runner.invoke(app, ["fmt", str(path)]).exit_code == 0
    assert path.read_text() == ("model bert-base  # target\n"
                                "stage 10k: depth=L/2 -> stack\nstage 10k:\n")
    assert runner.invoke(app, ["fmt", "--check", str(path)]).exit_code == 0


def test_emit_prints_the_ir_as_json() -> None:
    result = runner.invoke(app, ["emit", str(REPO / "specs" / "tiny" / "bert-stack.grow")])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert [s["shape"]["layers"] for s in document["stages"]] == [2, 4]


def test_front_end_never_imports_torch() -> None:
    code = ("import sys\n"
            "from growdsl.cli import app\n"
            "from click.testing import CliRunner\n"
            "specs = sorted(__import__('glob').glob('specs/*/*.grow'))\n"
            "r = CliRunner().invoke(app, ['check', *specs])\n"
            "assert r.exit_code == 0, r.output\n"
            "r = CliRunner().invoke(app, ['emit', specs[0]])\n"
            "assert r.exit_code == 0, r.output\n"
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "growdsl", "check", "-v", "growdsl/specs/demo.grow"],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "1 ok" in out.stdout
