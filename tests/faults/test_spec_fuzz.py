"""The spec fuzzer (`spec_fuzz`): 2 x 5,000 generated and mutated specs per run (one half
per pytest worker), seeded (`GROWDSL_FUZZ_SEED` picks other seeds) and time-bounded; every
one goes through the whole front end and nothing but a GrowError may escape. `COUNT` is
the figure docs/reliability.md quotes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from growdsl.driver import validate
from growdsl.errors import GrowError
from tests.faults.spec_fuzz import fuzz

COUNT = 5_000          # per half: 10,000 specs per run
SECONDS = 420          # the bound: far above the ~40 s a half takes on a loaded 2-core box


@pytest.mark.slow
@pytest.mark.parametrize("half", [0, 1])
def test_fuzzed_specs_raise_nothing_but_grow_errors(half: int) -> None:
    seed = int(os.environ.get("GROWDSL_FUZZ_SEED", "0")) * 2 + half
    outcome = fuzz(seed, COUNT, SECONDS)
    first = outcome.failures[0] if outcome.failures else ("", "")
    assert not outcome.failures, (f"seed {seed}: {len(outcome.failures)} spec(s) raised; the "
                                  f"first:\n{first[0]}\n{first[1]}")
    assert not outcome.timed_out and outcome.ran == COUNT, (
        f"seed {seed}: only {outcome.ran} specs in {SECONDS} s (a spec that hangs the front "
        "end is a bug too)")
    assert outcome.accepted > COUNT // 50          # the generator reaches valid plans too


def test_a_spec_asking_for_millions_of_submodels_is_refused_at_once(tmp_path: Path) -> None:
    """Found by the fuzzer: the FLOP count listed every sub-model (minutes of `check`)."""
    spec = tmp_path / "p.grow"
    spec.write_text("model bert-tiny\nstage 768: submodels=16777216\nstage 768:\n")
    start = time.perf_counter()
    with pytest.raises(GrowError) as info:
        validate(spec)
    assert time.perf_counter() - start < 10
    assert [d.code for d in info.value.diagnostics] == ["E414"]


CONSTANT_MEMORY = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (600 * 2**20, 600 * 2**20))
from growdsl.driver import validate_graph
from growdsl.errors import GrowError
try:
    validate_graph(sys.argv[1])
except GrowError as error:
    print(" ".join(d.code for d in error.diagnostics))
else:
    print("ok")
"""


@pytest.mark.parametrize("submodels", [1, 2, 16777216])
def test_a_model_of_millions_of_layers_is_planned_in_constant_memory(tmp_path: Path,
                                                                     submodels: int) -> None:
    """The FLOP count averaged the sub-models' depths through a dict over every layer: a
    16,777,216-layer GPT-2 (within the language's limits) took 1.4 GB and 14 s to `check`.
    Here `check` runs with its address space capped at 600 MB (a MemoryError otherwise)."""
    spec = tmp_path / "p.grow"
    spec.write_text(f"model gpt2(layers=16777216, hidden=8, heads=1, ffn=8, vocab=8)\n"
                    f"stage 10: submodels={submodels}\nstage 10:\n")
    out = subprocess.run([sys.executable, "-c", CONSTANT_MEMORY, str(spec)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ok"]
