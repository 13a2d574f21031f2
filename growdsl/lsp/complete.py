"""Completion candidates from the language's own tables (keys, presets, operators and their
arguments, symbols, unit suffixes, allowed words), chosen by what precedes the cursor.

`candidates(text, line, col)` returns (label, kind, detail) triples; kind is one of
"keyword", "key", "preset", "operator", "argument", "symbol", "unit", "value".
"""

from __future__ import annotations

import re

from growdsl import families
from growdsl.keys import (
    BOOLEANS,
    LIMIT_METRICS,
    MODEL_KEYS,
    POOL_MODES,
    STAGE_SHAPE_KEYS,
    SYMBOLS,
    TRACKERS,
    TRAIN_KEYS,
    UNIT_SUFFIXES,
)
from growdsl.operators import REGISTRY
from growdsl.shapes import PRESETS

Candidate = tuple[str, str, str]

STATEMENTS: tuple[Candidate, ...] = (
    ("model", "keyword", "the target model: `model PRESET` or `model FAMILY(key=value, ...)`"),
    ("init", "keyword", 'start from a checkpoint: `init from "DIR"`'),
    ("train", "keyword", "training settings for every stage: `train { key = value }`"),
    ("stage", "keyword", "a stage: `stage LENGTH: key=value ... -> op, ...`"),
    ("budget", "keyword", "a limit: `budget flops <= 0.6 * scratch`"),
    ("expect", "keyword", "a limit: `expect speedup >= 1.5`"),
    ("scratch", "keyword", "the reference run `scratch` means: `scratch 1M steps` "
                           "(default: the target for the plan's own steps)"),
)

_UNIT_WORDS = {"k": "thousand", "M": "million", "B": "billion", "T": "trillion"}


def candidates(text: str, line: int, col: int) -> list[Candidate]:
    """What may be written at 1-based (`line`, `col`) of `text`."""
    before = _prefix(text, line, col)
    current = before.rsplit("\n", 1)[-1]
    statement = _statement(before)
    if re.search(r"(?<![A-Za-z_0-9.])[0-9.]*[0-9]$", current):
        return [(u, "unit", f"x {UNIT_SUFFIXES[u]:,} ({_UNIT_WORDS[u]})") for u in UNIT_SUFFIXES]
    if statement == "model" and re.search(r"^\s*model\s+[\w.-]*$", current):
        return ([(p, "preset", _preset_detail(p)) for p in PRESETS]
                + [(f, "preset", "a family (dimensions set in parentheses)") for f in families.names()])
    op_args = re.search(r"(\w+)\(([^()]*)$", current)
    if statement == "stage" and op_args and op_args.group(1) in REGISTRY:
        params = REGISTRY[op_args.group(1)].params
        return [(f"{name}=", "argument", p.doc or p.type.__name__) for name, p in params.items()]
    if statement == "model" and op_args:
        return [(f"{k}=", "key", f"the model's {v}") for k, v in MODEL_KEYS.items()]
    value = re.search(r"(\w+)\s*=\s*[\w.]*$", current)
    if value:
        return _values(value.group(1))
    if statement == "stage" and re.search(r"(->|,)\s*\w*$", _since_statement(before)):
        return [(name, "operator", op.summary) for name, op in REGISTRY.items()]
    if statement in ("budget", "expect") and re.search(rf"{statement}\s+\w*$", current):
        return [(m, "key", f"a {statement} metric") for m in LIMIT_METRICS[statement]]
    if statement == "budget" and re.search(r"[<>=]=?\s*[^#]*[*]\s*\w*$", current):
        return [("scratch", "symbol", "the reference run (the plan's `scratch` statement, or "
                                      "the target for the plan's own steps)")]
    if statement == "scratch" and re.search(r"^\s*scratch\s+\S+\s+\w*$", current):
        return [("steps", "unit", "the reference run's length counts optimizer steps"),
                ("tokens", "unit", "the reference run's length counts training tokens")]
    if statement == "train" and before.count("{") > before.count("}"):
        return [(k, "key", _train_detail(k)) for k in TRAIN_KEYS]
    if statement == "stage" and ":" in _since_statement(before):
        return ([(k, "key", f"the stage's {v}") for k, v in STAGE_SHAPE_KEYS.items()]
                + [(k, "key", _train_detail(k)) for k, s in TRAIN_KEYS.items() if not s.plan_wide]
                + [("name", "key", "the stage's name"), ("->", "keyword", "grow into the next stage")]
                + [(s, "keyword", "") for s, *_ in STATEMENTS])
    if statement == "stage":
        return [("steps", "unit", "the length counts optimizer steps"),
                ("tokens", "unit", "the length counts training tokens")]
    return list(STATEMENTS)


def _values(key: str) -> list[Candidate]:
    spec = TRAIN_KEYS.get(key)
    if spec is not None and spec.choices:
        return [(c, "value", f"`{key}` = {c}") for c in spec.choices]
    if key == "pool":
        return [(f"{m}(2)", "value", f"{m} pooling of 2 positions") for m in POOL_MODES]
    if key == "tied":
        return [(b, "value", "") for b in BOOLEANS]
    if key == "report_to":
        return ([(t, "value", f"report to {t} (pip package `{p}`)") for t, p in TRACKERS.items()]
                + [("none", "value", "no tracker: only metrics.csv")])
    return [(s, "symbol", f"the target's {f}") for s, f in SYMBOLS.items() if len(s) <= 2]


def _prefix(text: str, line: int, col: int) -> str:
    lines = text.split("\n")[:line]
    if lines:
        lines[-1] = lines[-1][: col - 1]
    # comments are not code: drop them from what the context is read from
    return "\n".join(re.sub(r'#[^"\n]*$', "", x) for x in lines)


_STATEMENT_RE = re.compile(r"(?m)^\s*(model|init|train|stage|budget|expect|scratch)\b")


def _statement(before: str) -> str | None:
    found = _STATEMENT_RE.findall(before)
    return found[-1] if found else None


def _since_statement(before: str) -> str:
    starts = [m.start() for m in _STATEMENT_RE.finditer(before)]
    return before[starts[-1]:] if starts else before


def _preset_detail(name: str) -> str:
    s = PRESETS[name]
    return f"{s.family} L={s.layers} D={s.hidden} H={s.heads} FFN={s.ffn}"


def _train_detail(key: str) -> str:
    spec = TRAIN_KEYS[key]
    return f"one of {', '.join(spec.choices)}" if spec.choices else spec.type
