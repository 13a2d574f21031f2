"""Absurd or mismatched sizes in a checkpoint, refused before anything is allocated.

`grow`, `run`'s `init from` and `--resume` read a checkpoint's `config.json` with the same
check `growdsl check` applies to `model ... from` (`hf_config.config_problem`: every size a
positive whole number within the language's bound; called where the config is read), and
compare the weights the config implies with those stored, from the safetensors headers
alone, before building anything:

- `weights_bound_problem`: a config implying more weights than the files could hold at two
  bytes each (`n_layer` = 10 million with a 1 MB file) is refused at once, not after hours
  of building a model that cannot be filled;
- `tensor_shapes_problem`: every tensor the model needs is stored with the shape its
  config implies (the model is built on `meta`: no memory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from growdsl.backend.models import build_from_config
from growdsl.flops import attention_weights, ffn_weights
from growdsl.shapes import Shape

MIN_ITEM_BYTES = 2          # the smallest dtype growdsl reads (fp16 / bf16)


def least_weights(shape: Shape) -> int:
    """A lower bound on the weights any layout of `shape` stores (layers and embeddings)."""
    return shape.layers * (sum(attention_weights(shape)) + ffn_weights(shape)) + \
        shape.vocab * shape.hidden


def weights_bound_problem(shape: Shape, files: list[Path]) -> str | None:
    """A config implying more weights than `files` could hold, or None."""
    stored = sum(p.stat().st_size for p in files)
    need = least_weights(shape)
    if need * MIN_ITEM_BYTES <= stored:
        return None
    return (f"config.json implies at least {need:,} weights, but the weight files hold "
            f"{stored:,} bytes")


def stored_shapes(files: list[Path]) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape in safetensors `files`, from their headers."""
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118
                shapes[key] = tuple(f.get_slice(key).get_shape())
    return shapes


def tensor_shapes_problem(config: Any, files: list[Path]) -> str | None:
    """A tensor the model of `config` needs that `files` lack or store with another shape."""
    with torch.device("meta"):
        model = build_from_config(config, seed=None)
    found = stored_shapes(files)
    wrong = []
    for key, tensor in model.state_dict().items():
        if key in found and found[key] != tuple(tensor.shape):
            wrong.append(f"{key} is {list(found[key])}, config.json implies "
                         f"{list(tensor.shape)}")
    if wrong:
        return "tensor shapes disagree with config.json: " + "; ".join(wrong[:3])
    return None
