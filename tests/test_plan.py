"""The stage graph: random valid plans (generated as IR) chain, check clean, export, and
cost more with more steps."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growdsl.checks import check_plan
from growdsl.ir import Growth, Model, OpCall, Plan, Stage, Train
from growdsl.operators import structural_diff
from growdsl.plan import build, to_dict, to_dot, to_mermaid
from growdsl.shapes import Shape


@st.composite
def targets(draw: st.DrawFn) -> Shape:
    fam = draw(st.sampled_from(["bert", "gpt2", "llama"]))
    head_dim = draw(st.sampled_from([8, 16]))
    kv = draw(st.sampled_from([1, 2]))
    heads = kv * draw(st.sampled_from([1, 2])) * 2
    seq = draw(st.sampled_from([32, 64]))
    return Shape(family=fam, layers=draw(st.sampled_from([4, 6, 8])), hidden=heads * head_dim,
                 heads=heads, kv_heads=kv if fam == "llama" else heads, head_dim=head_dim,
                 ffn=draw(st.sampled_from([64, 128, 256])), vocab=100, seq=seq,
                 positions=seq, tied=fam != "llama")


@st.composite
def smaller(draw: st.DrawFn, big: Shape) -> tuple[Shape, tuple[OpCall, ...]]:
    """A stage shape one growth step below `big`, and the operators that grow it back."""
    s, ops = big, []
    if draw(st.booleans()) and big.heads % 2 == 0 and big.kv_heads % 2 == 0 \
            and big.ffn_share == 1 and big.ffn_rank == 0:
        s = s.replace(hidden=s.hidden // 2, heads=s.heads // 2, kv_heads=s.kv_heads // 2,
                      ffn=s.ffn // 2)
        ops.append(OpCall(name=draw(st.sampled_from(["fpi", "aki", "clone"]))))
    if draw(st.booleans()) and big.layers > 1:
        s = s.replace(layers=draw(st.integers(1, big.layers - 1)))
        ops.append(OpCall(name="stack", args={"remainder": draw(st.sampled_from(["bottom",
                                                                                   "top"]))}))
    if draw(st.booleans()) and big.ffn_share == 1 and big.ffn_rank == 0 and "fpi" not in [
            o.name for o in ops]:
        s = s.replace(ffn_share=draw(st.sampled_from([2, 4])))
        ops.insert(0, OpCall(name="unshare"))
    if draw(st.booleans()) and big.pool == 1 and big.family == "bert":  # pooling: BERT only
        s = s.replace(pool=2)
        ops.append(OpCall(name="unpool"))
    if not ops and big.layers > 1:
        s = s.replace(layers=big.layers // 2)
        ops.append(OpCall(name="stack"))
    return s, tuple(ops)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    target = draw(targets())
    shapes: list[Shape] = [target]
    growths: list[Growth] = []
    for _ in range(draw(st.integers(0, 3))):
        small, ops = draw(smaller(shapes[0]))
        if not ops:
            break
        shapes.insert(0, small)
        growths.insert(0, Growth(ops=ops, seed=draw(st.integers(0, 9))))
    stages = []
    for i, shape in enumerate(shapes):
        batch = draw(st.sampled_from([4, 8]))
        steps = draw(st.integers(1, 1000))
        stages.append(Stage(index=i, name=f"stage{i + 1}", steps=steps,
                            tokens=steps * batch * shape.seq, shape=shape,
                            train=Train(batch=batch),
                            growth=growths[i] if i < len(growths) else None))
    return Plan(source="<generated>", model=Model(family=target.family, shape=target),
                train=Train(batch=8), stages=tuple(stages))


@settings(max_examples=60, deadline=None)
@given(plan=plans())
def test_random_valid_plans_chain_and_check_clean(plan: Plan) -> None:
    graph = build(plan)
    assert graph.order() == [s.index for s in plan.stages]
    for src, dst in zip(plan.stages, plan.stages[1:], strict=False):
        result = graph.edge(src.index, dst.index)
        assert result is not None and result.error is None, result
        assert structural_diff(result.final, dst.shape) == []
        assert result.ops[0].before == src.shape
        for first, second in zip(result.ops, result.ops[1:], strict=False):
            assert first.after == second.before
    assert check_plan(plan) == []
    data = to_dict(graph)
    assert len(data["stages"]) == len(plan.stages)
    for row, stage in zip(data["stages"], plan.stages, strict=True):
        for key in ("steps", "tokens", "layers", "hidden", "heads", "ffn", "seq", "params",
                    "flops"):
            assert key in row
        assert row["layers"] == stage.shape.layers
    assert data["total_flops"] == sum(r["flops"] for r in data["stages"])
    for metric in ("flops", "tokens", "steps"):
        running = 0.0
        for row in data["stages"]:
            running += row[metric]
            assert row[f"cum_{metric}"] == pytest.approx(running), metric
    assert data["stages"][-1]["cum_tokens"] == data["total_tokens"]
    assert data["stages"][-1]["cum_steps"] == data["total_steps"]
    assert abs(data["speedup"] - data["scratch_flops"] / data["total_flops"]) < 1e-9
    json.dumps(data)
    assert to_dot(graph).count("->") == len(plan.stages) - 1
    assert to_mermaid(graph).count("-->") == len(plan.stages) - 1


@settings(max_examples=40, deadline=None)
@given(plan=plans(), which=st.integers(0, 3), more=st.integers(1, 1000))
def test_total_flops_grow_with_any_stage_steps(plan: Plan, which: int, more: int) -> None:
    i = which % len(plan.stages)
    stage = plan.stages[i]
    longer = dataclasses.replace(stage, steps=stage.steps + more)
    bigger = Plan(source=plan.source, model=plan.model, train=plan.train,
                  stages=(*plan.stages[:i], longer, *plan.stages[i + 1:]))
    assert build(bigger).total_flops > build(plan).total_flops
    assert build(bigger).scratch_flops > build(plan).scratch_flops


def test_generated_plans_cover_every_generated_operator() -> None:
    seen: Counter[str] = Counter()

    @settings(max_examples=80, deadline=None, database=None)
    @given(plan=plans())
    def collect(plan: Plan) -> None:
        seen.update(op.name for s in plan.stages if s.growth for op in s.growth.ops)

    collect()
    assert set(seen) >= {"stack", "unshare", "unpool"} and set(seen) & {"fpi", "aki", "clone"}
