"""The front end's pipeline, read top to bottom: read a `.grow` file (and the config.json
files it names), parse it, lower it to the IR, and run the planner's checks.

Every other module does one of these steps and reads no file of the user's; this is the
one place that strings them together.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from growdsl import ast
from growdsl.errors import Diagnostic, GrowError
from growdsl.ir import Plan, SpecPath
from growdsl.lower import lower, lower_partial, within
from growdsl.lower_common import unquote
from growdsl.lower_model import ConfigFile, Configs
from growdsl.parser import parse
from growdsl.source import Source, Span

if TYPE_CHECKING:
    from growdsl.plan import StageGraph


def read_source(path: str | Path) -> Source:
    """Read a `.grow` file as text, or raise a located GrowError (missing, binary, empty).

    >>> read_source("no/such/plan.grow")
    Traceback (most recent call last):
    growdsl.errors.GrowError: no/such/plan.grow: error[E701]: no such file
      help: check the path
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise _file_error(name, "E701", "no such file", "check the path") from None
    except IsADirectoryError:
        raise _file_error(name, "E701", "is a directory, not a .grow file", None) from None
    except OSError as exc:
        raise _file_error(name, "E701", f"cannot read: {exc.strerror}", None) from None
    if b"\0" in data:
        at = data.index(b"\0")
        line = data[:at].count(b"\n") + 1
        col = at - (data.rfind(b"\n", 0, at) + 1) + 1
        raise GrowError([Diagnostic(code="E702", message="not a text file (a NUL byte here)",
                                    span=Span(line=line, col=col, end_line=line, end_col=col + 1),
                                    help="a .grow file is UTF-8 text",
                                    source=Source(path=name, text=""))])
    try:
        text = data.decode("utf-8-sig")     # a leading byte-order mark is not content
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise GrowError([Diagnostic(code="E702", message="not valid UTF-8 text",
                                    span=Span(line=line, col=1, end_line=line, end_col=2),
                                    help="a .grow file is UTF-8 text",
                                    source=Source(path=name, text=""))]) from None
    return Source(path=name, text=text)


def _file_error(path: str, code: str, message: str, hint: str | None) -> GrowError:
    return GrowError([Diagnostic(code=code, message=message, help=hint,
                                 source=Source(path=path, text=""))])


def load(path: str | Path) -> tuple[Source, Plan]:
    """Read, parse and lower a `.grow` file; raise GrowError listing every mistake.

    >>> load("no/such/plan.grow")
    Traceback (most recent call last):
    growdsl.errors.GrowError: no/such/plan.grow: error[E701]: no such file
      help: check the path
    """
    return _lowered(read_source(path))


def load_text(text: str, path: str = "<string>") -> tuple[Source, Plan]:
    r"""Parse and lower `.grow` text (for tests and tools); `from` paths are read relative
    to `path`'s folder.

    >>> source, plan = load_text("model gpt2\nstage 10:")
    >>> plan.model.family, plan.stages[0].steps
    ('gpt2', 10)
    """
    return _lowered(Source(path=path, text=text))


def _lowered(source: Source) -> tuple[Source, Plan]:
    file = parse(source)
    return source, lower(file, source, read_configs(file, source))


def read_configs(file: ast.File, source: Source) -> Configs:
    r"""The config.json of every `model ... from "DIR"` of `file`, by DIR as written
    (relative to the spec's folder); a file that cannot be read carries why.

    >>> source = Source(path="m.grow", text='model llama from "no/such/dir"\nstage 1:')
    >>> read_configs(parse(source), source)["no/such/dir"].error
    'No such file or directory'
    """
    out: dict[str, ConfigFile] = {}
    for decl in file.statements:
        if isinstance(decl, ast.ModelDecl) and decl.config is not None:
            where = SpecPath.resolve(unquote(decl.config.text), source.directory)
            out[where.written] = _read_config(where)
    return out


def _read_config(where: SpecPath) -> ConfigFile:
    shown = Path(where.written) / "config.json"
    try:
        data = json.loads((where.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return ConfigFile(shown=str(shown), error=getattr(exc, "strerror", None) or str(exc))
    return ConfigFile(shown=str(shown), data=data)


def validate(path: str | Path) -> tuple[Source, Plan]:
    """Load a plan and run every static check on it; raise GrowError on any mistake.

    >>> validate("no/such/plan.grow")
    Traceback (most recent call last):
    growdsl.errors.GrowError: no/such/plan.grow: error[E701]: no such file
      help: check the path
    """
    source, graph = validate_graph(path)
    return source, graph.plan


def validate_graph(path: str | Path, device: str | None = None,
                   world: int | None = None) -> tuple[Source, StageGraph]:
    r"""`validate`, returning the stage graph the checks built (for `growdsl plan`); a
    `device` or `world` given replaces the spec's for the memory check. The planner's
    verdict is `growdsl.gate`'s, the one `run` is admitted by.

    A file with naming or value mistakes is still checked by the planner when its model and
    every stage lowered, so that all its mistakes are reported together; the planner's
    findings inside a stage holding a mistake, or inside the stage whose growth step leads
    into one, are left out (they would only follow from the first).

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     spec = pathlib.Path(tmp) / "p.grow"
    ...     _ = spec.write_text("model gpt2\nstage 10: depth=L/2 -> stack\nstage 10:")
    ...     source, graph = validate_graph(spec)
    >>> [node.stage.shape.layers for node in graph.nodes()], graph.total_steps
    ([6, 12], 20)
    """
    from growdsl import gate  # the planner's passes: loaded when a plan is checked
    from growdsl.memory import sized_for

    source = read_source(path)
    file = parse(source)
    partial = lower_partial(file, source, read_configs(file, source))
    if partial.plan is None:
        raise GrowError([replace(d, source=source) for d in partial.diagnostics])
    plan = partial.plan
    if device is not None or world is not None:
        plan = sized_for(plan, device, world)
    graph, found = gate.blocking(plan, source)     # the run's decision too
    if partial.diagnostics:
        found = [*partial.diagnostics, *_untainted(found, partial.plan, partial.tainted)]
        found.sort(key=lambda d: (d.span.line, d.span.col))
    if found:
        raise GrowError([replace(d, source=source) for d in found])
    return source, graph


def _untainted(found: list[Diagnostic], plan: Plan, tainted: frozenset[int]
               ) -> list[Diagnostic]:
    """The planner's diagnostics outside tainted stages and the stages growing into one."""
    spans = [s.span for s in plan.stages if s.index in tainted or s.index + 1 in tainted]
    return [d for d in found if not any(within(d.span, span) for span in spans)]
