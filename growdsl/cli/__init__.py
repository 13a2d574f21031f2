"""The `growdsl` command line (typer): one module per command family.

User mistakes print located diagnostics and exit 1; bad command-line usage exits 2.
The torch side is imported inside the commands that need it, never here.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="growdsl",
    help="Write, check, plan and run growth-based pretraining plans (.grow files).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module registers its commands on `app` when imported.
from growdsl.cli import check as _check  # noqa: E402,F401
from growdsl.cli import grow as _grow  # noqa: E402,F401
from growdsl.cli import plan as _plan  # noqa: E402,F401
from growdsl.cli import run as _run  # noqa: E402,F401
from growdsl.cli import sweep as _sweep  # noqa: E402,F401


def main() -> None:
    """Console-script entry point."""
    app()
