"""Peak memory of the token store against corpus size and shape.

Each case runs in a fresh process: `prepare_corpus` (read, tokenize into the token store,
split) with a tokenizer trained once beforehand on a small sample (so the figure is the
store's, not tokenizer training's), then `--batches` training batches of 32 x 128 read at
random data positions. The child resets its peak RSS after importing torch and transformers
and loading the tokenizer (`/proc/self/clear_refs`, Linux) and reports the RSS then (the
floor every run pays), its peak RSS (`VmHWM`) at the end, and the peaks of its two parts,
sampled every 10 ms: anonymous memory (`RssAnon`: what the process allocated) and
file-backed pages mapped into it (`RssFile`: libraries, and any memory-mapped file). Also
the store's token count and the seconds taken (building the store, and in all).

Cases: generated English-like text files of 10 MB, 100 MB and 1 GB (one document per 1 MB
file), one 50 MB single-line file, a million tiny files (10,000 to a folder, or all in one
folder with `--per-folder 0`), and with `--one-file SIZE` a single file of that size (lines
of text, as the 1 MB files hold). Each corpus is generated just before its case
(`--clean` deletes it after).

    python -m bench.token_store [--sizes 10M,100M,1G] [--line 50M] [--files 1000000]
                                [--per-folder 10000] [--one-file 1G] [--batches 1000] [--clean]
                                [--work DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

WORDS = ("the", "king", "queen", "of", "a", "land", "rose", "and", "fell", "under", "stars",
         "night", "sea", "wind", "called", "to", "her", "his", "old", "new", "light", "sword")
CHILD = """
import json, sys, threading, time
from pathlib import Path
import numpy as np
import torch, transformers
from growdsl.backend.data import load_tokenizer, prepare_corpus
vocab = len(load_tokenizer(Path(sys.argv[2])))
def status():
    got = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmHWM", "RssAnon", "RssFile"):
            got[key] = int(value.split()[0])
    return got
peaks = {"RssAnon": 0, "RssFile": 0}
def sample():                       # the parts of RSS, every 10 ms (VmHWM is exact)
    while True:
        now = status()
        for key in peaks:
            peaks[key] = max(peaks[key], now[key])
        time.sleep(0.01)
Path("/proc/self/clear_refs").write_text("5")    # peak RSS (VmHWM) restarts from here
floor = status()
threading.Thread(target=sample, daemon=True).start()
started = time.perf_counter()
corpus, tok = prepare_corpus(Path(sys.argv[1]), Path(sys.argv[2]), "bert", vocab, 128, 0,
                             Path(sys.argv[3]))
built = time.perf_counter() - started
rng = np.random.default_rng(0)
for k in rng.integers(0, 10**6, int(sys.argv[4])):
    corpus.batch(int(k), 32, 128, 0.15)
time.sleep(0.05)
print(json.dumps({"tokens": int(len(corpus.train_ids) + len(corpus.val_ids)),
                  "seconds": time.perf_counter() - started, "build_seconds": built,
                  "floor_kb": floor["VmHWM"], "peak_kb": status()["VmHWM"],
                  "floor_anon_kb": floor["RssAnon"], "peak_anon_kb": peaks["RssAnon"],
                  "floor_file_kb": floor["RssFile"], "peak_file_kb": peaks["RssFile"]}))
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


def one_file(root: Path, size: int) -> Path:
    """`size` bytes of text lines in one file (the 1 MB files' text, one after another)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    block = _text(rng, 1_000_000)
    with (root / "corpus.txt").open("w") as f:
        for _ in range(max(1, size // 1_000_000)):
            cut = rng.randrange(len(block))
            f.write(block[cut:] + block[:cut])
    return root


def line_corpus(root: Path, size: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = _text(random.Random(1), 1_000_000, newlines=False)
    with (root / "line.txt").open("w") as f:
        for _ in range(max(1, size // len(text))):
            f.write(text)
    return root


def tiny_files(root: Path, count: int, per_folder: int = 10_000) -> Path:
    """`count` files of eight words, `per_folder` to a folder (0: all in one folder)."""
    rng = random.Random(2)
    per = per_folder or count
    for i in range(count):
        folder = root / f"{i // per:03d}"
        if i % per == 0:
            folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{i:07d}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, " ".join(rng.choice(WORDS) for _ in range(8)).encode())
        os.close(fd)
    return root


def tokenizer(work: Path) -> Path:
    from growdsl.backend.data import train_tokenizer

    sample = text_corpus(work / "sample", 2_000_000)
    out = work / "tokenizer"
    train_tokenizer(sample, "bert", 8192).save_pretrained(str(out))
    return out


def measure(corpus: Path, tok: Path, cache: Path, batches: int) -> dict[str, Any]:
    shutil.rmtree(cache, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(tok), str(cache),
                           str(batches)], capture_output=True, text=True,
                          env={"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
                               "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    shutil.rmtree(cache, ignore_errors=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mb(kb: int) -> str:
    return f"{kb / 1024:.0f}"


def _spread(values: list[int]) -> str:
    return f"{min(values) / 1024:.0f} to {max(values) / 1024:.0f} MB " \
           f"(spread {100 * (max(values) / min(values) - 1):.1f}%)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10M,100M,1G")
    parser.add_argument("--line", default="50M")
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--one-file", default="", help="also a single file of this size")
    parser.add_argument("--per-folder", type=int, default=10_000,
                        help="tiny files per folder (0: all in one folder)")
    parser.add_argument("--batches", type=int, default=1000,
                        help="batches of 32 x 128 read at random positions after the build")
    parser.add_argument("--work", type=Path, default=Path("/tmp/growdsl-token-store"))
    parser.add_argument("--clean", action="store_true", help="delete each corpus once measured")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tok = tokenizer(work)
    cases: list[tuple[str, Callable[[], Path]]] = []
    for size in args.sizes.split(",") if args.sizes else []:
        cases.append((f"{size}B in 1 MB files",
                      partial(text_corpus, work / f"text-{size}", _size(size))))
    if args.line:
        cases.append((f"{args.line}B on one line",
                      partial(line_corpus, work / "line", _size(args.line))))
    if args.one_file:
        cases.append((f"{args.one_file}B in one file",
                      partial(one_file, work / "one-file", _size(args.one_file))))
    if args.files:
        where = f"{args.per_folder:,} a folder" if args.per_folder else "one folder"
        cases.append((f"{args.files:,} tiny files ({where})",
                      partial(tiny_files, work / "files", args.files, args.per_folder)))
    rows = []
    print("| corpus | tokens | build s | total s | RSS after imports (MB) | peak RSS (MB) | "
          "peak - imports (MB) | peak RssAnon (MB) | peak RssFile (MB) |\n"
          "|---|---|---|---|---|---|---|---|---|", flush=True)
    for label, make in cases:
        path = make()
        started = time.perf_counter()
        r = {"corpus": label, **measure(path, tok, work / "cache", args.batches)}
        r["wall"] = time.perf_counter() - started
        rows.append(r)
        print(f"| {label} | {r['tokens']:,} | {r['build_seconds']:.0f} | {r['seconds']:.0f} | "
              f"{_mb(r['floor_kb'])} | {_mb(r['peak_kb'])} | "
              f"{_mb(r['peak_kb'] - r['floor_kb'])} | {_mb(r['peak_anon_kb'])} | "
              f"{_mb(r['peak_file_kb'])} |", flush=True)
        if args.clean:
            shutil.rmtree(path)
    print(f"\npeak RSS from {_spread([r['peak_kb'] for r in rows])}; "
          f"peak RssAnon from {_spread([r['peak_anon_kb'] for r in rows])}; target within 10%")
    sized = [r for r in rows if r["corpus"].endswith("in 1 MB files")]
    if len(sized) > 1:
        print(f"by corpus size ({', '.join(r['corpus'].split()[0] for r in sized)}): "
              f"peak RSS from {_spread([r['peak_kb'] for r in sized])}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
