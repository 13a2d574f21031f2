"""Lowering of a growth step's operator calls: names looked up in the operator registry,
arguments checked against each operator's declared parameters."""

from __future__ import annotations

from growdsl import ast
from growdsl.errors import did_you_mean, one_of
from growdsl.evaluate import EvalError, evaluate
from growdsl.ir import ArgValue, OpCall
from growdsl.lower_common import Collector
from growdsl.operators import REGISTRY
from growdsl.operators.base import Param


def lower_ops(c: Collector, decls: tuple[ast.OpDecl, ...]) -> list[OpCall]:
    """The IR calls of `decls`; mistakes are recorded on `c`.

    >>> from growdsl.parser import parse_fragment
    >>> from growdsl.source import Source
    >>> source = Source(path="--ops", text="masked(10k), stak")
    >>> c = Collector(source)
    >>> lower_ops(c, parse_fragment(source, "ops").ops)
    [OpCall(name='masked', args={'ramp': 10000}, span=Span(line=1, col=1, end_line=1, end_col=12))]
    >>> [(d.code, d.message, d.help) for d in c.diagnostics]
    [('E203', 'unknown operator `stak`', 'did you mean `stack`?')]
    """
    calls = []
    for decl in decls:
        op = REGISTRY.get(decl.name)
        if op is None:
            c.error("E203", f"unknown operator `{decl.name}`", decl.name_span,
                    did_you_mean(decl.name, REGISTRY) or one_of(REGISTRY))
            continue
        args = _args(c, decl, op.params)
        calls.append(OpCall(name=decl.name, args=args, span=decl.span))
    return calls


def _args(c: Collector, decl: ast.OpDecl, params: dict[str, Param]) -> dict[str, ArgValue]:
    out: dict[str, ArgValue] = {}
    seen: set[str] = set()
    names = list(params)
    for position, arg in enumerate(decl.args or ()):
        if isinstance(arg, ast.Item):
            key, node, span = arg.key, arg.value, arg.key_span
        elif position < len(names):
            key, node, span = names[position], arg.value, arg.span
        else:
            c.error("E208", f"`{decl.name}` takes {len(names)} argument(s)", arg.span,
                    one_of(names) if names else "write it without arguments")
            continue
        if key in out or key in seen:
            c.error("E210", f"`{key}` is set twice", span, f"`{decl.name}` takes `{key}` once")
            continue
        seen.add(key)
        if key not in params:
            c.error("E204", f"`{decl.name}` has no argument `{key}`", span,
                    did_you_mean(key, params) or (one_of(params) if params else
                                                  "it takes no arguments"))
            continue
        value = _value(c, node, key, params[key])
        if value is not None:
            out[key] = value
    return out


def _value(c: Collector, node: ast.Value, key: str, param: Param) -> ArgValue | None:
    if param.type is str:
        if isinstance(node, ast.Symbol) and (not param.choices or node.name in param.choices):
            return node.name
        got = node.name if isinstance(node, ast.Symbol) else None
        c.error("E306", f"`{key}` must be one of {', '.join(param.choices)}", node.span,
                did_you_mean(got, param.choices) if got else None)
        return None
    if param.type is bool:
        if isinstance(node, ast.Symbol) and node.name in ("true", "false"):
            return node.name == "true"
        c.error("E306", f"`{key}` must be true or false", node.span)
        return None
    try:
        value = evaluate(node, {})
    except EvalError as exc:
        c.add(exc.diagnostic)
        return None
    if param.type is int:
        if value.denominator != 1 or value < param.minimum:
            c.error("E303", f"`{key}` must be a whole number >= {param.minimum}", node.span)
            return None
        return int(value)
    return float(value)
