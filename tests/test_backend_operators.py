"""Property tests: every growth operator's tensor half against its static verdict.

Random tiny models of every family (layers 1-4, small widths, vocabularies, tied or not),
random inputs, eval mode, fp32. Exact verdict => logits within ATOL; approximate => the
difference is measured and stays under APPROX_BOUND (docs/operators.md); none => the
grown model runs, has the target shape and a finite loss. Explicit cases show that
operators called not exact do change the function.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from growdsl import families
from growdsl.backend.equivalence import Diff, compare
from growdsl.backend.models import build_model, shape_of
from growdsl.backend.surgery import grow_model
from growdsl.backend.testing import batch_for, growth, shapes, tiny_shape
from growdsl.operators import step_verdict, structural_diff
from growdsl.operators.base import APPROXIMATE, EXACT, NONE
from growdsl.shapes import Shape

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

ATOL = 1e-5                 # absolute logit difference for exact verdicts,
RTOL = 1e-5                 # or relative to the largest logit (boosted weights)
BOOST = st.sampled_from([1.0, 4.0])
APPROX_BOUND = 0.5          # absolute logit difference, tiny random-init models (std 0.02)
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def measure(src: Shape, dst: Shape, ops: tuple, seed: int, length: int = 6,
            boost: float = 1.0) -> tuple[str, Diff]:
    """Grow a random `src` model by `ops`; return the step verdict and the measured diff,
    after checking the grown model has the target shape and a finite loss. `boost` scales
    the random weights (tiny inits make attention almost uniform, hiding its changes)."""
    model = build_model(src, seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(boost)
    grown, record = grow_model(model, dst, growth(*ops, seed=seed))
    assert not structural_diff(shape_of(grown.config), dst)
    batch = batch_for(src, 2, min(length, src.positions), seed)
    grown.eval()
    with torch.no_grad():
        loss = grown(**batch, labels=batch["input_ids"]).loss
    assert math.isfinite(float(loss))
    verdict = step_verdict([r.verdict for r in record.steps]).kind
    return verdict, compare(model, grown, batch)


def check(verdict: str, diff: Diff, boost: float = 1.0) -> None:
    """The verdict and the measurement agree (the approximate bound is stated for
    init-scale weights, boost 1)."""
    if verdict == EXACT:
        assert diff.within(ATOL, RTOL), diff
    elif verdict == APPROXIMATE:
        assert math.isfinite(diff.max_abs)
        if boost == 1.0:
            assert diff.max_abs <= APPROX_BOUND, diff


@st.composite
def wider(draw: st.DrawFn, src: Shape) -> Shape:
    """A width target: heads/kv x k (head size fixed), hidden to match, any larger FFN."""
    k_kv = draw(st.integers(1, 3))
    fam = families.get(src.family)
    k_group = draw(st.integers(1, 2)) if fam.grouped_query else 1
    kv, heads = src.kv_heads * k_kv, src.heads * k_kv * k_group
    if fam.free_head_dim:
        options = [h for h in range(src.hidden, 3 * max(src.hidden, heads) + 1) if h % heads == 0]
        multiples = [h for h in options if h % src.hidden == 0]
        hidden = draw(st.sampled_from(multiples or options) | st.sampled_from(options))
    else:
        hidden = heads * src.head_dim
    ffn = src.ffn + draw(st.integers(0, 2 * src.ffn))
    return src.replace(hidden=hidden, heads=heads, kv_heads=kv, ffn=ffn)


@given(src=shapes(), data=st.data(), mapping=st.sampled_from(["auto", "random"]),
       boost=BOOST)
@SETTINGS
def test_fpi_verdict_agrees_with_measurement(src: Shape, data: st.DataObject,
                                             mapping: str, boost: float) -> None:
    dst = data.draw(wider(src))
    assume(dst != src)
    verdict, diff = measure(src, dst, (("fpi", {"mapping": mapping}),), seed=data.draw(
        st.integers(0, 99)), boost=boost)
    check(verdict, diff, boost)


@given(src=shapes(), k=st.integers(1, 3), kf=st.integers(1, 3), seed=st.integers(0, 99),
       boost=BOOST)
@SETTINGS
def test_clone_is_exact(src: Shape, k: int, kf: int, seed: int, boost: float) -> None:
    dst = src.replace(hidden=src.hidden * k, heads=src.heads * k, kv_heads=src.kv_heads * k,
                      ffn=src.ffn * kf)
    assume(dst != src)
    verdict, diff = measure(src, dst, ("clone",), seed, boost=boost)
    assert verdict == EXACT
    check(verdict, diff)


@given(src=shapes(), data=st.data(), seed=st.integers(0, 99), boost=BOOST)
@SETTINGS
def test_depth_and_length_operators(src: Shape, data: st.DataObject, seed: int,
                                    boost: float) -> None:
    op = data.draw(st.sampled_from(["identity", "masked", "extend", "stack", "interleave"]))
    if op == "identity":
        assume(families.get(src.family).pre_ln)
        where = data.draw(st.sampled_from(["append", "interleave"]))
        divisors = [d for d in range(1, src.layers + 1) if src.layers % d == 0]
        added = data.draw(st.sampled_from(divisors) if where == "interleave" else
                          st.integers(1, 3))
        dst, ops = src.replace(layers=src.layers + added), (("identity", {"where": where}),)
    elif op == "masked":
        dst = src.replace(layers=src.layers + data.draw(st.integers(0, 2)),
                          ffn=src.ffn + data.draw(st.integers(0, 5)))
        assume(dst != src)
        ops = (("masked", {"ramp": 10}),)
    elif op == "extend":
        dst = src.replace(positions=src.positions + data.draw(st.integers(1, 16)))
        ops = (("extend", {"init": data.draw(st.sampled_from(["copy", "zero"]))}),)
    else:
        dst = src.replace(layers=src.layers * data.draw(st.integers(2, 3)))
        ops = (op,)
    verdict, diff = measure(src, dst, ops, seed, boost=boost)
    assert verdict == (NONE if op in ("stack", "interleave") else EXACT)
    check(verdict, diff)


@given(src=shapes(), k=st.sampled_from([2, 4]), seed=st.integers(0, 99))
@settings(max_examples=15, deadline=None)
def test_unshare_is_exact(src: Shape, k: int, seed: int) -> None:
    shared = src.replace(ffn=src.ffn * k, ffn_share=k)
    verdict, diff = measure(shared, shared.replace(ffn_share=1), ("unshare",), seed, boost=4.0)
    assert verdict == EXACT
    check(verdict, diff)


@given(src=shapes(), rank=st.integers(1, 4), seed=st.integers(0, 99))
@settings(max_examples=15, deadline=None)
def test_unfactor_is_exact(src: Shape, rank: int, seed: int) -> None:
    factored = src.replace(ffn_rank=rank)
    verdict, diff = measure(factored, src, ("unfactor",), seed, boost=4.0)
    assert verdict == EXACT
    check(verdict, diff)


@pytest.mark.parametrize("family", families.BUILTIN)
def test_two_operator_step_fpi_then_stack(family: str) -> None:
    src = tiny_shape(family, layers=2, tied=not families.get(family).grouped_query)
    dst = src.replace(layers=4, hidden=16, heads=4, kv_heads=4, ffn=32)
    width, diff_width = measure(src, dst.replace(layers=2), ("fpi",), seed=3)
    assert width == EXACT and diff_width.max_abs <= ATOL
    verdict, diff = measure(src, dst, ("fpi", "stack"), seed=3)
    assert verdict == NONE and diff.max_abs > ATOL


# --- operators called not exact DO change the function -------------------------------------

@pytest.mark.parametrize("family", families.BUILTIN)
def test_not_exact_operators_differ(family: str) -> None:
    src = tiny_shape(family, layers=2, heads=2, head_dim=4)
    cases = [
        (src.replace(layers=4), ("stack",)),
        (src.replace(layers=4), ("interleave",)),
        (src.replace(hidden=16, heads=4, kv_heads=4, ffn=24), ("aki",)),
        (src.replace(hidden=12, heads=3, kv_heads=3), ("fpi",)),
        (src.replace(heads=4, kv_heads=4, head_dim=2), ("split_heads",)),
    ]
    for dst, ops in cases:
        verdict, diff = measure(src, dst, ops, seed=1, boost=20.0)
        assert verdict in (APPROXIMATE, NONE), ops
        assert diff.max_abs > 1e-4, (ops, diff)


def test_identity_is_refused_for_post_ln_bert() -> None:
    from growdsl.operators import GrowthStepError

    src = tiny_shape("bert")
    with pytest.raises(GrowthStepError):
        grow_model(build_model(src), src.replace(layers=4), growth("identity"))


def test_gqa_heads_copy_whole_groups() -> None:
    src = tiny_shape("llama", heads=4, kv_heads=2, hidden=8)
    verdict, diff = measure(src, src.replace(heads=8, kv_heads=4, hidden=16), ("fpi",), seed=5)
    assert verdict == EXACT and diff.max_abs <= ATOL


@pytest.mark.parametrize(("heads", "kv", "dst"), [
    (4, 2, {"heads": 8}),                       # query heads x2, key/value heads fixed
    (2, 1, {"heads": 4}),                       # ... with a single key/value head (MQA)
    (4, 2, {"kv_heads": 4}),                    # key/value heads x2, query heads fixed
    (4, 1, {"kv_heads": 2, "hidden": 32}),      # MQA -> GQA with hidden x2
    (4, 2, {"heads": 8, "kv_heads": 8, "hidden": 32}),   # groups 2 -> 1 with everything x2
])
@pytest.mark.parametrize("op", [("fpi",), ("clone",)])
def test_gqa_head_growth_is_exact(heads: int, kv: int, dst: dict, op: tuple) -> None:
    src = tiny_shape("llama", heads=heads, kv_heads=kv, hidden=16, head_dim=8)
    verdict, diff = measure(src, src.replace(**dst), op, seed=3, boost=4.0)
    assert verdict == EXACT and diff.within(ATOL, RTOL), diff


def test_fresh_map_per_block_would_break_exactness() -> None:
    """The residual stream needs ONE map: growing with mapping=random twice from different
    seeds gives different models, each exact only for its own map (ffn-only growth)."""
    src = tiny_shape("gpt2")
    dst = src.replace(ffn=23)
    a = grow_model(build_model(src), dst, growth(("fpi", {"mapping": "random"}), seed=1))[0]
    b = grow_model(build_model(src), dst, growth(("fpi", {"mapping": "random"}), seed=2))[0]
    key = "transformer.h.0.mlp.c_fc.weight"
    assert not torch.equal(a.state_dict()[key], b.state_dict()[key])
    batch = batch_for(src, 2, 5, 0)
    assert compare(a, b, batch).max_abs <= ATOL
