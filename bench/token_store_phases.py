"""Where the token store's memory goes, phase by phase (the diagnosis behind
docs/benchmarks.md's token-store section).

In this process: load the tokenizer, then `prepare_corpus` (tokenize into the store), then
200 batches of 32 x 128 at random data positions; `/proc/self/status` is printed after each
phase (VmRSS and its parts: RssAnon, the process's own memory; RssFile, file pages mapped into
it) and each phase's peaks, sampled every 20 ms.

    python bench/token_store_phases.py CORPUS TOKENIZER_DIR CACHE_DIR
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from growdsl.backend.data import load_tokenizer, prepare_corpus

KEYS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")


def status() -> dict[str, int]:
    """The RSS figures of /proc/self/status, in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in KEYS:
            out[key] = int(value.split()[0]) // 1024
    return out


def main(argv: list[str]) -> int:
    corpus, tok, cache = (Path(a) for a in argv[:3])
    vocab = len(load_tokenizer(tok))
    phase = ["prepare"]
    peaks: dict[str, dict[str, int]] = {}

    def sample() -> None:
        while True:
            now = status()
            p = peaks.setdefault(phase[0], dict.fromkeys(("RssAnon", "RssFile", "VmRSS"), 0))
            for key in p:
                p[key] = max(p[key], now[key])
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    print("after imports", status(), flush=True)
    started = time.time()
    data, _ = prepare_corpus(corpus, tok, "bert", vocab, 128, 0, cache)
    print(f"after prepare_corpus ({time.time() - started:.0f} s)", status(), flush=True)
    phase[0] = "batches"
    for k in np.random.default_rng(0).integers(0, 10**6, 200):
        data.batch(int(k), 32, 128, 0.15)
    print("after 200 batches", status(), flush=True)
    time.sleep(0.1)
    print("peaks by phase", json.dumps(peaks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
