"""Does G_stack pay on decoder LMs? Scratch vs G_stack at the guideline's timing vs G_stack at
the sweep's best vs progressive stacking, on GPT-2, LLaMA and BERT (the demo corpus,
Shakespeare; byte-level BPE of 1024 tokens; 4 layers x 128; 500 steps of 32 x 64 tokens;
bench/specs/gstack/), with the learning rate tuned per family on scratch first and the
iso-loss ladder of every method against scratch (growdsl.isoloss).

Three phases, each its own invocation so that none takes an hour on the 2-core CI machine:

    python -m bench.gstack_pays --phase lr --families gpt2       # scratch at 4 LRs, seed 0
    python -m bench.gstack_pays --phase sweep --families gpt2    # growdsl sweep, Optuna 8 trials
    python -m bench.gstack_pays --phase compare --families gpt2  # 4 methods x 3 seeds

`lr`: scratch at each of LRS (the same 4 values, the same one seed, for every family); the
LR with the lowest final val loss is written to WORK/<family>/lr.txt and used by every method
after it (one tuning effort, on scratch, for all methods). `sweep`: `growdsl sweep` on
<family>-sweep.grow (250-step proxies) at that LR; its best.grow (at the full 500 steps) is
the "gstack-sweep" method. `compare`: the four methods x `--seeds` seeds; a table of final
losses and the FLOP speedup at scratch's final loss (same seed), the ladder's mean speedup
per level, plots of val loss vs FLOPs and of speedup vs loss level. Runs already finished
in WORK are reused (the runs are `growdsl run --resume`). `--smoke`: tiny model, few steps.
`long` (not part of `all`): scratch 4x as long at the tuned LR, seed 0, to see how far below
the unigram entropy more steps take a family whose scratch stays near it (BERT).
Measured on the 2-core container (2026-12-02, 2 runs at a time, load 1.5 to 4): all three
phases of one family 33 min (GPT-2), 31 (LLaMA), 23 (BERT); lr about 8 min, sweep 5 to 13,
compare 10 to 16 per family; `long` for BERT about 5 min (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.runs import (
    REPO,
    Variant,
    run_spec,
    spec_model,
    spread,
    unigram_entropy,
    variant_text,
    versions,
    write_json,
)
from growdsl import isoloss

SPECS = REPO / "bench" / "specs" / "gstack"
RESULTS = REPO / "bench" / "results"
LRS = ("1e-3", "2e-3", "4e-3", "8e-3")
METHODS = ("scratch", "gstack", "gstack-sweep", "stacking")


def spec_text(family: str, method: str, work: Path, lr: str | None, seed: int,
              smoke: bool, longer: int = 1) -> str:
    """The method's spec at this LR and seed (the sweep's best plan for gstack-sweep),
    `longer` times as many steps (evaluated 4 times less often per step when longer)."""
    if method == "gstack-sweep":
        base = (work / family / "sweep" / "best.grow").read_text()
    else:
        base = (SPECS / f"{family}-{method}.grow").read_text()
    train = (("lr", lr),) if lr else ()
    if longer > 1 and not smoke:
        train += (("eval_every", str(25 * longer)),)
    return variant_text(base, Variant(seed=seed, train=train, smoke=smoke, longer=longer))


IN_PROCESS = False      # --in-process (tests): every run in this process, one at a time


def run_one(family: str, method: str, seed: int, lr: str | None, work: Path, data: Path,
            smoke: bool, tag: str = "", longer: int = 1) -> dict[str, Any]:
    """One run (reused when WORK holds its finished report): its val curve and seconds."""
    name = f"{family}-{method}{tag}-s{seed}"
    out = work / family / "runs" / name
    spec = work / family / "specs" / f"{name}.grow"
    start = time.perf_counter()
    if not (out / "report.md").exists():
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(spec_text(family, method, work, lr, seed, smoke, longer))
        run_spec(spec, out, data, 1, IN_PROCESS)
        print(f"  {name}: {time.perf_counter() - start:.0f} s (load {os.getloadavg()[0]:.1f})",
              flush=True)
    curve = isoloss.read_curve(out / "metrics.csv")
    return {"family": family, "method": method, "seed": seed, "lr": lr, "name": name,
            "curve": [{"flops": p.flops, "tokens": p.tokens, "wall": p.wall, "loss": p.loss}
                      for p in curve]}


def _points(run: dict[str, Any]) -> list[isoloss.Point]:
    return [isoloss.Point(**p) for p in run["curve"]]


def phase_lr(family: str, work: Path, data: Path, jobs: int, smoke: bool) -> dict[str, Any]:
    with ThreadPoolExecutor(jobs) as pool:
        runs = list(pool.map(lambda lr: run_one(family, "scratch", 0, lr, work, data, smoke,
                                                f"-lr{lr}"), LRS))
    finals = {r["lr"]: r["curve"][-1]["loss"] for r in runs}
    best = min(finals, key=lambda k: finals[k])
    (work / family / "lr.txt").write_text(best + "\n")
    for lr, loss in finals.items():
        print(f"  {family} scratch lr {lr}: final val loss {loss:.4f}" + (" <- best" if lr == best
                                                                           else ""))
    return {"finals": finals, "best": best}


def phase_long(family: str, work: Path, data: Path, smoke: bool, entropy: float,
               longer: int = 4) -> dict[str, Any]:
    """Scratch `longer` times as long at the tuned LR (seed 0): how far below the unigram
    entropy the regime gets with more steps (for a family whose scratch stays near it)."""
    run = run_one(family, "scratch", 0, tuned_lr(family, work), work, data, smoke,
                  f"-x{longer}", longer)
    final = run["curve"][-1]["loss"]
    print(f"  {family} scratch x{longer} steps: final val loss {final:.4f}, "
          f"{entropy - final:.3f} nats below the unigram entropy", flush=True)
    return {"longer": longer, "final": final, "below_unigram": entropy - final}


def tuned_lr(family: str, work: Path) -> str | None:
    path = work / family / "lr.txt"
    return path.read_text().strip() if path.exists() else None


def phase_sweep(family: str, work: Path, data: Path, jobs: int, smoke: bool) -> dict[str, Any]:
    from growdsl.sweep import run_sweep

    lr = tuned_lr(family, work)
    spec = work / family / f"{family}-sweep.grow"
    spec.parent.mkdir(parents=True, exist_ok=True)
    text = variant_text((SPECS / f"{family}-sweep.grow").read_text(),
                        Variant(train=(("lr", lr),) if lr else (), smoke=smoke))
    if smoke:
        text = text.replace("steps = 250", "steps = 6").replace("trials = 8", "trials = 2")
    spec.write_text(text)
    result = run_sweep(spec, work / family / "sweep", data, jobs, in_process=IN_PROCESS)
    print(f"  {family} sweep: best {result.best.name} (cost {result.best.cost:.3f}); "
          f"{len(result.candidates)} candidates", flush=True)
    return {"best": result.best.name, "candidates": {o.name: {"cost": o.cost, "final": o.final}
                                                     for o in result.candidates},
            "scratch_final": result.scratch.final}


def ladder_stats(runs: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """Per seed: the FLOP speedup at scratch's final loss; per rung: the mean speedups."""
    scratch = {r["seed"]: r for r in runs if r["method"] == "scratch"}
    mine = [r for r in runs if r["method"] == method and r["seed"] in scratch]
    ladders = [isoloss.ladder(_points(scratch[r["seed"]]), _points(r)) for r in mine]
    final = [lad[-1].speedup("flops") for lad in ladders if lad]
    rungs = []
    for k in range(min((len(lad) for lad in ladders), default=0)):
        per = {c: [s for lad in ladders if (s := lad[k].speedup(c)) is not None]
               for c in isoloss.COSTS}
        rungs.append({"level": statistics.fmean(lad[k].level for lad in ladders),
                      **{c: spread(v) for c, v in per.items()},
                      "reached": len(per["flops"])})
    return {"seeds": len(mine), "final_losses": [r["curve"][-1]["loss"] for r in mine],
            "speedup_at_scratch_final": final,
            "paid_1_3x": sum(1 for s in final if s is not None and s >= 1.3), "rungs": rungs}


def plots(runs: list[dict[str, Any]], stats: dict[str, Any], family: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, m in enumerate(METHODS):
        for j, r in enumerate(r for r in runs if r["method"] == m):
            ax.plot([p["flops"] for p in r["curve"]], [p["loss"] for p in r["curve"]],
                    color=f"C{i}", alpha=0.75, label=m if j == 0 else None)
    ax.set_xlabel("cumulative training FLOPs")
    ax.set_ylabel("validation loss")
    ax.set_title(f"{family}: validation loss vs FLOPs (one line per seed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"gstack_pays-{family}-loss-vs-flops.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, m in enumerate(METHODS[1:], start=1):
        rungs = [r for r in stats[m]["rungs"] if r["flops"]["mean"] is not None]
        ax.plot([r["level"] for r in rungs], [r["flops"]["mean"] for r in rungs], "o-",
                color=f"C{i}", label=m)
    ax.axhline(1.0, color="grey", ls=":")
    ax.invert_xaxis()
    ax.set_xlabel("validation loss level (scratch's first evaluation -> its final loss)")
    ax.set_ylabel("FLOP speedup vs scratch (mean over seeds)")
    ax.set_title(f"{family}: iso-loss speedup by loss level")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"gstack_pays-{family}-speedup-vs-loss.png", dpi=110)
    plt.close(fig)


def phase_compare(family: str, work: Path, data: Path, jobs: int, seeds: int, smoke: bool,
                  plot_dir: Path) -> dict[str, Any]:
    lr = tuned_lr(family, work)
    methods = [m for m in METHODS
               if m != "gstack-sweep" or (work / family / "sweep" / "best.grow").exists()]
    todo = [(m, s) for s in range(seeds) for m in methods]
    with ThreadPoolExecutor(jobs) as pool:
        runs = list(pool.map(lambda ms: run_one(family, ms[0], ms[1], lr, work, data, smoke),
                             todo))
    stats = {m: ladder_stats(runs, m) for m in methods}
    for m in methods:
        st = stats[m]
        sp = ", ".join("-" if s is None else f"{s:.2f}x" for s in st["speedup_at_scratch_final"])
        print(f"  {family} {m}: final val loss "
              + ", ".join(f"{x:.4f}" for x in st["final_losses"])
              + (f"; FLOP speedup at scratch's final loss, per seed: {sp}; >= 1.3x on "
                 f"{st['paid_1_3x']}/{st['seeds']} seeds" if m != "scratch" else ""))
        if m != "scratch":
            print("    ladder (level: mean FLOP speedup, seeds reaching): " + "; ".join(
                f"{r['level']:.3f}: " + ("-" if r["flops"]["mean"] is None
                                         else f"{r['flops']['mean']:.2f}x") + f" ({r['reached']})"
                for r in st["rungs"]))
    plot_dir.mkdir(parents=True, exist_ok=True)
    plots(runs, stats, family, plot_dir)
    return {"lr": lr, "stats": stats, "runs": runs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("lr", "sweep", "compare", "long", "all"),
                        default="all")
    parser.add_argument("--families", default="gpt2,llama,bert")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--work", type=Path, default=RESULTS / "gstack_pays_runs")
    parser.add_argument("--plots", type=Path, default=RESULTS)
    parser.add_argument("--smoke", action="store_true", help="tiny model, a few steps")
    parser.add_argument("--in-process", action="store_true", help="runs in this process")
    args = parser.parse_args(argv)
    global IN_PROCESS
    IN_PROCESS = args.in_process
    jobs = 1 if args.in_process else args.jobs
    if args.data is None:
        from growdsl.backend.corpus import fetch_shakespeare

        args.data = fetch_shakespeare()
    data = args.data.resolve()
    start = time.time()
    print(f"gstack_pays {args.phase}: load average at start {os.getloadavg()}", flush=True)
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "versions": versions(),
                              "args": {k: str(v) for k, v in vars(args).items()},
                              "families": {}}
    phases = ("lr", "sweep", "compare") if args.phase == "all" else (args.phase,)
    for family in args.families.split(","):
        fam: dict[str, Any] = {}
        scratch = variant_text((SPECS / f"{family}-scratch.grow").read_text(),
                               Variant(smoke=args.smoke))
        _, vocab, seq = spec_model(scratch)
        fam["unigram_entropy"] = unigram_entropy(data, family, vocab, seq)
        print(f"{family}: unigram entropy {fam['unigram_entropy']:.3f} nats", flush=True)
        for phase in phases:
            if phase == "lr":
                fam["lr"] = phase_lr(family, args.work, data, jobs, args.smoke)
            elif phase == "sweep":
                fam["sweep"] = phase_sweep(family, args.work, data, jobs, args.smoke)
            elif phase == "long":
                fam["long"] = phase_long(family, args.work, data, args.smoke,
                                         fam["unigram_entropy"])
            else:
                fam["compare"] = phase_compare(family, args.work, data, jobs, args.seeds,
                                               args.smoke, args.plots)
                finals = fam["compare"]["stats"]["scratch"]["final_losses"]
                gap = fam["unigram_entropy"] - statistics.fmean(finals)
                fam["scratch_below_unigram"] = gap
                print(f"  {family}: scratch ends {gap:.3f} nats below the unigram entropy "
                      f"({'at least' if gap >= 1 else 'LESS than'} the 1 nat asked)")
        result["families"][family] = fam
    result["seconds"] = time.time() - start
    result["load_at_end"] = os.getloadavg()
    print(f"done in {result['seconds']:.0f} s; load average at end {result['load_at_end']}")
    name = "-".join((args.phase, *args.families.split(",")))
    write_json(args.work / f"gstack_pays-{name}.json", result)
    return result


if __name__ == "__main__":
    main()
