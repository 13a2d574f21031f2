"""`growdsl check`, `growdsl fmt` and `growdsl emit`: the front end's commands (no torch)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from growdsl.cli import app
from growdsl.errors import Diagnostic, GrowError
from growdsl.source import Source

FilesArg = Annotated[list[Path], typer.Argument(help=".grow files", show_default=False)]


def report(error: GrowError) -> None:
    """Print a user error's diagnostics to stderr, as every command does."""
    print(error.render(), file=sys.stderr)


@app.command()
def check(files: FilesArg,
          verbose: Annotated[bool, typer.Option("-v", "--verbose",
                                                help="print a summary line")] = False) -> None:
    """Validate plans: silent with exit 0 when all are well; diagnostics and exit 1 if not."""
    from growdsl.driver import validate

    failed = 0
    for path in files:
        try:
            validate(path)
        except GrowError as error:
            report(error)
            failed += 1
    if verbose:
        print(f"checked {len(files)} file(s): {len(files) - failed} ok, {failed} with errors")
    raise typer.Exit(1 if failed else 0)


@app.command()
def fmt(files: FilesArg,
        check_only: Annotated[bool, typer.Option("--check",
                                                 help="list files that would change")] = False,
        ) -> None:
    """Rewrite plans in canonical form, in place (idempotent)."""
    from growdsl.driver import read_source
    from growdsl.parser import parse
    from growdsl.printer import print_file

    failed = changed = 0
    for path in files:
        try:
            source = read_source(path)
            text = print_file(parse(source))
        except GrowError as error:
            report(error)
            failed += 1
            continue
        if text != source.text:
            changed += 1
            if check_only:
                print(f"would reformat {path}")
                continue
            try:
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                report(GrowError([Diagnostic(code="E704", message=f"cannot write: {exc.strerror}",
                                             source=Source(path=str(path), text=""))]))
                failed += 1
    raise typer.Exit(1 if failed or (check_only and changed) else 0)


@app.command()
def emit(file: Annotated[Path, typer.Argument(help="a .grow file")]) -> None:
    """Print the plan's IR as JSON (validated against the schema)."""
    from growdsl.driver import validate
    from growdsl.ir_json import dumps

    try:
        _, plan = validate(file)
    except GrowError as error:
        report(error)
        raise typer.Exit(1) from None
    sys.stdout.write(dumps(plan))
