"""Evaluating expressions of the language: exact arithmetic over numbers with unit
suffixes (200k, 1.5M, 30B) and the target's symbols (L, D, ffn, ...).

Arithmetic is done in `Fraction`s so `L/4` is exact and a non-whole result is caught,
not rounded. Failures raise `EvalError` with the span at fault; `lower` collects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from growdsl import ast
from growdsl.errors import Diagnostic, did_you_mean
from growdsl.keys import UNIT_SUFFIXES
from growdsl.source import Span


class EvalError(Exception):
    """A located mistake in an expression."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def fail(code: str, message: str, span: Span, help: str | None = None) -> EvalError:
    """An EvalError carrying a located diagnostic (for the caller to raise).

    >>> from growdsl.source import NO_SPAN
    >>> fail("E301", "division by zero", NO_SPAN).diagnostic.code
    'E301'
    """
    return EvalError(Diagnostic(code=code, message=message, span=span, help=help))


MAX_EXPONENT = 30          # numbers stay within 1e-30 .. 1e30 (FLOP budgets reach ~1e26)
MAX_WHOLE = 10**18        # steps, tokens
MAX_DIM = 2**24           # a model dimension, a batch


def number(node: ast.Number) -> Fraction:
    """`200k` -> 200000, `1.5M` -> 1500000, `1e-4` -> 1/10000 (exactly).

    >>> number(ast.Number(text="1.5M")), number(ast.Number(text="1e-4"))
    (Fraction(1500000, 1), Fraction(1, 10000))
    """
    text = node.text
    scale = 1
    if text[-1] in UNIT_SUFFIXES:
        scale, text = UNIT_SUFFIXES[text[-1]], text[:-1]
    mantissa, _, exponent = text.lower().partition("e")
    digits = len(mantissa.split(".")[0].lstrip("0"))
    if (exponent and abs(int(exponent)) > MAX_EXPONENT) or digits > MAX_EXPONENT:
        raise fail("E304", f"number `{node.text}` is out of range", node.span,
                   f"growdsl reads numbers between 1e-{MAX_EXPONENT} and 1e{MAX_EXPONENT}")
    return Fraction(text) * scale


def evaluate(node: ast.Value, env: Mapping[str, Fraction]) -> Fraction:
    """The value of an arithmetic expression; symbols are looked up in `env`.

    >>> half = ast.BinOp(op="/", left=ast.Symbol(name="L"), right=ast.Number(text="2"))
    >>> evaluate(half, {"L": Fraction(12)})
    Fraction(6, 1)
    >>> evaluate(ast.Symbol(name="Q"), {"L": Fraction(12)})
    Traceback (most recent call last):
    growdsl.evaluate.EvalError: unknown symbol `Q`
    """
    match node:
        case ast.Number():
            return number(node)
        case ast.Symbol(name=name):
            if name not in env:
                hint = (did_you_mean(name, env) or "symbols: " + ", ".join(sorted(env))
                        if env else "symbols stand for the target's dimensions in shapes and "
                        "stage lengths only; write a number here")
                raise fail("E201", f"unknown symbol `{name}`", node.span, hint)
            return env[name]
        case ast.Neg(operand=operand):
            return -evaluate(operand, env)
        case ast.BinOp(op=op, left=left, right=right):
            a, b = evaluate(left, env), evaluate(right, env)
            if op == "/" and b == 0:
                raise fail("E301", "division by zero", right.span, "a divisor must not be 0")
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
        case ast.Call(name=name):
            raise fail("E302", f"`{name}(...)` is not a number", node.span,
                       "arithmetic takes numbers and symbols only")
        case ast.String() | ast.Tuple():
            raise fail("E302", "expected a number", node.span, None)
    raise TypeError(f"not a value: {node!r}")


def whole(node: ast.Value, env: Mapping[str, Fraction], what: str, minimum: int = 1,
          maximum: int = MAX_WHOLE) -> int:
    """An expression that must be a whole number in [`minimum`, `maximum`].

    >>> whole(ast.Number(text="200k"), {}, "a stage length")
    200000
    >>> whole(ast.Number(text="0.5"), {}, "`depth`")
    Traceback (most recent call last):
    growdsl.evaluate.EvalError: `depth` must be a whole number, got 1/2 = 0.5
    """
    value = evaluate(node, env)
    if value.denominator != 1:
        raise fail("E303", f"{what} must be a whole number, got {_show(value)}", node.span,
                   _divisibility_hint(node, env))
    if value < minimum:
        word = "positive" if minimum == 1 else f"at least {minimum}"
        raise fail("E304", f"{what} must be {word}, got {value}", node.span, None)
    if value > maximum:
        raise fail("E304", f"{what} must be at most {maximum:,}, got {int(value):,}", node.span, None)
    return int(value)


def real(node: ast.Value, env: Mapping[str, Fraction], what: str,
         minimum: float | None = None, maximum: float | None = None) -> float:
    """An expression read as a float, within optional bounds.

    >>> real(ast.Number(text="3e-4"), {}, "lr", minimum=0)
    0.0003
    """
    value = evaluate(node, env)
    if minimum is not None and value < minimum:
        raise fail("E304", f"{what} must be at least {minimum:g}, got {float(value):g}",
                   node.span, None)
    if maximum is not None and value > maximum:
        raise fail("E304", f"{what} must be at most {maximum:g}, got {float(value):g}",
                   node.span, None)
    if abs(value) > 10**MAX_EXPONENT:
        raise fail("E304", f"{what} is out of range: {float(value):g}", node.span, None)
    return float(value)


def _show(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator} = {float(value):.4g}"


def _divisibility_hint(node: ast.Value, env: Mapping[str, Fraction]) -> str | None:
    if isinstance(node, ast.BinOp) and node.op == "/":
        try:
            a, b = evaluate(node.left, env), evaluate(node.right, env)
        except EvalError:
            return None
        return f"{_plain(b)} does not divide {_plain(a)}"
    return None


def _plain(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else _show(value)
