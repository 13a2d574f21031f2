"""The spec fuzzer (`spec_fuzz`): 2 x 5,000 generated and mutated specs per run (one half
per pytest worker), seeded (`GROWDSL_FUZZ_SEED` picks other seeds) and time-bounded; every
one goes through the whole front end and nothing but a GrowError may escape. `COUNT` is
the figure docs/reliability.md quotes."""

from __future__ import annotations

import os
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
