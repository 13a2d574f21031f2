"""The token store is read by position, never mapped: reads equal the file's ids, views and
pickled copies read the same, and no page of the store enters the process's mappings (a
memory map would keep every page a run touched in its resident memory)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from growdsl.backend import token_store
from growdsl.backend.reader import Piece

pytestmark = pytest.mark.torch


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, np.ndarray]:
    ids = np.random.default_rng(0).integers(0, 50_000, 100_000).astype("<i4")
    path = tmp_path / "s.i32"
    ids.tofile(path)
    return path, ids


def test_reads_equal_the_file(store: tuple[Path, np.ndarray]) -> None:
    path, ids = store
    tokens = token_store.open_store(path)
    assert len(tokens) == len(ids)
    for a, b in [(0, 10), (99_990, 100_000), (5, 5), (-7, None), (None, 3), (123, 99_999)]:
        got = tokens[a:b]
        assert got.dtype == token_store.DTYPE and not got.flags.writeable
        assert np.array_equal(got, ids[a:b]), (a, b)
    assert np.array_equal(np.asarray(tokens), ids)
    with pytest.raises(TypeError, match="contiguous slices"):
        tokens[::2]


def test_views_and_pickled_copies_read_the_same(store: tuple[Path, np.ndarray]) -> None:
    path, ids = store
    train = token_store.open_store(path).part(0, 95_000)
    val = token_store.open_store(path).part(95_000, 100_000)
    assert (len(train), len(val)) == (95_000, 5_000)
    assert np.array_equal(val[-10:], ids[-10:]) and np.array_equal(train[-3:], ids[94_997:95_000])
    assert np.array_equal(train.part(10, 20)[2:4], ids[12:14])
    copy = pickle.loads(pickle.dumps(val))        # a spawned DataLoader worker's copy
    assert np.array_equal(copy[:], ids[95_000:])
    with pytest.raises(ValueError, match="outside"):
        token_store.Tokens(path, 0, 100_001)


def test_the_store_is_never_mapped(store: tuple[Path, np.ndarray]) -> None:
    path, ids = store
    tokens = token_store.open_store(path)
    total = sum(int(tokens[k:k + 127].sum()) for k in range(0, len(ids), 1000))
    assert total == sum(int(ids[k:k + 127].sum()) for k in range(0, len(ids), 1000))
    assert str(path) not in Path("/proc/self/maps").read_text()


def test_build_writes_a_separator_after_each_document(tmp_path: Path) -> None:
    from growdsl.backend.data import train_tokenizer

    (tmp_path / "c.txt").write_text("the king and the queen " * 20)
    tok = train_tokenizer(tmp_path / "c.txt", "gpt2", 300)
    pieces = [Piece("the king ", False), Piece("and the queen", True), Piece("", True),
              Piece("the sea", True)]
    n = token_store.build(pieces, tok, 7, tmp_path / "s.i32")
    got = token_store.open_store(tmp_path / "s.i32")[:]
    expected = [*tok("the king ")["input_ids"], *tok("and the queen")["input_ids"], 7,
                *tok("the sea")["input_ids"], 7]
    assert n == len(got) and got.tolist() == expected
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_the_epoch_order_is_numpy_s_permutation() -> None:
    # held as int32 to halve the one corpus-sized array; the order must stay the same
    from growdsl.backend.data import Corpus, Specials

    ids = np.arange(64 * 1000, dtype="<i4")
    corpus = Corpus(family="gpt2", train_ids=ids, val_ids=ids[:64], specials=Specials(sep=0),
                    vocab=100, seed=3)
    for epoch in (0, 2):
        order = np.random.default_rng([3, epoch, 64]).permutation(1000)
        got = [corpus.sample_index(epoch * 1000 + k, 64) for k in range(1000)]
        assert got == order.tolist()
