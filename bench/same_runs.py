"""Do two versions of growdsl train the same runs bitwise? The refactoring check of the run
path (the torchtitan way: the same losses on the same runs, before and after).

`python -m bench.same_runs record OUT.json` runs a fixed set of tiny plans through the CLI,
each in a child process (`python -m growdsl run`, or under `torchrun` on 2 gloo ranks), and
records every metrics row as written (losses, learning rates, growth differences, as text:
bitwise) and the SHA-256 of every stage's final weights. `python -m bench.same_runs compare
A.json B.json` prints the runs that differ and exits 1 if any does.

The runs cover the run path end to end: the three tiny plans (GPT-2 clone + identity with
`transform` moments, BERT stacking, LLaMA FPI + identity), a start from a checkpoint with its
tokenizer (`init from`, `tokenizer =`, `transfer` moments), a run killed mid-stage and
resumed, and 2 ranks under torchrun (LLaMA: FPI, consolidating, then stacking, shard to shard;
tied GPT-2 killed and resumed; BERT). A run that fails is recorded with its exit code and
the last line of its error, so a failure that goes away (or appears) shows.

Record with the old version, record with the new one, compare. CPU only; `record` prints
its wall time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

TIMING = ("wall", "tokens_per_s", "mfu")     # differ between equal runs
WORDS = " ".join(("the of and to in is was for on that with as by at from his her it be are",
                  "this which not or have had one all were they an but so we their when",
                  "there can been more if will no up out into other time some could these",
                  "two may then first any new very like than people only well year way",
                  "many would over such")).split()


def corpus(root: Path) -> Path:
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        (root / f"doc{i}.txt").write_text(" ".join(rng.choice(WORDS) for _ in range(400)) + ".\n")
    return root


TINY = Path(__file__).resolve().parent.parent / "specs" / "tiny"
SRC = """
    model gpt2(layers=2, hidden=32, heads=2, ffn=128, seq=32, vocab=401)
    train { batch = 4  lr = 1e-3  data = "corpus" }
    stage 3:
"""
INIT = """
    model gpt2(layers=4, hidden=64, heads=4, ffn=256, seq=32, vocab=401)
    init from "src/stages/0-stage1"
    train {
      batch = 4
      lr = 1e-3
      warmup = 2
      data = "corpus"
      tokenizer = "src/stages/0-stage1"
      optimizer_state = transfer
    }
    stage 0: depth=L/2 hidden=D/2 heads=H/2 ffn=F/2 -> clone, identity preserve
    stage 6:
"""
RESUME = """
    model gpt2(layers=4, hidden=32, heads=2, ffn=64, seq=32, vocab=300)
    train {
      batch = 4
      lr = 2e-3
      warmup = 1
      data = "corpus"
      checkpoint_every = 2
      keep_checkpoints = 3
      optimizer_state = transform
      schedule = continue
    }
    stage 4: depth=L/2 -> stack
    stage 4:
"""
DIST = """
    model llama(layers=4, hidden=32, heads=4, kv_heads=2, ffn=64, seq=32, vocab=512)
    train {
      batch = 4
      lr = 2e-3
      warmup = 2
      data = "corpus"
      eval_every = 4
      checkpoint_every = 4
      optimizer_state = transform
    }
    stage 6: depth=L/2 ffn=F/2 -> fpi preserve
    stage 6: depth=L/2 -> stack
    stage 6:
"""
BERT = """
    model bert(layers=4, hidden=32, heads=2, ffn=64, seq=32, vocab=512)
    train { batch = 4  lr = 1e-3  warmup = 1  data = "corpus"  optimizer_state = transfer }
    stage 4: depth=L/2 -> stack
    stage 4:
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(root: Path, spec: Path, out: str, *extra: str, ranks: int = 0,
        kill_at: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GROWDSL_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "GROWDSL_KILL_AT": kill_at, "GROWDSL_FAIL_WRITE": ""}
    launcher = [sys.executable, "-m", "growdsl"]
    if ranks:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                    str(ranks), "--master-addr", "127.0.0.1", "--master-port",
                    str(free_port()), "-m", "growdsl"]
    return subprocess.run([*launcher, "run", str(spec), "--out", str(root / out), "-q",
                           *extra], env=env, capture_output=True, text=True, timeout=900,
                          cwd=root)


def outcome(root: Path, name: str, done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """What a run left: its exit code, metrics rows (timing columns left out), weights."""
    out = root / name
    record: dict[str, Any] = {"rc": done.returncode}
    if done.returncode != 0:
        lines = [x for x in done.stderr.splitlines() if x.strip()]
        record["error"] = next((x for x in reversed(lines) if "Error" in x or "error[" in x),
                               lines[-1] if lines else "")
    if (out / "metrics.csv").exists():
        with open(out / "metrics.csv", newline="") as f:
            record["rows"] = [{k: v for k, v in r.items() if k not in TIMING}
                              for r in csv.DictReader(f)]
    record["weights"] = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                         for p in sorted(out.glob("stages/*/*.safetensors"))}
    return record


def record(path: Path) -> None:
    began = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus(root / "corpus")

        def spec(name: str, text: str) -> Path:
            p = root / f"{name}.grow"
            p.write_text(textwrap.dedent(text).lstrip())
            return p

        def note(name: str, done: subprocess.CompletedProcess[str]) -> None:
            results[name] = outcome(root, name, done)
            print(f"{name}: rc {done.returncode}, {len(results[name].get('rows', []))} rows",
                  flush=True)

        for plan in ("gpt2", "bert", "llama"):
            src = {"gpt2": "gpt2-width", "bert": "bert-stack", "llama": "llama-identity"}[plan]
            note(plan, run(root, TINY / f"{src}.grow", plan, "--data", str(root / "corpus")))
        note("src", run(root, spec("src", SRC), "src"))      # the corpus's tokenizer: 401
        note("init", run(root, spec("init", INIT), "init"))
        resume = spec("resume", RESUME)
        note("whole", run(root, resume, "whole"))
        run(root, resume, "resumed", kill_at="step-5")
        note("resumed", run(root, resume, "resumed", "--resume"))
        note("dist-llama", run(root, spec("dist", DIST), "dist-llama", ranks=2))
        run(root, resume, "dist-gpt2", ranks=2, kill_at="step-6")
        note("dist-gpt2", run(root, resume, "dist-gpt2", "--resume", ranks=2))
        note("dist-bert", run(root, spec("bert2", BERT), "dist-bert", ranks=2))
    path.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(f"recorded {len(results)} runs in {time.perf_counter() - began:.0f} s")


def compare(a: Path, b: Path) -> int:
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    differ = 0
    for name in sorted(set(ra) | set(rb)):
        x, y = ra.get(name), rb.get(name)
        same = x == y
        differ += not same
        print(f"{name:12s} {'same' if same else 'DIFFERENT'}", end="")
        if x and y and not same:
            keys = [k for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
            print(f" ({', '.join(keys)}; rc {x.get('rc')} -> {y.get('rc')})", end="")
        print()
    print(f"{len(set(ra) | set(rb)) - differ} same, {differ} different")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("record").add_argument("out", type=Path)
    both = sub.add_parser("compare")
    both.add_argument("a", type=Path)
    both.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.cmd == "record":
        record(args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
