"""docs/editors.md's screenshot: a .grow file in Monaco (VS Code's editor component) in
headless Chromium, highlighted by editors/vscode's TextMate grammar, with the hover that
`growdsl lsp` returns for an operator, asked over stdio as an editor asks.

    cd editors/screenshot && npm ci && cd ../.. && \\
        .venv/bin/python editors/screenshot/shot.py [--spec S] [--out docs/editors-hover.png]

Needs chromium (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from growdsl import ast
from growdsl.driver import read_source
from growdsl.parser import parse

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


async def server_hover(spec: Path, line: int, col: int) -> str:
    """The markdown `growdsl lsp` answers for a hover at 1-based (line, col) of `spec`."""
    client = LanguageClient("screenshot", "0")
    await client.start_io(sys.executable, "-m", "growdsl", "lsp")
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    uri = from_fs_path(str(spec)) or ""
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id="grow", version=1, text=spec.read_text())))
    found = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        position=lsp.Position(line=line - 1, character=col - 1)))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    assert found is not None and isinstance(found.contents, lsp.MarkupContent)
    return found.contents.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(REPO / "specs/papers/bert2bert-bert-base.grow"))
    parser.add_argument("--op", default="stack", help="the operator to hover on")
    parser.add_argument("--out", default=str(REPO / "docs" / "editors-hover.png"))
    args = parser.parse_args()
    spec = Path(args.spec).resolve()
    file = parse(read_source(spec))
    op = next(o for s in file.statements if isinstance(s, ast.StageDecl) and s.growth
              for o in s.growth.ops if o.name == args.op)
    where = op.name_span
    markdown = asyncio.run(server_hover(spec, where.line, where.col))
    hover = {"text": spec.read_text(), "line": where.line, "col": where.col,
             "end": where.end_col, "markdown": markdown}
    (HERE / "hover.js").write_text(f"const HOVER = {json.dumps(hover)};\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HERE.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium not found (Debian: apt-get install chromium)")
    url = f"http://127.0.0.1:{httpd.server_port}/screenshot/index.html"
    subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", "--window-size=1100,640", "--virtual-time-budget=15000",
                    f"--screenshot={Path(args.out).resolve()}", url],
                   check=True, capture_output=True, timeout=300)
    httpd.shutdown()
    print(f"wrote {args.out} (hover on `{args.op}` at {spec.name}:{where.line}:{where.col})")


if __name__ == "__main__":
    main()
