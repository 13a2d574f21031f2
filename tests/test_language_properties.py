"""Property tests of the front end: nothing but a GrowError ever escapes, and the
formatter's output parses back to the same tree."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from growdsl import ast, ir_json
from growdsl.checks import check_plan
from growdsl.driver import load_text
from growdsl.errors import GrowError
from growdsl.parser import grammar_text, parse
from growdsl.plan import build
from growdsl.printer import print_file
from growdsl.source import Source

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "specs").glob("*/*.grow"))
KEYWORDS = {"model", "init", "train", "stage", "scratch", "preserve", "from", "steps", "tokens", "budget",
            "expect"}


def _front_end(text: str) -> None:
    """Parse, lower, check, plan and emit; a user mistake is fine, anything else is a bug."""
    try:
        _, plan = load_text(text, "fuzz.grow")
    except GrowError as error:
        assert error.render()
        return
    diagnostics = check_plan(plan)
    build(plan)
    if not diagnostics:
        ir_json.to_json(plan)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(from_lark(Lark(grammar_text(), parser="lalr", start="start"),
                 explicit={"WS": st.sampled_from([" ", "\n", "  "]),
                           "COMMENT": st.just("# note\n")}))
def test_grammar_generated_inputs_only_raise_grow_errors(text: str) -> None:
    _front_end(text)


@st.composite
def _mutated_spec(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SPECS)).read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        how = draw(st.sampled_from(["delete", "insert", "duplicate", "truncate"]))
        if how == "delete":
            text = text[:i] + text[j:]
        elif how == "insert":
            noise = draw(st.text(alphabet="-=*/(),:{}#\"0123456789kMLDFx _\n", max_size=4))
            text = text[:i] + noise + text[i:]
        elif how == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i]
    return text


@settings(max_examples=300, deadline=None)
@given(_mutated_spec())
def test_mutated_specs_only_raise_grow_errors(text: str) -> None:
    _front_end(text)


# ---- generated syntax trees ----
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in KEYWORDS)
_presets = st.from_regex(r"[a-z][a-z0-9]{0,5}(-[a-z0-9.]{1,4}){0,2}", fullmatch=True).filter(
    lambda n: n not in KEYWORDS)
_numbers = st.from_regex(r"([0-9]{1,4}|[0-9]{1,3}\.[0-9]{1,3})([eE]-?[0-9])?[kMBT]?", fullmatch=True)
_strings = st.from_regex(r'"[a-z/._ -]{0,10}"', fullmatch=True)


def _exprs() -> st.SearchStrategy[ast.Expr]:
    atoms = st.one_of(st.builds(lambda t: ast.Number(text=t), _numbers),
                      st.builds(lambda n: ast.Symbol(name=n), _names))
    return st.recursive(atoms, lambda sub: st.one_of(
        st.builds(lambda o: ast.Neg(operand=o), sub),
        st.builds(lambda op, a, b: ast.BinOp(op=op, left=a, right=b),
                  st.sampled_from("+-*/"), sub, sub),
    ), max_leaves=6)


def _values() -> st.SearchStrategy[ast.Value]:
    base = st.one_of(_exprs(), st.builds(lambda t: ast.String(text=t), _strings))
    return st.recursive(base, lambda sub: st.one_of(
        st.builds(lambda items: ast.Tuple(items=tuple(items)), st.lists(sub, min_size=1, max_size=3)),
        st.builds(lambda n, args: ast.Call(name=n, args=args), _names, _args(sub)),
    ), max_leaves=5)


def _items(values: st.SearchStrategy[ast.Value]) -> st.SearchStrategy[ast.Item]:
    return st.builds(lambda k, v: ast.Item(key=k, value=v), _names, values)


def _args(values: st.SearchStrategy[ast.Value]) -> st.SearchStrategy[tuple[ast.Arg, ...]]:
    arg = st.one_of(_items(values), st.builds(lambda v: ast.Positional(value=v), values))
    return st.lists(arg, max_size=3).map(tuple)


def _statements() -> st.SearchStrategy[ast.Statement]:
    values, items = _values(), _items(_values())
    op = st.builds(lambda n, a: ast.OpDecl(name=n, args=a), _names, st.none() | _args(values))
    growth = st.builds(lambda ops, its, p: ast.GrowthDecl(ops=tuple(ops), items=tuple(its), preserve=p),
                       st.lists(op, min_size=1, max_size=3), st.lists(items, max_size=2), st.booleans())
    return st.one_of(
        st.builds(lambda p, a, c: ast.ModelDecl(preset=p, args=a, config=c), _presets,
                  st.none() | _args(values), st.none() | st.builds(lambda t: ast.String(text=t), _strings)),
        st.builds(lambda t: ast.InitDecl(path=ast.String(text=t)), _strings),
        st.builds(lambda its: ast.TrainDecl(items=tuple(its)), st.lists(items, max_size=4)),
        st.builds(lambda n, u, its, g: ast.StageDecl(length=n, unit=u, items=tuple(its), growth=g),
                  _exprs(), st.sampled_from([None, "steps", "tokens"]), st.lists(items, max_size=3),
                  st.none() | growth),
        st.builds(lambda k, m, c, v: ast.LimitDecl(kind=k, metric=m, cmp=c, value=v),
                  st.sampled_from(["budget", "expect"]), _names,
                  st.sampled_from(["<=", ">=", "<", ">", "=="]), _exprs()),
        st.builds(lambda n, u: ast.ScratchDecl(length=n, unit=u), _exprs(),
                  st.sampled_from([None, "steps", "tokens"])),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_statements(), min_size=1, max_size=5))
def test_printed_trees_parse_back_to_the_same_tree(statements: list[ast.Statement]) -> None:
    tree = ast.File(statements=tuple(statements))
    text = print_file(tree)
    again = parse(Source(path="printed.grow", text=text))
    assert again == tree
    assert print_file(again) == text


@settings(max_examples=100, deadline=None)
@given(_mutated_spec())
def test_fmt_is_idempotent_on_whatever_parses(text: str) -> None:
    try:
        tree = parse(Source(path="m.grow", text=text))
    except GrowError:
        return
    once = print_file(tree)
    assert print_file(parse(Source(path="m.grow", text=once))) == once
