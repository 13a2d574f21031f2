"""`growdsl check`, `growdsl fmt` and `growdsl emit`: the front end's commands (no torch)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from growdsl.errors import Diagnostic, GrowError
from growdsl.source import Source

if TYPE_CHECKING:
    from growdsl.ir import Plan

FILES = click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))


def report(error: GrowError) -> None:
    """Print a user error's diagnostics to stderr, as every command does."""
    print(error.render(), file=sys.stderr)


@click.command()
@FILES
@click.option("-v", "--verbose", is_flag=True, help="print a summary line")
@click.option("--strict", is_flag=True,
              help="also check the files the plan names: the corpus readable, the tokenizer's "
              "vocabulary the model's, `init from` the first stage's shape")
def check(files: tuple[Path, ...], verbose: bool, strict: bool) -> None:
    """Validate plans: silent with exit 0 when all are well; diagnostics and exit 1 if not."""
    from growdsl.driver import validate

    failed = 0
    for path in files:
        try:
            source, plan = validate(path)
            if strict:
                check_files(source, plan)
        except GrowError as error:
            report(error)
            failed += 1
    if verbose:
        print(f"checked {len(files)} file(s): {len(files) - failed} ok, {failed} with errors")
    raise SystemExit(1 if failed else 0)


def check_files(source: Source, plan: Plan) -> None:
    """`--strict`: raise GrowError if a file the plan names is missing or does not fit."""
    from growdsl.parser import parse
    from growdsl.strict import strict_problems

    found = strict_problems(plan, source, parse(source))
    if found:
        raise GrowError(found)


@click.command()
@FILES
@click.option("--check", "check_only", is_flag=True, help="list files that would change")
@click.option("--diff", is_flag=True,
              help="print a unified diff of the changes instead of writing them")
def fmt(files: tuple[Path, ...], check_only: bool, diff: bool) -> None:
    """Rewrite plans in canonical form, in place (idempotent); `-` reads stdin, writes stdout."""
    from growdsl.driver import read_source

    failed = changed = 0
    for path in files:
        try:
            source = (Source(path="<stdin>", text=sys.stdin.read()) if str(path) == "-"
                      else read_source(path))
            text = format_text(source)
        except GrowError as error:
            report(error)
            failed += 1
            continue
        if str(path) == "-" and not (check_only or diff):
            print_spec(text)
            continue
        if text == source.text:
            continue
        changed += 1
        if diff:
            sys.stdout.write(unified_diff(source.text, text, source.path))
        if check_only:
            print(f"would reformat {path}", file=sys.stderr if diff else sys.stdout)
        if check_only or diff:
            continue
        failed += not _write(path, text)
    raise SystemExit(1 if failed or ((check_only or diff) and changed) else 0)


def print_spec(text: str) -> None:
    """Write a spec to stdout: highlighted by rich (the `grow` Pygments lexer) on a
    terminal, as is into a pipe."""
    if not sys.stdout.isatty():
        sys.stdout.write(text)
        return
    from rich.console import Console
    from rich.syntax import Syntax

    Console().print(Syntax(text.rstrip("\n"), "grow", theme="ansi_dark",
                           background_color="default"))


def format_text(source: Source) -> str:
    """A file's canonical text (`growdsl fmt`), or GrowError if it does not parse."""
    from growdsl.parser import parse
    from growdsl.printer import print_file

    return print_file(parse(source))


def unified_diff(before: str, after: str, name: str) -> str:
    """The `--diff` text: a unified diff from the file as written to its canonical form."""
    import difflib

    return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        fromfile=name, tofile=name))


def _write(path: Path, text: str) -> bool:
    """Replace `path`'s text atomically (growdsl.atomic), keeping the file's mode."""
    from growdsl.atomic import write_text

    try:
        write_text(path, text, stat.S_IMODE(path.stat().st_mode))
    except OSError as exc:
        report(GrowError([Diagnostic(code="E704", message=f"cannot write: {exc.strerror}",
                                     source=Source(path=str(path), text=""))]))
        return False
    return True


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
def emit(file: Path) -> None:
    """Print the plan's IR as JSON, its `$schema` naming the schema it is validated against."""
    # Paths stay as the spec wrote them (relative to its directory); `source` is the spec's
    # path relative to the current directory.
    import dataclasses

    from growdsl.driver import validate
    from growdsl.ir_json import dumps

    try:
        _, plan = validate(file)
    except GrowError as error:
        report(error)
        raise SystemExit(1) from None
    sys.stdout.write(dumps(dataclasses.replace(plan, source=relative(file))))


def relative(path: Path) -> str:
    """`path` relative to the current directory (POSIX separators), or absolute if it lies
    on another drive."""
    import os

    try:
        return Path(os.path.relpath(path.resolve())).as_posix()
    except ValueError:
        return path.resolve().as_posix()


@click.command()
@click.option("--path", is_flag=True, help="print the file's path instead of its text")
def schema(path: bool) -> None:
    """Print the IR's JSON Schema: the document `emit`'s `$schema` (its `$id`) names."""
    from growdsl.ir_json import schema_path

    if path:
        print(schema_path())
    else:
        sys.stdout.write(schema_path().read_text(encoding="utf-8"))
