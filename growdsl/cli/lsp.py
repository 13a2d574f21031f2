"""`growdsl lsp`: start the language server on stdin/stdout (for editors; see docs/editors.md)."""

from __future__ import annotations

import click


@click.command()
def lsp() -> None:
    """Run the .grow language server over stdio (editors start it; see docs/editors.md)."""
    from growdsl.lsp.server import start

    start()
