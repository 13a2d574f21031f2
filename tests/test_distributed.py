"""`growdsl run` under torchrun (CPU, gloo, 2 processes, FSDP2): the same losses and final
weights as one process; checkpoints saved on 2 ranks resume on 1 and the reverse; a rank
killed mid-stage stops the job, and resuming loses nothing.

Tolerance (2 ranks against 1 process): losses within 1e-5 relative, final weights within
ATOL. The two runs see the same samples and compute the same mean loss, but not in the same
order: each rank averages its half of the batch and the gradients are averaged across ranks
(reduce-scatter), while one process averages the whole batch at once. Float sums in another
order differ in the last bits (about 1e-7 relative); Adam's normalised update can enlarge
such a difference in elements whose gradient is near zero, so the weights after 18 steps
agree to ATOL rather than bitwise. The same world size, resumed, IS bitwise identical.

The plan grows twice: `fpi` (width: consolidated per tensor) then `stack` (depth: shard to
shard), so both growth paths of `sharded.grow_sharded` run; LLaMA has no dropout, so
the per-rank RNG streams do not enter the losses.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from growdsl.backend.report import TIMING_COLUMNS
from tests.test_run_e2e import make_corpus, write_spec

pytestmark = [pytest.mark.torch, pytest.mark.slow]

ATOL = 1e-4
SPEC = """
    model llama(layers=4, hidden=32, heads=4, kv_heads=2, ffn=64, seq=32, vocab=512)
    train {
      batch = 4
      lr = 2e-3
      warmup = 2
      data = "corpus"
      eval_every = 4
      checkpoint_every = 4
      keep_checkpoints = 2
      optimizer_state = transform
    }
    stage 6: depth=L/2 ffn=F/2 -> fpi preserve
    stage 6: depth=L/2 -> stack
    stage 6:
"""
FINAL = "stages/2-stage3/model.safetensors"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def growdsl(spec: Path, out: Path, cache: Path, ranks: int, resume: bool = False,
            kill_at: str = "", quiet: bool = True) -> subprocess.CompletedProcess[str]:
    """`growdsl run` in one process (ranks = 0) or under torchrun with `ranks` processes."""
    env = {**os.environ, "GROWDSL_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "GROWDSL_KILL_AT": kill_at, "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable, "-m", "growdsl"]
    if ranks:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                    str(ranks), "--master-addr", "127.0.0.1", "--master-port",
                    str(free_port()), "-m", "growdsl"]
    cmd = [*launcher, "run", str(spec), "--out", str(out), *(["-q"] if quiet else []),
           *(["--resume"] if resume else [])]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr[-4000:]


def log_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS}
                for r in csv.DictReader(f)]


def losses(out: Path) -> list[tuple[str, int, float]]:
    return [(r["event"], int(r["global_step"]), float(r["loss"] or r["val_loss"] or "nan"))
            for r in log_rows(out) if r["event"] in ("train", "val")]


def assert_close_logs(a: Path, b: Path) -> None:
    la, lb = losses(a), losses(b)
    assert [x[:2] for x in la] == [x[:2] for x in lb]
    assert len([x for x in la if x[0] == "train"]) == 18
    for (_e, step, x), (_f, _s, y) in zip(la, lb, strict=True):
        assert abs(x - y) <= 1e-5 * abs(x), f"step {step}: {x} vs {y}"


def max_weight_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(str(a / FINAL)), load_file(str(b / FINAL))
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The spec, the cache, an uninterrupted 1-process run and an uninterrupted 2-rank run."""
    root = tmp_path_factory.mktemp("dist")
    make_corpus(root / "corpus")
    spec = write_spec(root / "plan.grow", SPEC)
    cache = root / "cache"
    ok(growdsl(spec, root / "one", cache, ranks=0))
    ok(growdsl(spec, root / "two", cache, ranks=2, quiet=False))
    return {"spec": spec, "cache": cache, "one": root / "one", "two": root / "two"}


def test_two_ranks_match_one_process(runs: dict[str, Path]) -> None:
    assert_close_logs(runs["one"], runs["two"])
    assert max_weight_diff(runs["one"], runs["two"]) <= ATOL
    log = (runs["two"] / "run.log").read_text()
    assert "torchrun: 2 rank(s), gloo, FSDP2" in log
    assert "CONSOLIDATING" in log and "shard to shard (nothing gathered)" in log
    # checkpoints are sharded: one DCP file per rank, one RNG state per rank
    newest = sorted((runs["two"] / "checkpoints").iterdir())[-1]
    assert sorted(p.name for p in (newest / "model_optim").glob("*.distcp")) == [
        "__0_0.distcp", "__1_0.distcp"]
    assert (newest / "rng-rank0.safetensors").exists()
    assert (newest / "rng-rank1.safetensors").exists()
    assert "rng-rank1.safetensors" in (newest / "manifest.json").read_text()


def test_rank_killed_then_resumed_on_two_and_on_one(tmp_path: Path,
                                                    runs: dict[str, Path]) -> None:
    spec, cache = runs["spec"], runs["cache"]
    out = tmp_path / "killed"
    done = growdsl(spec, out, cache, ranks=2, kill_at="rank1-step-11")
    assert done.returncode != 0                          # the whole job stopped
    assert sorted(p.name for p in (out / "checkpoints").iterdir())[-1] == "step-00000010"
    on_one = tmp_path / "on-one"
    shutil.copytree(out, on_one)
    # the same world size: bitwise the uninterrupted 2-rank run
    ok(growdsl(spec, out, cache, ranks=2, resume=True))
    assert log_rows(out) == log_rows(runs["two"])
    assert max_weight_diff(out, runs["two"]) == 0.0
    # saved on 2 ranks, resumed in 1 process: the same data, the rows before the checkpoint
    # kept as written, the rest within the tolerance
    ok(growdsl(spec, on_one, cache, ranks=0, resume=True))
    kept = [r for r in log_rows(runs["two"]) if int(r["global_step"]) <= 10]
    assert log_rows(on_one)[:len(kept)] == kept
    assert_close_logs(on_one, runs["two"])
    assert max_weight_diff(on_one, runs["two"]) <= ATOL


def test_saved_on_one_resumed_on_two(tmp_path: Path, runs: dict[str, Path]) -> None:
    spec, cache = runs["spec"], runs["cache"]
    out = tmp_path / "killed"
    assert growdsl(spec, out, cache, ranks=0, kill_at="step-14").returncode == -signal.SIGKILL
    ok(growdsl(spec, out, cache, ranks=2, resume=True))
    assert_close_logs(out, runs["one"])
    assert max_weight_diff(out, runs["one"]) <= ATOL
    # the resumed run's final model is a plain HF model anyone can load
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(out / FINAL).rsplit("/", 1)[0])
    assert sum(p.numel() for p in model.parameters()) > 0
    assert torch.isfinite(next(model.parameters())).all()


GPT2_SPEC = """
    model gpt2(layers=4, hidden=32, heads=2, ffn=64, seq=32, vocab=300)
    train {
      batch = 4
      lr = 2e-3
      warmup = 1
      data = "corpus"
      checkpoint_every = 2
      keep_checkpoints = 3
      optimizer_state = transform
    }
    stage 4: depth=L/2 -> stack
    stage 4:
"""


def test_tied_gpt2_survives_sharding_growth_and_resume(tmp_path: Path,
                                                       runs: dict[str, Path]) -> None:
    """GPT-2 ties its head to the token embedding: the tie holds through FSDP2, a
    shard-to-shard growth and a DCP resume (GPT-2 has dropout, so 2 ranks are compared with
    2 ranks: the resumed run is bitwise the uninterrupted one)."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    from transformers import AutoModelForCausalLM

    shutil.copytree(runs["spec"].parent / "corpus", tmp_path / "corpus")
    spec = write_spec(tmp_path / "gpt2.grow", GPT2_SPEC)
    whole, out = tmp_path / "whole", tmp_path / "killed"
    ok(growdsl(spec, whole, runs["cache"], ranks=2))
    # killed in the grown stage, after its first checkpoint (step 6)
    assert growdsl(spec, out, runs["cache"], ranks=2, kill_at="rank0-step-7").returncode != 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir())[-1] == "step-00000006"
    ok(growdsl(spec, out, runs["cache"], ranks=2, resume=True))
    assert log_rows(out) == log_rows(whole)
    final = "stages/1-stage2/model.safetensors"
    wa, wb = load_file(str(whole / final)), load_file(str(out / final))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # the checkpoint of the grown, trained, sharded model: head and embedding still one tensor
    dcp_to_torch_save(out / "checkpoints" / "step-00000008" / "model_optim", tmp_path / "sd.pt")
    sd = torch.load(tmp_path / "sd.pt", weights_only=True)["model"]
    assert sd["transformer.h.3.attn.c_attn.weight"].shape == (32, 96)       # grown to 4
    assert torch.equal(sd["lm_head.weight"], sd["transformer.wte.weight"])
    model = AutoModelForCausalLM.from_pretrained(str(out / final).rsplit("/", 1)[0])
    embedding = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight is embedding
    assert torch.equal(embedding, wb["transformer.wte.weight"])
