"""`growdsl plan`: table, JSON, DOT, Mermaid, the plot, located errors, and no torch."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from growdsl import plan as plan_module
from growdsl.cli import app
from growdsl.ir import Stage
from growdsl.plan import GrowthResult

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "specs" / "papers" / "compoundgrow-bert-base.grow")
runner = CliRunner()


def assert_no_traceback(result: Result) -> None:
    """A user error ends in SystemExit; any other exception is a bug."""
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception


def test_table_shows_stages_verdicts_and_speedup() -> None:
    result = runner.invoke(app, ["plan", SPEC])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("stage1", "stage4", "3072/4", "512 pool 2", "unshare, unpool: not preserving",
                 "unshare: exact", "speedup 2.103x"):
        assert text in out, text
    # CompoundGrow's comparison: the default reference run, the target for the plan's steps
    assert ("scratch: the target trained from scratch for the plan's 1M steps of 256 x 512 "
            "tokens (the default)") in out


def test_json_has_the_documented_keys() -> None:
    result = runner.invoke(app, ["plan", SPEC, "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {"stages", "total_flops", "scratch_flops", "speedup"} <= set(data)
    assert data["scratch_steps"] == data["total_steps"] == 1_000_000
    assert data["scratch"].endswith("(the default)") and data["scratch_stated"] is False
    assert [s["layers"] for s in data["stages"]] == [3, 6, 12, 12]
    for stage in data["stages"]:
        assert {"steps", "tokens", "layers", "hidden", "heads", "ffn", "seq", "params",
                "flops"} <= set(stage)
    assert data["speedup"] == pytest.approx(data["scratch_flops"] / data["total_flops"])
    assert data["growth"][2]["ops"][0] == {"name": "unshare", "args": {}, "verdict": {
        "kind": "exact", "reason": data["growth"][2]["ops"][0]["verdict"]["reason"]}}


@pytest.mark.parametrize(("fmt", "marker"), [("dot", "digraph plan {"),
                                              ("mermaid", "flowchart LR")])
def test_graph_formats(fmt: str, marker: str) -> None:
    result = runner.invoke(app, ["plan", SPEC, "--format", fmt])
    assert result.exit_code == 0
    assert result.stdout.startswith(marker)
    assert result.stdout.count("stack [none]") == 2


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"),
                                               (".pdf", b"%PDF")])
def test_plot_writes_each_format(tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = tmp_path / f"schedule{suffix}"
    result = runner.invoke(app, ["plan", SPEC, "--format", "json", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:len(magic)] == magic


@pytest.mark.parametrize(("where", "code", "text"), [
    ("missing/x.png", "E704", "no directory"),
    ("out.foo", "E705", "cannot draw the plot as .foo"),
    ("noext", "E705", "a file with no suffix"),
    (".", "E704", "this is a directory"),
])
def test_a_bad_plot_path_is_an_error_before_any_output(tmp_path: Path, where: str, code: str,
                                                       text: str) -> None:
    target = tmp_path / where
    result = runner.invoke(app, ["plan", SPEC, "--plot", str(target) + ("/" if where == "."
                                                                         else "")])
    assert result.exit_code == 1
    assert_no_traceback(result)
    assert f"error[{code}]: " in result.output and text in result.output
    assert "stage1" not in result.output and "speedup" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not tmp_path.with_suffix(".png").exists()


def test_a_failed_plot_write_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    def full_disk(graph: object, path: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(plan_module, "plot_schedule", full_disk)   # imported when drawing
    result = runner.invoke(app, ["plan", SPEC, "--plot", str(tmp_path / "x.png")])
    assert result.exit_code == 1
    assert_no_traceback(result)
    assert "x.png: error[E704]: cannot write the plot: No space left on device" in result.output
    assert "speedup" not in result.output


def test_plan_builds_the_stage_graph_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = plan_module.grow_step
    def counted(src: Stage, dst: Stage) -> GrowthResult:
        calls.append(src.name)
        return real(src, dst)

    monkeypatch.setattr(plan_module, "grow_step", counted)
    result = runner.invoke(app, ["plan", SPEC, "--format", "json"])
    assert result.exit_code == 0
    assert calls == ["stage1", "stage2", "stage3"]


def test_violated_budget_is_a_located_error() -> None:
    bad = ROOT / "tests" / "golden" / "planner" / "errors" / "E601-budget-flops.grow"
    result = runner.invoke(app, ["plan", str(bad)])
    assert result.exit_code == 1
    assert "E601-budget-flops.grow:4:1: error[E601]" in result.output
    assert "crossed in stage2 (line 6)" in result.output
    assert_no_traceback(result)


def test_plan_and_check_never_import_torch() -> None:
    code = ("import sys\nfrom click.testing import CliRunner\nfrom growdsl.cli import app\n"
            f"r = CliRunner().invoke(app, ['plan', {SPEC!r}, '--format', 'json'])\n"
            f"r2 = CliRunner().invoke(app, ['check', {SPEC!r}])\n"
            "assert r.exit_code == 0 and r2.exit_code == 0, (r.output, r2.output)\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
            "assert 'matplotlib' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
