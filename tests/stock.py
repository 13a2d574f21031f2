"""Judging grown checkpoints by what STOCK transformers computes: tiny checkpoints of config
variants saved with `save_pretrained`, loaded back with `AutoModel*.from_pretrained` (never
growdsl's own loader), and compared on padded batches.

Used by the differential test of verdicts (tests/test_verdicts_differential.py) and the
real-checkpoint tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers as hf

from growdsl import families

# A relative difference at most this is `exact` (issue #10: 1e-5 of the largest output).
EXACT_REL = 1e-5
# A `none` verdict needs a witness: outputs that differ by more than this (relative).
WITNESS_REL = 1e-4


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One config variant of a family: config overrides, the class saved (full or bare),
    the checkpoint's dtype."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    bare: bool = False
    pooler: bool = True            # BertModel's pooler (bare BERT only)
    dtype: torch.dtype = torch.float32


def tiny_config(family_name: str, variant: Variant, *, layers: int = 2, heads: int = 2,
                kv_heads: int | None = None, head_dim: int = 4, ffn: int = 16, vocab: int = 29,
                positions: int = 16) -> hf.PretrainedConfig:
    """A tiny stock config of `family_name` (its HF field names), with `variant`'s
    overrides; weights initialised large (std 0.3) so attention is far from uniform and a
    changed function shows."""
    fam = families.get(family_name)
    names = fam.hf_fields
    dims = {"layers": layers, "hidden": heads * head_dim, "heads": heads, "ffn": ffn,
            "vocab": vocab, "positions": positions}
    if "kv_heads" in names:
        dims["kv_heads"] = kv_heads or heads
    values: dict[str, Any] = {names[k]: v for k, v in dims.items() if k in names}
    values.update(initializer_range=0.3, bos_token_id=0, eos_token_id=1, pad_token_id=2)
    values.update(variant.overrides)
    config = hf.AutoConfig.for_model(family_name, **values)
    config.architectures = [fam.bare_class if variant.bare else fam.model_class]
    return config


def save_checkpoint(path: Path, config: hf.PretrainedConfig, variant: Variant,
                    seed: int = 0) -> hf.PreTrainedModel:
    """A random model of `config` saved with stock `save_pretrained` in `variant`'s dtype."""
    cls = getattr(hf, config.architectures[0])
    torch.manual_seed(seed)
    kwargs = {"add_pooling_layer": variant.pooler} if config.architectures[0] == "BertModel" \
        else {}
    model = cls(config, **kwargs).eval()
    with torch.no_grad():       # biases and norms start at 0 / 1: give them values too
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name.lower():
                p.add_(0.1 * torch.randn_like(p))
    model.to(variant.dtype).save_pretrained(str(path))
    return model


def load_stock(path: Path) -> hf.PreTrainedModel:
    """The checkpoint as stock transformers loads it (its `architectures` class, or
    `AutoModel` for a class transformers does not have; fp32)."""
    arch = json.loads((path / "config.json").read_text())["architectures"][0]
    cls = getattr(hf, arch, hf.AutoModel)
    return cls.from_pretrained(str(path), local_files_only=True, dtype=torch.float32).eval()


def padded_batch(vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three rows of lengths 8, 5 and 3, right-padded (attention mask 0 on the padding)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (3, 8), generator=gen)
    mask = torch.zeros_like(ids)
    for row, length in enumerate((8, 5, 3)):
        mask[row, :length] = 1
    ids = ids.masked_fill(mask == 0, 2)
    return {"input_ids": ids, "attention_mask": mask}


def outputs(model: hf.PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits (bare models: last hidden states) at the unpadded positions, float64."""
    with torch.no_grad():
        result = model(**batch)
    out = getattr(result, "logits", None)
    out = result.last_hidden_state if out is None else out
    return out[batch["attention_mask"].bool()].double()


def relative_diff(src: torch.Tensor, grown: torch.Tensor) -> float:
    """max |src - grown| / max |src|; grown units beyond src's width are lined up with the
    unit they copy under a uniform map (unit j copies j mod D)."""
    if grown.shape[-1] != src.shape[-1]:
        src = src[..., torch.arange(grown.shape[-1]) % src.shape[-1]]
    return float((src - grown).abs().max() / src.abs().max().clamp_min(1e-30))
