"""The `growdsl` command line (click): one module per command family.

User mistakes print located diagnostics and exit 1; bad command-line usage exits 2.
The torch side is imported inside the commands that need it, never here. The CLI is plain
click (typer 0.29 builds pydantic validators for every parameter on each call: 0.1 s of a
fresh `growdsl check`, bench/check_speed.py).
"""

from __future__ import annotations

import click

from growdsl import __version__

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_GROWDSL_COMPLETE"      # click's completion protocol: see --show-completion


def _show_completion(ctx: click.Context, _param: click.Parameter, shell: str | None) -> None:
    if shell is None or ctx.resilient_parsing:
        return
    from click.shell_completion import get_completion_class  # only when asked (start-up)

    completion = get_completion_class(shell)
    assert completion is not None, shell
    click.echo(completion(app, {}, "growdsl", COMPLETE_VAR).source())
    ctx.exit()


@click.group(name="growdsl", no_args_is_help=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="growdsl",
                      message="%(prog)s %(version)s", help="print the version and exit")
@click.option("--show-completion", type=click.Choice(SHELLS), callback=_show_completion,
              expose_value=False, is_eager=True,
              help='print the shell completion script, e.g. eval "$(growdsl --show-completion '
                   'bash)" in ~/.bashrc')
def app() -> None:
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
    app(prog_name="growdsl")
