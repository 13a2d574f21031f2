"""`growdsl lsp` driven over stdio as an editor drives it (pygls's LanguageClient starting
`python -m growdsl lsp`): open, change, hover, completion, formatting, definition and code
actions on every shipped spec, answers checked against the compiler's own results."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from growdsl import ast
from growdsl.cli.check import format_text
from growdsl.driver import read_source, validate_graph
from growdsl.keys import SYMBOLS, format_count
from growdsl.lsp.analysis import stage_index
from growdsl.operators import REGISTRY
from growdsl.operators.base import VERDICT_WORDS
from growdsl.parser import parse
from growdsl.shapes import PRESETS
from growdsl.source import Source

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "specs").glob("*/*.grow"))


class Editor:
    """A language client that records the diagnostics each document was last sent."""

    def __init__(self) -> None:
        self.client = LanguageClient("growdsl-tests", "0")
        self.published: asyncio.Queue[lsp.PublishDiagnosticsParams] = asyncio.Queue()

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.published.put_nowait(params)

    async def start(self) -> None:
        await self.client.start_io(sys.executable, "-m", "growdsl", "lsp")
        await self.client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=from_fs_path(str(REPO))))
        self.client.initialized(lsp.InitializedParams())

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    async def diagnostics(self, uri: str) -> list[lsp.Diagnostic]:
        while True:
            params = await asyncio.wait_for(self.published.get(), timeout=30)
            if params.uri == uri:
                return list(params.diagnostics)

    async def open(self, path: Path, text: str | None = None) -> list[lsp.Diagnostic]:
        uri = from_fs_path(str(path))
        assert uri is not None
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="grow", version=1,
                                               text=path.read_text() if text is None else text)))
        return await self.diagnostics(uri)

    async def change(self, path: Path, text: str, version: int) -> list[lsp.Diagnostic]:
        uri = from_fs_path(str(path))
        assert uri is not None
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))
        return await self.diagnostics(uri)

    def doc(self, path: Path) -> lsp.TextDocumentIdentifier:
        return lsp.TextDocumentIdentifier(uri=from_fs_path(str(path)) or "")

    async def hover(self, path: Path, line: int, col: int) -> str | None:
        """Hover at 1-based (line, col), as the compiler counts."""
        found = await self.client.text_document_hover_async(lsp.HoverParams(
            text_document=self.doc(path), position=lsp.Position(line=line - 1, character=col - 1)))
        if found is None:
            return None
        assert isinstance(found.contents, lsp.MarkupContent)
        return found.contents.value

    async def complete(self, path: Path, line: int, col: int) -> list[str]:
        found = await self.client.text_document_completion_async(lsp.CompletionParams(
            text_document=self.doc(path), position=lsp.Position(line=line - 1, character=col - 1)))
        items = found.items if isinstance(found, lsp.CompletionList) else found or []
        return [i.label for i in items]

    async def format(self, path: Path) -> list[lsp.TextEdit]:
        return list(await self.client.text_document_formatting_async(
            lsp.DocumentFormattingParams(text_document=self.doc(path),
                                         options=lsp.FormattingOptions(tab_size=2,
                                                                       insert_spaces=True)))
                    or [])


def run(scenario: Any) -> Any:
    async def main() -> Any:
        editor = Editor()
        await editor.start()
        try:
            return await scenario(editor)
        finally:
            await editor.stop()

    return asyncio.run(main())


def _symbols(node: object) -> list[ast.Symbol]:
    if isinstance(node, tuple):
        return [s for child in node for s in _symbols(child)]
    if isinstance(node, ast.Symbol):
        return [node]
    if isinstance(node, ast.Node):
        return [s for f in node.__slots__ if f != "span" for s in _symbols(getattr(node, f))]
    return []


def _messy(line: str) -> str:
    """`line` with its code (not its comment) spaced badly and unindented."""
    code, hash_, comment = line.partition("#")
    return code.strip().replace(" = ", "  =  ") + (" " + hash_ + comment if hash_ else "")


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    """Every shipped spec opened, hovered on each stage, operator, symbol and preset,
    formatted, then changed to a mistake and back: everything the server answered."""

    async def scenario(editor: Editor) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path in SPECS:
            text = path.read_text()
            file = parse(read_source(path))
            got: dict[str, Any] = {"open": await editor.open(path), "stages": [], "ops": [],
                                   "symbols": [], "presets": [], "scratch": []}
            for decl in file.statements:
                if isinstance(decl, ast.ModelDecl):
                    got["presets"].append((decl.preset, await editor.hover(
                        path, decl.preset_span.line, decl.preset_span.col)))
                if isinstance(decl, ast.ScratchDecl):
                    got["scratch"].append(await editor.hover(path, decl.span.line, decl.span.col))
                if isinstance(decl, ast.StageDecl):
                    index = stage_index(file, decl)
                    got["stages"].append((index, await editor.hover(path, decl.span.line,
                                                                    decl.span.col)))
                    for op in decl.growth.ops if decl.growth else ():
                        got["ops"].append((index, op.name, await editor.hover(
                            path, op.name_span.line, op.name_span.col + 1)))
            for symbol in [s for s in _symbols(file.statements) if s.name in SYMBOLS][:3]:
                got["symbols"].append((symbol.name, await editor.hover(
                    path, symbol.span.line, symbol.span.col)))
            got["format_clean"] = await editor.format(path)
            messy = "\n".join(_messy(line) for line in text.split("\n"))
            await editor.change(path, messy, 2)
            got["format_messy"] = (messy, await editor.format(path))
            got["broken"] = await editor.change(path, text + "\nstage 1k: dpeth=2\n", 3)
            got["fixed"] = await editor.change(path, text, 4)
            out[path.relative_to(REPO / "specs").as_posix()] = got
        return out

    return run(scenario)


def test_every_shipped_spec_opens_with_no_diagnostics(shipped: dict[str, Any]) -> None:
    assert len(shipped) == len(SPECS) >= 10
    for name, got in shipped.items():
        assert got["open"] == [], name
        assert got["fixed"] == [], name


def test_a_change_is_checked_as_you_type_with_code_and_help(shipped: dict[str, Any]) -> None:
    for name, got in shipped.items():
        codes = [(d.code, d.message) for d in got["broken"]]
        assert ("E204", "unknown stage key `dpeth`\nhelp: did you mean `depth`?") in codes, name
        d = next(d for d in got["broken"] if d.code == "E204")
        last = len(Path(REPO / "specs" / name).read_text().split("\n")) + 1
        assert (d.range.start.line, d.range.start.character) == (last - 1, 10)
        assert (d.range.end.line, d.range.end.character) == (last - 1, 15)


def test_hover_on_a_stage_shows_its_shape_and_costs(shipped: dict[str, Any]) -> None:
    for name, got in shipped.items():
        _, graph = validate_graph(REPO / "specs" / name)
        assert [i for i, _ in got["stages"]] == graph.order()
        for index, text in got["stages"]:
            node = graph.node(index)
            s = node.stage.shape
            assert f"**stage `{node.stage.name}`**" in text
            assert f"L={s.layers} D={s.hidden} H={s.heads}" in text
            assert f"parameters {format_count(node.params)}" in text
            assert f"tokens {format_count(node.tokens)}" in text
            assert f"FLOPs {format_count(node.flops)}" in text
            assert f"cumulative {format_count(node.cum_flops)}" in text


def test_hover_on_an_operator_shows_paper_and_this_steps_verdict(shipped: dict[str, Any]) -> None:
    seen = 0
    for name, got in shipped.items():
        _, graph = validate_graph(REPO / "specs" / name)
        for index, op_name, text in got["ops"]:
            op = REGISTRY[op_name]
            assert text.startswith(f"**{op.name}**: {op.summary}"), (name, text)
            assert op.paper in text
            result = graph.edge(index, index + 1)
            assert result is not None
            verdict = next(r.verdict for r in result.ops if r.call.name == op_name)
            assert f"this step: **{VERDICT_WORDS[verdict.kind]}**: {verdict.reason}" in text
            seen += 1
    assert seen >= 10


def test_hover_on_symbols_and_presets(shipped: dict[str, Any]) -> None:
    symbols = presets = 0
    for name, got in shipped.items():
        _, graph = validate_graph(REPO / "specs" / name)
        target = graph.plan.target
        for symbol, text in got["symbols"]:
            value = getattr(target, SYMBOLS[symbol])
            assert text.startswith(f"`{symbol}` = **{value}**"), (name, text)
            symbols += 1
        for preset, text in got["presets"]:
            if preset in PRESETS:
                s = PRESETS[preset]
                assert f"L={s.layers} D={s.hidden} H={s.heads}" in text
                presets += 1
    assert symbols >= 5 and presets >= 5


def test_hover_on_the_reference_run_says_what_scratch_is(shipped: dict[str, Any]) -> None:
    seen = 0
    for name, got in shipped.items():
        _, graph = validate_graph(REPO / "specs" / name)
        for text in got["scratch"]:
            assert text.startswith("**scratch**: the reference run"), (name, text)
            assert graph.scratch in text and "(stated by the plan, line" in text
            assert f"FLOPs {format_count(graph.scratch_flops)}" in text
            assert f"saving {graph.saving:.1f}%" in text
            seen += 1
    assert seen >= 2          # the bert2BERT plans state theirs


def test_formatting_is_growdsl_fmt(shipped: dict[str, Any]) -> None:
    for name, got in shipped.items():
        assert got["format_clean"] == [], name       # shipped specs are canonical
        messy, edits = got["format_messy"]
        assert len(edits) == 1 and edits[0].range.start == lsp.Position(line=0, character=0)
        assert edits[0].new_text == format_text(Source(path=name, text=messy))
        assert edits[0].new_text == (REPO / "specs" / name).read_text()


def test_completion_offers_what_may_be_written_there(tmp_path: Path) -> None:
    spec = tmp_path / "c.grow"
    text = ("model bert-base\ntrain {\n  lr = 1e-4\n  \n}\nstage 200\nstage 10k: depth=L/2 "
            "-> stack(\nstage 10k: depth=L/2 -> \nstage 1k: decay=\nscratch 1M \n"
            "budget flops <= 0.5*\ntrain { report_to = }\n")
    spec.write_text(text)

    async def scenario(editor: Editor) -> dict[str, list[str]]:
        await editor.open(spec)
        return {"preset": await editor.complete(spec, 1, 10),
                "train": await editor.complete(spec, 4, 3),
                "unit": await editor.complete(spec, 6, 10),
                "arg": await editor.complete(spec, 7, 31),
                "op": await editor.complete(spec, 8, 26),
                "word": await editor.complete(spec, 9, 17),
                "scratch": await editor.complete(spec, 10, 12),
                "ref": await editor.complete(spec, 11, 21),
                "trackers": await editor.complete(spec, 12, 21),
                "top": await editor.complete(spec, 13, 1)}

    got = run(scenario)
    assert "bert-base" in got["preset"] and "gpt2" in got["preset"]
    assert {"batch", "lr", "warmup", "data"} <= set(got["train"])
    assert got["unit"] == ["k", "M", "B", "T"]
    assert got["arg"] == ["remainder="]
    assert set(got["op"]) == set(REGISTRY)
    assert got["word"] == ["linear", "cosine", "constant"]
    assert got["scratch"] == ["steps", "tokens"] and got["ref"] == ["scratch"]
    assert got["trackers"] == ["tensorboard", "wandb", "mlflow", "trackio", "none"]
    assert {"model", "stage", "budget", "scratch"} <= set(got["top"])


def test_planner_passes_quick_fixes_and_init_from_definition(tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"model_type": "bert"}))
    spec = tmp_path / "p.grow"
    spec.write_text('model gpt2-small\ninit from "ckpt"\nstage 0: depth=6 -> stack\nstage 1k:\n')

    planned = tmp_path / "b.grow"
    planned.write_text("model bert(layers=4, hidden=64, heads=4, ffn=256, seq=32, vocab=100)\n"
                       "budget flops <= 1\nstage 10: depth=L/2 -> stack preserve\nstage 10:\n")

    async def scenario(editor: Editor) -> tuple[Any, Any, Any]:
        passes = await editor.open(planned)
        assert [(d.code, d.range.start.line, d.range.start.character) for d in passes] == [
            ("E501", 2, 23), ("E601", 1, 0)]
        assert passes[0].message.endswith("\nhelp: drop `preserve`, or use `identity` (pre-LN) "
                                          "or `masked`")
        assert passes[1].message.startswith("budget flops <= 1 FLOPs is violated")
        found = await editor.open(spec)
        actions = await editor.client.text_document_code_action_async(lsp.CodeActionParams(
            text_document=editor.doc(spec), range=found[0].range,
            context=lsp.CodeActionContext(diagnostics=found)))
        where = await editor.client.text_document_definition_async(lsp.DefinitionParams(
            text_document=editor.doc(spec), position=lsp.Position(line=1, character=12)))
        return found, actions, where

    found, actions, where = run(scenario)
    assert [(d.code, d.message) for d in found] == [
        ("E202", "unknown model preset `gpt2-small`\nhelp: did you mean `gpt2`?")]
    assert len(actions) == 1 and actions[0].title == "Replace with `gpt2`"
    edit = actions[0].edit.changes[from_fs_path(str(spec))][0]
    assert edit.new_text == "gpt2" and edit.range == found[0].range
    assert where.uri == from_fs_path(str(checkpoint / "config.json"))


COMMENTED = ("model bert-base  # the target\ntrain { lr = 1e-4 }  # after the brace\n"
             "# its own line\nstage 10k: depth=L/2 -> stack  # after a growth\nstage 10k:\n")


def test_formatting_keeps_comments_where_they_were_written(tmp_path: Path) -> None:
    spec = tmp_path / "c.grow"
    spec.write_text(COMMENTED)

    async def scenario(editor: Editor) -> list[lsp.TextEdit]:
        await editor.open(spec)
        return await editor.format(spec)

    edits = run(scenario)
    assert len(edits) == 1
    assert edits[0].new_text == ("model bert-base  # the target\ntrain {\n  lr = 1e-4\n}"
                                 "  # after the brace\n# its own line\n"
                                 "stage 10k: depth=L/2 -> stack  # after a growth\n"
                                 "stage 10k:\n")
