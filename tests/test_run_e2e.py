"""`growdsl run` end to end on CPU: tiny BERT, GPT-2 and LLaMA plans train, grow, verify,
checkpoint, leave loadable HF models and a report (with a scratch baseline)."""

from __future__ import annotations

import csv
import random
import textwrap
from pathlib import Path

import pytest
import torch

import growdsl
from growdsl.driver import load_text

pytestmark = pytest.mark.torch

TEXT = ("the king and queen of a land far away rode to the old castle where lords and "
        "ladies sang of war and love while the fool told tales to the young prince")
WORDS = TEXT.split(" ")


def make_corpus(root: Path, docs: int = 12, words: int = 400, seed: int = 0) -> Path:
    """A folder of small English-ish text files (no network)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(docs):
        text = " ".join(rng.choice(WORDS) for _ in range(words))
        (root / f"doc{i:02d}.txt").write_text(text + ".\n")
    return root


def write_spec(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture()
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path_factory.getbasetemp() / "growdsl-cache"
    monkeypatch.setenv("GROWDSL_CACHE", str(where))
    return where


def rows(out: Path, event: str) -> list[dict[str, str]]:
    with open(out / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["event"] == event]


def run_spec(spec: Path, out: Path, **kw: object) -> int:
    """`growdsl run` through the library: 130 when interrupted, 0 when done."""
    done = growdsl.run(spec, out=out, **{"quiet": True, **kw})  # type: ignore[arg-type]
    return 130 if done.interrupted else 0


BERT = """
    model bert(layers=4, hidden=32, heads=2, ffn=64, seq=32, vocab=160)
    train {
      batch = 4
      lr = 2e-3
      warmup = 2
      data = "corpus"
      eval_every = 4
    }
    stage 8: depth=L/2 width=ffn/4 pool=2 -> stack, unshare, unpool
    stage 8:
"""


@pytest.mark.slow
def test_bert_compoundgrow_plan_runs_with_baseline_and_report(tmp_path: Path, cache: Path) -> None:
    make_corpus(tmp_path / "corpus")
    spec = write_spec(tmp_path / "bert.grow", BERT)
    out = tmp_path / "out"
    assert run_spec(spec, out, baseline=True) == 0
    train = rows(out, "train")
    assert [int(r["global_step"]) for r in train] == list(range(1, 17))
    assert [int(r["stage"]) for r in train] == [0] * 8 + [1] * 8
    growth = rows(out, "growth")
    assert len(growth) == 1 and growth[0]["note"].startswith("stack")
    val = [float(r["val_loss"]) for r in rows(out, "val")]
    assert len(val) == 4 and val[-1] < val[0]
    # the FLOPs column follows the planner's formula: the pooled, shared stage is cheaper
    flops = [float(r["flops"]) for r in train]
    assert flops[1] - flops[0] < flops[-1] - flops[-2]
    # each stage leaves a plain HF model that loads and has the stage's shape
    from transformers import BertForMaskedLM

    final = BertForMaskedLM.from_pretrained(str(out / "stages" / "1-stage2"),
                                            local_files_only=True)
    assert final.config.num_hidden_layers == 4 and final.config.intermediate_size == 64
    # the baseline is the reference run, the target for the plan's 16 steps, and costs what
    # the planner says scratch costs (growdsl.reference, one definition)
    base = rows(out / "baseline", "train")
    scratch = growdsl.analyse(growdsl.load(spec))
    assert len(base) == 16 == scratch.scratch_steps
    assert abs(float(base[-1]["flops"]) / scratch.scratch_flops - 1) < 1e-6
    assert list((out / "tb").glob("events.out.tfevents.*"))         # TensorBoard too
    for name in ("report.md", "loss_vs_steps.png", "loss_vs_flops.png", "speedup_vs_loss.png"):
        assert (out / name).stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "## Iso-loss ladder" in report and "| val loss | scratch FLOPs | plan FLOPs |" in report
    assert "stack (none), unshare (exact), unpool (none)" in report
    said = ("the target trained from scratch for the plan's 16 steps of 4 x 32 tokens "
            "(the default)")
    assert f"Reference run (`scratch`): {said}; trained beside the plan" in report
    assert f"scratch is {said}:" in report          # the iso-loss ladder says it too


GPT2 = """
    model gpt2(layers=4, hidden=32, heads=4, ffn=64, seq=16, vocab=300)
    train {
      batch = 2
      lr = 1e-3
      warmup = 1
      data = "corpus"
      optimizer_state = transform
    }
    stage 5: depth=L/2 hidden=D/2 heads=H/2 ffn=F/2 -> clone, identity preserve
    stage 5:
"""

LLAMA = """
    model llama(layers=4, hidden=32, heads=4, kv_heads=2, ffn=64, seq=16, vocab=300)
    train {
      batch = 2
      lr = 1e-3
      warmup = 1
      data = "corpus"
      optimizer_state = transfer
      schedule = continue
    }
    stage 5: depth=L/2 ffn=F/2 -> fpi, identity(where=interleave) preserve
    stage 5:
"""


@pytest.mark.slow
@pytest.mark.parametrize("text", [GPT2, LLAMA], ids=["gpt2", "llama"])
def test_causal_plan_preserves_at_growth_and_trains(tmp_path: Path, cache: Path,
                                                    text: str) -> None:
    make_corpus(tmp_path / "corpus")
    spec = write_spec(tmp_path / "plan.grow", text)
    out = tmp_path / "out"
    assert run_spec(spec, out) == 0
    growth = rows(out, "growth")
    assert len(growth) == 1
    assert float(growth[0]["max_abs_diff"]) < 1e-4     # declared `preserve`, and it does
    train = rows(out, "train")
    assert len(train) == 10 and all(torch.isfinite(torch.tensor(float(r["loss"])))
                                    for r in train)
    assert (out / "stages" / "1-stage2" / "model.safetensors").exists()


def test_baseline_plan_is_the_reference_run_the_planner_prices() -> None:
    from growdsl.api import baseline_plan
    from growdsl.flops import stage_flops
    from growdsl.plan import build

    _, plan = load_text(textwrap.dedent(BERT))
    _, stated = load_text(textwrap.dedent(BERT) + "scratch 1k tokens\n")
    for p, steps in ((plan, 16), (stated, 8)):          # 1k tokens at 4 x 32 per step: 8
        base = baseline_plan(p)
        assert [(s.name, s.steps, s.shape) for s in base.stages] == [("scratch", steps, p.target)]
        assert base.init is None and base.limits == () and base.scratch is None
        assert stage_flops(base.stages[0]) == build(p).scratch_flops
        assert base.stages[0].train.data == p.stages[0].train.data


TREATED = """
    model gpt2(layers=4, hidden=32, heads=2, ffn=64, seq=16, vocab=300)
    train {
      batch = 2
      lr = 1e-3
      data = "corpus"
    }
    stage 4: depth=L/2 ffn=F/2 rank=8 seq=8 -> unfactor preserve
    stage 4: depth=L/2 ffn=F/2 -> masked(ramp=3) preserve
    stage 4:
"""


@pytest.mark.slow
def test_factorized_truncated_then_masked_growth(tmp_path: Path, cache: Path) -> None:
    make_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    assert run_spec(write_spec(tmp_path / "t.grow", TREATED), out) == 0
    growth = rows(out, "growth")
    assert [g["note"] for g in growth] == ["unfactor (exact)", "masked (exact)"]
    assert all(float(g["max_abs_diff"]) < 1e-5 for g in growth)
    tokens = [int(r["tokens"]) for r in rows(out, "train")]
    assert tokens[0] == 2 * 8 and tokens[4] - tokens[3] == 2 * 16   # truncated, then full
    from growdsl.backend.models import load_model

    final = load_model(out / "stages" / "2-stage3")
    assert final.config.growdsl["mask"]["c"] == 1.0                  # the ramp completed
