"""The token store: a corpus tokenized once into a file of token ids, read by position.

`build` streams the corpus's pieces (growdsl.backend.reader) through the tokenizer in
batches of at most `BATCH_CHARS` characters and appends their ids (a separator after each
document) to a file of little-endian int32, written under a temporary name and renamed, so
a killed build leaves no store. `open_store` gives a `Tokens` view of it: training reads the
blocks it needs by position (`os.preadv` into a fresh array), so the process never holds the
corpus and never maps it. (A memory map would do the same reads, but every page a run touched
would stay in the process's resident set: over an epoch, the whole store. Read this way,
the kernel's page cache, shared by the ranks and reclaimable, keeps the hot pages, and the
process's own memory is independent of the corpus's size.) The store is cached
under growdsl's cache, keyed by the corpus's fingerprint (its files' names, sizes and
modification times) and the tokenizer's vocabulary, so a second run, or another rank,
tokenizes nothing.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


class Tokens:
    """Token ids `start` .. `stop` - 1 of a store file, read on demand by position.

    Indexing with a slice (step 1, negative bounds as in Python) reads those ids into a new
    read-only array; `len` is the count; `part(a, b)` is a view of a sub-range (no read);
    `np.asarray(tokens)` reads them all (small corpora, benchmarks). The open file is shared
    by views and not pickled (a DataLoader worker started by `spawn` reopens it by path;
    forked workers share it: `preadv` does not move the file's offset).
    """

    __slots__ = ("_file", "path", "start", "stop")

    def __init__(self, path: Path, start: int = 0, stop: int | None = None,
                 file: io.FileIO | None = None) -> None:
        self.path = path
        self._file = file if file is not None else io.FileIO(path, "r")
        count = os.fstat(self._file.fileno()).st_size // DTYPE.itemsize
        self.start = start
        self.stop = count if stop is None else stop
        if not 0 <= self.start <= self.stop <= count:
            raise ValueError(f"token range {self.start}:{self.stop} outside {path} ({count})")

    def __len__(self) -> int:
        return self.stop - self.start

    def part(self, start: int, stop: int) -> Tokens:
        """Ids `start` .. `stop` - 1 of this view, as a view (nothing is read)."""
        a, b, _ = slice(start, stop).indices(len(self))
        return Tokens(self.path, self.start + a, self.start + max(a, b), self._file)

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a token store is read by contiguous slices")
        a, b, _ = key.indices(len(self))
        return self.read(self.start + a, self.start + max(a, b))

    def read(self, a: int, b: int) -> np.ndarray:
        """Ids at file positions `a` .. `b` - 1 (within this view's file)."""
        out = np.empty(b - a, dtype=DTYPE)
        view = out.data.cast("B")
        done = 0
        while done < len(view):
            got = os.preadv(self._file.fileno(), [view[done:]], a * DTYPE.itemsize + done)
            if got == 0:
                raise OSError(f"{self.path} is shorter than its {self.stop} tokens")
            done += got
        out.flags.writeable = False
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.read(self.start, self.stop)
        return whole if dtype is None else whole.astype(dtype)

    def __getstate__(self) -> tuple[Path, int, int]:
        return self.path, self.start, self.stop

    def __setstate__(self, state: tuple[Path, int, int]) -> None:
        self.path, self.start, self.stop = state
        self._file = io.FileIO(self.path, "r")


def open_store(path: Path) -> Tokens:
    """The store's token ids, read on demand (see `Tokens`)."""
    return Tokens(path)
