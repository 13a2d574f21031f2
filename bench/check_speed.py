"""Static-check speed: `check` (parse, lower, every planner pass) and `plan` (stage graph
and FLOP accounting) on every shipped spec in one process, and on generated plans of
100 to 1,000 stages to show the planner's time grows linearly with the stages.

    .venv/bin/python -m bench.check_speed [--out bench/results/check_speed.json]
    .venv/bin/python -m bench.check_speed --start-up-only     # the fresh-process line alone

Runs in about 10 seconds on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from growdsl.checks import check_plan
from growdsl.driver import load, load_text
from growdsl.plan import build

REPO = Path(__file__).resolve().parents[1]


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """The fastest of `repeat` runs, in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def check_and_plan(path: Path) -> None:
    _, plan = load(path)
    assert not check_plan(plan), path
    build(plan)


def check_and_plan_all(paths: list[Path]) -> None:
    for path in paths:
        check_and_plan(path)


def generated(stages: int) -> str:
    """A valid plan of `stages` stages: a GPT-2 grown one identity layer at a time."""
    lines = [f"model gpt2(layers={stages}, hidden=64, heads=4, ffn=256, seq=32, vocab=512)",
             "train {", "  batch = 8", "}"]
    lines += [f"stage 100: depth={i} -> identity" for i in range(1, stages)]
    lines.append("stage 100:")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "check_speed.json"))
    parser.add_argument("--start-up-only", action="store_true",
                        help="only the fresh-process `growdsl check` (wall and CPU time)")
    args = parser.parse_args()
    specs = sorted((REPO / "specs").glob("*/*.grow"))
    if args.start_up_only:
        start_up([str(p) for p in specs])
        return
    check_and_plan(specs[0])  # warm the parser cache, as a long-lived process would be
    all_specs = best_of(lambda: check_and_plan_all(specs))
    per_spec = {p.relative_to(REPO).as_posix(): best_of(partial(check_and_plan, p)) for p in specs}
    sizes = {}
    for n in (100, 250, 500, 1000):
        text = generated(n)
        sizes[n] = best_of(partial(_check_text, text), repeat=3)
    print(f"{'spec':<48} {'check+plan (ms)':>16}")
    for name, secs in per_spec.items():
        print(f"{name:<48} {secs * 1e3:>16.1f}")
    print(f"{'all ' + str(len(specs)) + ' specs, one process':<48} {all_specs * 1e3:>16.1f}")
    print(f"\n{'stages':>8} {'check+plan (s)':>15} {'ms per stage':>13}")
    for n, secs in sizes.items():
        print(f"{n:>8} {secs:>15.3f} {secs / n * 1e3:>13.3f}")
    per_stage = [secs / n for n, secs in sizes.items()]
    spread = max(per_stage) / statistics.median(per_stage)
    print(f"\nper-stage time, largest / median: {spread:.2f} (1.0 = perfectly linear)")
    cold_runs, cpu_runs, load = start_up([str(p) for p in specs])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                               "all_specs_s": all_specs, "per_spec_s": per_spec,
                               "generated_s": sizes, "linearity": spread,
                               "cli_cold_all_specs_s": min(cold_runs),
                               "cli_cold_runs_s": cold_runs,
                               "cli_cold_cpu_s": cpu_runs,
                               "load_average": load}, indent=2) + "\n")


def start_up(names: list[str], runs: int = 10) -> tuple[list[float], list[float], float]:
    """Time `runs` fresh `growdsl check` processes on `names`; print and return their wall
    and CPU seconds and the load average before."""
    load = os.getloadavg()[0]
    cold_runs, cpu_runs = [], []
    for _ in range(runs):
        wall, cpu = fresh_check(names)
        cold_runs.append(wall)
        cpu_runs.append(cpu)
    print(f"`growdsl check` on all {len(names)} specs, a fresh process (start-up included): "
          f"best {min(cold_runs):.2f} s, median {statistics.median(cold_runs):.2f} s of {runs} "
          f"(load average {load:.2f} on {os.cpu_count()} CPUs); its CPU time (user + "
          f"system, what an idle machine's wall time would be): best {min(cpu_runs):.2f} s, "
          f"median {statistics.median(cpu_runs):.2f} s")
    return cold_runs, cpu_runs, load


def fresh_check(names: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one `growdsl check` process on `names`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "growdsl", "check", *names], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _check_text(text: str) -> None:
    _, plan = load_text(text, "generated.grow")
    diagnostics = check_plan(plan)
    assert not diagnostics, diagnostics[0].render()
    build(plan)


if __name__ == "__main__":
    main()
