"""`growdsl sweep`: the `sweep { }` block (syntax, checks, printing), candidates built through
the AST, the budget, and the whole sweep end to end on tiny proxy runs (in process)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from growdsl import sweep_space
from growdsl.checks import check_plan
from growdsl.driver import load_text as lower_text
from growdsl.driver import validate
from growdsl.errors import GrowError
from growdsl.parser import parse
from growdsl.printer import print_file
from growdsl.source import Source

TINY = """# a tiny plan with its sweep
model gpt2(layers=4, hidden=32, heads=2, ffn=64, seq=16, vocab=512)
train {
  batch = 8
  lr = 2e-3
  warmup = 2
  eval_every = 2
}
stage 4: depth=L/4 -> stack
stage 8:
sweep {
  timing = (0.25, 0.5)
  factor = (2, 4)
  steps = 8
  flops = 1e12
}
"""
WORDS = ["the", "king", "queen", "lord", "lady", "my", "thy", "good", "night", "day", "love",
         "death", "sword", "crown", "speak", "come", "go", "hath", "doth", "what", "say"]


def _errors(text: str) -> str:
    with pytest.raises(GrowError) as info:
        lower_text(text, "s.grow")
    return info.value.render()


def test_the_block_round_trips_through_the_printer() -> None:
    assert print_file(parse(Source(path="s.grow", text=TINY))) == TINY
    _, plan = lower_text(TINY, "s.grow")
    assert not check_plan(plan)


def test_the_block_reads_into_a_space() -> None:
    tree = parse(Source(path="s.grow", text=TINY))
    decl = next(s for s in tree.statements if isinstance(s, sweep_space.ast.SweepDecl))
    space, found = sweep_space.read(decl, 4)
    assert not found
    assert space.timing == (0.25, 0.5) and space.factor == (2, 4) and space.steps == 8
    assert [c.name for c in space.grid()] == ["g2-t0.25-restart", "g2-t0.5-restart",
                                              "g4-t0.25-restart", "g4-t0.5-restart"]


@pytest.mark.parametrize(("change", "expected"), [
    ("  steps = 8\n", "s.grow:14:3: error[E220]: unknown sweep key `step`"),
    ("  factor = (2, 4)\n", "s.grow:13:16: error[E321]: growth factor 3 does not divide the "
                            "target's 4 layers"),
    ("  flops = 1e12\n", "s.grow:15:11: error[E320]: `flops` takes one value, not a choice"),
    ("  timing = (0.25, 0.5)\n", "s.grow:12:19: error[E320]: `timing` is a share of the steps, "
                                 "strictly between 0 and 1; got 1"),
])
def test_mistakes_in_the_block_are_located(change: str, expected: str) -> None:
    wrong = {"  steps = 8\n": "  step = 8\n", "  factor = (2, 4)\n": "  factor = (2, 3)\n",
             "  flops = 1e12\n": "  flops = (1e12, 2e12)\n",
             "  timing = (0.25, 0.5)\n": "  timing = (0.25, 1)\n"}[change]
    assert expected in _errors(TINY.replace(change, wrong))


def test_a_second_block_and_a_bad_word_are_errors() -> None:
    assert "error[E205]: a second `sweep` statement" in _errors(TINY + "sweep {\n  steps = 4\n}\n")
    text = TINY.replace("  steps = 8\n", "  steps = 8\n  schedule = (restart, contine)\n")
    assert "`schedule` takes restart, continue; got `contine`" in _errors(text)
    assert "did you mean `continue`?" in _errors(text)


def test_candidates_are_checked_plans_built_through_the_ast() -> None:
    tree = parse(Source(path="s.grow", text=TINY))
    choice = sweep_space.Choice(timing=0.25, factor=2, schedule="continue", warmup=1)
    text = print_file(sweep_space.candidate_file(tree, choice, 8))
    _, plan = lower_text(text, "c.grow")
    assert not check_plan(plan)
    assert [s.steps for s in plan.stages] == [2, 6]
    assert [s.shape.layers for s in plan.stages] == [2, 4]
    assert plan.stages[1].train.schedule == "continue" and plan.stages[1].train.warmup == 1
    assert "sweep" not in text
    _, scratch = lower_text(print_file(sweep_space.scratch_file(tree, 8)), "x.grow")
    assert [s.steps for s in scratch.stages] == [8]
    full = print_file(sweep_space.full_file(tree, choice, 12))
    _, big = lower_text(full, "f.grow")
    assert [s.steps for s in big.stages] == [3, 9] and "sweep {" in full


def test_a_grid_over_the_budget_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from growdsl.sweep import run_sweep

    spec = tmp_path / "s.grow"
    spec.write_text(TINY.replace("flops = 1e12", "flops = 5e8"))
    with pytest.raises(GrowError) as info:
        run_sweep(spec, tmp_path / "out", tmp_path / "none.txt")
    assert "error[E620]: the sweep's 4 candidates and scratch need 1.42e+09 FLOPs, over its " \
           "budget of 5e+08" in info.value.render()
    assert not (tmp_path / "out").exists()


def test_a_plan_without_a_block_is_told_how_to_write_one(tmp_path: Path) -> None:
    from growdsl.sweep import run_sweep

    spec = tmp_path / "s.grow"
    spec.write_text(TINY[:TINY.index("sweep {")])
    with pytest.raises(GrowError) as info:
        run_sweep(spec, tmp_path / "out", tmp_path / "none.txt")
    assert "error[E740]: the plan has no `sweep { }` block: nothing is open" in info.value.render()


def _corpus(tmp_path: Path) -> Path:
    rng = random.Random(0)
    path = tmp_path / "corpus.txt"
    path.write_text("".join(" ".join(rng.choice(WORDS) for _ in range(20)) + ".\n"
                            for _ in range(400)))
    return path


def _demo_corpus(tmp_path: Path) -> Path:
    """The demo's Shakespeare (cached after `make demo` or any fetch); offline and uncached, a
    small synthetic corpus instead, so that the sweep still runs end to end."""
    from growdsl.backend.corpus import fetch_shakespeare

    try:
        return fetch_shakespeare()
    except GrowError as exc:
        print(f"demo corpus unavailable ({exc}); using a synthetic one")
        return _corpus(tmp_path)


@pytest.mark.torch
@pytest.mark.slow
def test_sweep_end_to_end_on_the_demo_corpus_and_resume(tmp_path: Path) -> None:
    from growdsl.sweep import run_sweep

    data = _demo_corpus(tmp_path)
    spec = tmp_path / "s.grow"
    spec.write_text(TINY)
    out = tmp_path / "out"
    result = run_sweep(spec, out, data, jobs=2, in_process=True)
    assert len(result.candidates) == 4 and result.scratch.curve
    assert result.best.cost == min(o.cost for o in result.candidates)
    doc = json.loads((out / "sweep.json").read_text())
    assert {c["name"] for c in doc["candidates"]} == {c.name for c in result.candidates}
    assert doc["flops_spent"] == pytest.approx(sum(o.planned_flops for o in result.candidates)
                                               + result.scratch.planned_flops)
    assert (out / "sweep.png").stat().st_size > 0
    assert "## Iso-loss ladder" in (out / "sweep.md").read_text()
    best = (out / "best.grow").read_text()
    assert best.startswith(f"# Chosen by `growdsl sweep s.grow` on {data}")
    assert f"# Best: factor {result.best.choice.factor}, timing {result.best.choice.timing:g}" \
        in best
    validate(out / "best.grow")
    stamps = {p: p.stat().st_mtime for p in (out / "runs").glob("*/metrics.csv")}
    again = run_sweep(spec, out, data, jobs=2, in_process=True)      # resumes: nothing retrains
    assert {p: p.stat().st_mtime for p in (out / "runs").glob("*/metrics.csv")} == stamps
    assert again.best.name == result.best.name


def test_the_sweeps_scratch_is_the_reference_run_of_the_base_plan() -> None:
    """One meaning of `scratch` (growdsl.reference): no `init`, the last stage's settings,
    the first stage's seed, the schedule restarted, at the proxies' length."""
    from growdsl import reference

    text = (TINY.replace("train {", 'init from "ckpt"\ntrain {')
            .replace("stage 4: depth=L/4", "stage 4: seed=7 depth=L/4")
            .replace("stage 8:\n", "stage 8: warmup=3 lr=1e-3\n"))
    tree = parse(Source(path="s.grow", text=text))
    _, base = lower_text(text, "s.grow")
    _, scratch = lower_text(print_file(sweep_space.scratch_file(tree, 8)), "x.grow")
    assert scratch.init is None and len(scratch.stages) == 1
    ref = reference.stage(base)
    mine = scratch.stages[0]
    assert (mine.steps, mine.shape, mine.train) == (8, ref.shape, ref.train)
    assert mine.train.warmup == 3 and mine.train.lr == 1e-3 and mine.train.seed == 7
