"""AST -> canonical text (`growdsl fmt`): the other half of the parse/print round trip.

Canonical form: one statement per line (a `train` block one setting per line), stage
settings `key=value` separated by single spaces, train settings `key = value`, minimal
parentheses, comments kept (own-line comments before the statement that follows them,
trailing ones after the line they ended), at most one blank line between statements.
"""

from __future__ import annotations

from collections.abc import Iterable

from growdsl import ast

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def expr(node: ast.Value, parent: int = 0, right: bool = False) -> str:
    """Print a value with only the parentheses its precedence needs.

    >>> from growdsl.parser import parse_fragment
    >>> from growdsl.source import Source
    >>> (item,) = parse_fragment(Source(path="-", text="d = ((L)/(2)) * (D + 1)"), "settings")
    >>> expr(item.value)
    'L/2*(D + 1)'
    """
    match node:
        case ast.Number(text=text) | ast.String(text=text):
            return text
        case ast.Symbol(name=name):
            return name
        case ast.Neg(operand=operand):
            inner = expr(operand, 3)
            return f"-{inner}"
        case ast.BinOp(op=op, left=left, right=rhs):
            prec = _PRECEDENCE[op]
            text = f"{expr(left, prec)}{_spaced(op)}{expr(rhs, prec, right=True)}"
            needs = prec < parent or (right and prec == parent)
            return f"({text})" if needs else text
        case ast.Call(name=name, args=args):
            return f"{name}{call_args(args)}"
        case ast.Tuple(items=items):
            body = ", ".join(expr(i) for i in items)
            return f"({body},)" if len(items) == 1 else f"({body})"
    raise TypeError(f"not a value: {node!r}")


def _spaced(op: str) -> str:
    return f" {op} " if op in "+-" else op


def call_args(args: Iterable[ast.Arg]) -> str:
    """`(a, key=b)`: a call's arguments, canonical.

    >>> call_args([ast.Positional(value=ast.Number(text="10k")),
    ...            ast.Item(key="remainder", value=ast.Symbol(name="top"))])
    '(10k, remainder=top)'
    """
    return "(" + ", ".join(arg(a) for a in args) + ")"


def arg(node: ast.Arg) -> str:
    """One argument or setting written `key=value` (or a positional value).

    >>> arg(ast.Item(key="depth", value=ast.Symbol(name="L")))
    'depth=L'
    """
    if isinstance(node, ast.Item):
        return f"{node.key}={expr(node.value)}"
    return expr(node.value)


def op(node: ast.OpDecl) -> str:
    """An operator call: its name, and its arguments when it was written with parentheses.

    >>> op(ast.OpDecl(name="stack", args=None)), op(ast.OpDecl(name="clone", args=()))
    ('stack', 'clone()')
    """
    return node.name + (call_args(node.args) if node.args is not None else "")


def growth(node: ast.GrowthDecl) -> str:
    """`-> op, op key=value preserve`: a growth step, canonical.

    >>> growth(ast.GrowthDecl(ops=(ast.OpDecl(name="fpi", args=None),),
    ...                       items=(ast.Item(key="seed", value=ast.Number(text="3")),),
    ...                       preserve=True))
    '-> fpi seed=3 preserve'
    """
    parts = ["->", ", ".join(op(o) for o in node.ops)]
    parts += [arg(i) for i in node.items]
    if node.preserve:
        parts.append("preserve")
    return " ".join(parts)


def statement_lines(node: ast.Statement) -> list[str]:
    """The canonical lines of one statement.

    >>> statement_lines(ast.TrainDecl(items=(ast.Item(key="lr", value=ast.Number(text="1e-4")),)))
    ['train {', '  lr = 1e-4', '}']
    """
    match node:
        case ast.ModelDecl(preset=preset, args=args, config=config):
            text = "model " + preset + (call_args(args) if args is not None else "")
            return [text + (f" from {config.text}" if config else "")]
        case ast.InitDecl(path=path):
            return [f"init from {path.text}"]
        case ast.TrainDecl(items=items):
            return ["train {", *(f"  {i.key} = {expr(i.value)}" for i in items), "}"]
        case ast.SweepDecl(items=items):
            return ["sweep {", *(f"  {i.key} = {expr(i.value)}" for i in items), "}"]
        case ast.StageDecl(length=length, unit=unit, items=items, growth=grow):
            head = f"stage {expr(length)}" + (f" {unit}" if unit else "") + ":"
            parts = [head, *(arg(i) for i in items)]
            if grow is not None:
                parts.append(growth(grow))
            return [" ".join(parts)]
        case ast.LimitDecl(kind=kind, metric=metric, cmp=cmp, value=value):
            return [f"{kind} {metric} {cmp} {expr(value)}"]
        case ast.ScratchDecl(length=length, unit=unit):
            return [f"scratch {expr(length)}" + (f" {unit}" if unit else "")]
    raise TypeError(f"not a statement: {node!r}")


def print_file(file: ast.File) -> str:
    r"""The whole file in canonical form, comments included.

    >>> from growdsl.parser import parse
    >>> from growdsl.source import Source
    >>> text = "model  gpt2 # small\ntrain {batch=4}\nstage 10 : depth = L/2->stack\nstage 20:"
    >>> print(print_file(parse(Source(path="m.grow", text=text))), end="")
    model gpt2  # small
    train {
      batch = 4
    }
    stage 10: depth=L/2 -> stack
    stage 20:
    """
    chunks: list[tuple[int, int, list[str]]] = []   # (first line, last line, text)
    pending = sorted(file.comments, key=lambda c: c.span.line)
    for stmt in file.statements:
        first, end = stmt.span.line, stmt.span.end_line
        chunks += [(c.span.line, c.span.line, [c.text]) for c in pending if c.span.line < first]
        inner = [c for c in pending if first <= c.span.line <= end]
        pending = [c for c in pending if c.span.line > end]
        chunks.append((first, end, _with_inner_comments(stmt, inner)))
    chunks += [(c.span.line, c.span.line, [c.text]) for c in pending]
    out: list[str] = []
    prev_end = None
    for first, end, lines in chunks:
        if prev_end is not None and first > prev_end + 1:
            out.append("")
        out.extend(lines)
        prev_end = end
    return "\n".join(out) + "\n"


def _with_inner_comments(stmt: ast.Statement, inner: list[ast.Comment]) -> list[str]:
    """Lines of a statement with the comments written inside or after it."""
    lines = statement_lines(stmt)
    if not inner:
        return lines
    if isinstance(stmt, ast.TrainDecl | ast.SweepDecl):
        return _train_with_comments(stmt, inner)
    trailing = " ".join(c.text for c in inner)
    return [*lines[:-1], f"{lines[-1]}  {trailing}"]


def _train_with_comments(stmt: ast.TrainDecl | ast.SweepDecl,
                         inner: list[ast.Comment]) -> list[str]:
    """A train (or sweep) block: a comment on an item's line trails it; one on its own line
    precedes the next item; one on the opening line trails `train {`; one on the closing
    line trails `}` (a comment runs to the end of its line, so it follows the `}` there,
    even in a one-line block)."""
    tail = [c for c in inner if c.span.line == stmt.span.end_line]
    inner = [c for c in inner if c.span.line != stmt.span.end_line]
    out = ["train {" if isinstance(stmt, ast.TrainDecl) else "sweep {"]
    head = [c for c in inner if c.span.line == stmt.span.line]
    if head:
        out[0] += "  " + " ".join(c.text for c in head)
    rest = [c for c in inner if c.span.line != stmt.span.line]
    for item, following in zip(stmt.items, [*stmt.items[1:], None], strict=False):
        before = [c for c in rest if c.span.line < item.span.line]
        shares_line = following is not None and following.span.line == item.span.end_line
        same = [] if shares_line else [c for c in rest if c.span.line == item.span.end_line]
        taken = {id(c) for c in same}     # by identity: comments with equal text are distinct
        rest = [c for c in rest if c.span.line >= item.span.line and id(c) not in taken]
        out.extend(f"  {c.text}" for c in before)
        line = f"  {item.key} = {expr(item.value)}"
        out.append(line + ("  " + " ".join(c.text for c in same) if same else ""))
    out.extend(f"  {c.text}" for c in rest)
    out.append("}" + ("  " + " ".join(c.text for c in tail) if tail else ""))
    return out
