"""Lowering of a growth step's operator calls: names looked up in the operator registry,
arguments checked against each operator's declared parameters."""

from __future__ import annotations

from growdsl import ast
from growdsl.errors import Diagnostic, did_you_mean, one_of
from growdsl.evaluate import EvalError, evaluate
from growdsl.ir import ArgValue, OpCall
from growdsl.operators import REGISTRY
from growdsl.operators.base import Param


def lower_ops(decls: tuple[ast.OpDecl, ...], diagnostics: list[Diagnostic]) -> list[OpCall]:
    """The IR calls of `decls`; mistakes are appended to `diagnostics`."""
    calls = []
    for decl in decls:
        op = REGISTRY.get(decl.name)
        if op is None:
            diagnostics.append(Diagnostic(
                code="E203", message=f"unknown operator `{decl.name}`", span=decl.name_span,
                help=did_you_mean(decl.name, REGISTRY) or one_of(REGISTRY)))
            continue
        args = _args(decl, op.params, diagnostics)
        calls.append(OpCall(name=decl.name, args=args, span=decl.span))
    return calls


def _args(decl: ast.OpDecl, params: dict[str, Param],
          diagnostics: list[Diagnostic]) -> dict[str, ArgValue]:
    out: dict[str, ArgValue] = {}
    seen: set[str] = set()
    names = list(params)
    for position, arg in enumerate(decl.args or ()):
        if isinstance(arg, ast.Item):
            key, node, span = arg.key, arg.value, arg.key_span
        elif position < len(names):
            key, node, span = names[position], arg.value, arg.span
        else:
            diagnostics.append(Diagnostic(
                code="E208", message=f"`{decl.name}` takes {len(names)} argument(s)",
                span=arg.span, help=one_of(names) if names else "write it without arguments"))
            continue
        if key in out or key in seen:
            diagnostics.append(Diagnostic(code="E210", message=f"`{key}` is set twice", span=span,
                                          help=f"`{decl.name}` takes `{key}` once"))
            continue
        seen.add(key)
        if key not in params:
            diagnostics.append(Diagnostic(
                code="E204", message=f"`{decl.name}` has no argument `{key}`", span=span,
                help=did_you_mean(key, params) or (one_of(params) if params else
                                                   "it takes no arguments")))
            continue
        value = _value(node, key, params[key], diagnostics)
        if value is not None:
            out[key] = value
    return out


def _value(node: ast.Value, key: str, param: Param,
           diagnostics: list[Diagnostic]) -> ArgValue | None:
    if param.type is str:
        if isinstance(node, ast.Symbol) and (not param.choices or node.name in param.choices):
            return node.name
        got = node.name if isinstance(node, ast.Symbol) else None
        diagnostics.append(Diagnostic(
            code="E306", message=f"`{key}` must be one of {', '.join(param.choices)}", span=node.span,
            help=did_you_mean(got, param.choices) if got else None))
        return None
    if param.type is bool:
        if isinstance(node, ast.Symbol) and node.name in ("true", "false"):
            return node.name == "true"
        diagnostics.append(Diagnostic(code="E306", message=f"`{key}` must be true or false",
                                      span=node.span))
        return None
    try:
        value = evaluate(node, {})
    except EvalError as exc:
        diagnostics.append(exc.diagnostic)
        return None
    if param.type is int:
        if value.denominator != 1 or value < param.minimum:
            diagnostics.append(Diagnostic(code="E303", span=node.span,
                                          message=f"`{key}` must be a whole number >= {param.minimum}"))
            return None
        return int(value)
    return float(value)
