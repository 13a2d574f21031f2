"""The prepared GPU check (`make gpu-check`): every CUDA code path, in under 8 minutes on one
GPU, with a JSON and a Markdown summary written into the folder given.

    python -m bench.gpu_check OUT            # on a CUDA machine; without one: says so, exit 0
    python -m bench.gpu_check OUT --dry      # the same steps on the CPU at tiny sizes

Steps (each timed, passed or failed, with its figures):
1. the CUDA-marked tests (`pytest -m cuda tests/test_cuda.py`; dry: collected only);
2. a run with its scratch baseline (`growdsl run --baseline`; the demo plan on CUDA, a tiny
   plan dry) on a generated corpus (no network);
3. a one-GPU NCCL FSDP2 run under torchrun, SIGKILLed at a step (`GROWDSL_KILL_AT`) and
   resumed; its losses must equal an uninterrupted run's (dry: gloo on the CPU);
4. a compiled bf16 run (`precision = bf16`, `--compile`; dry: bf16 without compile, which
   tests/test_scale.py covers on the CPU);
5. tokens/s and MFU of a BERT-base-shaped and a GPT-2-124M-shaped stage in bf16 (the
   planner's FLOPs over the device's peak from growdsl.devices; dry: tiny shapes);
6. the memory plan against `torch.cuda.max_memory_allocated` for both (dry: the tracked
   peak of bench/memory_plan.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the", "king", "queen", "of", "a", "land", "rose", "and", "fell", "under", "stars",
         "night", "sea", "wind", "called", "to", "her", "his", "old", "new", "light")
TINY = """model {model}
train {{
  batch = {batch}
  micro_batch = {micro}
  lr = 1e-3
  warmup = 2
  precision = {precision}
  checkpoint_every = 2
  data = "{data}"
}}
stage {steps}: depth=L/2 -> stack
stage {steps}:
"""


def corpus(root: Path, docs: int = 40, words: int = 2000) -> Path:
    """A generated corpus of text files (the GPU machine reaches no network)."""
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(docs):
        (root / f"doc{i:03d}.txt").write_text(" ".join(rng.choice(WORDS) for _ in range(words)))
    return root


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def growdsl(args: list[str], env: dict[str, str], ranks: int = 0,
            timeout: int = 400) -> subprocess.CompletedProcess[str]:
    launcher = [sys.executable, "-m", "growdsl"]
    if ranks:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                    str(ranks), "--master-addr", "127.0.0.1", "--master-port", str(_port()),
                    "-m", "growdsl"]
    return subprocess.run([*launcher, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _ok(done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr[-2000:]}")


def _losses(out: Path) -> list[str]:
    import csv

    with (out / "metrics.csv").open() as f:
        return [r["loss"] for r in csv.DictReader(f) if r["event"] == "train"]


class Check:
    """The steps of the check, each recorded with its time and figures."""

    def __init__(self, out: Path, dry: bool) -> None:
        self.out, self.dry = out, dry
        self.results: list[dict[str, Any]] = []
        self.env = {**os.environ, "GROWDSL_CACHE": str(out / "cache"), "HF_HUB_OFFLINE": "1"}
        self.data = corpus(out / "corpus")

    def step(self, name: str, fn: Callable[[], dict[str, Any]]) -> None:
        started = time.perf_counter()
        try:
            figures, ok, error = fn(), True, ""
        except Exception as exc:            # a failed step is reported, the others still run
            figures, ok, error = {}, False, f"{type(exc).__name__}: {exc}"[:3000]
        self.results.append({"step": name, "ok": ok, "seconds": round(time.perf_counter()
                                                                      - started, 1),
                             "error": error, **figures})
        print(f"{'ok  ' if ok else 'FAIL'} {name} ({self.results[-1]['seconds']} s) "
              f"{error or json.dumps(figures)}", flush=True)

    def spec(self, name: str, precision: str = "auto", steps: int = 4,
             family: str = "bert") -> Path:
        size = ("(layers=2, hidden=32, heads=2, ffn=64, seq=32, vocab=512)" if self.dry
                else "(layers=4, hidden=256, heads=4, ffn=1024, seq=128, vocab=8192)")
        model = family + size
        path = self.out / f"{name}.grow"
        path.write_text(TINY.format(model=model, batch=8, micro=4, precision=precision,
                                    data=self.data, steps=steps if self.dry else 50))
        return path

    def cuda_tests(self) -> dict[str, Any]:
        args = ["-m", "cuda", "-q", "-p", "no:randomly", "-n", "0", "tests/test_cuda.py"]
        if self.dry:
            args.append("--collect-only")
        done = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=400)
        if done.returncode not in (0, 5):
            raise RuntimeError(done.stdout[-2000:])
        return {"summary": done.stdout.strip().splitlines()[-1] if done.stdout else ""}

    def baseline_run(self) -> dict[str, Any]:
        spec = self.spec("demo") if self.dry else REPO / "growdsl/specs/demo.grow"
        out = self.out / "demo"
        _ok(growdsl(["run", str(spec), "--out", str(out), "--baseline", "-q",
                     "--data", str(self.data)], self.env))
        return {"report": str(out / "report.md"), "train_rows": len(_losses(out))}

    def kill_and_resume(self) -> dict[str, Any]:
        # GPT-2: BERT's MLM loss calls the encoder without the FSDP root's forward (an open
        # bug: the root's parameters stay sharded), see docs/benchmarks.md
        spec = self.spec("fsdp", family="gpt2")
        whole, killed = self.out / "fsdp-whole", self.out / "fsdp-killed"
        _ok(growdsl(["run", str(spec), "--out", str(whole), "-q"], self.env, ranks=1))
        first = growdsl(["run", str(spec), "--out", str(killed), "-q"],
                        {**self.env, "GROWDSL_KILL_AT": "step-3"}, ranks=1)
        if first.returncode == 0:
            raise RuntimeError("the run was not killed at step 3")
        _ok(growdsl(["run", str(spec), "--out", str(killed), "-q", "--resume"], self.env,
                    ranks=1))
        a, b = _losses(whole), _losses(killed)
        if a != b:
            raise RuntimeError(f"losses differ after the resume: {a} vs {b}")
        log = (whole / "run.log").read_text()
        return {"steps": len(a), "backend": "nccl" if "nccl" in log else "gloo"}

    def compiled_bf16(self) -> dict[str, Any]:
        spec = self.spec("bf16", precision="bf16")
        out = self.out / "bf16"
        args = ["run", str(spec), "--out", str(out), "-q"]
        if not self.dry:
            args.append("--compile")
        _ok(growdsl(args, self.env))
        return {"compiled": not self.dry, "final_loss": _losses(out)[-1]}

    def throughput(self) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for label, st in stages(self.dry):
            figures[label] = speed(st, "cpu" if self.dry else "cuda", 2 if self.dry else 20)
        return figures

    def memory(self) -> dict[str, Any]:
        from bench.memory_plan import measure
        from growdsl.memory import stage_memory

        figures: dict[str, Any] = {}
        for label, st in stages(self.dry):
            measured = measure(st, st.train.micro(1), "cpu" if self.dry else "cuda")
            ref = measured.get("cuda_max_allocated", measured["tracked"])
            est = stage_memory(st, 1, st.train.precision == "bf16", flash=not self.dry).peak
            figures[label] = {"estimate_mib": round(est / 2**20, 1),
                              "measured_mib": round(ref / 2**20, 1),
                              "error": round(est / ref - 1, 3)}
        return figures

    def summary(self) -> None:
        (self.out / "summary.json").write_text(json.dumps(
            {"dry": self.dry, "steps": self.results}, indent=2))
        lines = [f"# gpu-check{' (dry, CPU)' if self.dry else ''}", "",
                 "| step | ok | seconds | figures |", "|---|---|---|---|"]
        for r in self.results:
            shown = {k: v for k, v in r.items() if k not in ("step", "ok", "seconds")}
            lines.append(f"| {r['step']} | {'yes' if r['ok'] else 'NO'} | {r['seconds']} | "
                         f"`{json.dumps(shown)}` |")
        (self.out / "summary.md").write_text("\n".join(lines) + "\n")


def stages(dry: bool) -> list[tuple[str, Any]]:
    """BERT-base- and GPT-2-124M-shaped stages in bf16 (tiny ones when dry)."""
    from growdsl.ir import Stage, Train
    from growdsl.shapes import PRESETS

    train = Train(batch=8 if not dry else 2, micro_batch=8 if not dry else 2, precision="bf16")
    out = []
    for label, preset, seq in (("bert-base", "bert-base", 512), ("gpt2-124M", "gpt2", 1024)):
        shape = PRESETS[preset].replace(seq=seq)
        if dry:
            shape = shape.replace(layers=2, hidden=32, heads=2, head_dim=16, kv_heads=2,
                                  ffn=64, vocab=512, seq=32, positions=32)
        out.append((label, Stage(index=0, name=label, steps=1, tokens=0, shape=shape,
                                 train=replace(train))))
    return out


def speed(stage: Any, device: str, steps: int) -> dict[str, Any]:
    """tokens/s and MFU of `steps` timed steps (after one warm-up step) in bf16."""
    import torch

    from bench.memory_plan import _batch
    from growdsl.backend.models import build_model
    from growdsl.backend.train import loss_of, make_optimizer
    from growdsl.devices import from_cuda_name
    from growdsl.flops import train_flops_per_step

    dev = torch.device(device)
    model = build_model(stage.shape, seed=0).to(dev).train()
    opt = make_optimizer(model, stage.train)
    b = stage.train.batch
    batch = _batch(stage.shape, b, 0.15, dev)

    def one() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            loss = loss_of(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    one()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        one()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    flops = train_flops_per_step(stage.shape, b, stage.shape.seq, 0.15)
    peak = 0.0
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        known = from_cuda_name(props.name, props.total_memory)
        peak = known.bf16_flops if known else 0.0
    return {"tokens_per_s": round(b * stage.shape.seq / seconds),
            "mfu": round(flops / seconds / peak, 3) if peak else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the runs and the summary")
    parser.add_argument("--dry", action="store_true", help="tiny sizes on the CPU")
    args = parser.parse_args(argv)
    import torch

    if not args.dry and not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU on this machine; nothing checked "
              "(`python -m bench.gpu_check OUT --dry` runs the same steps on the CPU)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.dry)
    check.step("cuda-marked tests", check.cuda_tests)
    check.step("run with scratch baseline", check.baseline_run)
    check.step("FSDP2 kill and resume (torchrun, 1 rank)", check.kill_and_resume)
    check.step("compiled bf16 run", check.compiled_bf16)
    check.step("tokens/s and MFU", check.throughput)
    check.step("memory plan vs measured peak", check.memory)
    check.summary()
    return 0 if all(r["ok"] for r in check.results) else 1


if __name__ == "__main__":
    sys.exit(main())
