"""Data: every corpus format reads to the same documents; the trained tokenizer is cached;
batches depend on the global sample offset only; BERT masking is 15% of positions, 80/10/10,
never [CLS], with labels on the masked positions only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from growdsl.backend.data import Corpus, prepare_corpus
from growdsl.backend.reader import documents
from tests.test_run_e2e import make_corpus

pytestmark = pytest.mark.torch


def _texts(path: Path) -> list[str]:
    return sorted(documents(path))


def test_every_corpus_format_reads_the_same_documents(tmp_path: Path) -> None:
    import datasets

    folder = make_corpus(tmp_path / "txt", docs=3, words=20)
    docs = [p.read_text() for p in sorted(folder.glob("*.txt"))]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    ds = datasets.Dataset.from_dict({"text": docs})
    ds.to_parquet(str(tmp_path / "c.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    expected = sorted(docs)
    for path in (folder, tmp_path / "c.jsonl", tmp_path / "c.parquet", tmp_path / "saved"):
        assert _texts(path) == expected, path


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Corpus, Any, Path]:
    root = tmp_path_factory.mktemp("data")
    corpus = make_corpus(root / "corpus", docs=8, words=300)
    c, tok = prepare_corpus(corpus, None, "bert", 200, 32, 0, root / "cache")
    return c, tok, root


def test_tokenizer_trained_once_and_cached(bert: tuple[Corpus, Any, Path]) -> None:
    _, tok, root = bert
    cached = list((root / "cache" / "tokenizers").iterdir())
    assert len(cached) == 1 and (cached[0] / "tokenizer.json").exists()
    assert len(tok) <= 200
    _, again = prepare_corpus(root / "corpus", None, "bert", 200, 32, 0, root / "cache")
    assert again.get_vocab() == tok.get_vocab()


def test_batches_depend_on_the_offset_only(bert: tuple[Corpus, Any, Path]) -> None:
    corpus = bert[0]
    first = corpus.batch(37, 4, 32, 0.15)
    corpus.batch(0, 8, 16, 0.15)  # other lengths in between
    again = corpus.batch(37, 4, 32, 0.15)
    assert all(first[k].equal(again[k]) for k in first)
    halves = [corpus.batch(37, 2, 32, 0.15), corpus.batch(39, 2, 32, 0.15)]
    assert first["input_ids"].equal(torch.cat([h["input_ids"] for h in halves]))
    n = corpus.blocks(32)
    epoch = [corpus.sample_index(k, 32) for k in range(n)]
    assert sorted(epoch) == list(range(n))               # each block once per epoch
    assert [corpus.sample_index(k, 32) for k in range(n, 2 * n)] != epoch


def test_bert_masking_80_10_10_on_masked_positions_only(bert: tuple[Corpus, Any, Path]) -> None:
    corpus = bert[0]
    sp = corpus.specials
    masked = kept = randomized = 0
    for offset in range(0, 400, 20):
        b = corpus.batch(offset, 20, 32, 0.15)
        pos, labels, ids = b["mlm_positions"], b["labels"], b["input_ids"]
        assert pos.shape == (20, 5) and labels.shape == (20, 5)   # round(0.15 * 32)
        assert (pos >= 1).all() and (ids[:, 0] == sp.cls).all()  # [CLS] never masked
        for row in range(20):
            originals = corpus.block(corpus.sample_index(offset + row, 32), 32)
            assert (labels[row].numpy() == originals[pos[row].numpy()]).all()
            shown = ids[row, pos[row]]
            masked += int((shown == sp.mask).sum())
            same = shown == labels[row]
            kept += int((same & (shown != sp.mask)).sum())
            randomized += int((~same & (shown != sp.mask)).sum())
            unmasked = np.setdiff1d(np.arange(32), pos[row].numpy())
            assert (ids[row, unmasked].numpy() == originals[unmasked]).all()
    total = masked + kept + randomized
    assert 0.75 < masked / total < 0.85
    assert 0.06 < randomized / total < 0.14 and 0.06 < kept / total < 0.15


def test_rank_shards_tile_the_global_batch(bert: tuple[Corpus, Any, Path]) -> None:
    from growdsl.backend.data import shard

    corpus = bert[0]
    whole = corpus.batch(40, 8, 32, 0.15)
    for world in (1, 2, 4):
        parts = [corpus.batch(*shard(40, 8, r, world), 32, 0.15) for r in range(world)]
        for key in whole:
            assert whole[key].equal(torch.cat([p[key] for p in parts]))
    with pytest.raises(ValueError):
        shard(0, 6, 0, 4)
