"""`growdsl lsp`: start the language server on stdin/stdout (for editors; see docs/editors.md)."""

from __future__ import annotations

from growdsl.cli import app


@app.command()
def lsp() -> None:
    """Run the .grow language server over stdio (editors start it; see docs/editors.md)."""
    from growdsl.lsp.server import start

    start()
