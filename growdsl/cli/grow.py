"""`growdsl grow SRC_DIR OUT_DIR --to "..." --ops "..."`: grow a local Hugging Face
checkpoint to a target shape (bert2BERT's reuse of a smaller pretrained model).

The target and the operator list use the `.grow` syntax of a stage shape and a growth
step, parsed and walked by the front end (`growdsl.grow_step.plan_grow`: mistakes located in
`--to` / `--ops` with a caret; `KEY=none` in `--to` removes a treatment). The checkpoint is grown
by streaming (one tensor at a time); `--verify` replays the step operator by operator in
memory, prints each one's verdict and measured logit difference (a bare model's: last
hidden states), and exits 1 when an operator whose verdict is exact does not preserve the
function. Full (`BertForMaskedLM`, ...) and bare (`BertModel`, ...) checkpoints are grown
in their own layout. A stored tensor outside the family's weight map is left out, and named,
only when the family knows it to be inert or `--drop GLOB` names it; any other is E742 (a
`--drop` glob matching none, E743). A checkpoint growdsl cannot read, a non-empty OUT_DIR without
`--replace` or a failed write is a located error (exit 1), and OUT_DIR then holds what it
held before. Only the config, the weights, the tokenizer files and the generation config
are written. The last line says what stock `from_pretrained` does with the output: loads
it computing the grown function, or refuses it (weights only growdsl reads). torch is
imported only inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from growdsl.cli import app

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from growdsl.backend.families.layout import Layout


def _lower(to: str, ops: str, src_dir: Path, seed: int | None, drop: tuple[str, ...]) -> tuple:
    """(source shape, target shape, growth, layout, tensors left out) from the command line
    and the checkpoint (a GrowError when growdsl cannot read it)."""
    from contextlib import ExitStack

    from growdsl.backend.streaming import open_checkpoint
    from growdsl.grow_step import plan_grow

    with ExitStack() as stack:
        source = open_checkpoint(stack, src_dir, drop)
    dst, growth, _final, _results = plan_grow(to, ops, source.shape,
                                             bare=not source.layout.head)
    if seed is not None:
        growth = type(growth)(ops=growth.ops, seed=seed, preserve=growth.preserve,
                              span=growth.span)
    return source.shape, dst, growth, source.layout, source.left_out


@app.command()
@click.argument("src_dir", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--to", required=True, help='target, e.g. "depth=2*L hidden=2*D"')
@click.option("--ops", required=True, help='operators, e.g. "fpi, stack"')
@click.option("--seed", type=int, help="seed of random maps")
@click.option("--verify", is_flag=True, help="measure each operator's effect")
@click.option("--replace", is_flag=True, help="replace a non-empty OUT_DIR (atomically)")
@click.option("--drop", multiple=True, metavar="GLOB",
              help="leave out stored tensors outside the weight map matching GLOB (repeatable)")
def grow(src_dir: Path, out_dir: Path, to: str, ops: str, seed: int | None, verify: bool,
         replace: bool, drop: tuple[str, ...]) -> None:
    """Grow a local checkpoint; exit 1 on a user error or a failed verification."""
    from growdsl.errors import GrowError

    try:
        src, dst, growth, layout, left_out = _lower(to, ops, src_dir, seed, drop)
        from growdsl.backend.streaming import grow_checkpoint

        final, steps, _config, written = grow_checkpoint(src_dir, out_dir, dst, growth,
                                                         replace=replace, drop=drop)
    except GrowError as error:
        print(error.render(), file=sys.stderr)
        raise SystemExit(1) from None
    print(f"grew {src_dir} -> {out_dir}: layers {src.layers}->{final.layers}, hidden "
          f"{src.hidden}->{final.hidden}, heads {src.heads}->{final.heads}, ffn "
          f"{src.ffn}->{final.ffn} ({written / 1e6:.1f} MB written)")
    print(f"  layout: {layout.describe()}")
    for note in left_out.notes():
        print(f"  {note}")
    from growdsl.grow_step import in_dtype

    steps = in_dtype(steps, _dtype_name(_config))
    for step in steps:
        print(f"  {step.call.name}: {step.verdict.kind} ({step.verdict.reason})")
    print(f"  {_stock(_config, layout, any(s.call.name == 'masked' for s in steps))}")
    if verify:
        _verify(src_dir, out_dir, steps, growth.seed, "logits" if layout.head else
                "last hidden states", drop)


def _dtype_name(config: PretrainedConfig) -> str | None:
    """The weights' dtype as config.json names it (`dtype`, or the older `torch_dtype`)."""
    dtype = getattr(config, "dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else None


def _stock(config: PretrainedConfig, layout: Layout, masked: bool) -> str:
    """What stock `from_pretrained` does with the written checkpoint."""
    from growdsl.backend.models import TREATED_WEIGHTS, is_plain

    if is_plain(config):
        folded = " (the masked-growth gate, at 0, folded into the weights)" if masked else ""
        return (f"stock from_pretrained: loads {layout.architecture} "
                f"computing the grown function{folded}")
    return (f"stock from_pretrained: refuses (the weights are in {TREATED_WEIGHTS}: the model "
            "needs growdsl's gate, pooling or factorized FFN to compute its function; load it "
            "with growdsl, or finish the treatment first)")


def _verify(src_dir: Path, out_dir: Path, steps: list, growth_seed: int, what: str,
            drop: tuple[str, ...]) -> None:
    from growdsl.backend.verify import verify_steps, verify_written

    checks = verify_steps(src_dir, steps, growth_seed, drop=drop)
    for check in checks:
        status = "BROKEN" if check.broken else "ok"
        print(f"verify {check.op}: {check.verdict}, {what} max |diff| {check.diff.max_abs:.3g} "
              f"(relative {check.diff.max_rel:.3g}) {status}")
    written = verify_written(src_dir, out_dir, steps, growth_seed, drop=drop)
    print(f"verify written checkpoint vs in-memory growth: max |diff| {written.max_abs:.3g}")
    if any(c.broken for c in checks) or written.max_abs > 1e-5:
        print("error: an operator whose verdict is exact did not preserve the function",
              file=sys.stderr)
        raise SystemExit(1)
