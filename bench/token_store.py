"""Peak memory of the token store against corpus size and shape.

Each case runs in a fresh process: `prepare_corpus` (read, tokenize into the memory-mapped
store, split) with a tokenizer trained once beforehand on a small sample (so the figure is
the store's, not tokenizer training's), then 200 training batches read at random data
positions. The child resets its peak RSS after importing torch and transformers and loading
the tokenizer (`/proc/self/clear_refs`, Linux) and reports the RSS then (the floor every run
pays), its peak RSS (`VmHWM`) at the end, the store's token count and the seconds taken.

Cases: generated English-like text files of 10 MB, 100 MB and 1 GB (one document per 1 MB
file), one 50 MB single-line file, and a folder of many tiny files.

    python -m bench.token_store [--sizes 10M,100M,1G] [--line 50M] [--files 100000]
                                [--work DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WORDS = ("the", "king", "queen", "of", "a", "land", "rose", "and", "fell", "under", "stars",
         "night", "sea", "wind", "called", "to", "her", "his", "old", "new", "light", "sword")
CHILD = """
import json, sys, time
from pathlib import Path
import numpy as np
import torch, transformers
from growdsl.backend.data import load_tokenizer, prepare_corpus
vocab = len(load_tokenizer(Path(sys.argv[2])))
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
Path("/proc/self/clear_refs").write_text("5")    # peak RSS (VmHWM) restarts from here
floor = hwm()
started = time.perf_counter()
corpus, tok = prepare_corpus(Path(sys.argv[1]), Path(sys.argv[2]), "bert", vocab, 128, 0,
                             Path(sys.argv[3]))
rng = np.random.default_rng(0)
for k in rng.integers(0, 10**6, 200):
    corpus.batch(int(k), 32, 128, 0.15)
print(json.dumps({"tokens": int(len(corpus.train_ids) + len(corpus.val_ids)),
                  "seconds": time.perf_counter() - started, "floor_kb": floor,
                  "peak_kb": hwm()}))
"""


def _size(text: str) -> int:
    units = {"k": 10**3, "M": 10**6, "G": 10**9}
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def _text(rng: random.Random, size: int, newlines: bool = True) -> str:
    words: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(WORDS)
        words.append(w + ("\n" if newlines and rng.random() < 0.05 else " "))
        n += len(w) + 1
    return "".join(words)


def text_corpus(root: Path, size: int) -> Path:
    """`size` bytes of text in 1 MB files (a chunk of generated text repeated, shifted)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    block = _text(rng, 1_000_000)
    for i in range(max(1, size // 1_000_000)):
        cut = rng.randrange(len(block))
        (root / f"doc{i:05d}.txt").write_text(block[cut:] + block[:cut])
    return root


def line_corpus(root: Path, size: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = _text(random.Random(1), 1_000_000, newlines=False)
    with (root / "line.txt").open("w") as f:
        for _ in range(max(1, size // len(text))):
            f.write(text)
    return root


def tiny_files(root: Path, count: int) -> Path:
    rng = random.Random(2)
    for i in range(count):
        folder = root / f"{i // 10_000:03d}"
        if i % 10_000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:07d}.txt").write_text(" ".join(rng.choice(WORDS) for _ in range(8)))
    return root


def tokenizer(work: Path) -> Path:
    from growdsl.backend.data import train_tokenizer

    sample = text_corpus(work / "sample", 2_000_000)
    out = work / "tokenizer"
    train_tokenizer(sample, "bert", 8192).save_pretrained(str(out))
    return out


def measure(corpus: Path, tok: Path, cache: Path) -> dict[str, Any]:
    shutil.rmtree(cache, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(tok), str(cache)],
                          capture_output=True, text=True,
                          env={"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
                               "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10M,100M,1G")
    parser.add_argument("--line", default="50M")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/growdsl-token-store"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tok = tokenizer(work)
    cases: list[tuple[str, Path]] = []
    for size in args.sizes.split(","):
        cases.append((f"{size}B in 1 MB files", text_corpus(work / f"text-{size}", _size(size))))
    if args.line:
        cases.append((f"{args.line}B on one line", line_corpus(work / "line", _size(args.line))))
    if args.files:
        cases.append((f"{args.files:,} tiny files", tiny_files(work / "files", args.files)))
    rows = []
    print("| corpus | tokens | seconds | RSS after imports (MB) | peak RSS (MB) | "
          "peak - imports (MB) |\n|---|---|---|---|---|---|", flush=True)
    for label, path in cases:
        started = time.perf_counter()
        r = {"corpus": label, **measure(path, tok, work / "cache")}
        r["wall"] = time.perf_counter() - started
        rows.append(r)
        print(f"| {label} | {r['tokens']:,} | {r['seconds']:.0f} | {r['floor_kb'] / 1024:.0f} | "
              f"{r['peak_kb'] / 1024:.0f} | {(r['peak_kb'] - r['floor_kb']) / 1024:.0f} |",
              flush=True)
    peaks = [r["peak_kb"] for r in rows]
    print(f"\npeak RSS from {min(peaks) / 1024:.0f} to {max(peaks) / 1024:.0f} MB "
          f"(spread {100 * (max(peaks) / min(peaks) - 1):.1f}%; target within 10%)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
