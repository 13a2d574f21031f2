"""bench/gstack_pays: its specs check clean at both sizes, and a smoke run of every phase
(tiny model, a few steps, in process) writes what it reports."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench.gstack_pays import SPECS
from bench.runs import Variant, variant_text
from growdsl.checks import check_plan
from growdsl.driver import load_text

WORDS = ["the", "king", "queen", "lord", "lady", "my", "thy", "good", "night", "day", "love",
         "death", "sword", "crown", "speak", "come", "go", "hath", "doth", "what", "say"]


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.grow")), ids=lambda p: p.stem)
@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
def test_gstack_bench_specs_check(spec: Path, smoke: bool) -> None:
    _, plan = load_text(variant_text(spec.read_text(), Variant(seed=1, smoke=smoke)), str(spec))
    assert not [d for d in check_plan(plan) if d.severity == "error"]
    assert sum(s.steps for s in plan.stages) == (11 if smoke else 500) or \
        spec.stem.endswith(("scratch", "stacking"))


@pytest.mark.torch
@pytest.mark.slow
def test_gstack_pays_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import gstack_pays

    monkeypatch.setenv("GROWDSL_CACHE", str(tmp_path / "cache"))
    rng = random.Random(0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(" ".join(rng.choice(WORDS) for _ in range(20)) + ".\n"
                              for _ in range(400)))
    work = tmp_path / "w"
    result = gstack_pays.main(["--smoke", "--in-process", "--families", "gpt2", "--seeds", "1",
                               "--data", str(corpus), "--work", str(work),
                               "--plots", str(tmp_path)])
    fam = result["families"]["gpt2"]
    assert fam["lr"]["best"] in gstack_pays.LRS
    assert (work / "gpt2" / "lr.txt").read_text().strip() == fam["lr"]["best"]
    assert (work / "gpt2" / "sweep" / "best.grow").exists()
    stats = fam["compare"]["stats"]
    assert set(stats) == set(gstack_pays.METHODS)
    assert all(r["lr"] == fam["lr"]["best"] for r in fam["compare"]["runs"])
    assert len(stats["gstack"]["rungs"]) == 10
    assert (tmp_path / "gstack_pays-gpt2-speedup-vs-loss.png").stat().st_size > 0
    assert json.loads((work / "gstack_pays-all-gpt2.json").read_text())["families"]["gpt2"]
    longer = gstack_pays.main(["--smoke", "--in-process", "--families", "gpt2", "--phase",
                               "long", "--data", str(corpus), "--work", str(work)])
    long = longer["families"]["gpt2"]["long"]
    spec = (work / "gpt2" / "specs" / "gpt2-scratch-x4-s0.grow").read_text()
    assert "stage 40:" in spec and f"lr = {fam['lr']['best']}" in spec    # 4 x 10 smoke steps
    assert long["below_unigram"] == pytest.approx(fam["unigram_entropy"] - long["final"])
    from bench import gstack_report

    text = gstack_report.report(work, ["gpt2"])
    assert "| gstack-sweep | " in text and "| LR | 1e-3 | 2e-3 | 4e-3 | 8e-3 |" in text
    assert f"best: {fam['sweep']['best']}" in text and "any seed, any level" in text
    assert f"Scratch 4x as long (seed 0, the tuned LR): final val loss {long['final']:.4f}" in text
