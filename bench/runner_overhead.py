"""Runner overhead: tokens/s of `growdsl run` on a single-stage plan against a minimal
hand-written PyTorch loop on the same model, data and batch, measured alternately in one
process (same torch threads), several rounds.

The model is the growth benchmark's BERT target (bench/specs/bert-scratch.grow: 4 layers,
hidden 128, seq 64, vocab 256, batch 32), built by `growdsl.backend.models.build_model` for
both. The bare loop reads the same packed token stream, masks with torch ops (15%, 80/10/10,
a fixed count per row as growdsl does), runs the MLM head on the masked positions only and
takes AdamW steps with gradient clipping and a warmup schedule. `growdsl run` runs in this
process (`growdsl.run`); its steady-state speed is read from the moments its
per-step rows appear in metrics.csv (a watcher thread polls the file every 2 ms), between
step `--skip` and the last step, so start-up, the final evaluation, the checkpoint and the
report are not counted; the bare loop is timed over the same steps. Both are also timed in
CPU seconds of the training thread (robust to other load on a shared machine; growdsl's
TensorBoard writer thread is not counted there, its wall time is).

    .venv/bin/python -m bench.runner_overhead            # 3 rounds of 80 steps: ~7 min

`--smoke` runs a tiny model for a few steps (seconds). Results: bench/results/runner_overhead.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.runs import REPO, SPECS, Variant, variant_text, versions, write_json

RESULTS = REPO / "bench" / "results" / "runner_overhead.json"


class RowWatcher(threading.Thread):
    """Records when each line of a growing file first appears: perf_counter seconds, and the
    CPU seconds of the thread that started the watcher (the training thread) by then."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.done = path, threading.Event()
        self.clock = time.pthread_getcpuclockid(threading.get_ident())
        self.times: list[float] = []
        self.cpu: list[float] = []

    def run(self) -> None:
        size = -1
        while not self.done.is_set():
            try:
                now_size = self.path.stat().st_size
            except FileNotFoundError:
                now_size = -1
            if now_size != size:
                size, now = now_size, time.perf_counter()
                cpu = time.clock_gettime(self.clock)
                lines = self.path.read_text().count("\n") if size > 0 else 0
                self.cpu += [cpu] * (lines - len(self.times))
                self.times += [now] * (lines - len(self.times))
            time.sleep(0.002)


def runner_seconds(spec: Path, out: Path, data: Path, skip: int,
                   steps: int) -> tuple[float, float]:
    """Wall and training-thread CPU seconds `growdsl run` spent from step `skip` to its end."""
    import shutil

    import growdsl

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    watcher = RowWatcher(out / "metrics.csv")
    watcher.start()
    growdsl.run(spec, out=out, data=data, quiet=True)
    watcher.done.set()
    watcher.join()
    # metrics.csv: a header line, then one `train` row per step (eval_every = 0)
    return (watcher.times[steps] - watcher.times[skip],
            watcher.cpu[steps] - watcher.cpu[skip])


def bare_seconds(plan: Any, data: Path, skip: int, steps: int) -> tuple[float, float]:
    """A minimal hand-written masked-LM loop on the same model, data and batch."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from growdsl.backend.corpus import cache_dir
    from growdsl.backend.data import prepare_corpus
    from growdsl.backend.models import build_model

    stage = plan.stages[0]
    train, seq, batch = stage.train, stage.shape.seq, stage.train.batch
    corpus, tok = prepare_corpus(data, None, "bert", plan.target.vocab, seq, 0, cache_dir())
    ids = torch.from_numpy(np.array(corpus.train_ids))
    blocks_NT = ids[: len(ids) // (seq - 1) * (seq - 1)].view(-1, seq - 1)
    model = build_model(plan.target, seed=0)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2],
                              "weight_decay": train.weight_decay},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=train.lr, betas=train.betas, eps=train.eps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / train.warmup) * max(0.0, 1 - i / stage.steps))
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(blocks_NT), generator=gen)
    m = max(1, round(train.mlm_probability * seq))
    bert: Any = model.bert
    head: Any = model.cls
    start, start_cpu = 0.0, 0.0
    for step in range(steps):
        if step == skip:
            start, start_cpu = time.perf_counter(), time.thread_time()
        rows_BT = blocks_NT[perm[step * batch:(step + 1) * batch]]
        x_BT = torch.cat([torch.full((batch, 1), tok.cls_token_id), rows_BT], 1)
        pos_BM = torch.rand(batch, seq - 1, generator=gen).argsort(1)[:, :m].sort(1).values + 1
        labels_BM = x_BT.gather(1, pos_BM)
        roll_BM = torch.rand(batch, m, generator=gen)
        random_BM = torch.randint(corpus.specials.first_normal, corpus.vocab, (batch, m), generator=gen)
        new_BM = torch.where(roll_BM < 0.8, tok.mask_token_id,
                             torch.where(roll_BM < 0.9, random_BM, labels_BM))
        inp_BT = x_BT.scatter(1, pos_BM, new_BM)
        h_BTD = bert(input_ids=inp_BT, attention_mask=torch.ones_like(inp_BT),
                     token_type_ids=torch.zeros_like(inp_BT)).last_hidden_state
        h_BMD = h_BTD.gather(1, pos_BM[..., None].expand(-1, -1, h_BTD.shape[-1]))
        loss = F.cross_entropy(head(h_BMD).flatten(0, 1), labels_BM.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - start, time.thread_time() - start_cpu


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--skip", type=int, default=10, help="warm-up steps not timed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--data", type=Path, help="corpus (default: the demo's Shakespeare)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--smoke", action="store_true", help="tiny model, a few steps")
    args = parser.parse_args(argv)
    import torch

    from growdsl.driver import load_text

    torch.set_num_threads(args.threads)
    if args.data is None:
        from growdsl.backend.corpus import fetch_shakespeare

        args.data = fetch_shakespeare()
    text = variant_text((SPECS / "bert-scratch.grow").read_text(),
                        Variant(train=(("eval_every", "0"),), smoke=args.smoke))
    text = text.replace("stage 10:" if args.smoke else "stage 500:", f"stage {args.steps}:")
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "runner.grow"
        spec.write_text(text)
        _, plan = load_text(text, str(spec))
        tokens = (args.steps - args.skip) * plan.stages[0].train.batch * plan.target.seq
        for r in range(args.rounds):
            first_runner = r % 2 == 0          # alternate which goes first
            order = ("runner", "bare") if first_runner else ("bare", "runner")
            secs = {}
            for what in order:
                secs[what] = (runner_seconds(spec, Path(tmp) / "run", args.data.resolve(),
                                             args.skip, args.steps) if what == "runner"
                              else bare_seconds(plan, args.data.resolve(), args.skip,
                                                args.steps))
            row = {"runner_tok_s": tokens / secs["runner"][0],
                   "bare_tok_s": tokens / secs["bare"][0],
                   "runner_tok_cpu_s": tokens / secs["runner"][1],
                   "bare_tok_cpu_s": tokens / secs["bare"][1], "load": os.getloadavg()[0]}
            row["ratio"] = row["runner_tok_s"] / row["bare_tok_s"]
            row["cpu_ratio"] = row["runner_tok_cpu_s"] / row["bare_tok_cpu_s"]
            rounds.append(row)
            print(f"round {r + 1}: growdsl run {row['runner_tok_s']:.0f} tok/s, bare loop "
                  f"{row['bare_tok_s']:.0f} tok/s, ratio {row['ratio']:.3f}; per CPU second "
                  f"{row['runner_tok_cpu_s']:.0f} vs {row['bare_tok_cpu_s']:.0f}, ratio "
                  f"{row['cpu_ratio']:.3f} (load {row['load']:.2f})", flush=True)
    ratios = [r["ratio"] for r in rounds]
    cpu_ratios = [r["cpu_ratio"] for r in rounds]
    result = {"date": time.strftime("%Y-%m-%d"), "versions": versions(),
              "args": {k: str(v) for k, v in vars(args).items()},
              "tokens_timed_per_run": tokens, "rounds": rounds,
              "median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
              "max_ratio": max(ratios), "median_cpu_ratio": statistics.median(cpu_ratios),
              "min_cpu_ratio": min(cpu_ratios), "max_cpu_ratio": max(cpu_ratios)}
    print(f"runner / bare loop tokens/s: median {result['median_ratio']:.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); per CPU second of the training "
          f"thread: median {result['median_cpu_ratio']:.3f} (min {min(cpu_ratios):.3f}, max "
          f"{max(cpu_ratios):.3f}); {len(rounds)} rounds; target 0.97 or better")
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
