"""`growdsl plan`: table, JSON, DOT, Mermaid, the plot, located errors, and no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from growdsl.cli import app

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "specs" / "papers" / "compoundgrow-bert-base.grow")
runner = CliRunner()


def test_table_shows_stages_verdicts_and_speedup() -> None:
    result = runner.invoke(app, ["plan", SPEC])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("stage1", "stage4", "3072/4", "512 pool 2", "unshare, unpool: none",
                 "unshare: exact", "speedup 2.103x"):
        assert text in out, text


def test_json_has_the_documented_keys() -> None:
    result = runner.invoke(app, ["plan", SPEC, "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {"stages", "total_flops", "scratch_flops", "speedup"} <= set(data)
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


def test_plot_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "schedule.png"
    result = runner.invoke(app, ["plan", SPEC, "--format", "json", "--plot", str(out)])
    assert result.exit_code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_violated_budget_is_a_located_error() -> None:
    bad = ROOT / "tests" / "golden" / "planner" / "errors" / "E601-budget-flops.grow"
    result = runner.invoke(app, ["plan", str(bad)])
    assert result.exit_code == 1
    assert "E601-budget-flops.grow:4:1: error[E601]" in result.output
    assert "crossed in stage2 (line 6)" in result.output
    assert "Traceback" not in result.output


def test_plan_and_check_never_import_torch() -> None:
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom growdsl.cli import app\n"
            f"r = CliRunner().invoke(app, ['plan', {SPEC!r}, '--format', 'json'])\n"
            f"r2 = CliRunner().invoke(app, ['check', {SPEC!r}])\n"
            "assert r.exit_code == 0 and r2.exit_code == 0, (r.output, r2.output)\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
            "assert 'matplotlib' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
