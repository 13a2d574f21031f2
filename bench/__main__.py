"""`make bench` / `python -m bench`: run every benchmark script in turn."""

from __future__ import annotations

import importlib
import sys

# Each entry is a module of bench/ with a `main()`; they print their tables and write
# bench/results/*.json (and plots). About 75 minutes in all on the 2-core CI machine
# (measured with other jobs on the cores): check_speed 10 s, lsp_latency 10 s, grow_stream 12 s,
# grow_real under 1 min (an 83 MB download the first time), runner_overhead 7 min,
# growth_cost about 17 min (13 measured without the `large` size), growth_pays 47 min.
SCRIPTS = ("check_speed", "lsp_latency", "grow_stream", "grow_real", "runner_overhead", "growth_cost",
           "growth_pays")


def main() -> None:
    for name in SCRIPTS:
        print(f"\n=== bench.{name}", flush=True)
        sys.argv = [f"bench.{name}"]
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
