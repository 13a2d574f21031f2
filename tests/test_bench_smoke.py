"""Smoke versions of the benchmark scripts in bench/: tiny sizes, seconds each. They check
that each script runs end to end and writes what it reports, not any speed."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from bench.runs import SPECS, Variant, variant_text
from growdsl.checks import check_plan
from growdsl.driver import load_text

WORDS = ["the", "king", "queen", "lord", "lady", "my", "thy", "good", "night", "day", "love",
         "death", "sword", "crown", "speak", "come", "go", "hath", "doth", "what", "say"]


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small text corpus, and a private growdsl cache for its tokenizers."""
    monkeypatch.setenv("GROWDSL_CACHE", str(tmp_path / "cache"))
    rng = random.Random(0)
    path = tmp_path / "corpus.txt"
    path.write_text("".join(" ".join(rng.choice(WORDS) for _ in range(20)) + ".\n"
                            for _ in range(400)))
    return path


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.grow")), ids=lambda p: p.stem)
@pytest.mark.parametrize("variant", [Variant(), Variant(seed=2, smoke=True),
                                     Variant(train=(("schedule", "continue"),)),
                                     Variant(later=(("warmup", "5"),), smoke=True)],
                         ids=["as-is", "smoke", "continue", "rewarm"])
def test_bench_spec_variants_pass_the_checks(spec: Path, variant: Variant) -> None:
    text = spec.read_text()
    out = variant_text(text, variant)
    _, plan = load_text(out, str(spec))
    assert not check_plan(plan)
    assert all(s.train.seed == variant.seed for s in plan.stages)
    if variant.train:
        assert plan.stages[-1].train.schedule == "continue"
    if variant.later and len(plan.stages) > 1:
        assert plan.stages[0].train.warmup != 5
        assert all(s.train.warmup == 5 for s in plan.stages[1:])
    if not variant.smoke and variant == Variant():
        assert out == text          # the committed spec is the seed-0 default


@pytest.mark.torch
@pytest.mark.slow
def test_growth_pays_smoke(corpus: Path, tmp_path: Path) -> None:
    from bench import growth_pays

    out = tmp_path / "gp.json"
    growth_pays.main(["--smoke", "--in-process", "--families", "bert", "--seeds", "1",
                      "--policies", "", "--data", str(corpus), "--work", str(tmp_path / "w"),
                      "--out", str(out), "--plots", str(tmp_path)])
    result = json.loads(out.read_text())
    bert = result["families"]["bert"]
    assert [r["label"] for r in bert["rows"]] == list(growth_pays.METHODS)
    assert 0 < bert["unigram_entropy"] < math.log(128)
    scratch = bert["rows"][0]
    assert scratch["reach"]["reached"] == 1
    assert scratch["reach"]["flops_ratio"]["mean"] == pytest.approx(1.0)
    assert all(r["reach_tol"]["reached"] >= r["reach"]["reached"] for r in bert["rows"])
    flops = {r["label"]: r["total_flops"]["mean"] for r in bert["rows"]}
    assert all(flops[m] < flops["scratch"] for m in growth_pays.METHODS[1:])
    assert all(math.isfinite(r["final_val_loss"]["mean"]) for r in bert["rows"])
    for path in bert["plots"]:
        assert Path(path).stat().st_size > 1000


@pytest.mark.torch
@pytest.mark.slow
def test_runner_overhead_smoke(corpus: Path, tmp_path: Path) -> None:
    from bench import runner_overhead

    result = runner_overhead.main(["--smoke", "--steps", "8", "--skip", "2", "--rounds", "2",
                                   "--data", str(corpus), "--out", str(tmp_path / "ro.json")])
    assert len(result["rounds"]) == 2
    for row in result["rounds"]:
        assert row["runner_tok_s"] > 0 and row["bare_tok_s"] > 0
        # The CPU time is the training thread's own over the same steps, so it cannot
        # exceed the wall time: per CPU second at least as many tokens as per second.
        assert row["runner_tok_cpu_s"] >= 0.99 * row["runner_tok_s"]
        assert row["bare_tok_cpu_s"] >= 0.99 * row["bare_tok_s"]
    assert json.loads((tmp_path / "ro.json").read_text())["rounds"] == result["rounds"]


@pytest.mark.torch
@pytest.mark.slow
def test_growth_cost_smoke(tmp_path: Path) -> None:
    from bench import growth_cost

    rows = growth_cost.main(["--smoke", "--tmp", str(tmp_path), "--out", str(tmp_path / "c.json"),
                             "--mergekit-venv", str(tmp_path / "no-venv")])
    by = {(r["growth"], r["tool"]): r for r in rows}
    deeper, wider = by[("2x depth", "growdsl grow")], by[("2x width", "growdsl grow")]
    assert deeper["source_mb"] < deeper["written"] / 1e6 < 2.1 * deeper["source_mb"]
    assert wider["written"] > deeper["written"]          # 4x the layers, 2x the embeddings
    assert all(r["peak_anon_mb"] > 0 and r["fraction_of_copy"] > 0 for r in (deeper, wider))
    assert "not installed" in by[("2x depth", "mergekit passthrough")]["skipped"]


def test_lsp_latency_smoke(tmp_path: Path) -> None:
    import sys

    from bench import lsp_latency

    out = tmp_path / "lsp.json"
    sys_argv = sys.argv
    sys.argv = ["lsp_latency", "--changes", "4", "--out", str(out)]
    try:
        lsp_latency.main()
    finally:
        sys.argv = sys_argv
    summary = json.loads(out.read_text())["summary"]
    assert summary["change"]["n"] == 4 and summary["hover"]["n"] == 20
    assert 0 < summary["change"]["median_ms"] <= summary["change"]["max_ms"]


@pytest.mark.slow
def test_gpu_check_dry_mode(tmp_path: Path) -> None:
    """`make gpu-check`'s script, on the CPU at tiny sizes: every step passes and the
    summary is written (the GPU run itself needs a GPU)."""
    from bench import gpu_check

    assert gpu_check.main([str(tmp_path / "check"), "--dry"]) == 0
    summary = json.loads((tmp_path / "check" / "summary.json").read_text())
    assert summary["dry"] and [s["step"] for s in summary["steps"]] == [
        "cuda-marked tests", "run with scratch baseline",
        "FSDP2 kill and resume (torchrun, 1 rank)", "compiled bf16 run", "tokens/s and MFU",
        "memory plan vs measured peak"]
    assert all(s["ok"] for s in summary["steps"]), summary
    assert "3 tests collected" in summary["steps"][0]["summary"]
    memory = summary["steps"][-1]
    assert all(abs(memory[k]["error"]) < 0.15 for k in ("bert-base", "gpt2-124M"))
    assert "| FSDP2 kill and resume" in (tmp_path / "check" / "summary.md").read_text()


def test_gpu_check_without_a_gpu_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from bench import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([str(tmp_path / "check")]) == 0
    assert "no CUDA GPU on this machine; nothing checked" in capsys.readouterr().out
    assert not (tmp_path / "check").exists()
