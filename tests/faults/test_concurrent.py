"""One writer per output folder: a second `growdsl run` on a folder another process holds
gets E715 naming that process's pid and writes nothing; once the holder dies (SIGKILL: no
clean-up), the folder is free again without any manual unlock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.util import cache, error_line, growdsl, ok, run, tiny_plan  # noqa: F401

pytestmark = [pytest.mark.torch, pytest.mark.slow]

HOLD = """
import sys, time
from pathlib import Path
from growdsl.backend.run_dir import lock
from growdsl.source import Source
lock(Path(sys.argv[1]), Source(path="holder", text=""))
print("locked", flush=True)
time.sleep(600)
"""


def test_second_run_is_refused_naming_the_holder_then_free_after_its_death(
        tmp_path: Path, cache: Path) -> None:  # noqa: F811
    spec = tiny_plan(tmp_path)
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        done = run(spec, out, cache)
        assert done.returncode == 1
        assert error_line(done) == (f"{spec}: error[E715]: output directory {out} is in use by "
                                    f"another growdsl run (pid {holder.pid})")
        assert sorted(os.listdir(out)) == [".lock"]              # nothing written
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    ok(run(spec, out, cache))                                    # no manual unlock needed
    done = run(spec, out, cache)                                 # the same plan, no --resume
    assert done.returncode == 1 and "already holds a run of this plan" in error_line(done)


def test_data_override_is_part_of_the_run_key(tmp_path: Path, cache: Path) -> None:  # noqa: F811
    from tests.test_run_e2e import make_corpus

    spec = tiny_plan(tmp_path)
    other = make_corpus(tmp_path / "other", docs=4, words=300, seed=1)
    out = tmp_path / "out"
    ok(growdsl("run", str(spec), "--out", str(out), "-q", "--data", str(other), cache=cache))
    done = run(spec, out, cache, resume=True)                    # the spec's own corpus
    assert done.returncode == 1
    assert error_line(done).startswith(f"{spec}: error[E715]: output directory {out} holds "
                                       "another run")
    ok(growdsl("run", str(spec), "--out", str(out), "-q", "--resume", "--data", str(other),
               cache=cache))
