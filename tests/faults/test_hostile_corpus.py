"""Hostile and mistaken corpora and tokenizers (issue 11, item 6): each is a coded error
naming the file (and the line, for JSON lines) with a hint that fits, never a traceback;
and a corpus of one long line is tokenized in bounded memory.

The big-corpus measurements (a 50 MB line, 1 GB, a million files) are bench/token_store.py's;
here a scaled-down memory bound that fails if the corpus is ever held whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_run_e2e import write_spec
from tests.test_run_errors import codes, error_of, tiny

pytestmark = pytest.mark.torch

WORDS = "the quick brown fox jumps over the lazy dog and then runs far away "


def corpus_file(tmp_path: Path, name: str, data: bytes) -> str:
    (tmp_path / "bad").mkdir(exist_ok=True)
    (tmp_path / "bad" / name).write_bytes(data)
    return "bad"


def rendered(tmp_path: Path, data: str) -> tuple[list[str], str]:
    err = error_of(tiny(tmp_path, data=data), tmp_path / "out")
    return codes(err), err.render()


def test_random_bytes(tmp_path: Path, cache: Path) -> None:
    noise = bytes(range(128, 256)) * 40
    got, text = rendered(tmp_path, corpus_file(tmp_path, "noise.txt", noise))
    assert got == ["E711"]
    assert f"{tmp_path}/bad/noise.txt:1: not UTF-8 text (byte 0x80 at byte 0)" in text
    assert "help: growdsl reads UTF-8 text: convert the file" in text


def test_latin1_text_names_the_line(tmp_path: Path, cache: Path) -> None:
    latin = (WORDS * 20 + "\n" + WORDS + "\ncaf\xe9 au lait\n").encode("latin-1")
    got, text = rendered(tmp_path, corpus_file(tmp_path, "latin.txt", latin))
    assert got == ["E711"]
    at = latin.index(b"\xe9")
    assert f"bad/latin.txt:3: not UTF-8 text (byte 0xe9 at byte {at})" in text
    assert "iconv -f latin1 -t utf-8" in text


def test_binary_file_with_nul_bytes(tmp_path: Path, cache: Path) -> None:
    got, text = rendered(tmp_path, corpus_file(tmp_path, "a.txt", b"text\n\0\0\0binary"))
    assert got == ["E711"] and "bad/a.txt:2: not text (a NUL byte at byte 5)" in text


def _jsonl(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_one_bad_json_line(tmp_path: Path, cache: Path) -> None:
    good = json.dumps({"text": WORDS * 30})
    data = corpus_file(tmp_path, "c.jsonl", _jsonl([good, good, '{"text": "unclosed', good]))
    got, text = rendered(tmp_path, data)
    assert got == ["E712"]
    assert "bad/c.jsonl:3: not valid JSON (Unterminated string starting at: column 10)" in text
    assert 'help: each line of a JSON lines corpus is one object such as {"text": "..."}' in text


def test_integer_text(tmp_path: Path, cache: Path) -> None:
    good = json.dumps({"text": WORDS * 30})
    got, text = rendered(tmp_path, corpus_file(tmp_path, "c.jsonl",
                                               _jsonl([good, '{"text": 5}'])))
    assert got == ["E712"] and "bad/c.jsonl:2: `text` is 5 (int), not a string" in text


@pytest.mark.parametrize("line,message", [
    ('["a list"]', "bad/c.jsonl:1: a JSON list, not an object with `text`"),
    ('{"body": "x"}', "bad/c.jsonl:1: no `text` field (fields: `body`)"),
])
def test_json_line_of_the_wrong_structure(tmp_path: Path, cache: Path, line: str,
                                          message: str) -> None:
    got, text = rendered(tmp_path, corpus_file(tmp_path, "c.jsonl", _jsonl([line])))
    assert got == ["E712"] and message in text


def _with_tokenizer(tmp_path: Path, where: str) -> Path:
    text = tiny(tmp_path).read_text().replace("warmup = 1", f'warmup = 1\n  tokenizer = "{where}"')
    return write_spec(tmp_path / "tok.grow", text)


@pytest.mark.parametrize("where", ["/etc", "empty-tok"])
def test_a_folder_without_a_tokenizer(tmp_path: Path, cache: Path, where: str) -> None:
    (tmp_path / "empty-tok").mkdir()
    (tmp_path / "empty-tok" / "README.md").write_text("no tokenizer here")
    err = error_of(_with_tokenizer(tmp_path, where), tmp_path / "out")
    folder = where if where.startswith("/") else str(tmp_path / where)
    assert codes(err) == ["E713"]
    assert f"{folder} holds no tokenizer (none of tokenizer.json, " in err.render()
    assert "vocab=" not in err.render()          # no misleading "set vocab" hint
    assert "help: name a folder saved with `save_pretrained`" in err.render()


def test_a_broken_tokenizer_file(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tokenizer.json").write_text("{not json")
    err = error_of(_with_tokenizer(tmp_path, "broken"), tmp_path / "out")
    assert codes(err) == ["E713"] and "cannot load the tokenizer in" in err.render()
    assert "vocab=" not in err.render()


LONG_LINE = """
import resource, sys
from pathlib import Path
from growdsl.backend import reader, token_store
from growdsl.backend.data import load_tokenizer
tok = load_tokenizer(Path(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = token_store.build(reader.pieces(Path(sys.argv[1])), tok, 0, Path(sys.argv[3]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(n, (after - before) // 1024)
"""


def test_one_long_line_is_tokenized_in_bounded_memory(tmp_path: Path, cache: Path) -> None:
    # 8 MB on one line: held whole, its encodings would take several hundred MB (estimate)
    from growdsl.backend.data import train_tokenizer

    line = tmp_path / "line" / "one.txt"
    line.parent.mkdir()
    line.write_text(WORDS * 120_000)
    small = tmp_path / "small.txt"
    small.write_text(WORDS * 50)
    train_tokenizer(small, "gpt2", 300).save_pretrained(str(tmp_path / "tok"))
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-c", LONG_LINE, str(line.parent), str(tmp_path / "tok"),
                          str(tmp_path / "store.i32")], capture_output=True, text=True,
                         env=env, check=True, timeout=600)
    tokens, grown_mb = (int(x) for x in out.stdout.split())
    assert tokens > 1_500_000 and (tmp_path / "store.i32").stat().st_size == 4 * tokens
    assert grown_mb < 200, f"peak RSS grew by {grown_mb} MB while tokenizing one 8 MB line"
