"""Growth maps for the width operators (fpi, aki, clone): one map for the residual stream,
one per attention space (whole heads copied, head size fixed, grouped-query groups kept
together), one for the FFN units.

Query head h of the grown model copies source head `g_kv(h // G') * G + f(h % G')`, where
G, G' are the query heads per key/value head before and after, g_kv maps key/value heads
and f maps positions inside a group: a copied query head always reads a copy of the
key/value head its source read. When the groups get smaller (G' divides G: key/value heads
grow faster than query heads), each source group is first seen as G / G' sub-groups of G'
query heads reading the same key/value head; the sub-groups are mapped like key/value
heads and every key/value head copies the one its sub-group's source read. Either way the
attention of every query head is kept, so the step is as exact as the residual map.
(Net2Net, Chen et al. ICLR 2016; bert2BERT, Chen et al. ACL 2022.)
"""

from __future__ import annotations

import torch

from growdsl.backend.surgery.core import Ctx, Map, heads_to_units, unit_map
from growdsl.shapes import Shape


def _mode(old: int, new: int, mapping: str) -> str:
    if mapping == "uniform" or (mapping == "auto" and new % old == 0):
        return "uniform"
    return "random"


def width_maps(src: Shape, dst: Shape, mapping: str, ctx: Ctx) -> dict[str, Map]:
    """Maps for spaces D, Q, KV, QKV and F (mapping: uniform | auto | random)."""
    if dst.head_dim != src.head_dim:
        raise ValueError("width growth keeps the head size; use split_heads first")
    if src.heads % src.kv_heads or dst.heads % dst.kv_heads:
        raise ValueError("key/value heads must divide the query heads")
    group, new_group = src.heads // src.kv_heads, dst.heads // dst.kv_heads
    if new_group < group and group % new_group:
        raise ValueError(f"query heads per key/value head shrink {group} -> {new_group}, "
                         "not to a divisor")
    h = torch.arange(dst.heads)
    g_d = unit_map(src.hidden, dst.hidden, _mode(src.hidden, dst.hidden, mapping),
                   ctx.generator(1))
    if new_group >= group:
        g_kv = unit_map(src.kv_heads, dst.kv_heads, _mode(src.kv_heads, dst.kv_heads, mapping),
                        ctx.generator(2))
        inner = unit_map(group, new_group, _mode(group, new_group, mapping), ctx.generator(3))
        g_heads = g_kv[h // new_group] * group + inner[h % new_group]
    else:   # sub-groups of new_group query heads, mapped like key/value heads
        subs = src.heads // new_group
        g_sub = unit_map(subs, dst.kv_heads, _mode(subs, dst.kv_heads, mapping),
                         ctx.generator(2))
        g_kv = g_sub // (group // new_group)
        g_heads = g_sub[h // new_group] * new_group + h % new_group
    g_q = heads_to_units(g_heads, src.head_dim)
    g_kv_units = heads_to_units(g_kv, src.head_dim)
    n_q, n_kv = src.heads * src.head_dim, src.kv_heads * src.head_dim
    g_f = unit_map(src.ffn_stored, dst.ffn_stored,
                   _mode(src.ffn_stored, dst.ffn_stored, mapping), ctx.generator(4))
    return {
        "D": Map(g=g_d, old=src.hidden),
        "Q": Map(g=g_q, old=n_q),
        "KV": Map(g=g_kv_units, old=n_kv),
        "QKV": Map(g=torch.cat([g_q, g_kv_units + n_q, g_kv_units + n_q + n_kv]),
                   old=n_q + 2 * n_kv),
        "F": Map(g=g_f, old=src.ffn_stored),
    }
