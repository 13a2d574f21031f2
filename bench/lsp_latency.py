"""Language-server latency: how long `growdsl lsp` takes to answer each change of the
largest shipped spec with its diagnostics (the whole compiler: parse, lower, every planner
pass), and to answer hover, completion and formatting there, driven over stdio by pygls's
client as an editor drives it. The target is every change answered within 50 ms.

    .venv/bin/python -m bench.lsp_latency [--changes 200] [--out bench/results/lsp_latency.json]

Runs in about 10 seconds on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

REPO = Path(__file__).resolve().parents[1]


def largest_spec() -> Path:
    return max(sorted((REPO / "specs").glob("*/*.grow")), key=lambda p: len(p.read_bytes()))


async def measure(spec: Path, changes: int) -> dict[str, list[float]]:
    """Seconds from each request (or change) sent to its answer (or diagnostics) received."""
    client = LanguageClient("bench", "0")
    published: asyncio.Queue[float] = asyncio.Queue()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        published.put_nowait(time.perf_counter())

    await client.start_io(sys.executable, "-m", "growdsl", "lsp")
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    uri = from_fs_path(str(spec)) or ""
    text = spec.read_text()
    doc = lsp.TextDocumentIdentifier(uri=uri)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id="grow", version=1, text=text)))
    await published.get()
    out: dict[str, list[float]] = {"change": [], "hover": [], "completion": [], "format": []}
    lines = text.split("\n")
    stage_line = next(i for i, x in enumerate(lines) if x.startswith("stage"))
    for version in range(2, changes + 2):
        edited = text + ("\n# edit\n" if version % 2 else "")      # a keystroke's worth
        start = time.perf_counter()
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=edited)]))
        out["change"].append(await published.get() - start)
    at = lsp.Position(line=stage_line, character=1)
    for _ in range(20):
        start = time.perf_counter()
        await client.text_document_hover_async(lsp.HoverParams(text_document=doc, position=at))
        out["hover"].append(time.perf_counter() - start)
        start = time.perf_counter()
        await client.text_document_completion_async(lsp.CompletionParams(text_document=doc,
                                                                         position=at))
        out["completion"].append(time.perf_counter() - start)
        start = time.perf_counter()
        await client.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=doc, options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)))
        out["format"].append(time.perf_counter() - start)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "lsp_latency.json"))
    args = parser.parse_args()
    spec = largest_spec()
    load_before = os.getloadavg()[0]
    times = asyncio.run(measure(spec, args.changes))
    print(f"spec: {spec.relative_to(REPO)} ({len(spec.read_bytes())} bytes); "
          f"load average before: {load_before:.2f} on {os.cpu_count()} CPUs")
    print(f"{'request':<12} {'n':>5} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'<= 50 ms':>9}")
    summary = {}
    for name, xs in times.items():
        ms = sorted(x * 1e3 for x in xs)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        within = sum(x <= 50 for x in ms) / len(ms)
        summary[name] = {"n": len(ms), "median_ms": statistics.median(ms), "p95_ms": p95,
                         "max_ms": ms[-1], "within_50ms": within}
        print(f"{name:<12} {len(ms):>5} {statistics.median(ms):>10.1f} {p95:>8.1f} "
              f"{ms[-1]:>8.1f} {within:>8.1%}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                               "load_before": load_before, "spec": spec.name,
                               "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
