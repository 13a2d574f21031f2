"""`make bench` / `python -m bench`: run every benchmark script in turn."""

from __future__ import annotations

import importlib
import sys

# Each entry is a module of bench/ with a `main()`; they print their tables and write
# bench/results/*.json (and plots). About 75 minutes before gstack_pays on the 2-core CI machine
# (measured with other jobs on the cores): check_speed 10 s, lsp_latency 10 s, grow_stream 12 s,
# grow_real under 1 min (an 83 MB download the first time), runner_overhead 7 min,
# growth_cost about 17 min (13 measured without the `large` size), growth_pays 47 min.
# gstack_pays runs as separate invocations (phases, one family each for `compare`) so that
# none takes an hour: on 2026-12-02 all three phases of one family took 33 min (GPT-2, 2
# runs at a time, load average 2 to 4), the LR phase about 8 and the sweep about 9 of them,
# so `--phase lr` and `--phase sweep` over three families take about 25 and 27 min and the
# three `compare` about 16 each (about 100 min for gstack_pays in all);
# gstack_report then prints docs/benchmarks.md's tables from their results.
SCRIPTS: tuple[str | tuple[str, ...], ...] = (
    "check_speed", "lsp_latency", "grow_stream", "grow_real", "runner_overhead", "growth_cost", "growth_pays",
    ("gstack_pays", "--phase", "lr"), ("gstack_pays", "--phase", "sweep"),
    *(("gstack_pays", "--phase", "compare", "--families", f) for f in ("gpt2", "llama", "bert")),
    "gstack_report")


def main() -> None:
    for entry in SCRIPTS:
        name, *args = (entry,) if isinstance(entry, str) else entry
        print(f"\n=== bench.{name} {' '.join(args)}", flush=True)
        sys.argv = [f"bench.{name}", *args]
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
