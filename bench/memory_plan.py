"""The memory plan (growdsl.memory) against measured peaks.

For every stage of the shipped tiny plans, and for a GPT-2-124M-shaped and a
BERT-base-shaped stage at a small micro batch, this builds the stage's model as `growdsl run`
does, runs two training steps of the runner's loss with its optimizer (the second step's
peak counts: the moments exist by then), and measures the peak by tracking every tensor
storage alive (a `TorchDispatchMode` that counts each op's new output storages and a
finalizer on each: bytes allocated, not the allocator's reserve, on the CPU as on a GPU;
PyTorch's own `MemTracker` cannot follow a module called twice per step, as pooled BERT's
is; on CUDA, `torch.cuda.max_memory_allocated` is reported beside it).
Each is measured with and without activation checkpointing and accumulation.
Prints a table (and JSON with --json) of estimate, measurement and error; the target is
within 15%.

    python -m bench.memory_plan [--quick [--all-variants]] [--only LABEL] [--json FILE]
                                                            # --quick: about 4 minutes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TINY = ("growdsl/specs/demo.grow", "specs/tiny/bert-stack.grow", "specs/tiny/gpt2-width.grow",
        "specs/tiny/llama-identity.grow")


def _batch(shape: Any, micro: int, mlm_p: float, device: Any) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, shape.vocab, (micro, shape.seq), generator=g)
    if shape.family != "bert":
        return {"input_ids": ids.to(device), "labels": ids.clone().to(device)}
    count = max(1, min(shape.seq - 1, round(mlm_p * shape.seq)))
    pos = torch.stack([torch.randperm(shape.seq - 1, generator=g)[:count].sort().values + 1
                       for _ in range(micro)])
    return {k: v.to(device) for k, v in {
        "input_ids": ids, "attention_mask": torch.ones_like(ids),
        "token_type_ids": torch.zeros_like(ids), "mlm_positions": pos,
        "labels": ids.gather(1, pos)}.items()}


class LiveBytes:
    """Bytes of tensor storages alive, and their peak, while active (see the docstring)."""

    def __init__(self) -> None:
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        outer = self
        self.live: dict[tuple[int, str], int] = {}
        self.now = self.peak = 0

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                                   kwargs: Any = None) -> Any:
                out = func(*args, **(kwargs or {}))
                for t in tree_flatten(out)[0]:
                    if isinstance(t, torch.Tensor):
                        outer.add(t)
                return out

        self.mode = Mode()

    def add(self, t: Any) -> None:
        import weakref

        if t.device.type == "meta":
            return
        st = t.untyped_storage()
        key = (st.data_ptr(), str(t.device))
        if st.nbytes() == 0 or key in self.live:
            return
        self.live[key] = st.nbytes()
        self.now += st.nbytes()
        self.peak = max(self.peak, self.now)
        weakref.finalize(st, self._free, key)

    def _free(self, key: tuple[int, str]) -> None:
        self.now -= self.live.pop(key, 0)

    def reset_peak(self) -> None:
        self.peak = self.now


def measure(stage: Any, micro: int, device: str = "cpu") -> dict[str, float]:
    """Peak bytes of two training steps of `stage` at `micro` samples per micro batch,
    with its accumulation and checkpointing, as the runner runs them."""
    import torch

    from growdsl.backend.models import build_model
    from growdsl.backend.train import loss_of, make_optimizer, set_checkpointing

    torch.manual_seed(0)
    dev = torch.device(device)
    model = build_model(stage.shape, seed=0).to(dev)
    set_checkpointing(model, stage.train.checkpointing)
    model.train()
    optimizer = make_optimizer(model, stage.train)
    bf16 = stage.train.precision == "bf16"
    accumulation = stage.train.accumulation(1)
    tracker = LiveBytes()
    for t in [*model.parameters(), *model.buffers()]:
        tracker.add(t)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tracker.mode:
        for step in range(2):
            for _ in range(accumulation):
                batch = _batch(stage.shape, micro, stage.train.mlm_probability, dev)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = loss_of(model, batch) / accumulation
                loss.backward()
                del loss, batch
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step == 0:
                tracker.reset_peak()
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
    out = {"tracked": float(tracker.peak)}
    if dev.type == "cuda":
        out["cuda_max_allocated"] = float(torch.cuda.max_memory_allocated())
    return out


def cases(quick: bool, all_variants: bool = False) -> list[tuple[str, Any]]:
    """(label, stage) for every case measured."""
    from growdsl.driver import load
    from growdsl.shapes import PRESETS

    out: list[tuple[str, Any]] = []
    for spec in TINY:
        _, plan = load(REPO / spec)
        for stage in plan.stages:
            if stage.steps:
                out.append((f"{Path(spec).stem}/{stage.name}", stage))
    _, plan = load(REPO / "specs/tiny/gpt2-width.grow")
    base = plan.stages[-1]
    seq = 256 if quick else 1024
    gpt2 = replace(base, name="gpt2-124M", shape=PRESETS["gpt2"].replace(seq=seq),
                   train=replace(base.train, batch=2, micro_batch=2))
    out.append((f"gpt2-124M (T={seq})", gpt2))
    _, plan = load(REPO / "specs/tiny/bert-stack.grow")
    bert = plan.stages[-1]
    bert_base = replace(bert, name="bert-base", shape=PRESETS["bert-base"].replace(seq=128),
                        train=replace(bert.train, batch=4, micro_batch=4))
    out.append(("bert-base (T=128)", bert_base))
    variants: list[tuple[str, Any]] = []
    for label, stage in out:
        variants.append((label, stage))
        if not quick or all_variants or label.startswith("demo"):
            t = stage.train
            variants.append((f"{label} +ckpt", replace(stage, train=replace(t, checkpointing=True))))
            if t.batch >= 2:
                variants.append((f"{label} accum 2", replace(
                    stage, train=replace(t, micro_batch=max(1, t.batch // 2)))))
    return variants


def run(quick: bool = False, device: str = "cpu", all_variants: bool = False,
        only: str = "") -> list[dict[str, Any]]:
    from growdsl.memory import stage_memory

    rows = []
    for label, stage in cases(quick, all_variants):
        if only and not label.startswith(only):
            continue
        micro = stage.train.micro(1)
        started = time.perf_counter()
        measured = measure(stage, micro, device)
        est = stage_memory(stage, 1, stage.train.precision == "bf16", flash=device != "cpu")
        ref = measured.get("cuda_max_allocated", measured["tracked"])
        rows.append({"case": label, "micro": micro, "accumulation": stage.train.accumulation(1),
                     "checkpointing": stage.train.checkpointing, "estimate": est.peak,
                     "measured": ref, "error": est.peak / ref - 1,
                     "seconds": time.perf_counter() - started, **measured})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| case | micro | accum | ckpt | estimate (MiB) | measured (MiB) | error |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['micro']} | {r['accumulation']} | "
                     f"{'yes' if r['checkpointing'] else 'no'} | {r['estimate'] / 2**20:.1f} | "
                     f"{r['measured'] / 2**20:.1f} | {100 * r['error']:+.1f}% |")
    worst = max(abs(r["error"]) for r in rows)
    lines.append(f"\nworst error {100 * worst:.1f}% over {len(rows)} cases (target 15%)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer variants, GPT-2 at T=256")
    parser.add_argument("--all-variants", action="store_true",
                        help="with --quick: checkpointing and accumulation on every case")
    parser.add_argument("--only", default="", help="the cases whose label starts with this")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = run(args.quick, args.device, args.all_variants, args.only)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
