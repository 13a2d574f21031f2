"""Print the counts docs/reliability.md quotes, from the fault suite's own tables (what the
tests run, not what they found: each test fails unless every case holds).

    .venv/bin/python -m tests.faults.figures
"""

from __future__ import annotations

from tests.faults.test_corrupt_each_file import CORRUPTIONS
from tests.faults.test_crash_points import KILLS
from tests.faults.test_disk_full import test_injected_write_failure_in_run
from tests.faults.test_hostile_checkpoint import MANIFESTS
from tests.faults.test_sizes import GROW_SIZES
from tests.faults.test_spec_fuzz import COUNT

CHECKPOINT_FILES = 7        # asserted by test_corrupt_each_file


def figures() -> dict[str, int]:
    marks = getattr(test_injected_write_failure_in_run, "pytestmark", [])
    injected = next(len(m.args[1]) for m in marks if m.name == "parametrize")
    return {
        "SIGKILLs survived bitwise (one chain, every kind of crash point)": len(KILLS),
        "checkpoint corruptions detected (files x kinds)": CHECKPOINT_FILES * len(CORRUPTIONS),
        "malformed manifests detected": len(MANIFESTS),
        "absurd checkpoint sizes refused by grow": len(GROW_SIZES),
        "write points failed by injection in run": injected,
        "fuzzed specs per run": 2 * COUNT,
    }


def main() -> None:
    for name, value in figures().items():
        print(f"{value:>7,}  {name}")


if __name__ == "__main__":
    main()
