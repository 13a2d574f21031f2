"""Shape checks: the target's and every stage's shape is well formed (a mistake in the
target is reported at the `model` statement), every growth step's operators turn the
previous shape exactly into the next, nothing changes without an operator, and the last
stage is the target in every field."""

from __future__ import annotations

from growdsl import families
from growdsl.errors import Diagnostic
from growdsl.ir import Plan, Stage
from growdsl.operators import REGISTRY, TRAINING_ONLY, structural_diff
from growdsl.plan import GrowthResult, StageGraph
from growdsl.shapes import Shape

POSITIVE = ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "seq",
            "positions", "ffn_share", "pool", "submodels")


def run(plan: Plan, graph: StageGraph) -> list[Diagnostic]:
    found = target_shape(plan)
    inherited = set(shape_problems(plan.target))
    malformed = set()
    for stage in plan.stages:
        problems = shape_problems(stage.shape)
        if problems:
            malformed.add(stage.index)
        found += [_err(code, f"{stage.name}: {message}", stage, help)
                  for code, message, help in problems if (code, message, help) not in inherited]
    for src, dst in zip(plan.stages, plan.stages[1:], strict=False):
        if {src.index, dst.index} & malformed:
            continue  # a malformed stage's growth errors would only repeat its own
        found += growth_chain(src, dst, graph.growth_into(dst.index))
    if plan.stages:
        found += last_is_target(plan)
    return found


def _err(code: str, message: str, stage: Stage, help: str | None = None) -> Diagnostic:
    return Diagnostic(code=code, message=message, span=stage.span, help=help)


def target_shape(plan: Plan) -> list[Diagnostic]:
    """The target model's own shape, located at the `model` statement (a stage that only
    inherits the mistake is not reported again)."""
    return [Diagnostic(code=code, message=f"the target model: {message}", span=plan.model.span,
                       help=help) for code, message, help in shape_problems(plan.target)]


Problem = tuple[str, str, str]      # code, message, help


def shape_problems(s: Shape) -> list[Problem]:
    """Positive integers and the divisibility rules of one shape."""
    bad = [f for f in POSITIVE if getattr(s, f) <= 0] + (["ffn_rank"] if s.ffn_rank < 0 else [])
    if bad:
        return [("E402", f"{', '.join(f'{f}={getattr(s, f)}' for f in bad)} must be positive",
                 "every dimension is a whole number above 0")]
    out = []
    if s.hidden % s.heads:
        out.append(("E403", f"{s.heads} heads do not divide the hidden size {s.hidden}",
                    _divisors_help("heads", s.hidden, s.heads)))
    elif not families.get(s.family).free_head_dim and s.heads * s.head_dim != s.hidden:
        out.append(("E403", f"{s.heads} heads of size {s.head_dim} do not make the hidden size "
                    f"{s.hidden}", f"{s.family} needs heads x head size = hidden"))
    if s.heads % s.kv_heads:
        out.append(("E404", f"{s.kv_heads} key/value heads do not divide the {s.heads} heads",
                    _divisors_help("kv_heads", s.heads, s.kv_heads)))
    if s.ffn % s.ffn_share:
        out.append(("E405", f"sharing factor {s.ffn_share} does not divide the FFN size {s.ffn}",
                    _divisors_help("share", s.ffn, s.ffn_share)))
    out += _pooling(s)
    if s.seq > s.positions:
        out.append(("E407", f"sequence length {s.seq} is longer than the {s.positions} "
                    "positions", f"use seq <= {s.positions}, or grow the positions with "
                    f"`{_suggest(['positions'])}`"))
    if s.ffn_rank and s.ffn_rank >= min(s.hidden, s.ffn_stored):
        out.append(("E408", f"FFN rank {s.ffn_rank} is not below min(hidden, ffn) = "
                    f"{min(s.hidden, s.ffn_stored)}",
                    "a factorization only saves compute at a smaller rank"))
    if s.submodels > s.layers:
        out.append(("E414", f"{s.submodels} sub-models of a {s.layers}-layer model: each "
                    "sub-model is the bottom ceil(L j / n) layers, so at most one per layer",
                    f"use submodels <= {s.layers} (it need not divide the layers)"))
    return out


def _pooling(s: Shape) -> list[Problem]:
    """Pooling runs for BERT only, on windows that fit the tokens after [CLS] (the last
    window may be short: [CLS] + ceil((T-1)/p) positions)."""
    if s.pool <= 1:
        return []
    if not families.get(s.family).pooling:
        pooled = ", ".join(n for n in families.names() if families.get(n).pooling)
        return [("E409", f"embedding pooling (pool={s.pool}) is only implemented for {pooled}, "
                 f"not {s.family}", "drop `pool=`: CompoundGrow pools a bidirectional encoder's "
                 "queries; a causal LM predicts at every position")]
    if s.pool > s.seq - 1:
        return [("E406", f"pooling window {s.pool} is longer than the {s.seq - 1} positions "
                 "after [CLS] that it pools",
                 f"use pool <= {max(s.seq - 1, 1)}: the first layer's queries are [CLS] plus "
                 "ceil((seq-1)/pool) windows, the last one possibly short")]
    return []


def _divisors_help(key: str, whole: int, got: int) -> str:
    near = sorted((d for d in range(1, whole + 1) if whole % d == 0), key=lambda d: abs(d - got))
    return f"{key} must divide {whole}; the nearest that do: " + ", ".join(map(str, near[:3]))


def growth_chain(src: Stage, dst: Stage, result: GrowthResult | None) -> list[Diagnostic]:
    """The growth step out of `src` reaches `dst`'s shape exactly (or there is none and
    nothing changes)."""
    if result is None:
        diff = structural_diff(src.shape, dst.shape)
        if not diff:
            return []
        return [_err("E411", f"{src.name} -> {dst.name} changes {_changes(src.shape, dst.shape, diff)}"
                     f", but {src.name} has no growth step", src,
                     f"end {src.name} with `-> {_suggest(diff)}`")]
    if result.error is not None:
        err = result.error
        return [Diagnostic(code="E410", message=f"{src.name} -> {dst.name}: {err.message}",
                           span=err.call.span, help=err.hint)]
    assert result.final is not None
    diff = structural_diff(result.final, dst.shape)
    if not diff:
        return []
    assert src.growth is not None
    shrink = [d for d in diff if _smaller(result.final, dst.shape, d)]
    what = "shrinks" if shrink and len(shrink) == len(diff) else "changes"
    return [Diagnostic(code="E412", message=f"{src.name} -> {dst.name} {what} "
                       f"{_changes(result.final, dst.shape, diff)}, but no operator of this "
                       "growth step changes " + ("it" if len(diff) == 1 else "them"),
                       span=src.growth.span,
                       help=(f"growth never shrinks a model: {src.name} may have at most "
                             f"{_values(dst.shape, shrink)}") if shrink
                       else f"add `{_suggest(diff)}` to this growth step")]


def _smaller(a: Shape, b: Shape, field: str) -> bool:
    x, y = getattr(a, field), getattr(b, field)
    return isinstance(x, int) and not isinstance(x, bool) and y < x


def _changes(a: Shape, b: Shape, fields: list[str]) -> str:
    return ", ".join(f"{f} {getattr(a, f)} -> {getattr(b, f)}" for f in fields)


def _values(a: Shape, fields: list[str]) -> str:
    return " ".join(f"{f}={getattr(a, f)}" for f in fields)


def _suggest(fields: list[str]) -> str:
    """Operators that own the changed fields (first owner of each), for a `help:` line."""
    names: list[str] = []
    for f in fields:
        owner = next((n for n, op in REGISTRY.items() if f in op.dims), None)
        if owner and owner not in names:
            names.append(owner)
    return ", ".join(names) if names else "..."


def last_is_target(plan: Plan) -> list[Diagnostic]:
    """The last stage is the target: in every field, training-only ones (seq, submodels)
    included; those may differ in earlier stages only."""
    last = plan.stages[-1]
    diff = structural_diff(last.shape, plan.target) + [
        f for f in TRAINING_ONLY if getattr(last.shape, f) != getattr(plan.target, f)]
    if not diff:
        return []
    return [_err("E413", f"the last stage {last.name} is not the target model: "
                 f"{_changes(last.shape, plan.target, diff)}", last,
                 "add a stage of the full model after a growth step, or remove "
                 f"{', '.join(diff)} from {last.name}")]
