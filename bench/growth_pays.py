"""Does growth pay? Scratch vs progressive stacking vs CompoundGrow vs bert2BERT-style on the
demo corpus (Shakespeare), one target model, the same data (500 steps of 32 x 64 tokens) and
the same optimizer settings, several seeds; then the LR and optimizer-state policies at growth.

For every run: the validation loss reached, and the FLOPs and training seconds needed to
first reach the scratch run's final validation loss (same seed), and within `--tolerance`
of it (the held-out loss moves by about that between evaluations), with the ratios against
scratch (> 1: the plan got there cheaper). Plots of validation loss against cumulative FLOPs
and against training seconds, one colour per method, one line per seed. The corpus's unigram
entropy (the loss of a context-blind model) is printed beside the results.

    .venv/bin/python -m bench.growth_pays                  # BERT and GPT-2, 3 seeds, policies
    .venv/bin/python -m bench.growth_pays --families bert --seeds 1 --policies ''
    .venv/bin/python -m bench.growth_pays --summarize ...  # tables again from finished runs

Specs: bench/specs/<family>-<method>.grow. Every run is `growdsl run SPEC --data CORPUS` in a
child process with `--threads` torch threads, `--jobs` at a time. Run time on the 2-core CI
machine with the defaults (2 jobs x 1 thread), measured with other jobs on the cores (load
average about 3.5): BERT 3 seeds and the policies 26 minutes, GPT-2 3 seeds about 20.
`--keep` reuses the runs an interrupted invocation finished. `--smoke` trains a tiny model for a few steps
(seconds; the test suite's version). Results: bench/results/growth_pays.json, the plots
in bench/results/ (`--plots DIR` elsewhere).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.runs import (
    REPO,
    SPECS,
    Variant,
    first_reach,
    run_spec,
    spec_model,
    spread,
    unigram_entropy,
    val_curve,
    variant_text,
    versions,
    write_json,
)

RESULTS = REPO / "bench" / "results"
METHODS = ("scratch", "stacking", "compoundgrow", "bert2bert")
# The policies at growth, tried on progressive stacking (seed 0); its default run is
# `restart` + `reset`. `rewarm`: every later stage warms up over 5 steps instead of 30.
POLICIES: dict[str, Variant] = {
    "schedule=continue": Variant(train=(("schedule", "continue"),)),
    "schedule=rewarm (warmup 5)": Variant(later=(("warmup", "5"),)),
    "optimizer_state=transfer": Variant(train=(("optimizer_state", "transfer"),)),
    "optimizer_state=transform": Variant(train=(("optimizer_state", "transform"),)),
}
EXTRA = {"bert2bert with fpi": ("bert2bert", Variant(ops=("aki", "fpi")))}


@dataclass(frozen=True, kw_only=True, slots=True)
class Job:
    family: str
    method: str          # spec name
    label: str           # row label
    seed: int
    variant: Variant


def jobs_for(families: list[str], seeds: int, policies: list[str], smoke: bool,
             methods: tuple[str, ...] = METHODS, lr: str | None = None) -> list[Job]:
    """Seed-major order, so that the methods of a seed run under similar load. `lr`
    replaces the specs' learning rate in every run."""
    common = (("lr", lr),) if lr else ()
    jobs = []
    for seed in range(seeds):
        for family in families:
            jobs += [Job(family=family, method=m, label=m, seed=seed,
                         variant=Variant(seed=seed, train=common, smoke=smoke)) for m in methods]
    for family in policies:
        for label, v in POLICIES.items():
            jobs.append(Job(family=family, method="stacking", label=f"stacking, {label}", seed=0,
                            variant=Variant(train=common + v.train, later=v.later, smoke=smoke)))
        for label, (method, v) in EXTRA.items():
            jobs.append(Job(family=family, method=method, label=label, seed=0,
                            variant=Variant(train=common, ops=v.ops, smoke=smoke)))
    return jobs


def job_name(job: Job) -> str:
    name = f"{job.family}-{job.label}-s{job.seed}".replace(" ", "_").replace(",", "")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def finished_job(job: Job, work: Path) -> dict[str, Any] | None:
    """A run an earlier (interrupted) invocation finished, read back from `work`; its time
    is from its spec file being written to its report (None: not finished)."""
    name = job_name(job)
    spec, report = work / f"{name}.grow", work / name / "report.md"
    if not report.exists():
        return None
    return {"family": job.family, "method": job.method, "label": job.label, "seed": job.seed,
            "seconds": report.stat().st_mtime - spec.stat().st_mtime, "load_at_end": None,
            "val": val_curve(work / name), "spec": spec.read_text()}


def run_job(job: Job, work: Path, data: Path, threads: int, in_process: bool) -> dict[str, Any]:
    name = job_name(job)
    spec = work / f"{name}.grow"
    base = (SPECS / f"{job.family}-{job.method}.grow").read_text()
    spec.write_text(variant_text(base, job.variant))
    try:
        done = run_spec(spec, work / name, data, threads, in_process)
    except RuntimeError as exc:          # one failed run is reported, the others go on
        print(f"  {name}: FAILED\n{exc}", flush=True)
        return {"family": job.family, "label": job.label, "seed": job.seed, "error": str(exc)}
    print(f"  {name}: {done.seconds:.0f} s (load {done.load:.2f})", flush=True)
    return {"family": job.family, "method": job.method, "label": job.label, "seed": job.seed,
            "seconds": done.seconds, "load_at_end": done.load, "val": val_curve(done.out),
            "spec": spec.read_text()}


def reach_stats(mine: list[dict[str, Any]], scratch: dict[int, dict[str, Any]],
                tol: float) -> dict[str, Any]:
    """First evaluation at or below scratch's final val loss (same seed) + `tol`, for the
    method and for scratch; the ratios scratch / method of FLOPs and training seconds."""
    flops_r, wall_r, flops, wall = [], [], [], []
    for r in mine:
        base = scratch.get(r["seed"])
        if base is None:
            continue
        target = base["val"][-1]["val_loss"] + tol
        got, ref = first_reach(r["val"], target), first_reach(base["val"], target)
        if got is None or ref is None:
            continue
        flops.append(got["flops"])
        wall.append(got["wall"])
        flops_r.append(ref["flops"] / got["flops"])
        wall_r.append(ref["wall"] / max(got["wall"], 1e-9))
    return {"tolerance": tol, "reached": len(flops), "flops": spread(flops),
            "wall": spread(wall), "flops_ratio": spread(flops_r), "wall_ratio": spread(wall_r)}


def summarize(runs: list[dict[str, Any]], family: str, tol: float) -> list[dict[str, Any]]:
    """One row per label: final loss, and the FLOPs / seconds to reach scratch's final loss
    (exactly, and within `tol`) with their ratios against scratch."""
    fam = [r for r in runs if r["family"] == family and "error" not in r]
    scratch = {r["seed"]: r for r in fam if r["label"] == "scratch"}
    rows = []
    for label in dict.fromkeys(r["label"] for r in fam):
        mine = [r for r in fam if r["label"] == label]
        rows.append({"label": label, "runs": len(mine),
                     "final_val_loss": spread([r["val"][-1]["val_loss"] for r in mine]),
                     "total_flops": spread([r["val"][-1]["flops"] for r in mine]),
                     "reach": reach_stats(mine, scratch, 0.0),
                     "reach_tol": reach_stats(mine, scratch, tol),
                     "process_seconds": spread([r["seconds"] for r in mine])})
    return rows


def _pm(s: dict[str, Any], fmt: str) -> str:
    if s["mean"] is None:
        return "-"
    return f"{s['mean']:{fmt}} ± {s['std']:{fmt}}" if s["n"] > 1 else f"{s['mean']:{fmt}}"


def print_table(family: str, rows: list[dict[str, Any]], entropy: float, tol: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{family}: unigram entropy {entropy:.3f} nats. Reaching scratch's final "
                  f"val loss, exactly / within {tol}: ratio = scratch / method (> 1 pays)")
    for col in ("method", "seeds", "final val loss", "total FLOPs", "reached",
                "FLOPs to reach", "FLOP ratio", "train s to reach", "time ratio",
                f"reached ±{tol}", "FLOP ratio", "time ratio", "run s"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        a, b = r["reach"], r["reach_tol"]
        table.add_row(r["label"], str(r["runs"]), _pm(r["final_val_loss"], ".3f"),
                      _pm(r["total_flops"], ".3g"), f"{a['reached']}/{r['runs']}",
                      _pm(a["flops"], ".3g"), _pm(a["flops_ratio"], ".2f"),
                      _pm(a["wall"], ".0f"), _pm(a["wall_ratio"], ".2f"),
                      f"{b['reached']}/{r['runs']}", _pm(b["flops_ratio"], ".2f"),
                      _pm(b["wall_ratio"], ".2f"), _pm(r["process_seconds"], ".0f"))
    Console(width=200).print(table)


def print_per_run(runs: list[dict[str, Any]], family: str) -> None:
    """Each run's final val loss and training seconds, by seed (what the table averages)."""
    for r in sorted((r for r in runs if r["family"] == family and "error" not in r),
                    key=lambda r: (r["seed"], r["label"])):
        print(f"  seed {r['seed']} {r['label']}: final val loss {r['val'][-1]['val_loss']:.3f}, "
              f"{r['val'][-1]['wall']:.0f} training s")


def plot(runs: list[dict[str, Any]], family: str, entropy: float, out_dir: Path) -> list[Path]:
    """Val loss vs cumulative FLOPs and vs training seconds: a colour per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    main = [r for r in runs if r["family"] == family and r["label"] in METHODS
            and "error" not in r]
    for x, xlabel in (("flops", "cumulative training FLOPs"), ("wall", "training seconds")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, method in enumerate(METHODS):
            for j, r in enumerate(r for r in main if r["label"] == method):
                ax.plot([p[x] for p in r["val"]], [p["val_loss"] for p in r["val"]],
                        color=f"C{i}", alpha=0.75, lw=1.2, label=method if j == 0 else None)
        ax.axhline(entropy, color="grey", ls=":", lw=1, label=f"unigram entropy {entropy:.2f}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss")
        ax.set_title(f"{family}: validation loss vs {xlabel} (one line per seed)")
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"growth_pays-{family}-loss-vs-{x}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="bert,gpt2")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--policies", default="bert",
                        help="families to try the growth policies on (\"\": none)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--in-process", action="store_true",
                        help="run each plan in this process (one at a time)")
    parser.add_argument("--data", type=Path, help="corpus (default: the demo's Shakespeare)")
    parser.add_argument("--work", type=Path, default=RESULTS / "growth_pays_runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "growth_pays.json")
    parser.add_argument("--plots", type=Path, default=RESULTS)
    parser.add_argument("--smoke", action="store_true", help="tiny model, a few steps")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--lr", help="replace the specs' learning rate in every run")
    parser.add_argument("--tolerance", type=float, default=0.02,
                        help="also report reaching scratch's final loss within this (nats)")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the runs already finished in --work (after an interruption)")
    parser.add_argument("--summarize", action="store_true",
                        help="run nothing: summarize the runs already finished in --work")
    args = parser.parse_args(argv)
    if args.data is None:
        from growdsl.backend.corpus import fetch_shakespeare

        args.data = fetch_shakespeare()
    families = args.families.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    jobs = jobs_for(families, args.seeds, [f for f in args.policies.split(",") if f in families],
                    args.smoke, tuple(args.methods.split(",")), args.lr)
    print(f"{len(jobs)} runs, {args.jobs} at a time, {args.threads} torch thread(s) each; "
          f"load average at start {os.getloadavg()}", flush=True)
    start = time.time()
    workers = 1 if args.in_process else args.jobs
    if args.summarize:
        runs = [r for r in (finished_job(j, args.work) for j in jobs) if r is not None]
    else:
        def one(job: Job) -> dict[str, Any]:
            done = finished_job(job, args.work) if args.keep else None
            return done or run_job(job, args.work, args.data.resolve(), args.threads,
                                   args.in_process)

        with ThreadPoolExecutor(workers) as pool:
            runs = list(pool.map(one, jobs))
    loads = [r["load_at_end"] for r in runs if r.get("load_at_end") is not None]
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "versions": versions(),
                              "args": {k: str(v) for k, v in vars(args).items()},
                              "seconds": time.time() - start,
                              "mean_load": statistics.fmean(loads) if loads else None,
                              "failed": [r for r in runs if "error" in r],
                              "families": {}}
    args.plots.mkdir(parents=True, exist_ok=True)
    for family in families:
        spec = (SPECS / f"{family}-scratch.grow").read_text()
        _, vocab, seq = spec_model(variant_text(spec, Variant(smoke=args.smoke)))
        entropy = unigram_entropy(args.data.resolve(), family, vocab, seq)
        rows = summarize(runs, family, args.tolerance)
        print_table(family, rows, entropy, args.tolerance)
        print_per_run(runs, family)
        plots = plot(runs, family, entropy, args.plots)
        result["families"][family] = {"unigram_entropy": entropy, "rows": rows,
                                      "plots": [str(p) for p in plots]}
    result["runs"] = runs
    print(f"{len(runs)} runs in {result['seconds']:.0f} s; mean load average at run ends "
          f"{result['mean_load']} ({os.cpu_count()} CPUs)")
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
