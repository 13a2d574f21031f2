"""The static half of `growdsl grow`: `--to` and `--ops` lowered against a checkpoint's
shape and walked through the operators, every refusal a located diagnostic (no torch).

Errors point into the option's text (`--ops:1:7: error[E410]: ...`, the option shown with a
caret) and speak of the checkpoint and the target, not of stages: an operator's message,
written for a `.grow` file ("this stage", "the next stage"), is reworded here.

>>> for_checkpoints("`stack` grows layers, but the next stage has layers 4 -> 2")
'`stack` grows layers, but the target (--to) has layers 4 -> 2'
"""

from __future__ import annotations

import dataclasses
import re

from growdsl import families
from growdsl.checks.shapes import _suggest as suggest
from growdsl.checks.shapes import shape_problems
from growdsl.errors import Diagnostic, GrowError
from growdsl.hf_config import operator_problems
from growdsl.ir import Growth
from growdsl.lower import lower_growth_cli
from growdsl.operators import REGISTRY, GrowthStepError, OpResult, apply_growth, structural_diff
from growdsl.operators.base import APPROXIMATE, EXACT, Verdict
from growdsl.shapes import Shape
from growdsl.source import NO_SPAN, Source, Span

# Stage words of the operators' messages -> checkpoint words (longest first).
_WORDS = (
    (r"\bthe next stage's\b", "the target's"),
    (r"\bthe next stage\b", "the target (--to)"),
    (r"\bthe next-stage\b", "the target"),
    (r"\ba next-stage\b", "a target"),
    (r"\bthis stage's\b", "the checkpoint's"),
    (r"\bthis stage\b", "the checkpoint"),
    (r"\bthis growth step\b", "--ops"),
    (r"\bgive the checkpoint\b", "grow a checkpoint with"),
    (r"\ba stage with\b", "a checkpoint with"),
    (r"\bstage\b", "checkpoint"),
)


def for_checkpoints(text: str) -> str:
    """An operator's message or help, worded for `growdsl grow`."""
    for pattern, words in _WORDS:
        text = re.sub(pattern, words, text)
    return text


def plan_grow(to: str, ops: str, src: Shape, *, bare: bool = False
              ) -> tuple[Shape, Growth, Shape, list[OpResult]]:
    """(target, growth step, final shape, per-operator results) of `grow --to TO --ops OPS`
    on a checkpoint of shape `src` (`bare`: without an LM head); GrowError, located in
    `--to` / `--ops`, when the options are wrong or an operator cannot apply."""
    dst, growth = lower_growth_cli(to, ops, src)
    to_source, ops_source = Source(path="--to", text=to), Source(path="--ops", text=ops)
    problems = shape_problems(dst)
    if problems:
        raise GrowError([Diagnostic(code=code, message=f"the target: {message}", help=help,
                                    source=to_source, span=_whole(to))
                         for code, message, help in problems])
    try:
        final, results = apply_growth(src, dst, growth)
    except GrowthStepError as err:
        raise GrowError([Diagnostic(code="E410", message=for_checkpoints(err.message),
                                    span=err.call.span or NO_SPAN, source=ops_source,
                                    help=for_checkpoints(err.hint) if err.hint else None)]
                        ) from None
    diff = structural_diff(final, dst)
    if diff:
        changes = ", ".join(f"{f} {getattr(final, f)} -> {getattr(dst, f)}" for f in diff)
        raise GrowError([Diagnostic(
            code="E412", source=to_source, span=_whole(to),
            message=f"the target changes {changes}, but no operator in --ops changes "
                    + ("it" if len(diff) == 1 else "them"),
            help=f"add `{suggest(diff)}` to --ops, or drop {', '.join(diff)} from --to")])
    refusals = [Diagnostic(code="E420", source=ops_source, span=r.call.span or NO_SPAN,
                           message=for_checkpoints(problem),
                           help="use another operator for this growth, or a checkpoint "
                                "without this setting (docs/operators.md: config fields by "
                                "operator)")
                for r in results for problem in operator_problems(
                    r.before, r.call.name, REGISTRY[r.call.name].dims)]
    if refusals:
        raise GrowError(refusals)
    for result in results:
        call, before, after = result.call, result.before, result.after
        if bare and call.name == "masked" and after.layers > before.layers \
                and not families.get(before.family).pre_ln:
            raise GrowError([Diagnostic(
                code="E737", source=ops_source, span=call.span or NO_SPAN,
                message=f"a bare {before.family} checkpoint cannot carry the gate `masked` puts "
                        "on new layers of a post-LN model",
                help="grow the checkpoint with its LM head, or use `stack`")])
    return dst, growth, final, results


HALF = ("float16", "bfloat16")
_WIDTH_OPS = ("fpi", "clone")


def in_dtype(results: list[OpResult], dtype: str | None) -> list[OpResult]:
    """The results with their verdicts for weights stored in `dtype` (config.json's
    `torch_dtype`): in half precision a width operator divides copies by their count, which
    rounds unless every count is a power of two (whole multiples 2, 4, ...), so such an
    exact verdict becomes approximate."""
    if dtype not in HALF:
        return results
    out = []
    for result in results:
        call, before, after, verdict = result.call, result.before, result.after, result.verdict
        if call.name in _WIDTH_OPS and verdict.kind == EXACT:
            odd = [d for d in ("hidden", "heads", "kv_heads", "ffn")
                   if not _power_of_two_multiple(getattr(before, d), getattr(after, d))]
            if odd or call.args.get("mapping") == "random":
                verdict = Verdict(kind=APPROXIMATE, reason=(
                    f"in {dtype}, copies of {', '.join(odd) or 'units'} are divided by counts "
                    "that are not all powers of two, which round"))
        out.append(dataclasses.replace(result, verdict=verdict))
    return out


def _power_of_two_multiple(old: int, new: int) -> bool:
    k = new // old if old and new % old == 0 else 0
    return k > 0 and k & (k - 1) == 0


def _whole(text: str) -> Span:
    return Span(line=1, col=1, end_line=1, end_col=max(2, len(text) + 1))
