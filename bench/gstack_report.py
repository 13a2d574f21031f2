"""The tables of docs/benchmarks.md's "Does G_stack pay on decoders?", printed from the JSON
files `bench/gstack_pays.py` writes (WORK/gstack_pays-all-<family>.json, or the per-phase
ones), so that every figure there comes from a script:

    python -m bench.gstack_report [--work WORK] [--families gpt2,llama,bert]

For each family: the LR tuning, the sweep's candidates, the longer scratch run when
measured, and per method the final losses, the FLOP speedup at scratch's final loss per
seed, how many seeds reach 1.3x, the lowest and highest speedup of any seed at any level,
and the mean FLOP speedup at each level of the iso-loss ladder (seeds reaching it in
brackets).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.gstack_pays import METHODS, RESULTS


def family_result(work: Path, family: str) -> dict[str, Any]:
    """The family's phases, merged from whichever result files hold them (later wins)."""
    merged: dict[str, Any] = {}
    for path in sorted(work.glob("gstack_pays-*.json"), key=lambda p: p.stat().st_mtime):
        data = json.loads(path.read_text())
        fam = data.get("families", {}).get(family)
        if fam:
            merged.update(fam)
            merged.setdefault("meta", {})[path.name] = {
                "date": data.get("date"), "seconds": data.get("seconds"),
                "load_at_end": data.get("load_at_end")}
    return merged


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def lr_table(fam: dict[str, Any]) -> list[str]:
    finals = fam["lr"]["finals"]
    return ["| LR | " + " | ".join(finals) + " |", "|---|" + "---|" * len(finals),
            "| final val loss (scratch, seed 0) | "
            + " | ".join(f"{v:.4f}" + (" (best)" if k == fam["lr"]["best"] else "")
                         for k, v in finals.items()) + " |"]


def sweep_table(fam: dict[str, Any]) -> list[str]:
    sweep = fam["sweep"]
    rows = sorted(sweep["candidates"].items(), key=lambda kv: kv[1]["cost"])
    return [f"Sweep (250-step proxies; scratch's final val loss {sweep['scratch_final']:.4f}); "
            f"best: {sweep['best']}", "", "| candidate | final val loss | cost |", "|---|---|---|",
            *(f"| {name} | {c['final']:.4f} | {c['cost']:.3f} |" for name, c in rows)]


def compare_table(fam: dict[str, Any]) -> list[str]:
    stats = fam["compare"]["stats"]
    levels = [r["level"] for r in stats["scratch"]["rungs"]]
    head = ["| method | final val loss per seed | FLOP speedup at scratch's final, per seed "
            "| seeds >= 1.3x | any seed, any level | "
            + " | ".join(f"{lv:.2f}" for lv in levels) + " |",
            "|---|---|---|---|---|" + "---|" * len(levels)]
    rows = []
    for m in (m for m in METHODS if m in stats):
        st = stats[m]
        finals = ", ".join(f"{x:.4f}" for x in st["final_losses"])
        if m == "scratch":
            rows.append(f"| scratch | {finals} | | | |" + " |" * len(levels))
            continue
        per_seed = ", ".join(_x(s) for s in st["speedup_at_scratch_final"])
        reached = [r["flops"] for r in st["rungs"] if r["flops"]["n"]]
        span = (f"{_x(min(f['min'] for f in reached))} to {_x(max(f['max'] for f in reached))}"
                if reached else "-")
        rungs = [f"{_x(r['flops']['mean'])} ({r['reached']})" for r in st["rungs"]]
        rows.append(f"| {m} | {finals} | {per_seed} | {st['paid_1_3x']}/{st['seeds']} | {span} | "
                    + " | ".join(rungs) + " |")
    return head + rows


def report(work: Path, families: list[str]) -> str:
    out: list[str] = []
    for family in families:
        fam = family_result(work, family)
        if not fam:
            out += [f"### {family}: no results in {work}", ""]
            continue
        out += [f"### {family}", ""]
        for name, meta in fam.get("meta", {}).items():
            out.append(f"- {name}: started {meta['date']}, {meta['seconds']:.0f} s, load "
                       f"average at end {meta['load_at_end'][0]:.1f}")
        out += [f"- unigram entropy {fam['unigram_entropy']:.3f} nats; scratch ends "
                f"{fam.get('scratch_below_unigram', float('nan')):.3f} nats below it", ""]
        if "lr" in fam:
            out += [*lr_table(fam), ""]
        if "sweep" in fam:
            out += [*sweep_table(fam), ""]
        if "long" in fam:
            lg = fam["long"]
            out += [f"Scratch {lg['longer']}x as long (seed 0, the tuned LR): final val loss "
                    f"{lg['final']:.4f}, {lg['below_unigram']:.3f} nats below the unigram "
                    "entropy", ""]
        if "compare" in fam:
            out += ["Compare (ladder columns: the loss level; each cell the mean FLOP speedup "
                    "over seeds, seeds reaching it in brackets):", ""]
            out += [*compare_table(fam), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=RESULTS / "gstack_pays_runs")
    parser.add_argument("--families", default="gpt2,llama,bert")
    args = parser.parse_args(argv)
    print(report(args.work, args.families.split(",")))


if __name__ == "__main__":
    main()
