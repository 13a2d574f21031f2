"""Peak memory and throughput of streaming checkpoint growth (`backend.streaming`).

Builds a GPT-2-style source checkpoint of the requested size, then, in a fresh child
process, grows it (default: `stack` to twice the depth) and reports the peak anonymous
memory above the child's baseline (sampled every 2 ms from /proc/self/status RssAnon: the
memory-mapped source pages are page cache, not the tool's), the bytes written and bytes/s.
`--in-memory` does the same with load -> grow -> save_pretrained for comparison.

    .venv/bin/python bench/grow_stream.py --layers 24 --hidden 1024     # ~0.4B parameters

On the 2-core machine: about 12 s with the defaults, 34 s with `--in-memory`, 56 s for
`--layers 24 --hidden 1024 --in-memory` (docs/benchmarks.md). `python -m bench` runs it
with the defaults (a GPT-2-small-sized source, streaming only);
the results are also written to `bench/results/grow_stream.json` (`--out`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "grow_stream.json"


def rss_anon_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


class PeakSampler(threading.Thread):
    """Samples RssAnon until stopped; `peak` is the largest value seen (kB)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_anon_kb()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, rss_anon_kb())
            time.sleep(0.002)


def child(src: str, out: str, layers: int, in_memory: bool) -> dict:
    """Grow src -> out to `layers` layers by stacking; measure."""
    import torch
    from transformers import AutoConfig

    from growdsl.backend.models import shape_of
    from growdsl.backend.streaming import grow_checkpoint
    from growdsl.backend.testing import growth

    torch.set_num_threads(1)
    dst = shape_of(AutoConfig.from_pretrained(src)).replace(layers=layers)
    base = rss_anon_kb()
    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    if in_memory:
        from growdsl.backend.models import load_model, save_model
        from growdsl.backend.surgery import grow_model

        grown, _ = grow_model(load_model(src), dst, growth("stack"))
        save_model(grown, out)
        written = sum(p.stat().st_size for p in Path(out).glob("*.safetensors"))
    else:
        written = grow_checkpoint(src, out, dst, growth("stack"))[3]
    seconds = time.perf_counter() - start
    sampler.peak = max(sampler.peak, rss_anon_kb())
    sampler.done.set()
    return {"mode": "in-memory" if in_memory else "streaming",
            "peak_extra_mb": (sampler.peak - base) / 1024, "bytes_written": written,
            "seconds": seconds, "mb_per_s": written / 1e6 / max(seconds, 1e-9)}


def make_source(path: Path, layers: int, hidden: int, vocab: int) -> int:
    """Save a random GPT-2 checkpoint; returns its size in bytes."""
    from growdsl.backend.models import build_model, save_model
    from growdsl.backend.testing import tiny_shape

    shape = tiny_shape("gpt2", layers=layers, heads=max(1, hidden // 64),
                       head_dim=min(64, hidden), ffn=4 * hidden, vocab=vocab, positions=1024)
    save_model(build_model(shape), path)
    return sum(p.stat().st_size for p in path.glob("*.safetensors"))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--in-memory", action="store_true", help="also run load/grow/save")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON file")
    parser.add_argument("--child", nargs=4, metavar=("SRC", "OUT", "LAYERS", "MODE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        src, out, layers, mode = args.child
        print(json.dumps(child(src, out, int(layers), mode == "memory")))
        return []
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        size = make_source(src, args.layers, args.hidden, args.vocab)
        print(f"source: {size / 1e6:.1f} MB, {args.layers} layers, hidden {args.hidden}")
        for mode in ["stream", "memory"] if args.in_memory else ["stream"]:
            out = Path(tmp) / f"out-{mode}"
            cmd = [sys.executable, __file__, "--child", str(src), str(out),
                   str(2 * args.layers), mode]
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            result = json.loads(line.strip().splitlines()[-1])
            result["source_mb"] = size / 1e6
            results.append(result)
            print(f"{result['mode']}: peak +{result['peak_extra_mb']:.1f} MB "
                  f"({result['peak_extra_mb'] / (size / 1e6):.2f}x source), "
                  f"{result['mb_per_s']:.0f} MB/s, {result['bytes_written'] / 1e6:.1f} MB "
                  f"written in {result['seconds']:.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: v for k, v in vars(args).items()
                                             if k in ("layers", "hidden", "vocab")},
                                    "results": results}, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
