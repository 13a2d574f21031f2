"""Training data: corpus, tokenizer, packed token stream, held-out split, batches.

- Corpus (`read_corpus`): a text file or a folder of them (one document per file), JSON lines
  or Parquet with a `text` column, or a Hugging Face dataset saved with `save_to_disk`; all
  read with `datasets`.
- Tokenizer (`get_tokenizer`): a local HF tokenizer directory, or one trained on the corpus
  with `tokenizers` on first use (WordPiece for BERT, byte-level BPE for GPT-2 / LLaMA) and
  cached under the growdsl cache, keyed by the corpus and the vocabulary size.
- Packing: the documents' tokens are concatenated into one stream (a separator between
  documents); the last `VAL_FRACTION` of it is held out for validation. A training sample of
  length T is a block of the stream (BERT: `[CLS]` + T-1 tokens).
- Data position: the global sample offset k. Sample k is block `perm_e[k mod n]` of epoch
  e = k // n (a permutation seeded by the run's seed, the epoch and T), and BERT's masking of
  sample k is seeded by (seed, k): nothing depends on RNG state, so a run resumes, or is split
  across ranks, by offset alone (`shard`).
- BERT masking: M = round(p T) positions (never `[CLS]`), 80% `[MASK]`, 10% random, 10% kept;
  the batch carries `mlm_positions` [B, M] and their `labels` [B, M] so that the MLM head runs
  on the masked positions only (Devlin et al. 2019; Google BERT's `max_predictions_per_seq`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from growdsl import families
from growdsl.backend.run_errors import fail

VAL_FRACTION = 0.05
TEXT_SUFFIXES = (".txt", ".text", ".md")
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CAUSAL_SPECIALS = ("<|pad|>", "<|endoftext|>")


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_corpus(path: Path, cache: Path) -> Any:
    """The corpus at `path` as a `datasets.Dataset` with a `text` column."""
    import datasets

    datasets.disable_progress_bars()
    if not path.exists():
        fail("E710", f"corpus {path} does not exist",
             "give `data = \"PATH\"` in the spec's train block, or --data PATH")
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "state.json").exists()):
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    else:
        files = _files(path)
        kinds = {k for k in (_kind(p) for p in files) if k is not None}
        if not files or not kinds:
            fail("E711", f"corpus {path} is empty (no text, JSON lines or Parquet files)")
        if len(kinds) > 1:
            fail("E712", f"corpus {path} mixes file kinds ({', '.join(sorted(kinds))})",
                 "point at a folder of one kind of file")
        kind = kinds.pop()
        chosen = [str(p) for p in files if _kind(p) == kind]
        extra = {"sample_by": "document"} if kind == "text" else {}
        ds = datasets.load_dataset(kind, data_files=chosen, split="train",
                                   cache_dir=str(cache / "datasets"), **extra)
    if "text" not in ds.column_names:
        fail("E712", f"corpus {path} has no `text` column (columns: {ds.column_names})")
    return ds


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in (".jsonl", ".json"):
        return "json"
    if suffix == ".parquet":
        return "parquet"
    return None


def fingerprint(path: Path) -> str:
    """A key for the corpus at `path`: its files' names, sizes and modification times."""
    digest = hashlib.sha256(str(path.resolve()).encode())
    for p in _files(path):
        stat = p.stat()
        digest.update(f"{p.relative_to(path) if path.is_dir() else p.name}:{stat.st_size}:"
                      f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def train_tokenizer(texts: Any, family: str, vocab: int) -> PreTrainedTokenizerFast:
    """A tokenizer trained on `texts` with at most `vocab` entries (specials first)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    def batches() -> Any:
        for i in range(0, len(texts), 64):
            yield texts[i:i + 64]["text"]

    if families.get(family).tokenizer == "WordPiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer: Any = trainers.WordPieceTrainer(vocab_size=vocab,
                                                 special_tokens=list(BERT_SPECIALS),
                                                 show_progress=False)
        tok.train_from_iterator(batches(), trainer, length=len(texts))
        return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]",
                                       unk_token="[UNK]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=list(CAUSAL_SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(batches(), trainer, length=len(texts))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>",
                                   eos_token="<|endoftext|>", bos_token="<|endoftext|>")


def get_tokenizer(tokenizer_dir: Path | None, texts: Any, family: str, vocab: int,
                  corpus_key: str, cache: Path) -> PreTrainedTokenizerBase:
    """The spec's tokenizer (its vocabulary must equal the model's), or the cached trained one."""
    if tokenizer_dir is not None:
        if not tokenizer_dir.is_dir():
            fail("E713", f"tokenizer directory {tokenizer_dir} does not exist",
                 "leave `tokenizer` out to train one on the corpus")
        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
        if len(tok) != vocab:
            fail("E713", f"tokenizer {tokenizer_dir} has {len(tok)} tokens but the model's "
                 f"vocabulary is {vocab}", f"set `vocab={len(tok)}` in the spec's model")
        return tok
    where = cache / "tokenizers" / f"{family}-{vocab}-{corpus_key}"
    if (where / "tokenizer.json").exists():
        cached = PreTrainedTokenizerFast.from_pretrained(str(where), local_files_only=True)
        return fits(cached, family, vocab)
    trained = fits(train_tokenizer(texts, family, vocab), family, vocab)
    tmp = where.with_name(f"{where.name}.tmp{os.getpid()}")
    trained.save_pretrained(str(tmp))
    try:
        tmp.replace(where)
    except OSError:                     # another process cached it first
        shutil.rmtree(tmp, ignore_errors=True)
    return trained


def fits(tok: PreTrainedTokenizerBase, family: str, vocab: int) -> PreTrainedTokenizerBase:
    """`tok` when its ids fit the model's embedding; E713 otherwise. A trained tokenizer
    keeps its whole initial alphabet whatever `vocab` asks (byte-level BPE: 256 bytes plus
    the specials; WordPiece: every character of the corpus), so its size is then the
    smallest vocabulary that works."""
    if len(tok) <= vocab:
        return tok
    kind = families.get(family).tokenizer
    fail("E713", f"the model's vocabulary ({vocab}) is too small for the {kind} tokenizer "
         f"trained on this corpus: its alphabet and special tokens alone take {len(tok)} "
         "entries", f"set `vocab={len(tok)}` or more in the spec's model")


@dataclass(frozen=True, kw_only=True, slots=True)
class Specials:
    """Token ids the batches need (BERT: cls, sep, mask; causal: eos as separator)."""

    sep: int
    cls: int = -1
    mask: int = -1
    first_normal: int = 0


def _mlm(family: str) -> bool:
    """True for a masked-LM family: [CLS] first, masked positions predicted."""
    return families.get(family).objective == "mlm"


def specials_of(tok: PreTrainedTokenizerBase, family: str) -> Specials:
    normal = max(tok.all_special_ids) + 1 if tok.all_special_ids else 0
    if _mlm(family):
        return Specials(sep=int(tok.sep_token_id), cls=int(tok.cls_token_id),
                        mask=int(tok.mask_token_id), first_normal=normal)
    eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
    return Specials(sep=int(eos if eos is not None else 0), first_normal=normal)


def token_stream(texts: Any, tok: PreTrainedTokenizerBase, sep: int) -> np.ndarray:
    """Every document's tokens, a separator after each, as one int64 array."""

    def encode(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
        ids = tok(batch["text"], add_special_tokens=False)["input_ids"]
        return {"ids": [[*x, sep] for x in ids if x]}

    encoded = texts.map(encode, batched=True, remove_columns=texts.column_names)
    parts = [np.asarray(x, dtype=np.int64) for x in encoded["ids"]]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@dataclass(kw_only=True)
class Corpus:
    """The packed token stream of a run, split into training and held-out parts."""

    family: str
    train_ids: np.ndarray
    val_ids: np.ndarray
    specials: Specials
    vocab: int                               # tokens the tokenizer can produce
    seed: int = 0
    _perms: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    def content(self, seq: int) -> int:
        """Stream tokens per sample (BERT spends one position on `[CLS]`)."""
        return seq - 1 if _mlm(self.family) else seq

    def blocks(self, seq: int, val: bool = False) -> int:
        return len(self.val_ids if val else self.train_ids) // self.content(seq)

    def block(self, index: int, seq: int, val: bool = False) -> np.ndarray:
        n = self.content(seq)
        ids = (self.val_ids if val else self.train_ids)[index * n:(index + 1) * n]
        return np.concatenate([[self.specials.cls], ids]) if _mlm(self.family) else ids

    def sample_index(self, k: int, seq: int) -> int:
        """The block that global sample `k` reads (a fresh permutation every epoch)."""
        n = self.blocks(seq)
        epoch = k // n
        key = (epoch, seq)
        if key not in self._perms:
            self._perms = {key: np.random.default_rng([self.seed, epoch, seq]).permutation(n)}
        return int(self._perms[key][k % n])

    def batch(self, offset: int, size: int, seq: int, mlm_p: float) -> dict[str, torch.Tensor]:
        """Training samples offset .. offset+size-1 as model inputs."""
        rows = [self.block(self.sample_index(k, seq), seq) for k in range(offset, offset + size)]
        return self._inputs(rows, [offset + i for i in range(size)], mlm_p, stream=0)

    def val_batches(self, seq: int, size: int, count: int,
                    mlm_p: float) -> list[dict[str, torch.Tensor]]:
        """The first `count` held-out batches (fixed: the same every evaluation)."""
        n = self.blocks(seq, val=True)
        out = []
        for b in range(count):
            idx = [i for i in range(b * size, (b + 1) * size) if i < n]
            if not idx:
                break
            out.append(self._inputs([self.block(i, seq, val=True) for i in idx], idx, mlm_p, 1))
        return out

    def _inputs(self, rows: list[np.ndarray], keys: list[int], mlm_p: float,
                stream: int) -> dict[str, torch.Tensor]:
        ids_BT = torch.from_numpy(np.stack(rows).astype(np.int64))
        if not _mlm(self.family):
            return {"input_ids": ids_BT, "labels": ids_BT.clone()}
        masked = [self._mask(row, key, mlm_p, stream) for row, key in zip(rows, keys, strict=True)]
        return {
            "input_ids": torch.from_numpy(np.stack([m[0] for m in masked])),
            "attention_mask": torch.ones_like(ids_BT),
            "token_type_ids": torch.zeros_like(ids_BT),
            "mlm_positions": torch.from_numpy(np.stack([m[1] for m in masked])),
            "labels": torch.from_numpy(np.stack([m[2] for m in masked])),
        }

    def _mask(self, row: np.ndarray, key: int, p: float,
              stream: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """BERT's 80/10/10 masking of one sample, seeded by (seed, stream, key)."""
        rng = np.random.default_rng([self.seed, stream, key])
        seq = len(row)
        count = max(1, min(seq - 1, round(p * seq)))
        pos = np.sort(rng.choice(np.arange(1, seq), size=count, replace=False))
        labels = row[pos].copy()
        out = row.astype(np.int64).copy()
        roll = rng.random(count)
        high = max(self.vocab, self.specials.first_normal + 1)
        randoms = rng.integers(self.specials.first_normal, high, size=count)
        out[pos] = np.where(roll < 0.8, self.specials.mask, np.where(roll < 0.9, randoms, row[pos]))
        return out, pos.astype(np.int64), labels.astype(np.int64)


def shard(offset: int, batch: int, rank: int, world: int) -> tuple[int, int]:
    """(offset, size) of rank `rank`'s part of the global batch at sample `offset`: ranks
    read consecutive slices, so any world size reads the same samples per step."""
    if batch % world:
        raise ValueError(f"batch {batch} does not split over {world} ranks")
    size = batch // world
    return offset + rank * size, size


def prepare_corpus(data: Path, tokenizer_dir: Path | None, family: str, vocab: int,
                   max_seq: int, seed: int, cache: Path) -> tuple[Corpus, PreTrainedTokenizerBase]:
    """Read, tokenize (training the tokenizer if none is given), pack and split a corpus."""
    texts = read_corpus(data, cache)
    texts = texts.filter(lambda b: [bool(t and t.strip()) for t in b["text"]], batched=True)
    if len(texts) == 0:
        fail("E711", f"corpus {data} is empty (every document is blank)")
    key = fingerprint(data)
    tok = get_tokenizer(tokenizer_dir, texts, family, vocab, key, cache)
    specials = specials_of(tok, family)
    stream_file = cache / "streams" / f"{family}-{_tok_key(tok)}-{key}.npy"
    if stream_file.exists():
        stream = np.load(stream_file)
    else:
        stream = token_stream(texts, tok, specials.sep)
        stream_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = stream_file.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, stream)
        tmp.replace(stream_file)
    n_val = max(int(len(stream) * VAL_FRACTION), max_seq)
    if len(stream) - n_val < 2 * max_seq:
        fail("E711", f"corpus {data} is too small: {len(stream)} tokens, need at least "
             f"{n_val + 2 * max_seq} for sequences of {max_seq} and a held-out split",
             "add text, or shorten `seq` in the spec")
    corpus = Corpus(family=family, train_ids=stream[:-n_val], val_ids=stream[-n_val:],
                    specials=specials, vocab=len(tok), seed=seed)
    return corpus, tok


def _tok_key(tok: PreTrainedTokenizerBase) -> str:
    vocab = json.dumps(sorted(tok.get_vocab().items()), ensure_ascii=True)
    return hashlib.sha256(vocab.encode()).hexdigest()[:12]
