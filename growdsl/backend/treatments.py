"""Model treatments that are not plain HF configs: CompoundGrow's factorized FFN (Gu et al.,
NAACL 2021, sec. 4.2) and masked structural growth's gates (MSG: Yao et al., ICLR 2024).

Both are applied to a freshly built HF model and described in `config.growdsl`, so that a
saved model is rebuilt the same way (`models.build_from_config`). FFN sharing needs no
module: a model with `ffn_share = k` simply stores `ffn // k` FFN units (growth tiles them).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from growdsl.backend.families import Family


def _module(model: nn.Module, dotted: str) -> nn.Module:
    return model.get_submodule(dotted)


def _set_module(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent, _, leaf = dotted.rpartition(".")
    setattr(model.get_submodule(parent), leaf, new)


def factorize_ffn(model: nn.Module, fam: Family, layers: int, rank: int, std: float) -> None:
    """Replace each FFN matrix (in-features a, out-features b) by Linear(a, r) then Linear(r, b)."""
    for i in range(layers):
        for suffix in (*fam.ffn_in, fam.ffn_out):
            dotted = fam.layer_key(i, suffix)
            old: Any = _module(model, dotted)
            weight = old.weight.T if fam.conv1d else old.weight     # [out, in]
            d_out, d_in = weight.shape
            bias = getattr(old, "bias", None) is not None
            low = nn.Linear(d_in, rank, bias=False)
            high = nn.Linear(rank, d_out, bias=bias)
            for lin in (low, high):
                nn.init.normal_(lin.weight, std=std)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
            _set_module(model, dotted, nn.Sequential(low, high))


def install_mask(model: Any, fam: Family, mask: dict[str, Any]) -> None:
    """Gate the layers in `mask["layers"]` (h + c * (Block(h) - h)) and the FFN units from
    `mask["ffn_from"]` on (activations times c); c is read live from `model.config`."""
    config: Any = model.config

    def current() -> float:
        return float(config.growdsl["mask"]["c"])

    def gate(_mod: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        h_BTD = args[0] if args else kwargs["hidden_states"]
        c = current()
        if isinstance(output, tuple):
            return (h_BTD + c * (output[0] - h_BTD), *output[1:])
        return h_BTD + c * (output - h_BTD)

    def ffn_gate(_mod: nn.Module, args: tuple) -> tuple:
        a_BTF = args[0]
        keep = torch.ones(a_BTF.shape[-1], dtype=a_BTF.dtype, device=a_BTF.device)
        keep[int(mask["ffn_from"]):] = current()
        return (a_BTF * keep, *args[1:])

    layers: Any = model.get_submodule(fam.layer_prefix.partition(".{i}")[0])
    for i in mask.get("layers", []):
        layers[i].register_forward_hook(gate, with_kwargs=True)
    if mask.get("ffn_from") is not None:
        for i in range(len(layers)):
            _module(model, fam.layer_key(i, fam.ffn_out)).register_forward_pre_hook(ffn_gate)


def set_mask(model: Any, c: float) -> None:
    """Set the masked-growth gate value (0: new parts off, 1: fully on)."""
    model.config.growdsl["mask"]["c"] = float(c)


def ramp_mask(model: Any, steps_since_growth: int) -> float:
    """Advance the MSG ramp: c = min(1, steps / ramp). Returns c (no-op without a mask)."""
    mask = (getattr(model.config, "growdsl", None) or {}).get("mask")
    if not mask:
        return 1.0
    c = min(1.0, steps_since_growth / max(1, int(mask["ramp"])))
    set_mask(model, c)
    return c
