"""CompoundGrow's embedding pooling for BERT (Gu et al., NAACL 2021, sec. 4.3).

Only the first attention layer's QUERIES are pooled (mean or max over windows of p tokens,
the [CLS] position kept apart); its keys and values stay full length, so every later layer
runs on about T/p positions. Masked-LM target positions (`mlm_positions`, [B, M]) are
carried unpooled: their embeddings are appended to the queries and the MLM head predicts
from those M positions only. With p = 1 and no positions this is exactly BertForMaskedLM.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import BertForMaskedLM
from transformers.modeling_outputs import MaskedLMOutput


def pool_windows(x_BTD: torch.Tensor, p: int, mode: str) -> torch.Tensor:
    """[CLS] kept, then positions 1.. pooled by windows of p (the last one may be short)."""
    if p == 1:
        return x_BTD
    cls_B1D, rest_BSD = x_BTD[:, :1], x_BTD[:, 1:]
    pad = (-rest_BSD.shape[1]) % p
    if mode == "max":
        rest_BSD = F.pad(rest_BSD.transpose(1, 2), (0, pad), value=float("-inf")).transpose(1, 2)
        pooled = F.max_pool1d(rest_BSD.transpose(1, 2), p).transpose(1, 2)
    else:
        ones = torch.ones_like(rest_BSD[..., :1])
        summed = F.avg_pool1d(F.pad(rest_BSD.transpose(1, 2), (0, pad)), p) * p
        count = F.avg_pool1d(F.pad(ones.transpose(1, 2), (0, pad)), p) * p
        pooled = (summed / count).transpose(1, 2)
    return torch.cat([cls_B1D, pooled], dim=1)


class PooledBertForMaskedLM(BertForMaskedLM):
    """BertForMaskedLM with pooled first-layer queries (`config.growdsl["pool"]`)."""

    def forward(self, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None,
                mlm_positions: torch.Tensor | None = None,
                **_: Any) -> MaskedLMOutput:
        extra = self.config.growdsl
        p, mode = int(extra.get("pool", 1)), str(extra.get("pool_mode", "mean"))
        emb_BTD = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        q_BSD = pool_windows(emb_BTD, p, mode)
        key_keep = None if attention_mask is None else attention_mask.bool()
        q_keep = None
        if key_keep is not None:
            q_keep = pool_windows(key_keep[..., None].float(), p, "max")[..., 0].bool()
        if mlm_positions is not None:
            idx = mlm_positions[..., None].expand(-1, -1, emb_BTD.shape[-1])
            q_BSD = torch.cat([q_BSD, emb_BTD.gather(1, idx)], dim=1)
            if q_keep is not None:
                q_keep = torch.cat([q_keep, torch.ones_like(mlm_positions, dtype=torch.bool)], 1)
        h_BSD = self._first_layer(q_BSD, emb_BTD, key_keep)
        mask = None if q_keep is None else q_keep[:, None, None, :]
        for layer in self.bert.encoder.layer[1:]:
            h_BSD = layer(h_BSD, mask)
        if mlm_positions is not None:
            h_BSD = h_BSD[:, -mlm_positions.shape[1]:]
        logits = self.cls(h_BSD)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits)

    def _first_layer(self, q_BSD: torch.Tensor, h_BTD: torch.Tensor,
                     key_keep: torch.Tensor | None) -> torch.Tensor:
        layer = self.bert.encoder.layer[0]
        att = layer.attention.self
        heads = self.config.num_attention_heads
        dh = self.config.hidden_size // heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0], x.shape[1], heads, dh).transpose(1, 2)

        mask = None if key_keep is None else key_keep[:, None, None, :]
        drop = att.dropout.p if self.training else 0.0
        ctx = F.scaled_dot_product_attention(split(att.query(q_BSD)), split(att.key(h_BTD)),
                                             split(att.value(h_BTD)), attn_mask=mask,
                                             dropout_p=drop)
        ctx_BSD = ctx.transpose(1, 2).reshape(q_BSD.shape[0], q_BSD.shape[1], heads * dh)
        a_BSD = layer.attention.output(ctx_BSD, q_BSD)
        return layer.output(layer.intermediate(a_BSD), a_BSD)
