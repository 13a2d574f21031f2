"""`growdsl sweep`: a family of short proxy plans on the user's data, within a stated FLOP
budget, to choose the growth timing, growth factor and LR policy at growth that the plan's
`sweep { }` block leaves open (docs/sweep.md).

Each candidate (`growdsl.sweep_space`) and the scratch baseline (the target alone, the same
steps) is a `growdsl run --resume` in its own directory under OUT/runs/, several at once
(`jobs`, each with cores / jobs torch threads), so an interrupted sweep continues where it
stopped and a finished run is never trained again. Candidates are ranked by cost: the FLOPs
a candidate needed to reach scratch's final validation loss over scratch's FLOPs for the
same (`growdsl.isoloss`; below 1 pays), or 1 + how far above it the candidate ended when it
never got there. `search = grid` runs every combination; `search = optuna` lets Optuna's
TPE sampler pick `trials` of them (a batch of `jobs` at a time), stopping when the next
batch would pass the budget. Outputs: OUT/sweep.json, OUT/sweep.png (validation loss vs
cumulative FLOPs, every candidate and scratch), OUT/sweep.md (table, the best candidate's
iso-loss ladder), and OUT/best.grow: the plan at its own size with the best values, and a
comment saying how they were chosen.

This module imports no torch: runs are child processes (or, for tests, `in_process`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from growdsl import api, ast, flops, gate, isoloss, sweep_report, sweep_space
from growdsl.atomic import write_text
from growdsl.driver import load_text, read_configs, read_source
from growdsl.errors import Diagnostic, GrowError
from growdsl.lower import lower
from growdsl.lower_common import unquote
from growdsl.parser import parse
from growdsl.printer import print_file
from growdsl.source import Source
from growdsl.sweep_space import Choice, Space


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """One finished proxy run: its validation curve and cost against scratch."""

    name: str
    choice: Choice | None          # None: scratch
    planned_flops: float
    curve: list[isoloss.Point]
    cost: float = float("nan")     # see the module docstring; lower is better

    @property
    def final(self) -> float:
        return self.curve[-1].loss if self.curve else float("inf")


def _error(source: Source, code: str, message: str, help: str | None = None,
           span: Any = None) -> GrowError:
    kw = {"span": span} if span is not None else {}
    return GrowError([Diagnostic(code=code, message=message, help=help, source=source, **kw)])


def load(spec: Path) -> tuple[Source, ast.File, Space, int]:
    """The spec (checked like `growdsl check`), its sweep block and its total steps."""
    source = read_source(spec)
    tree = absolute_paths(parse(source), spec.resolve().parent)
    plan = lower(tree, source, read_configs(tree, source))
    errors = gate.blocking(plan, source)[1]
    if errors:
        raise GrowError(errors)
    blocks = [s for s in tree.statements if isinstance(s, ast.SweepDecl)]
    if not blocks:
        raise _error(source, "E740", "the plan has no `sweep { }` block: nothing is open",
                     "add one, e.g. `sweep { timing = (0.05, 0.1, 0.25)  factor = (2, 4)  "
                     "steps = 300 }` (docs/sweep.md)")
    space, _ = sweep_space.read(blocks[0], plan.target.layers)
    return source, tree, space, flops.total_steps(plan)


def quote(text: str) -> str:
    """A string token for `text` (the inverse of `unquote`)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def absolute_paths(tree: ast.File, base: Path) -> ast.File:
    """`tree` with its relative paths (`model ... from`, `init from`, the `data` and
    `tokenizer` settings) made absolute from `base`, so that candidates written elsewhere
    read the same files."""
    def fix(s: ast.String) -> ast.String:
        path = Path(unquote(s.text))
        return s if path.is_absolute() else replace(s, text=quote(str(base / path)))

    out: list[ast.Statement] = []
    for stmt in tree.statements:
        if isinstance(stmt, ast.ModelDecl) and stmt.config is not None:
            stmt = replace(stmt, config=fix(stmt.config))
        elif isinstance(stmt, ast.InitDecl):
            stmt = replace(stmt, path=fix(stmt.path))
        elif isinstance(stmt, ast.TrainDecl):
            stmt = replace(stmt, items=tuple(
                replace(i, value=fix(i.value)) if isinstance(i.value, ast.String) else i
                for i in stmt.items))
        out.append(stmt)
    return replace(tree, statements=tuple(out))


def _plan_flops(text: str, name: str) -> float:
    source, plan = load_text(text, name)
    graph, errors = gate.blocking(plan, source)
    if errors:
        raise GrowError(errors)
    return graph.total_flops


def run_one(name: str, text: str, out: Path, data: Path, threads: int,
            in_process: bool) -> list[isoloss.Point]:
    """`growdsl run SPEC --resume` for one proxy (skipped when its report exists)."""
    spec, run_dir = out / "specs" / f"{name}.grow", out / "runs" / name
    if not (run_dir / "report.md").exists():
        write_text(spec, text)
        if in_process:
            result = api.run(spec, out=run_dir, resume=True, data=data, quiet=True)
            code, err = (130 if result.interrupted else 0), ""
        else:
            env = {**os.environ, "OMP_NUM_THREADS": str(threads),
                   "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
            done = subprocess.run([sys.executable, "-m", "growdsl", "run", str(spec), "--out",
                                   str(run_dir), "--data", str(data), "--resume", "-q"],
                                  env=env, capture_output=True, text=True)
            code, err = done.returncode, done.stderr
        if code:
            raise RuntimeError(f"proxy run {name} exited {code}\n{err}")
    return isoloss.read_curve(run_dir / "metrics.csv")


def cost_of(curve: list[isoloss.Point], scratch: list[isoloss.Point]) -> float:
    """FLOPs to reach scratch's final loss / scratch's; else 1 + the gap at the end (nats)."""
    if not curve or not scratch:
        return float("inf")
    target = scratch[-1].loss
    mine, ref = isoloss.reach(curve, target), isoloss.reach(scratch, target)
    if mine is not None and ref is not None and ref.flops > 0:
        return mine.flops / ref.flops
    return 1.0 + max(0.0, curve[-1].loss - target)


@dataclass(kw_only=True, slots=True)
class Sweeper:
    """Runs candidates within the budget, in batches of `jobs`."""

    tree: ast.File
    space: Space
    steps: int
    out: Path
    data: Path
    jobs: int
    in_process: bool = False
    budget: float | None = None
    spent: float = 0.0

    def text(self, choice: Choice | None) -> str:
        file = (sweep_space.scratch_file(self.tree, self.steps) if choice is None
                else sweep_space.candidate_file(self.tree, choice, self.steps))
        return print_file(file)

    def run_batch(self, batch: list[tuple[str, Choice | None]],
                  scratch: list[isoloss.Point] | None) -> list[Outcome]:
        texts = {name: self.text(c) for name, c in batch}
        planned = {name: _plan_flops(t, f"{name}.grow") for name, t in texts.items()}
        threads = max(1, (os.cpu_count() or 1) // max(1, min(self.jobs, len(batch))))

        def one(item: tuple[str, Choice | None]) -> Outcome:
            name, choice = item
            curve = run_one(name, texts[name], self.out, self.data, threads, self.in_process)
            cost = cost_of(curve, scratch) if scratch is not None else 1.0
            return Outcome(name=name, choice=choice, planned_flops=planned[name], curve=curve,
                           cost=cost)

        workers = 1 if self.in_process else self.jobs
        with ThreadPoolExecutor(workers) as pool:
            done = list(pool.map(one, batch))
        self.spent += sum(planned.values())
        return done

    def fits(self, choices: list[Choice]) -> bool:
        need = sum(_plan_flops(self.text(c), c.name) for c in choices)
        return self.budget is None or self.spent + need <= self.budget * (1 + 1e-9)


def grid(sw: Sweeper, scratch: Outcome, source: Source) -> list[Outcome]:
    """Every combination, `jobs` at a time (the budget was checked before scratch ran)."""
    choices = sw.space.grid()
    results: list[Outcome] = []
    for i in range(0, len(choices), sw.jobs):
        batch = choices[i:i + sw.jobs]
        results += sw.run_batch([(c.name, c) for c in batch], scratch.curve)
    return results


def optuna_search(sw: Sweeper, scratch: Outcome, source: Source) -> list[Outcome]:
    """Optuna's TPE sampler over the open values, `jobs` trials per batch (ask/tell)."""
    try:
        import optuna
    except ImportError:
        raise _error(source, "E741", "`search = optuna` needs the optuna package",
                     "pip install optuna, or use `search = grid`", sw.space.span) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = sw.space
    categorical = optuna.distributions.CategoricalDistribution
    dists: dict[str, optuna.distributions.BaseDistribution] = {
        "timing": categorical(space.timing), "factor": categorical(space.factor),
        "schedule": categorical(space.schedule)}
    if space.warmup:
        dists["warmup"] = categorical(space.warmup)
    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=0))
    trials = space.trials or len(space.grid())
    seen: dict[str, Outcome] = {}
    while len(study.trials) < trials:
        asked = [study.ask(dists) for _ in range(min(sw.jobs, trials - len(study.trials)))]
        choices = [Choice(**t.params) for t in asked]
        fresh = list({c.name: c for c in choices if c.name not in seen}.values())
        if not sw.fits(fresh):
            for t in asked:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            break
        for o in sw.run_batch([(c.name, c) for c in fresh], scratch.curve):
            seen[o.name] = o
        for t, c in zip(asked, choices, strict=True):
            study.tell(t, seen[c.name].cost)
    return list(seen.values())


@dataclass(frozen=True, kw_only=True, slots=True)
class Result:
    scratch: Outcome
    candidates: list[Outcome]
    best: Outcome
    spent: float
    best_plan: Path


def run_sweep(spec: Path, out: Path, data: Path, jobs: int | None = None,
              in_process: bool = False) -> Result:
    """The whole sweep: scratch, the candidates, the outputs (see the module docstring)."""
    source, tree, space, plan_steps = load(spec)
    steps = space.steps or plan_steps
    jobs = jobs or space.jobs or max(1, min(len(space.grid()), os.cpu_count() or 1))
    sw = Sweeper(tree=tree, space=space, steps=steps, out=out, data=data, jobs=jobs,
                 in_process=in_process, budget=space.flops)
    started = time.time()
    scratch_flops = _plan_flops(sw.text(None), "scratch")
    if space.flops is not None and scratch_flops > space.flops:
        raise _error(source, "E620", f"scratch alone ({steps} steps, {scratch_flops:.3g} FLOPs) "
                     f"is over the sweep's budget of {space.flops:.3g}",
                     "shorten `steps` or raise `flops`", space.span)
    if space.search == "grid":
        sw.spent = scratch_flops          # counted ahead: the whole grid must fit
        over = not sw.fits(space.grid())
        sw.spent = 0.0
        if over:
            need = scratch_flops + sum(_plan_flops(sw.text(c), c.name) for c in space.grid())
            raise _error(source, "E620", f"the sweep's {len(space.grid())} candidates and "
                         f"scratch need {need:.3g} FLOPs, over its budget of {space.flops:.3g}",
                         "leave fewer values open, shorten `steps`, raise `flops`, or use "
                         "`search = optuna` with `trials`", space.span)
    scratch = sw.run_batch([("scratch", None)], None)[0]
    search = optuna_search if space.search == "optuna" else grid
    found = search(sw, scratch, source)
    if not found:
        raise _error(source, "E620", "no candidate fits in the sweep's budget after scratch",
                     "raise `flops` or shorten `steps`", space.span)
    best = min(found, key=lambda o: (o.cost, o.final))
    assert best.choice is not None
    full = sweep_space.full_file(tree, best.choice, plan_steps)
    comment = sweep_report.choice_comment(spec, data, space, steps, scratch, found, best)
    best_plan = out / "best.grow"
    write_text(best_plan, comment + print_file(full))
    result = Result(scratch=scratch, candidates=found, best=best, spent=sw.spent,
                    best_plan=best_plan)
    sweep_report.write(out, spec, result, time.time() - started)
    return result
