"""The operators' static halves: registry metadata, shape rules and verdicts."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growdsl.ir import Growth, OpCall
from growdsl.operators import (
    REGISTRY,
    GrowthStepError,
    apply_growth,
    resolve_args,
    step_verdict,
    structural_diff,
)
from growdsl.operators.base import APPROXIMATE, EXACT, NONE, ShapeError
from growdsl.shapes import PRESETS, Shape

FIELDS = {f.name for f in dataclasses.fields(Shape)}


@st.composite
def shapes(draw: st.DrawFn, family: str | None = None) -> Shape:
    fam = family or draw(st.sampled_from(["bert", "gpt2", "llama"]))
    head_dim = draw(st.sampled_from([8, 16, 32, 64]))
    kv = draw(st.integers(1, 4))
    heads = kv * draw(st.integers(1, 4)) if fam == "llama" else draw(st.integers(1, 16))
    positions = draw(st.sampled_from([64, 128, 512]))
    return Shape(family=fam, layers=draw(st.integers(1, 24)), hidden=heads * head_dim,
                 heads=heads, kv_heads=kv if fam == "llama" else heads, head_dim=head_dim,
                 ffn=draw(st.integers(1, 64)) * 16, vocab=1000, seq=positions,
                 positions=positions, tied=fam != "llama",
                 ffn_share=draw(st.sampled_from([1, 1, 2, 4])),
                 ffn_rank=draw(st.sampled_from([0, 0, 8])), pool=draw(st.sampled_from([1, 2])))


@st.composite
def grown(draw: st.DrawFn, src: Shape) -> Shape:
    """A shape each of whose fields is kept, multiplied, or nudged (sometimes shrunk)."""
    def move(v: int) -> int:
        how = draw(st.sampled_from(["keep", "keep", "times", "plus", "minus"]))
        if how == "times":
            return v * draw(st.integers(2, 3))
        if how == "plus":
            return v + draw(st.integers(1, 8))
        return max(1, v - 1) if how == "minus" else v
    heads = move(src.heads)
    kv = src.kv_heads if src.kv_heads == src.heads and heads == src.heads else move(src.kv_heads)
    head_dim = draw(st.sampled_from([src.head_dim, src.head_dim, max(1, src.head_dim // 2)]))
    return src.replace(layers=move(src.layers), heads=heads, kv_heads=kv, head_dim=head_dim,
                       hidden=heads * head_dim if src.family != "llama" else move(src.hidden),
                       ffn=move(src.ffn), positions=move(src.positions),
                       ffn_share=draw(st.sampled_from([1, src.ffn_share])),
                       ffn_rank=draw(st.sampled_from([0, src.ffn_rank])),
                       pool=draw(st.sampled_from([1, src.pool])))


def _args(name: str, data: st.DataObject) -> dict:
    args: dict[str, str | int] = {}
    for key, param in REGISTRY[name].params.items():
        if param.choices:
            args[key] = data.draw(st.sampled_from(param.choices))
        elif param.type is int:
            args[key] = data.draw(st.integers(-2, 100))
    return args


def test_registry_metadata() -> None:
    assert len(REGISTRY) == 12
    for key, op in REGISTRY.items():
        assert op.name == key
        assert op.summary and op.paper and op.dims
        assert set(op.dims) <= FIELDS, key
        for pname, param in op.params.items():
            assert param.type in (int, float, str, bool), pname
            if param.default is not None:
                assert isinstance(param.default, param.type)
            if param.choices:
                assert param.default in param.choices


def _plain(src: Shape) -> Shape:
    return src.replace(ffn_share=1, ffn_rank=0)


def _widen(draw: st.DrawFn, src: Shape, whole: bool) -> Shape:
    """`src` grown in width with the head size fixed (every factor whole when `whole`)."""
    k = draw(st.integers(2, 3)) if whole else 1
    heads = src.heads * k if whole else src.heads + draw(st.integers(0, 4))
    kv = src.kv_heads * k if whole else (src.kv_heads if src.kv_heads != src.heads else heads)
    if src.family == "llama" and not whole and heads % kv:
        heads = src.heads
    ffn = src.ffn * (k if whole else 1) + (0 if whole else 16 * draw(st.integers(0, 4)))
    hidden = heads * src.head_dim
    if (hidden, ffn) == (src.hidden, src.ffn):
        ffn += 16
    return src.replace(hidden=hidden, heads=heads, kv_heads=kv, ffn=ffn)


@st.composite
def accepted(draw: st.DrawFn, name: str) -> tuple[Shape, Shape, dict]:
    """A source shape, a next-stage shape and arguments that operator `name` accepts."""
    src = draw(shapes(family="gpt2" if name == "identity" else None))
    more = draw(st.integers(1, 12))
    args: dict = {}
    if name == "stack":
        args["remainder"] = draw(st.sampled_from(["bottom", "top"]))
        return src, src.replace(layers=src.layers + more), args
    if name == "interleave":
        return src, src.replace(layers=src.layers * draw(st.integers(2, 3))), args
    if name == "identity":
        args["where"] = draw(st.sampled_from(["append", "interleave"]))
        added = src.layers if args["where"] == "interleave" else more
        return src, src.replace(layers=src.layers + added), args
    if name == "masked":
        src = _plain(src)
        args["ramp"] = draw(st.integers(1, 10_000))
        grow_ffn = draw(st.booleans())
        return src, src.replace(layers=src.layers + (0 if grow_ffn else more),
                                ffn=src.ffn + (16 * more if grow_ffn else 0)), args
    if name in ("fpi", "aki", "clone"):
        if name == "fpi":
            args["mapping"] = draw(st.sampled_from(["auto", "random"]))
        src = _plain(src)
        return src, _widen(draw, src, whole=name == "clone" or draw(st.booleans())), args
    if name == "split_heads":
        k = draw(st.sampled_from([2, 4]))
        return src, src.replace(heads=src.heads * k, kv_heads=src.kv_heads * k,
                                head_dim=src.head_dim // k), args
    if name == "unshare":
        src = src.replace(ffn_share=draw(st.sampled_from([2, 4])))
        return src, src.replace(ffn_share=draw(st.sampled_from([1, src.ffn_share // 2]))), args
    if name == "unfactor":
        src = src.replace(ffn_rank=8)
        return src, src.replace(ffn_rank=0), args
    if name == "unpool":
        src = src.replace(pool=draw(st.sampled_from([2, 4])), pool_mode="max")
        return src, src.replace(pool=draw(st.sampled_from([1, src.pool // 2])),
                                pool_mode="mean"), args
    assert name == "extend", name
    args["init"] = draw(st.sampled_from(["copy", "zero"]))
    return src, src.replace(positions=src.positions * draw(st.integers(2, 4))), args


def _moves_only_owned_dims(name: str, src: Shape, dst: Shape, out: Shape, args: dict) -> None:
    op = REGISTRY[name]
    changed = {f for f in FIELDS if getattr(out, f) != getattr(src, f)}
    assert changed, f"{name} applied but changed nothing"
    assert changed <= set(op.dims), (name, changed)
    for d in changed:
        assert getattr(out, d) == getattr(dst, d), (name, d)
        if d not in ("ffn_share", "ffn_rank", "pool", "head_dim", "pool_mode"):
            assert getattr(out, d) > getattr(src, d), f"{name} shrank {d}"
    verdict = op.verdict(src, out, args)
    assert verdict.kind in (EXACT, APPROXIMATE, NONE)
    assert len(verdict.reason) > 10


@settings(max_examples=200, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(REGISTRY)))
def test_every_operator_applies_to_what_it_accepts(data: st.DataObject, name: str) -> None:
    src, dst, args = data.draw(accepted(name))
    out = REGISTRY[name].apply(src, dst, resolve_args(REGISTRY[name], args))
    assert structural_diff(out, dst) == [], (name, src, dst)
    _moves_only_owned_dims(name, src, dst, out, resolve_args(REGISTRY[name], args))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(REGISTRY)))
def test_any_pair_either_applies_cleanly_or_says_why(data: st.DataObject, name: str) -> None:
    src = data.draw(shapes())
    dst = data.draw(grown(src))
    args = resolve_args(REGISTRY[name], _args(name, data))
    try:
        out = REGISTRY[name].apply(src, dst, args)
    except ShapeError as err:
        assert err.message and isinstance(err.message, str)
        return
    _moves_only_owned_dims(name, src, dst, out, args)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_apply_growth_chains_each_intermediate_shape(data: st.DataObject) -> None:
    src = data.draw(shapes(family="gpt2")).replace(ffn_share=1, ffn_rank=0, pool=1)
    k = data.draw(st.integers(2, 3))
    dst = src.replace(layers=src.layers * 2, hidden=src.hidden * k, heads=src.heads * k,
                      kv_heads=src.kv_heads * k, ffn=src.ffn * k)
    ops = data.draw(st.permutations([OpCall(name="stack"), OpCall(name="fpi")]))
    final, results = apply_growth(src, dst, Growth(ops=tuple(ops)))
    assert final == dst
    assert results[0].before == src and results[-1].after == dst
    assert results[0].after == results[1].before
    assert step_verdict([r.verdict for r in results]).kind == NONE  # stacking never preserves


def test_fpi_verdicts() -> None:
    base = PRESETS["bert-base"].replace(layers=4, hidden=384, heads=6, kv_heads=6, ffn=1536)
    fpi = REGISTRY["fpi"]
    odd = base.replace(hidden=576, heads=9, kv_heads=9, ffn=2304)
    assert fpi.verdict(base, odd, {"mapping": "auto"}).reason == (
        "hidden growth 384 -> 576 is not a whole multiple, LayerNorm statistics shift")
    assert fpi.verdict(base, odd, {"mapping": "auto"}).kind == APPROXIMATE
    double = base.replace(hidden=768, heads=12, kv_heads=12, ffn=3072)
    assert fpi.verdict(base, double, {"mapping": "auto"}).kind == EXACT
    assert fpi.verdict(base, double, {"mapping": "random"}).kind == APPROXIMATE
    ffn_only = base.replace(ffn=2000)
    assert fpi.verdict(base, ffn_only, {"mapping": "random"}).kind == EXACT
    assert REGISTRY["aki"].verdict(base, double, {}).kind == NONE


def test_gqa_groups_that_grow_or_split_evenly_are_exact() -> None:
    """Query heads per key/value head may grow (each new query head reads a copy of its
    source's key/value head) or shrink to a divisor (groups split into sub-groups): the
    attention of every query head is kept. Any other change is refused."""
    llama = PRESETS["tinyllama-1.1b"]                       # 32 heads, 4 kv: groups of 8
    grown_ = llama.replace(hidden=4096, heads=64, kv_heads=4, ffn=11264)    # groups of 16
    assert REGISTRY["fpi"].verdict(llama, grown_, {"mapping": "auto"}).kind == EXACT
    both = grown_.replace(kv_heads=8)
    assert REGISTRY["clone"].verdict(llama, both, {}).kind == EXACT
    more_kv = llama.replace(kv_heads=8)                     # groups of 4: a divisor of 8
    assert REGISTRY["fpi"].apply(llama, more_kv, {"mapping": "auto"}) == more_kv
    assert REGISTRY["fpi"].verdict(llama, more_kv, {"mapping": "auto"}).kind == EXACT
    odd = llama.replace(heads=48, hidden=3072, kv_heads=8)  # groups of 6: 8 -> 6
    with pytest.raises(ShapeError, match="8 -> 6, which does not divide 8"):
        REGISTRY["fpi"].apply(llama, odd, {"mapping": "auto"})


def test_identity_refuses_post_ln_bert() -> None:
    bert = PRESETS["bert-base"]
    with pytest.raises(ShapeError, match="post-LN") as info:
        REGISTRY["identity"].apply(bert, bert.replace(layers=24), {"where": "append"})
    assert info.value.hint and "masked" in info.value.hint
    gpt = PRESETS["gpt2"]
    out = REGISTRY["identity"].apply(gpt, gpt.replace(layers=16), {"where": "interleave"})
    assert out.layers == 16
    with pytest.raises(ShapeError, match="equal groups"):
        REGISTRY["identity"].apply(gpt, gpt.replace(layers=17), {"where": "interleave"})


def test_stack_states_the_remainder() -> None:
    small = PRESETS["bert-base"].replace(layers=5)
    big = small.replace(layers=12)
    assert "2 more taken from the top (layers 3-4)" in REGISTRY["stack"].verdict(
        small, big, {"remainder": "top"}).reason
    assert "2 more taken from the bottom (layers 0-1)" in REGISTRY["stack"].verdict(
        small, big, {"remainder": "bottom"}).reason
    with pytest.raises(ShapeError, match="whole multiple"):
        REGISTRY["interleave"].apply(small, big, {})


def test_growth_step_error_names_the_operator() -> None:
    small = PRESETS["bert-base"].replace(layers=3, ffn_share=4, pool=2)
    target = PRESETS["bert-base"]
    growth = Growth(ops=(OpCall(name="stack"), OpCall(name="unshare"), OpCall(name="fpi")))
    with pytest.raises(GrowthStepError) as info:
        apply_growth(small, target, growth)
    assert info.value.index == 2 and info.value.call.name == "fpi"
    fixed = Growth(ops=(*growth.ops[:2], OpCall(name="unpool")))
    final, results = apply_growth(small, target, fixed)
    assert final == target and structural_diff(final, target) == []
    assert [r.verdict.kind for r in results] == [NONE, EXACT, NONE]


def test_structural_diff_ignores_training_only_fields() -> None:
    a = PRESETS["bert-base"]
    assert structural_diff(a, a.replace(seq=128, submodels=3, pool_mode="max")) == []
    assert structural_diff(a, a.replace(pool=2)) == ["pool"]


def test_masked_needs_a_positive_ramp() -> None:
    bert = PRESETS["bert-base"]
    with pytest.raises(ShapeError, match="ramp"):
        REGISTRY["masked"].apply(bert, bert.replace(layers=24), {})
    out = REGISTRY["masked"].apply(bert, bert.replace(layers=24), {"ramp": 500})
    assert REGISTRY["masked"].verdict(bert, out, {"ramp": 500}).kind == EXACT


def test_extend_is_exact_only_where_the_old_model_runs() -> None:
    bert = PRESETS["bert-base"].replace(positions=128, seq=128)
    verdict = REGISTRY["extend"].verdict(bert, bert.replace(positions=512), {"init": "copy"})
    assert verdict.kind == EXACT
    assert verdict.reason.startswith("exact on inputs of at most 128 tokens")
    assert "on longer inputs there is no old function to preserve" in verdict.reason


def test_split_heads_keeps_query_and_key_value_widths() -> None:
    llama = PRESETS["tinyllama-1.1b"]                       # 32 heads, 4 kv heads, of 64
    split = llama.replace(heads=64, kv_heads=8, head_dim=32)
    assert REGISTRY["split_heads"].apply(llama, split, {}) == split
    with pytest.raises(ShapeError, match="key/value width 4 x 64 = 256") as info:
        REGISTRY["split_heads"].apply(llama, split.replace(kv_heads=4), {})
    assert info.value.hint and "kv_heads=8" in info.value.hint


@pytest.mark.parametrize(("name", "field"), [("unshare", "ffn_share"), ("unpool", "pool")])
def test_unshare_and_unpool_lower_their_factor_to_a_divisor(name: str, field: str) -> None:
    src = PRESETS["bert-base"].replace(**{field: 4})
    for ok in (1, 2):
        assert getattr(REGISTRY[name].apply(src, src.replace(**{field: ok}), {}), field) == ok
    for bad in (3, 4, 8):
        with pytest.raises(ShapeError, match=f"factor 4 to a divisor of it, but the next stage "
                                             f"has {bad}"):
            REGISTRY[name].apply(src, src.replace(**{field: bad}), {})
    with pytest.raises(ShapeError, match="needs a stage with") as info:
        REGISTRY[name].apply(src.replace(**{field: 1}), src.replace(**{field: 1}), {})
    assert info.value.hint and ("`width=ffn/4`" if name == "unshare" else "`pool=2`") in \
        info.value.hint
