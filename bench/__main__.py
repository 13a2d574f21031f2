"""`make bench` / `python -m bench`: run every benchmark script in turn."""

from __future__ import annotations

import importlib
import sys

# Each entry is a module of bench/ with a `main()`; they print their tables and write
# bench/results/*.json.
SCRIPTS = ("check_speed", "grow_stream")


def main() -> None:
    for name in SCRIPTS:
        print(f"\n=== bench.{name}", flush=True)
        sys.argv = [f"bench.{name}"]
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
