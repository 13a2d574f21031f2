"""The token store: a corpus tokenized once into a memory-mapped file of token ids.

`build` streams the corpus's pieces (growdsl.backend.reader) through the tokenizer in
batches of at most `BATCH_CHARS` characters and appends their ids (a separator after each
document) to a file of little-endian int32, written under a temporary name and renamed, so
a killed build leaves no store. `open_store` maps it read-only: training reads the blocks
it needs from the page cache, and the process never holds the corpus. The store is cached
under growdsl's cache, keyed by the corpus's fingerprint (its files' names, sizes and
modification times) and the tokenizer's vocabulary, so a second run, or another rank,
tokenizes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

from growdsl.backend.reader import Piece

DTYPE = np.dtype("<i4")
BATCH_CHARS = 1 << 18          # characters tokenized at once (tens of MB of encodings)
BATCH_PIECES = 1024


def build(pieces: Iterable[Piece], tok: PreTrainedTokenizerBase, sep: int, path: Path) -> int:
    """Tokenize `pieces` into the store at `path` (atomically); returns its token count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        _write(pieces, tok, sep, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)         # a bad corpus or a kill leaves no partial store
        raise
    tmp.replace(path)
    return int(path.stat().st_size // DTYPE.itemsize)


def _write(pieces: Iterable[Piece], tok: PreTrainedTokenizerBase, sep: int, tmp: Path) -> None:
    count = 0
    started = False                     # the current document has tokens
    texts: list[str] = []
    ends: list[bool] = []
    size = 0
    with tmp.open("wb") as out:

        def flush() -> None:
            nonlocal count, started, size
            if not texts:
                return
            ids = tok(texts, add_special_tokens=False)["input_ids"]
            for piece_ids, end in zip(ids, ends, strict=True):
                started = started or bool(piece_ids)
                row = [*piece_ids, sep] if end and started else piece_ids
                if row:
                    out.write(np.asarray(row, dtype=DTYPE).tobytes())
                    count += len(row)
                if end:
                    started = False
            texts.clear()
            ends.clear()
            size = 0

        for piece in pieces:
            texts.append(piece.text)
            ends.append(piece.end)
            size += len(piece.text)
            if size >= BATCH_CHARS or len(texts) >= BATCH_PIECES:
                flush()
        flush()
        out.flush()
        os.fsync(out.fileno())


def open_store(path: Path) -> np.ndarray:
    """The store's token ids, memory-mapped read-only (an empty array for an empty store)."""
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=DTYPE)
    return np.memmap(path, dtype=DTYPE, mode="r")
