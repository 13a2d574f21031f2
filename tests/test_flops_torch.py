"""Cross-check: growdsl.flops agrees with torch's FlopCounterMode on Hugging Face models.

Forward + backward of one training step, eager attention (so the attention matmuls are
visible to the counter). BERT's MLM head is run on the masked positions only, as the
estimator counts it. Real-size models run on the meta device (no memory, no compute).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

from growdsl.flops import param_count, train_flops_per_step
from growdsl.shapes import PRESETS, Shape

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

TINY = {
    "bert": Shape(family="bert", layers=2, hidden=64, heads=4, kv_heads=4, head_dim=16,
                  ffn=256, vocab=500, seq=40, positions=64),
    "gpt2": Shape(family="gpt2", layers=2, hidden=64, heads=4, kv_heads=4, head_dim=16,
                  ffn=256, vocab=500, seq=40, positions=64),
    "llama": Shape(family="llama", layers=2, hidden=64, heads=4, kv_heads=2, head_dim=16,
                   ffn=176, vocab=500, seq=40, positions=64, tied=False),
}
REAL = {"bert": PRESETS["bert-base"], "gpt2": PRESETS["gpt2"],
        "llama": PRESETS["tinyllama-1.1b"]}


def build(shape: Shape) -> torch.nn.Module:
    common = {"vocab_size": shape.vocab, "attn_implementation": "eager"}
    if shape.family == "bert":
        return BertForMaskedLM(BertConfig(
            num_hidden_layers=shape.layers, hidden_size=shape.hidden,
            num_attention_heads=shape.heads, intermediate_size=shape.ffn,
            max_position_embeddings=shape.positions, **common))
    if shape.family == "gpt2":
        return GPT2LMHeadModel(GPT2Config(
            n_layer=shape.layers, n_embd=shape.hidden, n_head=shape.heads,
            n_inner=shape.ffn, n_positions=shape.positions, bos_token_id=0, eos_token_id=0,
            **common))
    return LlamaForCausalLM(LlamaConfig(
        num_hidden_layers=shape.layers, hidden_size=shape.hidden,
        num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
        head_dim=shape.head_dim, intermediate_size=shape.ffn,
        max_position_embeddings=shape.positions, tie_word_embeddings=shape.tied, **common))


def measured_step(model: torch.nn.Module, shape: Shape, batch: int, seq: int, masked: int,
                  device: str) -> float:
    """FLOPs of forward + backward of one step, counted by torch."""
    ids_BT = torch.randint(0, shape.vocab, (batch, seq), device=device)
    with FlopCounterMode(display=False) as counter:
        if shape.family == "bert":
            hidden_BTD = model.bert(input_ids=ids_BT).last_hidden_state
            picked_BMD = hidden_BTD[:, :masked]          # the masked positions only
            logits_BMV = model.cls(picked_BMD)
            loss = logits_BMV.float().logsumexp(-1).mean()
        else:
            loss = model(input_ids=ids_BT, labels=ids_BT).loss
        loss.backward()
    return float(counter.get_total_flops())


def check(shape: Shape, batch: int, seq: int, device: str) -> None:
    masked = round(0.15 * seq)
    with torch.device(device):
        model = build(shape)
    if device == "cpu":
        model.eval()  # dropout off; the counts do not depend on it
    got = measured_step(model, shape, batch, seq, masked, device)
    want = train_flops_per_step(shape, batch, seq, mlm_probability=masked / seq)
    assert abs(want - got) / got < 0.02, (shape.family, want, got)
    assert param_count(shape) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_tiny_models_match_flop_counter(family: str) -> None:
    check(TINY[family], batch=2, seq=40, device="cpu")


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_real_size_models_match_flop_counter(family: str) -> None:
    shape = REAL[family]
    check(shape, batch=1, seq=shape.seq, device="meta")


TREATED = [
    TINY["bert"].replace(layers=3, pool=2),
    TINY["bert"].replace(ffn_share=4),
    TINY["bert"].replace(ffn_rank=8),
    TINY["bert"].replace(layers=3, ffn_share=2, pool=2),
    TINY["gpt2"].replace(ffn_share=4),
    TINY["gpt2"].replace(ffn_rank=8),
    TINY["llama"].replace(ffn_share=2),
    TINY["llama"].replace(ffn_rank=8),
]


@pytest.mark.parametrize("shape", TREATED, ids=lambda s: f"{s.family}-p{s.pool}-k{s.ffn_share}"
                         f"-r{s.ffn_rank}")
def test_treated_backend_models_match_flop_counter(shape: Shape) -> None:
    """Pooling, sharing and factorization counted as growdsl's backend runs them."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from growdsl.backend.models import build_from_config, config_for

    model = build_from_config(config_for(shape, _attn_implementation="eager"))
    batch, seq, masked = 2, 40, 6
    ids_BT = torch.randint(0, shape.vocab, (batch, seq))
    # the math kernel makes the pooled first layer's attention visible to the counter
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        if shape.family == "bert" and shape.pool > 1:
            positions_BM = torch.arange(masked).repeat(batch, 1) + 3
            loss = model(input_ids=ids_BT, labels=ids_BT[:, :masked],
                         mlm_positions=positions_BM).loss
        elif shape.family == "bert":
            hidden_BMD = model.bert(input_ids=ids_BT).last_hidden_state[:, :masked]
            loss = model.cls(hidden_BMD).logsumexp(-1).mean()
        else:
            loss = model(input_ids=ids_BT, labels=ids_BT).loss
        loss.backward()
    got = float(counter.get_total_flops())
    want = train_flops_per_step(shape, batch, seq, mlm_probability=masked / seq)
    assert abs(want - got) / got < 0.02, (want, got)
    assert param_count(shape) == sum(p.numel() for p in model.parameters())
