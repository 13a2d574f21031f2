"""`growdsl grow SRC_DIR OUT_DIR --to "..." --ops "..."`: grow a local Hugging Face
checkpoint to a target shape (bert2BERT's reuse of a smaller pretrained model).

The target and the operator list use the `.grow` syntax of a stage shape and a growth
step, parsed by the front end (`growdsl.api.growth_step`); the command is a thin layer over
`growdsl.api.grow_checkpoint`. The checkpoint is grown
by streaming (one tensor at a time); `--verify` replays the step operator by operator in
memory, prints each one's verdict and measured logit difference (a bare model's: last
hidden states), and exits 1 when an operator whose verdict is exact does not preserve the
function. Full (`BertForMaskedLM`, ...) and bare (`BertModel`, ...) checkpoints are grown
in their own layout; a checkpoint growdsl cannot read is a located error (exit 1). torch is
imported only inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from growdsl import api
from growdsl.cli import app


@app.command()
def grow(src_dir: Annotated[Path, typer.Argument(help="local HF model directory")],
         out_dir: Annotated[Path, typer.Argument(help="where the grown model is written")],
         to: Annotated[str, typer.Option("--to", help='target, e.g. "depth=2*L hidden=2*D"')],
         ops: Annotated[str, typer.Option("--ops", help='operators, e.g. "fpi, stack"')],
         seed: Annotated[int | None, typer.Option("--seed", help="seed of random maps")] = None,
         verify: Annotated[bool, typer.Option("--verify",
                                              help="measure each operator's effect")] = False,
         ) -> None:
    """Grow a local checkpoint; exit 1 on a user error or a failed verification."""
    from growdsl.errors import GrowError
    from growdsl.operators import GrowthStepError

    try:
        done = api.grow_checkpoint(src_dir, out_dir, to=to, ops=ops, seed=seed)
    except GrowError as error:
        print(error.render(), file=sys.stderr)
        raise typer.Exit(1) from None
    except (GrowthStepError, ValueError) as error:
        hint = getattr(error, "hint", None)
        print(f"error: {error}" + (f"\n  help: {hint}" if hint else ""), file=sys.stderr)
        raise typer.Exit(1) from None
    src, final, dropped = done.src, done.shape, done.dropped
    print(f"grew {src_dir} -> {out_dir}: layers {src.layers}->{final.layers}, hidden "
          f"{src.hidden}->{final.hidden}, heads {src.heads}->{final.heads}, ffn "
          f"{src.ffn}->{final.ffn} ({done.written / 1e6:.1f} MB written)")
    print(f"  layout: {done.layout}")
    if dropped:
        print(f"  not carried over ({len(dropped)} tensors the model class does not use): "
              f"{', '.join(dropped[:4])}{' ...' if len(dropped) > 4 else ''}")
    for step in done.steps:
        print(f"  {step.call.name}: {step.verdict.kind} ({step.verdict.reason})")
    if verify:
        _verify(src_dir, out_dir, done.steps, done.seed, "logits" if done.head else
                "last hidden states")


def _verify(src_dir: Path, out_dir: Path, steps: list, growth_seed: int, what: str) -> None:
    from growdsl.backend.verify import verify_steps, verify_written

    checks = verify_steps(src_dir, steps, growth_seed)
    for check in checks:
        status = "BROKEN" if check.broken else "ok"
        print(f"verify {check.op}: {check.verdict}, {what} max |diff| {check.diff.max_abs:.3g} "
              f"(relative {check.diff.max_rel:.3g}) {status}")
    written = verify_written(src_dir, out_dir, steps, growth_seed)
    print(f"verify written checkpoint vs in-memory growth: max |diff| {written.max_abs:.3g}")
    if any(c.broken for c in checks) or written.max_abs > 1e-5:
        print("error: an operator whose verdict is exact did not preserve the function",
              file=sys.stderr)
        raise typer.Exit(1)
