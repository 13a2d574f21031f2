"""`growdsl check --strict`: the files a plan names exist and fit, checked before a run
rather than at its start, without torch.

- `init from "DIR"`: DIR/config.json is readable and describes the first stage's shape
  (E714, as `growdsl run` reports it);
- `data`: the corpus exists and holds text, JSON lines or Parquet files of one kind, or a
  saved dataset, and its first file is readable (E710-E712);
- `tokenizer`: the directory exists and its vocabulary (read from tokenizer.json, vocab.txt
  or vocab.json) has as many entries as the model's `vocab` (E713).

Paths are read from the spec's directory, as `growdsl run` reads them. Diagnostics point at
the setting that names the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from growdsl import ast
from growdsl.errors import Diagnostic
from growdsl.files import corpus_files, file_kind, is_saved_dataset
from growdsl.hf_config import shape_from_config
from growdsl.ir import Plan, SpecPath
from growdsl.operators import structural_diff
from growdsl.source import NO_SPAN, Source, Span


def strict_problems(plan: Plan, source: Source, file: ast.File) -> list[Diagnostic]:
    """What is wrong with the files `plan` names (empty when all exist and fit)."""
    found = _init(plan, source) if plan.init is not None else []
    seen: set[SpecPath] = set()
    for key, check in (("data", _corpus), ("tokenizer", _tokenizer)):
        for given in _paths(plan, key):
            if given in seen:
                continue
            seen.add(given)
            problem = check(given.path, plan)
            if problem is not None:
                code, message, help = problem
                found.append(Diagnostic(code=code, message=message, help=help, source=source,
                                        span=_span_of(file, key, given)))
    return found


def _paths(plan: Plan, key: str) -> list[SpecPath]:
    values = [getattr(plan.train, key), *(getattr(s.train, key) for s in plan.stages)]
    return [v for v in values if v is not None]


def _span_of(file: ast.File, key: str, given: SpecPath) -> Span:
    """The span of the `key = "given"` setting's value (the first one)."""
    for statement in file.statements:
        if isinstance(statement, ast.TrainDecl | ast.StageDecl):
            for item in statement.items:
                if item.key == key and isinstance(item.value, ast.String):
                    return item.value.span
    return NO_SPAN


def _init(plan: Plan, source: Source) -> list[Diagnostic]:
    assert plan.init is not None
    config = plan.init.path / "config.json"

    def problem(message: str, help: str) -> list[Diagnostic]:
        return [Diagnostic(code="E714", message=message, help=help, source=source,
                           span=plan.init_span)]

    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        shape = shape_from_config(plan.target.family, data)
    except OSError as exc:
        return problem(f"starting checkpoint {plan.init}: cannot read config.json "
                       f"({exc.strerror})", "give a local Hugging Face model directory")
    except ValueError as exc:
        return problem(f"starting checkpoint {plan.init}: config.json: {exc}",
                       f"growdsl reads the Hugging Face config of a {plan.target.family} model")
    first = plan.stages[0].shape
    diff = structural_diff(shape, first)
    if not diff:
        return []
    shown = ", ".join(f"{k} {getattr(shape, k)} (stage wants {getattr(first, k)})" for k in diff)
    return problem(f"starting checkpoint {plan.init} does not match the first stage: {shown}",
                   "make the first stage's shape that of the checkpoint")


Problem = tuple[str, str, str | None] | None


def _corpus(path: Path, plan: Plan) -> Problem:
    if not path.exists():
        return "E710", f"corpus {path} does not exist", "check the `data` path"
    if path.is_dir() and is_saved_dataset(path):
        return None
    files = corpus_files(path)
    kinds = {k for k in map(file_kind, files) if k is not None}
    if not kinds:
        return "E711", f"corpus {path} is empty (no text, JSON lines or Parquet files)", None
    if len(kinds) > 1:
        return ("E712", f"corpus {path} mixes file kinds ({', '.join(sorted(kinds))})",
                "point at a folder of one kind of file")
    first = next(f for f in files if file_kind(f) is not None)
    try:
        with first.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return "E710", f"corpus file {first} cannot be read: {exc.strerror}", None
    return None


def _tokenizer(path: Path, plan: Plan) -> Problem:
    if not path.is_dir():
        return ("E713", f"tokenizer directory {path} does not exist",
                "leave `tokenizer` out to train one on the corpus")
    size = vocab_size(path)
    if size is None or size == plan.target.vocab:
        return None
    return ("E713", f"tokenizer {path} has {size} tokens but the model's vocabulary is "
            f"{plan.target.vocab}", f"set `vocab={size}` in the spec's model")


def vocab_size(path: Path) -> int | None:
    """The number of entries of the tokenizer saved in `path` (as `len(tokenizer)` counts
    them: the model's vocabulary and the added tokens), or None if no file gives it."""
    tokens: set[str] = set()
    if (path / "tokenizer.json").exists():
        data = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = data.get("model", {}).get("vocab", {})
        tokens.update(vocab if isinstance(vocab, dict) else (v[0] for v in vocab))
        tokens.update(t["content"] for t in data.get("added_tokens", []))
    elif (path / "vocab.txt").exists():
        lines = (path / "vocab.txt").read_text(encoding="utf-8").split("\n")
        tokens.update(line for line in lines if line)
    elif (path / "vocab.json").exists():
        tokens.update(json.loads((path / "vocab.json").read_text(encoding="utf-8")))
    else:
        return None
    if (path / "added_tokens.json").exists():
        tokens.update(json.loads((path / "added_tokens.json").read_text(encoding="utf-8")))
    return len(tokens)
