"""The `growdsl` command line (typer): one module per command family.

User mistakes print located diagnostics and exit 1; bad command-line usage exits 2.
The torch side is imported inside the commands that need it, never here.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="growdsl",
    help="Write, check, plan and run growth-based pretraining plans (.grow files).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from growdsl import __version__

        print(f"growdsl {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                   help="print the version and exit")] = False,
             ) -> None:
    """Write, check, plan and run growth-based pretraining plans (.grow files)."""

# Each module registers its commands on `app` when imported.
from growdsl.cli import check as _check  # noqa: E402,F401
from growdsl.cli import grow as _grow  # noqa: E402,F401
from growdsl.cli import lsp as _lsp  # noqa: E402,F401
from growdsl.cli import plan as _plan  # noqa: E402,F401
from growdsl.cli import run as _run  # noqa: E402,F401
from growdsl.cli import sweep as _sweep  # noqa: E402,F401


def main() -> None:
    """Console-script entry point."""
    app()
