"""The `growdsl` command line (click): one module per command family, each imported only
when one of its commands runs (click's lazy-subcommand pattern: a fresh `growdsl check`
loads neither `plan`'s nor `run`'s module).

User mistakes print located diagnostics and exit 1; bad command-line usage exits 2.
The torch side is imported inside the commands that need it, never here. The CLI is plain
click (typer 0.29 builds pydantic validators for every parameter on each call: 0.1 s of a
fresh `growdsl check`, bench/check_speed.py).
"""

from __future__ import annotations

import importlib

import click

from growdsl import __version__

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_GROWDSL_COMPLETE"      # click's completion protocol: see --show-completion
# Each command and the module that defines it (as a click command of the same name).
COMMANDS = {"check": "check", "fmt": "check", "emit": "check", "schema": "check",
            "plan": "plan", "grow": "grow", "run": "run", "demo": "run", "sweep": "sweep",
            "lsp": "lsp"}


class LazyGroup(click.Group):
    """A group whose commands are imported from `COMMANDS` when they are looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command = getattr(importlib.import_module(f"growdsl.cli.{COMMANDS[cmd_name]}"),
                          cmd_name)
        assert isinstance(command, click.Command), cmd_name
        return command


def _show_completion(ctx: click.Context, _param: click.Parameter, shell: str | None) -> None:
    if shell is None or ctx.resilient_parsing:
        return
    from click.shell_completion import get_completion_class  # only when asked (start-up)

    completion = get_completion_class(shell)
    assert completion is not None, shell
    click.echo(completion(app, {}, "growdsl", COMPLETE_VAR).source())
    ctx.exit()


@click.group(name="growdsl", cls=LazyGroup, no_args_is_help=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="growdsl",
                      message="%(prog)s %(version)s", help="print the version and exit")
@click.option("--show-completion", type=click.Choice(SHELLS), callback=_show_completion,
              expose_value=False, is_eager=True,
              help='print the shell completion script, e.g. eval "$(growdsl --show-completion '
                   'bash)" in ~/.bashrc')
def app() -> None:
    """Write, check, plan and run growth-based pretraining plans (.grow files)."""


def main() -> None:
    """Console-script entry point."""
    app(prog_name="growdsl")
