"""Hover text (Markdown) for what is under the cursor: a stage's resolved shape and costs,
an operator's summary, paper and this step's verdict, a symbol's value, a preset's
dimensions, a key's meaning. Everything shown is read from the compiler's results."""

from __future__ import annotations

from growdsl import ast, families
from growdsl.keys import SYMBOLS, TRAIN_KEYS, format_count
from growdsl.lsp.analysis import Analysis, contains, nodes_at, stage_index
from growdsl.operators import REGISTRY
from growdsl.operators.base import VERDICT_WORDS
from growdsl.shapes import PRESETS, Shape
from growdsl.source import Span


def hover(analysis: Analysis, line: int, col: int) -> tuple[str, Span] | None:
    """Markdown for the innermost thing at 1-based (`line`, `col`), and its span."""
    if analysis.file is None:
        return None
    found = list(nodes_at(analysis.file, line, col))
    stage = next((n for n in found if isinstance(n, ast.StageDecl)), None)
    for node in reversed(found):
        if isinstance(node, ast.OpDecl) and contains(node.name_span, line, col):
            return _operator(analysis, node, stage), node.name_span
        if isinstance(node, ast.ModelDecl) and contains(node.preset_span, line, col):
            text = _preset(node.preset)
            return (text, node.preset_span) if text else None
        if isinstance(node, ast.ScratchDecl) or (isinstance(node, ast.Symbol)
                                                 and node.name == "scratch"):
            text = _scratch(analysis)
            return (text, node.span) if text else None
        if isinstance(node, ast.Symbol) and node.name in SYMBOLS:
            text = _symbol(analysis, node.name)
            return (text, node.span) if text else None
        if isinstance(node, ast.Item) and contains(node.key_span, line, col):
            text = _key(node.key)
            return (text, node.key_span) if text else None
    if stage is not None:
        text = _stage(analysis, stage)
        return (text, stage.span) if text else None
    return None


def shape_lines(s: Shape) -> list[str]:
    """A shape in the language's words, one fact a line."""
    lines = [f"{s.family}: L={s.layers} D={s.hidden} H={s.heads}"
             + (f" KV={s.kv_heads}" if s.kv_heads != s.heads else "")
             + f" FFN={s.ffn} V={s.vocab} T={s.seq} P={s.positions}"]
    treat = [f"FFN stored at {s.ffn // s.ffn_share} (shared {s.ffn_share}x)" if s.ffn_share > 1
             else "", f"FFN rank {s.ffn_rank}" if s.ffn_rank else "",
             f"pooled {s.pool}" if s.pool > 1 else "",
             f"{s.submodels} sub-models" if s.submodels > 1 else ""]
    return lines + [t for t in treat if t]


def _stage(analysis: Analysis, decl: ast.StageDecl) -> str | None:
    graph = analysis.graph
    if graph is None or analysis.file is None:
        return None
    index = stage_index(analysis.file, decl)
    if index not in graph.stages:
        return None
    node = graph.node(index)
    n = format_count
    return "\n\n".join([
        f"**stage `{node.stage.name}`**", *(f"`{x}`" for x in shape_lines(node.stage.shape)),
        f"parameters {n(node.params)} · steps {n(node.steps)} · tokens {n(node.tokens)}",
        f"FLOPs {n(node.flops)} · cumulative {n(node.cum_flops)} of {n(graph.total_flops)} "
        f"(scratch {n(graph.scratch_flops)})",
    ])


def _scratch(analysis: Analysis) -> str | None:
    """The reference run: what it is, and its cost beside the plan's."""
    graph = analysis.graph
    if graph is None:
        return None
    n = format_count
    return "\n\n".join([
        "**scratch**: the reference run", graph.scratch,
        f"FLOPs {n(graph.scratch_flops)} · tokens {n(graph.scratch_tokens)} · the plan "
        f"{n(graph.total_flops)} FLOPs: speedup {graph.speedup:.3f}x (saving {graph.saving:.1f}%)",
    ])


def _operator(analysis: Analysis, decl: ast.OpDecl, stage: ast.StageDecl | None) -> str:
    op = REGISTRY.get(decl.name)
    if op is None:
        return f"`{decl.name}`: not a growth operator"
    parts = [f"**{op.name}**: {op.summary}", f"*{op.paper}*"]
    if op.params:
        parts.append("arguments: " + ", ".join(
            f"`{name}` ({p.doc or p.type.__name__}; default `{p.default}`)"
            for name, p in op.params.items()))
    graph = analysis.graph
    if graph is not None and stage is not None and analysis.file is not None:
        index = stage_index(analysis.file, stage)
        result = graph.steps.get((index, index + 1))
        ops = result.ops if result else ()
        found = (next((r for r in ops if r.call.span == decl.span), None)
                 or next((r for r in ops if r.call.name == decl.name), None))
        if found is not None:
            parts.append(f"this step: **{VERDICT_WORDS[found.verdict.kind]}**: "
                         f"{found.verdict.reason}")
            parts.append(f"`{shape_lines(found.before)[0]}` → `{shape_lines(found.after)[0]}`")
    return "\n\n".join(parts)


def _symbol(analysis: Analysis, name: str) -> str | None:
    if analysis.plan is None:
        return None
    field = SYMBOLS[name]
    value = getattr(analysis.plan.target, field)
    return f"`{name}` = **{value}**: the target model's `{field}`"


def _preset(name: str) -> str | None:
    if name in PRESETS:
        return f"**preset `{name}`**\n\n`{shape_lines(PRESETS[name])[0]}`"
    if name in families.names():
        default = families.get(name).default_preset
        return (f"**family `{name}`**: the dimensions of `{default}` unless set\n\n"
                f"`{shape_lines(PRESETS[default])[0]}`")
    return None


def _key(key: str) -> str | None:
    spec = TRAIN_KEYS.get(key)
    if spec is None:
        return None
    what = f"one of {', '.join(spec.choices)}" if spec.choices else spec.type
    where = "plan-wide (`train { }` only)" if spec.plan_wide else "in `train { }` or a stage"
    return f"**{key}**: {what}; {where}"
