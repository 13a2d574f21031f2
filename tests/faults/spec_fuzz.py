"""A seeded spec fuzzer: plausible `.grow` plans generated from the language's own
vocabulary (`keys`, the operator registry, presets), and mutations of them and of the
shipped specs (cut, spliced, numbers pushed to extremes, tokens duplicated or dropped).

`fuzz(seed, count, seconds)` runs each through the whole front end (parse, lower, every
planner check, the stage graph, the JSON form) and returns how many it ran and every
exception that was not a `GrowError`, with the spec that raised it. Deterministic in
`seed`; stops early only when `seconds` run out (it then says so)."""

from __future__ import annotations

import random
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from growdsl import families, ir_json
from growdsl.checks import check_plan
from growdsl.driver import load_text
from growdsl.errors import GrowError
from growdsl.keys import MODEL_KEYS, STAGE_SHAPE_KEYS, SYMBOLS, TRAIN_KEYS
from growdsl.operators import REGISTRY
from growdsl.plan import build
from growdsl.shapes import PRESETS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [p.read_text(encoding="utf-8") for p in sorted(REPO.glob("specs/*/*.grow"))]
NUMBERS = ["0", "1", "2", "3", "4", "8", "12", "16", "64", "128", "768", "1k", "2k", "1M",
           "1B", "1T", "-3", "1e9", "1e12", "0.5", "1.5", "2e-3", "16777216", "16777217",
           "99999999999999999999", "1/0", "0/0"]
SYMBOL_NAMES = sorted(SYMBOLS)
WORDS = ["true", "false", "linear", "cosine", "restart", "continue", "reset", "transfer",
         "transform", "adamw", "sgd", "fp16", "bf16", "mean", "max", '"corpus"', '"/etc"',
         '"x"', "(0.9, 0.95)", "(1, 2, 3)"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    ran: int
    accepted: int                       # specs that passed every check
    failures: list[tuple[str, str]]     # (spec, traceback) of each non-GrowError exception
    timed_out: bool


def _expr(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 2 or roll < 0.45:
        return rng.choice(NUMBERS)
    if roll < 0.65:
        return rng.choice(SYMBOL_NAMES)
    if roll < 0.9:
        return f"{_expr(rng, depth + 1)}{rng.choice('+-*/')}{_expr(rng, depth + 1)}"
    return f"({_expr(rng, depth + 1)})"


def _value(rng: random.Random) -> str:
    return rng.choice(WORDS) if rng.random() < 0.25 else _expr(rng)


def _op(rng: random.Random) -> str:
    name = rng.choice([*REGISTRY, "bogus"])
    params = list(REGISTRY[name].params) if name in REGISTRY else []
    if params and rng.random() < 0.5:
        return f"{name}({rng.choice(params)}={_value(rng)})"
    return name


def generated(rng: random.Random) -> str:
    """A plan assembled from the language's vocabulary, often valid, often not."""
    family = rng.choice([*families.names(), *PRESETS, "nope"])
    args = ", ".join(f"{k}={_value(rng)}" for k in rng.sample(sorted(MODEL_KEYS),
                                                               rng.randint(0, 4)))
    lines = [f"model {family}" + (f"({args})" if args or rng.random() < 0.2 else "")]
    train = [f"  {k} = {_value(rng)}" for k in rng.sample(sorted(TRAIN_KEYS), rng.randint(0, 5))]
    if train or rng.random() < 0.3:
        lines += ["train {", *train, "}"]
    for i in range(rng.randint(1, 4)):
        shape = " ".join(f"{k}={_expr(rng)}" for k in rng.sample(sorted(STAGE_SHAPE_KEYS),
                                                                  rng.randint(0, 3)))
        ops = ", ".join(_op(rng) for _ in range(rng.randint(1, 3)))
        growth = f" -> {ops}{' preserve' if rng.random() < 0.3 else ''}" if rng.random() < 0.7 \
            else ""
        lines.append(f"stage {rng.choice(NUMBERS[1:12])}: {shape}{growth}".rstrip() if i < 3
                     else f"stage {rng.choice(NUMBERS)}:")
    if rng.random() < 0.3:
        lines.append(f"budget flops <= {_expr(rng)} * scratch")
    if rng.random() < 0.2:
        lines.append(f"expect speedup >= {_expr(rng)}")
    if rng.random() < 0.2:
        unit = rng.choice(["", " steps", " tokens"])
        lines.append(f"scratch {rng.choice(NUMBERS)}{unit}")
    return "\n".join(lines) + "\n"


def mutated(rng: random.Random, text: str) -> str:
    """`text` with one to four random edits."""
    for _ in range(rng.randint(1, 4)):
        i = rng.randint(0, len(text))
        j = min(len(text), i + rng.randint(0, 16))
        how = rng.randrange(6)
        if how == 0:
            text = text[:i] + text[j:]                                   # cut
        elif how == 1:
            text = text[:i] + rng.choice([*NUMBERS, *WORDS, *"{}()=,:*/#\"\n->"]) + text[i:]
        elif how == 2:
            text = text[:j] + text[i:j] + text[j:]                       # duplicate
        elif how == 3:
            text = text[:i]                                              # truncate
        elif how == 4:
            other = rng.choice(SHIPPED)
            k = rng.randint(0, len(other))
            text = text[:i] + other[k:k + rng.randint(1, 40)] + text[j:]  # splice
        else:
            digits = [k for k, c in enumerate(text) if c.isdigit()]
            if digits:
                k = rng.choice(digits)
                text = text[:k] + rng.choice(NUMBERS) + text[k + 1:]      # extreme number
    return text


def front_end(text: str) -> bool:
    """Parse, lower, check, build the graph, emit JSON. True when the plan is valid."""
    try:
        _, plan = load_text(text, "fuzz.grow")
    except GrowError as error:
        assert error.render()
        return False
    found = check_plan(plan)
    build(plan)
    if found:
        return False
    ir_json.to_json(plan)
    return True


def fuzz(seed: int, count: int, seconds: float) -> Outcome:
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    failures: list[tuple[str, str]] = []
    ran = accepted = 0
    while ran < count:
        if time.monotonic() > deadline:
            return Outcome(ran=ran, accepted=accepted, failures=failures, timed_out=True)
        roll = rng.random()
        if roll < 0.4:
            text = generated(rng)
        elif roll < 0.7:
            text = mutated(rng, rng.choice(SHIPPED))
        else:
            text = mutated(rng, generated(rng))
        try:
            accepted += front_end(text)
        except Exception:
            failures.append((text, traceback.format_exc()))
        ran += 1
    return Outcome(ran=ran, accepted=accepted, failures=failures, timed_out=False)
