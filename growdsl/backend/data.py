"""Training data: corpus, tokenizer, packed token stream, held-out split, batches.

- Corpus: a text file or a folder of them (one document per file), JSON lines or Parquet
  with a `text` column, or a Hugging Face dataset saved with `save_to_disk`, streamed in
  bounded pieces by growdsl.backend.reader (its mistakes located: E711, E712).
- Tokenizer (`get_tokenizer`): a local HF tokenizer directory, or one trained on the corpus
  with `tokenizers` on first use (WordPiece for BERT, byte-level BPE for GPT-2 / LLaMA) and
  cached under the growdsl cache, keyed by the corpus and the vocabulary size.
- Packing: the documents' tokens are concatenated into one stream (a separator after each
  document), tokenized once into a store read by position (growdsl.backend.token_store); the
  last `VAL_FRACTION` of it is held out for validation. A training sample of length T is a
  block of the stream (BERT: `[CLS]` + T-1 tokens).
- Data position: the global sample offset k. Sample k is block `perm_e[k mod n]` of epoch
  e = k // n (a permutation seeded by the run's seed, the epoch and T), and BERT's masking of
  sample k is seeded by (seed, k): nothing depends on RNG state, so a run resumes, or is split
  across ranks, by offset alone (`shard`).
- BERT masking: M = round(p T) positions (never `[CLS]`), 80% `[MASK]`, 10% random, 10% kept;
  computed for the whole batch at once from counter-based hashes of (seed, stream, sample
  index, position) (splitmix64), so it is vectorized and still a function of the sample
  index alone. The batch carries `mlm_positions` [B, M] and their `labels` [B, M] so that the MLM head runs
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
from growdsl.backend import reader, token_store
from growdsl.backend.run_errors import fail
from growdsl.errors import GrowError

VAL_FRACTION = 0.05
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CAUSAL_SPECIALS = ("<|pad|>", "<|endoftext|>")


def fingerprint(path: Path) -> str:
    """A key for the corpus at `path`: its files' names, sizes and modification times."""
    digest = hashlib.sha256(str(path.resolve()).encode())
    for p in reader.files(path):
        stat = p.stat()
        digest.update(f"{p.relative_to(path) if path.is_dir() else p.name}:{stat.st_size}:"
                      f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def train_tokenizer(corpus: Path, family: str, vocab: int) -> PreTrainedTokenizerFast:
    """A tokenizer trained on the corpus at `corpus` (streamed in pieces) with at most
    `vocab` entries (specials first)."""

    failed: list[GrowError] = []

    def batches() -> Any:
        batch: list[str] = []
        try:
            for piece in reader.pieces(corpus):
                batch.append(piece.text)
                if len(batch) == 64:
                    yield batch
                    batch = []
        except GrowError as error:      # raised again below, not through the Rust trainer
            failed.append(error)
            return
        yield batch

    tok = _train(batches(), family, vocab)
    if failed:
        raise failed[0]
    return tok


def _train(batches: Any, family: str, vocab: int) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if families.get(family).tokenizer == "WordPiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer: Any = trainers.WordPieceTrainer(vocab_size=vocab,
                                                 special_tokens=list(BERT_SPECIALS),
                                                 show_progress=False)
        tok.train_from_iterator(batches, trainer)
        return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]",
                                       unk_token="[UNK]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=list(CAUSAL_SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(batches, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>",
                                   eos_token="<|endoftext|>", bos_token="<|endoftext|>")


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "tokenizer.model", "spiece.model")
TOKENIZER_HELP = ("name a folder saved with `save_pretrained` (tokenizer.json, or vocab files), "
                  "or leave `tokenizer` out to train one on the corpus")


def load_tokenizer(tokenizer_dir: Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved in `tokenizer_dir`; E713 naming the folder when there is none."""
    if not tokenizer_dir.is_dir():
        fail("E713", f"tokenizer directory {tokenizer_dir} does not exist", TOKENIZER_HELP)
    if not any((tokenizer_dir / name).is_file() for name in TOKENIZER_FILES):
        fail("E713", f"{tokenizer_dir} holds no tokenizer (none of "
             f"{', '.join(TOKENIZER_FILES[:4])})", TOKENIZER_HELP)
    try:
        return AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        fail("E713", f"cannot load the tokenizer in {tokenizer_dir}: "
             f"{str(exc).splitlines()[0][:200]}", TOKENIZER_HELP)


def get_tokenizer(tokenizer_dir: Path | None, corpus: Path, family: str, vocab: int,
                  corpus_key: str, cache: Path) -> PreTrainedTokenizerBase:
    """The spec's tokenizer (its vocabulary must equal the model's), or the cached trained one."""
    if tokenizer_dir is not None:
        tok = load_tokenizer(tokenizer_dir)
        if len(tok) != vocab:
            fail("E713", f"tokenizer {tokenizer_dir} has {len(tok)} tokens but the model's "
                 f"vocabulary is {vocab}", f"set `vocab={len(tok)}` in the spec's model")
        return tok
    where = cache / "tokenizers" / f"{family}-{vocab}-{corpus_key}"
    if (where / "tokenizer.json").exists():
        cached = PreTrainedTokenizerFast.from_pretrained(str(where), local_files_only=True)
        return fits(cached, family, vocab)
    trained = fits(train_tokenizer(corpus, family, vocab), family, vocab)
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


@dataclass(kw_only=True)
class Corpus:
    """The packed token stream of a run, split into training and held-out parts."""

    family: str
    train_ids: np.ndarray | token_store.Tokens     # the store's ids, read on demand
    val_ids: np.ndarray | token_store.Tokens
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
        if key not in self._perms:     # 4 bytes per block (the only corpus-sized array held)
            order = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
            np.random.default_rng([self.seed, epoch, seq]).shuffle(order)  # = permutation(n)
            self._perms = {key: order}
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
        ids_BT = np.stack(rows).astype(np.int64)
        if not _mlm(self.family):
            t = torch.from_numpy(ids_BT)
            return {"input_ids": t, "labels": t.clone()}
        masked_BT, pos_BM, labels_BM = self.mask(ids_BT, np.asarray(keys), mlm_p, stream)
        ones = torch.ones(ids_BT.shape, dtype=torch.int64)
        return {"input_ids": torch.from_numpy(masked_BT), "attention_mask": ones,
                "token_type_ids": torch.zeros_like(ones),
                "mlm_positions": torch.from_numpy(pos_BM), "labels": torch.from_numpy(labels_BM)}

    def mask(self, ids_BT: np.ndarray, keys_B: np.ndarray, p: float,
             stream: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """BERT's 80/10/10 masking of a batch; row b depends on (seed, stream, keys_B[b]) only."""
        _rows, seq = ids_BT.shape
        count = max(1, min(seq - 1, round(p * seq)))
        u_BT = uniforms(self.seed, stream, keys_B, seq, salt=0)
        u_BT[:, 0] = 2.0                                        # never [CLS]
        pos_BM = np.sort(np.argpartition(u_BT, count - 1, axis=1)[:, :count], axis=1)
        labels_BM = np.take_along_axis(ids_BT, pos_BM, axis=1)
        roll_BM = np.take_along_axis(uniforms(self.seed, stream, keys_B, seq, salt=1), pos_BM, 1)
        draw_BM = np.take_along_axis(uniforms(self.seed, stream, keys_B, seq, salt=2), pos_BM, 1)
        low = self.specials.first_normal
        high = max(self.vocab, low + 1)
        randoms_BM = low + (draw_BM * (high - low)).astype(np.int64)
        shown_BM = np.where(roll_BM < 0.8, self.specials.mask,
                            np.where(roll_BM < 0.9, randoms_BM, labels_BM))
        out_BT = ids_BT.copy()
        np.put_along_axis(out_BT, pos_BM, shown_BM, axis=1)
        return out_BT, pos_BM.astype(np.int64), labels_BM.astype(np.int64)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise on uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniforms(seed: int, stream: int, keys_B: np.ndarray, seq: int, salt: int) -> np.ndarray:
    """[B, seq] floats in [0, 1): a counter-based hash of (seed, stream, salt, key, position)."""
    with np.errstate(over="ignore"):
        base = _mix(np.array([seed, stream * 4 + salt], dtype=np.uint64) + _GOLDEN)
        key_B = _mix(keys_B.astype(np.uint64) ^ base[0]) ^ base[1]
        steps_T = (np.arange(1, seq + 1, dtype=np.uint64) * _GOLDEN)
        h_BT = _mix(key_B[:, None] + steps_T[None, :])
    return (h_BT >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def shard(offset: int, batch: int, rank: int, world: int) -> tuple[int, int]:
    """(offset, size) of rank `rank`'s part of the global batch at sample `offset`: ranks
    read consecutive slices, so any world size reads the same samples per step."""
    if batch % world:
        raise ValueError(f"batch {batch} does not split over {world} ranks")
    size = batch // world
    return offset + rank * size, size


def prepare_corpus(data: Path, tokenizer_dir: Path | None, family: str, vocab: int,
                   max_seq: int, seed: int, cache: Path) -> tuple[Corpus, PreTrainedTokenizerBase]:
    """Tokenize the corpus into its store once (training the tokenizer if none is given),
    map it, and split it."""
    reader.corpus_kind(data)            # E710-E712 before any work
    key = fingerprint(data)
    tok = get_tokenizer(tokenizer_dir, data, family, vocab, key, cache)
    specials = specials_of(tok, family)
    store = cache / "streams" / f"{family}-{_tok_key(tok)}-{key}.i32"
    if not store.exists():
        token_store.build(reader.pieces(data), tok, specials.sep, store)
    stream = token_store.open_store(store)
    if len(stream) == 0:
        fail("E711", f"corpus {data} is empty (every document is blank)",
             "give documents with text in them")
    n_val = max(int(len(stream) * VAL_FRACTION), max_seq)
    if len(stream) - n_val < 2 * max_seq:
        fail("E711", f"corpus {data} is too small: {len(stream)} tokens, need at least "
             f"{n_val + 2 * max_seq} for sequences of {max_seq} and a held-out split",
             "add text, or shorten `seq` in the spec")
    corpus = Corpus(family=family, train_ids=stream.part(0, len(stream) - n_val),
                    val_ids=stream.part(len(stream) - n_val, len(stream)),
                    specials=specials, vocab=len(tok), seed=seed)
    return corpus, tok


def _tok_key(tok: PreTrainedTokenizerBase) -> str:
    vocab = json.dumps(sorted(tok.get_vocab().items()), ensure_ascii=True)
    return hashlib.sha256(vocab.encode()).hexdigest()[:12]
