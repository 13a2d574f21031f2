"""Every operator on the new families' and LLaMA's config variants, judged by stock
`from_pretrained`: biases switched on by the config (LLaMA's `attention_bias` /
`mlp_bias`, Qwen2's q/k/v) are stored, loaded and grown, and the verdict is what the
stock-loaded models compute; Mistral's sliding window is shorter than the batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from growdsl.backend.equivalence import compare
from growdsl.backend.models import build_model, save_model
from growdsl.backend.streaming import grow_checkpoint
from growdsl.backend.testing import batch_for, growth, tiny_shape
from growdsl.families import weight_map
from growdsl.operators import step_verdict
from growdsl.operators.base import EXACT
from growdsl.shapes import Settings

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

VARIANTS = {
    "llama-biases": ("llama", {"attention_bias": True, "mlp_bias": True, "rope_theta": 1e5,
                               "rms_norm_eps": 1e-5}),
    "qwen2": ("qwen2", {"rope_theta": 1e6}),
    "mistral-window": ("mistral", {"sliding_window": 3}),
}
STEPS = {
    "fpi": ({"hidden": 16, "heads": 4, "kv_heads": 2, "ffn": 12}, ("fpi",)),
    "clone": ({"hidden": 16, "heads": 4, "kv_heads": 2, "ffn": 16}, ("clone",)),
    "aki": ({"hidden": 16, "heads": 4, "kv_heads": 2, "ffn": 16}, ("aki",)),
    "identity": ({"layers": 4}, (("identity", {"where": "interleave"}),)),
    "stack": ({"layers": 4}, ("stack",)),
    "interleave": ({"layers": 4}, ("interleave",)),
    "split_heads": ({"heads": 4, "kv_heads": 2, "head_dim": 2}, ("split_heads",)),
    "extend": ({"positions": 32}, ("extend",)),
}


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_operator_on_the_config_variant(tmp_path: Path, variant: str, step: str) -> None:
    import transformers as hf

    family, settings = VARIANTS[variant]
    change, ops = STEPS[step]
    src = tiny_shape(family, layers=2, heads=2, kv_heads=1, head_dim=4, hidden=8, ffn=8,
                     tied=False, settings=Settings(settings))
    model = build_model(src, seed=0)
    with torch.no_grad():                 # biases start at zero: make every tensor count
        gen = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    save_model(model, tmp_path / "src")
    final, steps, _config, _ = grow_checkpoint(tmp_path / "src", tmp_path / "out",
                                               src.replace(**change), growth(*ops, seed=1))
    before = hf.AutoModelForCausalLM.from_pretrained(str(tmp_path / "src")).eval()
    after, info = hf.AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"),
                                                          output_loading_info=True)
    assert not info["missing_keys"], info
    assert not info["unexpected_keys"], info
    biases = [k for k in weight_map(final) if k.endswith("_proj.bias")]
    assert len(biases) == {"llama-biases": 7, "qwen2": 3, "mistral-window": 0}[variant] \
        * final.layers
    for key in biases:      # layer 0 is an old layer: grown, not left at a fresh zero
        if key.startswith("model.layers.0."):
            assert after.get_parameter(key).abs().sum() > 0, key
    for name, value in settings.items():
        if name != "rope_theta":
            assert getattr(after.config, name) == value
    batch = batch_for(src, 2, 6, 0)               # 6 tokens: past Mistral's window of 3
    diff = compare(before, after.eval(), batch)
    verdict = step_verdict([s.verdict for s in steps]).kind
    if verdict == EXACT:
        assert diff.within(1e-5, 1e-5), (step, diff)
    else:
        assert math.isfinite(diff.max_abs) and diff.max_abs > 1e-4, (step, verdict, diff)
