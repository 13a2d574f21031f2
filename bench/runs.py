"""Helpers of the training benchmarks: spec variants (seed, LR and optimizer-state policy,
a tiny smoke size), running `growdsl run` on one (a child process, or in this process),
reading its validation curve back, the machine's load, and the corpus's unigram entropy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import growdsl
from growdsl import ast
from growdsl.evaluate import evaluate
from growdsl.parser import parse, parse_fragment
from growdsl.printer import print_file
from growdsl.source import Source

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "bench" / "specs"
# The smoke size: a model small enough that a whole plan trains in a second or two.
SMOKE_MODEL = {family: {"layers": 4, "hidden": 32, "heads": 2, "ffn": 64, "seq": 16,
                        "vocab": vocab}
               for family, vocab in (("bert", 128), ("gpt2", 512), ("llama", 512))}


@dataclass(frozen=True, kw_only=True, slots=True)
class Variant:
    """How a run's spec differs from the committed one in bench/specs/."""

    seed: int = 0
    train: tuple[tuple[str, str], ...] = ()       # train-block settings replaced
    later: tuple[tuple[str, str], ...] = ()       # settings added to every stage after the first
    ops: tuple[str, str] | None = None            # one operator renamed (e.g. aki -> fpi)
    longer: int = 1                               # every stage's length times this
    smoke: bool = False


def variant_text(text: str, v: Variant) -> str:
    """The spec text with the variant's changes (the committed spec when nothing changes),
    made on the syntax tree and printed by the canonical printer (`growdsl fmt`)."""
    file = parse(Source(path="<bench>", text=text))
    settings = {"seed": str(v.seed), **dict(v.train)}
    if v.smoke:
        settings.update(eval_every="2", warmup="2")
    statements = list(file.statements)
    stage_at = [i for i, s in enumerate(statements) if isinstance(s, ast.StageDecl)]
    if not any(isinstance(s, ast.TrainDecl) for s in statements):
        statements.insert(stage_at[0] if stage_at else len(statements), ast.TrainDecl(items=()))
        stage_at = [i + 1 for i in stage_at]
    for i, stmt in enumerate(statements):
        if isinstance(stmt, ast.TrainDecl):
            statements[i] = replace(stmt, items=_set_items(stmt.items, settings))
        elif isinstance(stmt, ast.StageDecl):
            statements[i] = _stage_variant(stmt, v, later=i != stage_at[0])
        elif isinstance(stmt, ast.ModelDecl) and v.smoke:
            statements[i] = _smoke_model(stmt)
    return print_file(replace(file, statements=tuple(statements)))


def _item(key: str, value: str) -> ast.Item:
    """`key = value` as a syntax-tree item (the value in `.grow` syntax)."""
    item = parse_fragment(Source(path="<bench>", text=f"{key} = {value}"), "item")
    assert isinstance(item, ast.Item)
    return item


def _set_items(items: tuple[ast.Item, ...], settings: dict[str, str]) -> tuple[ast.Item, ...]:
    """`items` with each setting replaced in place, or added at the end when absent."""
    have = {item.key for item in items}
    kept = tuple(_item(item.key, settings[item.key]) if item.key in settings else item
                 for item in items)
    return kept + tuple(_item(k, val) for k, val in settings.items() if k not in have)


def _stage_variant(stage: ast.StageDecl, v: Variant, later: bool) -> ast.StageDecl:
    """A stage with the longer or smoke length, the later stages' settings and the renamed
    operator."""
    if v.smoke or v.longer != 1:
        steps = int(evaluate(stage.length, {})) * v.longer
        steps = max(2, steps // 50) if v.smoke else steps
        stage = replace(stage, length=ast.Number(text=str(steps)))
    if later and v.later:
        stage = replace(stage, items=tuple(_item(k, val) for k, val in v.later) + stage.items)
    if v.ops and stage.growth is not None:
        old, new = v.ops
        ops = tuple(replace(op, name=new) if op.name == old else op for op in stage.growth.ops)
        stage = replace(stage, growth=replace(stage.growth, ops=ops))
    return stage


def _smoke_model(model: ast.ModelDecl) -> ast.ModelDecl:
    """The smoke-size model of the same family."""
    args = tuple(ast.Item(key=k, value=ast.Number(text=str(val)))
                 for k, val in SMOKE_MODEL[model.preset].items())
    return ast.ModelDecl(preset=model.preset, args=args)


def spec_model(text: str) -> tuple[str, int, int]:
    """The family, vocabulary and sequence length of a spec's target, as lowered."""
    plan = growdsl.load(text=text).plan
    return plan.target.family, plan.target.vocab, plan.target.seq


@dataclass(frozen=True, kw_only=True, slots=True)
class RunResult:
    out: Path
    seconds: float           # the whole `growdsl run`, start-up and evaluations included
    load: float              # 1-minute load average when it ended


def run_spec(spec: Path, out: Path, data: Path, threads: int, in_process: bool) -> RunResult:
    """`growdsl run SPEC --out OUT --data DATA -q`, in a child process with `threads` torch
    threads (or in this process); a previous OUT is removed first."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    if in_process:
        if growdsl.run(spec, out=out, data=data, quiet=True).interrupted:
            raise RuntimeError(f"growdsl run {spec} was interrupted")
    else:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "TOKENIZERS_PARALLELISM": "false"}
        cmd = [sys.executable, "-m", "growdsl", "run", str(spec), "--out", str(out),
               "--data", str(data), "-q"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")
    return RunResult(out=out, seconds=time.perf_counter() - start, load=os.getloadavg()[0])


def val_curve(out: Path) -> list[dict[str, float]]:
    """The run's evaluations: global step, cumulative FLOPs, training seconds, val loss."""
    from growdsl.backend.report import curve

    return [{"step": step, "flops": flops, "wall": wall, "val_loss": loss}
            for step, flops, loss, wall in curve("run", out / "metrics.csv").val]


def first_reach(points: list[dict[str, float]], target: float) -> dict[str, float] | None:
    """The first evaluation at or below `target` (None: never reached)."""
    return next((p for p in points if p["val_loss"] <= target + 1e-9), None)


def unigram_entropy(data: Path, family: str, vocab: int, seq: int) -> float:
    """Entropy (nats) of the training stream's token frequencies: the loss of a model that
    ignores context (the run's tokenizer and packing, cached by the first run)."""
    import numpy as np

    from growdsl.backend.corpus import cache_dir
    from growdsl.backend.data import prepare_corpus

    corpus, _ = prepare_corpus(data, None, family, vocab, seq, 0, cache_dir())
    counts = np.bincount(np.asarray(corpus.train_ids))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def spread(values: list[float]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max (None when empty)."""
    import statistics

    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "min": min(values),
            "max": max(values), "n": len(values)}


def versions() -> dict[str, str]:
    import platform

    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "cpus": str(os.cpu_count())}


def write_json(path: Path, result: Any) -> None:
    """Write a benchmark's results to `path` (its folder created), one JSON document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
