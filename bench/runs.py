"""Helpers of the training benchmarks: spec variants (seed, LR and optimizer-state policy,
a tiny smoke size), running `growdsl run` on one (a child process, or in this process),
reading its validation curve back, the machine's load, and the corpus's unigram entropy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "bench" / "specs"
# The smoke size: a model small enough that a whole plan trains in a second or two.
SMOKE_MODEL = {"bert": "bert(layers=4, hidden=32, heads=2, ffn=64, seq=16, vocab=128)",
               "gpt2": "gpt2(layers=4, hidden=32, heads=2, ffn=64, seq=16, vocab=512)",
               "llama": "llama(layers=4, hidden=32, heads=2, ffn=64, seq=16, vocab=512)"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Variant:
    """How a run's spec differs from the committed one in bench/specs/."""

    seed: int = 0
    train: tuple[tuple[str, str], ...] = ()       # train-block settings replaced
    later: tuple[tuple[str, str], ...] = ()       # settings added to every stage after the first
    ops: tuple[str, str] | None = None            # one operator renamed (e.g. aki -> fpi)
    smoke: bool = False


def variant_text(text: str, v: Variant) -> str:
    """The spec text with the variant's changes (the committed spec when nothing changes)."""
    settings = {"seed": str(v.seed), **dict(v.train)}
    if v.smoke:
        settings.update(eval_every="2", warmup="2")
    for key, value in settings.items():
        text, n = re.subn(rf"^(\s*){key} = .*$", rf"\g<1>{key} = {value}", text, flags=re.M)
        if n == 0:
            text = text.replace("train {\n", f"train {{\n  {key} = {value}\n", 1)
    lines = text.splitlines()
    stage_lines = [i for i, line in enumerate(lines) if line.startswith("stage ")]
    for i in stage_lines:
        head, _, rest = lines[i].partition(":")
        if v.smoke:
            steps = int(head.split()[1])
            head = f"stage {max(2, steps // 50)}"
        extra = " ".join(f"{k}={val}" for k, val in v.later) if i != stage_lines[0] else ""
        lines[i] = f"{head}:{' ' + extra if extra else ''}{rest}"
    text = "\n".join(lines) + "\n"
    if v.ops:
        text = re.sub(rf"\b{v.ops[0]}\b", v.ops[1], text)
    if v.smoke:
        text = re.sub(r"^model (bert|gpt2|llama)\(.*\)$", lambda m: f"model {SMOKE_MODEL[m[1]]}",
                      text, flags=re.M)
    return text


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
        from growdsl.cli.run import run_plan

        code = run_plan(spec, out, False, False, False, data, False, True)
        if code:
            raise RuntimeError(f"growdsl run {spec} exited {code}")
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
    counts = np.bincount(corpus.train_ids)
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
