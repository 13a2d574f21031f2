"""Corpus files read as a stream of bounded text pieces, with every mistake located.

A corpus is a text file or a folder of them (one document per file), JSON lines or Parquet
with a `text` column, or a Hugging Face dataset saved with `save_to_disk`. `pieces(path)`
yields each document's text in pieces of at most `PIECE` characters (cut at whitespace when
there is some), so that no step -- tokenizer training, tokenization -- ever holds more than
a piece of a document, whatever the corpus's shape (a 50 MB line, a 1 GB file, a million
files). Only a JSON line is read whole before it is cut (the `text` must be parsed).

Mistakes are E711 (not text: bytes that are not UTF-8, naming the file, line and byte) and
E712 (not the expected structure: a JSON line that is not an object with a string `text`,
naming the file and line; a Parquet or saved dataset without a string `text` column).
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growdsl.backend.run_errors import fail

PIECE = 1 << 18              # characters
READ = 1 << 20               # bytes per read of a text file
TEXT_SUFFIXES = (".txt", ".text", ".md")
UTF8_HELP = ("growdsl reads UTF-8 text: convert the file (e.g. `iconv -f latin1 -t utf-8`), "
             "or remove files that are not text from the corpus")
JSONL_HELP = 'each line of a JSON lines corpus is one object such as {"text": "..."}'


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a document's text; `end` marks the document's last piece."""

    text: str
    end: bool


def kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in (".jsonl", ".json"):
        return "json"
    if suffix == ".parquet":
        return "parquet"
    return None


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_info.json").exists()
                              or (path / "state.json").exists())


def files(path: Path) -> Iterator[Path]:
    """The corpus's files in a stable order (hidden ones skipped), one folder at a time."""
    if path.is_file():
        yield path
        return
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            p = Path(root) / name
            if not name.startswith(".") and p.is_file():
                yield p


def corpus_kind(path: Path) -> str:
    """`dataset`, `text`, `json` or `parquet`; E710 / E711 / E712 when it is none of them."""
    if not path.exists():
        fail("E710", f"corpus {path} does not exist",
             "give `data = \"PATH\"` in the spec's train block, or --data PATH")
    if is_saved_dataset(path):
        return "dataset"
    kinds: set[str] = set()
    for p in files(path):
        k = kind(p)
        if k is not None:
            kinds.add(k)
        if len(kinds) > 1:
            fail("E712", f"corpus {path} mixes file kinds ({', '.join(sorted(kinds))})",
                 "point at a folder of one kind of file")
    if not kinds:
        fail("E711", f"corpus {path} is empty (no text, JSON lines or Parquet files)",
             "name .txt/.md, .jsonl or .parquet files, or a folder of them")
    return kinds.pop()


def pieces(path: Path) -> Iterator[Piece]:
    """Every document of the corpus at `path`, in pieces (see the module docstring)."""
    found = corpus_kind(path)
    if found == "dataset":
        yield from _dataset(path)
        return
    read = {"text": _text_file, "json": _json_lines, "parquet": _parquet}[found]
    for p in files(path):
        if kind(p) == found:
            yield from read(p)


def cut(text: str) -> Iterator[Piece]:
    """One document's text as pieces of at most PIECE characters."""
    while len(text) > PIECE:
        at = text.rfind(" ", PIECE // 2, PIECE) + 1 or PIECE
        yield Piece(text[:at], False)
        text = text[at:]
    yield Piece(text, True)


def _text_file(path: Path) -> Iterator[Piece]:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    line, offset, carry = 1, 0, ""
    with path.open("rb") as f:
        while True:
            chunk = f.read(READ)
            try:
                carry += decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                data = bytes(exc.object)        # pending bytes + this chunk
                start = offset - (len(data) - len(chunk)) + exc.start
                where = line + data[:exc.start].count(b"\n")
                fail("E711", f"{path}:{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} "
                     f"at byte {start})", UTF8_HELP)
            if b"\0" in chunk:
                nul = chunk.index(0)
                where = line + chunk[:nul].count(b"\n")
                fail("E711", f"{path}:{where}: not text (a NUL byte at byte {offset + nul})",
                     UTF8_HELP)
            line += chunk.count(b"\n")
            offset += len(chunk)
            while len(carry) > PIECE:
                head = next(cut(carry))
                yield head
                carry = carry[len(head.text):]
            if not chunk:
                yield Piece(carry, True)
                return


def _json_lines(path: Path) -> Iterator[Piece]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.rstrip(b"\r\n").decode("utf-8"))
            except UnicodeDecodeError as exc:
                fail("E711", f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                     f"at column {exc.start + 1})", UTF8_HELP)
            except json.JSONDecodeError as exc:
                fail("E712", f"{path}:{number}: not valid JSON ({exc.msg}: column "
                     f"{exc.colno})", JSONL_HELP)
            yield from cut(_text_of(record, f"{path}:{number}"))


def _text_of(record: Any, where: str) -> str:
    if not isinstance(record, dict):
        fail("E712", f"{where}: a JSON {type(record).__name__}, not an object with `text`",
             JSONL_HELP)
    if "text" not in record:
        keys = ", ".join(f"`{k}`" for k in list(record)[:5])
        fail("E712", f"{where}: no `text` field (fields: {keys or 'none'})", JSONL_HELP)
    text = record["text"]
    if text is None:
        return ""
    if not isinstance(text, str):
        shown = json.dumps(text)[:40]
        fail("E712", f"{where}: `text` is {shown} ({type(text).__name__}), not a string",
             JSONL_HELP)
    return text


def _parquet(path: Path) -> Iterator[Piece]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(str(path))
    except (OSError, pa.ArrowException) as exc:
        fail("E712", f"{path}: not a Parquet file ({exc})", "write it with pyarrow or pandas")
    names = file.schema_arrow.names
    if "text" not in names:
        fail("E712", f"{path} has no `text` column (columns: {', '.join(names)})")
    column = file.schema_arrow.field("text").type
    if not (pa.types.is_string(column) or pa.types.is_large_string(column)):
        fail("E712", f"{path}: column `text` holds {column}, not strings")
    for batch in file.iter_batches(batch_size=256, columns=["text"]):
        for text in batch.column(0).to_pylist():
            yield from cut(text or "")


def _dataset(path: Path) -> Iterator[Piece]:
    import datasets

    datasets.disable_progress_bars()
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    if "text" not in ds.column_names:
        fail("E712", f"corpus {path} has no `text` column (columns: {ds.column_names})")
    feature = ds.features["text"]
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        fail("E712", f"corpus {path}: column `text` holds {feature}, not strings")
    for batch in ds.iter(batch_size=256):
        for text in batch["text"]:
            yield from cut(text or "")


def documents(path: Path) -> Iterator[str]:
    """Whole documents (for tests and small corpora: a document is held whole)."""
    parts: list[str] = []
    for piece in pieces(path):
        parts.append(piece.text)
        if piece.end:
            yield "".join(parts)
            parts = []
