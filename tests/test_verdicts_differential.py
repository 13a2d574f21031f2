"""Differential test: the planner's verdict against what STOCK transformers computes.

For every family x config variant x operator sequence (hypothesis draws them): a tiny
checkpoint is saved with stock `save_pretrained`; the planner (torch-free: the config read
by `hf_config`, the step by `apply_growth`) states a verdict or refuses; `growdsl grow`
grows the checkpoint; both checkpoints are loaded with stock `from_pretrained` and compared
on a padded batch:

- `exact`: the outputs agree within 1e-5 of the largest output;
- `none`: a witness that the outputs differ (above 1e-4 relative);
- what the planner refuses, `grow` refuses (a located diagnostic, exit 1), and what the
  planner accepts, `grow` performs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growdsl import families
from growdsl.backend.models import TREATED_WEIGHTS
from growdsl.cli import app
from growdsl.errors import GrowError
from growdsl.grow_step import in_dtype, plan_grow
from growdsl.hf_config import shape_from_config
from growdsl.lower import lower_growth_cli
from growdsl.operators import GrowthStepError, apply_growth, step_verdict, structural_diff
from growdsl.operators.base import EXACT, NONE
from tests.stock import (
    EXACT_REL,
    WITNESS_REL,
    Variant,
    load_stock,
    outputs,
    padded_batch,
    relative_diff,
    save_checkpoint,
    tiny_config,
)
from tests.test_run_e2e import cache, make_corpus, rows, run_spec, write_spec  # noqa: F401

pytestmark = pytest.mark.torch
torch.set_num_threads(1)

# Variants every family has, then each family's own.
COMMON = (
    Variant(name="base"),
    Variant(name="untied", overrides={"tie_word_embeddings": False}),
    Variant(name="bare", bare=True),
    Variant(name="fp16", dtype=torch.float16),
    Variant(name="bf16", dtype=torch.bfloat16),
)
OWN: dict[str, tuple[Variant, ...]] = {
    "bert": (Variant(name="bare-no-pooler", bare=True, pooler=False),),
    "gpt2": (Variant(name="n_inner-null", overrides={"n_inner": None}),
             Variant(name="scale-by-layer", overrides={"scale_attn_by_inverse_layer_idx": True})),
    "llama": (Variant(name="gqa", overrides={"num_key_value_heads": 2, "num_attention_heads": 4,
                                             "hidden_size": 16}),
              Variant(name="mqa", overrides={"num_key_value_heads": 1}),
              Variant(name="head-dim", overrides={"head_dim": 8}),
              Variant(name="attention-bias", overrides={"attention_bias": True}),
              Variant(name="mlp-bias", overrides={"mlp_bias": True})),
    "qwen2": (Variant(name="mqa", overrides={"num_key_value_heads": 1}),),
    "mistral": (Variant(name="gqa", overrides={"num_key_value_heads": 2, "num_attention_heads": 4,
                                               "hidden_size": 16}),
                Variant(name="sliding-window", overrides={"sliding_window": 4})),
}
CASES = [(fam, v) for fam in families.names() for v in (*COMMON, *OWN.get(fam, ()))]


@st.composite
def steps(draw: st.DrawFn, family: str, dims: dict[str, int]) -> tuple[str, str]:
    """(`--to`, `--ops`): a width, a depth and/or a length operator, in that order."""
    to: dict[str, int] = {}
    ops: list[str] = []
    L, H, KV, D, F, P = (dims[k] for k in ("layers", "heads", "kv_heads", "hidden", "ffn",
                                             "positions"))
    kinds = draw(st.lists(st.sampled_from(["width", "depth", "length"]), min_size=1,
                          max_size=3, unique=True))
    if "width" in kinds:
        choices = ["clone", "fpi", "fpi(mapping=random)", "aki"]
        grouped = families.get(family).grouped_query
        if grouped:
            choices += ["query-heads", "kv-heads"]
        op = draw(st.sampled_from(choices))
        if op == "query-heads":     # heads=2*H with kv_heads fixed, hidden kept
            ops.append(draw(st.sampled_from(["fpi", "clone"])))
            to.update(heads=2 * H, kv_heads=KV)
        elif op == "kv-heads":      # kv_heads=2*KV with the query heads fixed
            ops.append("fpi")
            to.update(heads=H, kv_heads=min(2 * KV, H))
            if KV == H:
                to.update(heads=2 * H, kv_heads=2 * KV)
        else:
            k = 2 if op == "clone" else draw(st.sampled_from([2, 3]))
            ops.append(op)
            to.update(hidden=k * D, heads=k * H, kv_heads=k * KV,
                      ffn=k * F if op == "clone" else F + draw(st.integers(0, 2 * F)))
        if families.get(family).free_head_dim:
            to["head_dim"] = dims["head_dim"]
    if "depth" in kinds:
        op = draw(st.sampled_from(["stack", "interleave", "identity", "masked(ramp=10)"]))
        ops.append(op)
        to["layers"] = 2 * L if op in ("stack", "interleave") else L + 1
    if "length" in kinds:
        ops.append("extend")
        to["positions"] = P + 8
    if not families.get(family).grouped_query:
        to.pop("kv_heads", None)
    return " ".join(f"{k}={v}" for k, v in to.items()), ", ".join(ops)


def _dims(family: str, config: dict[str, Any]) -> dict[str, int]:
    shape = shape_from_config(family, config)
    return {k: getattr(shape, k) for k in ("layers", "heads", "kv_heads", "hidden", "ffn",
                                           "positions", "head_dim")}


def planner(family: str, config: dict[str, Any], to: str, ops: str, bare: bool) -> str | None:
    """The planner's verdict for the step (None: it refuses), without torch: `grow`'s
    static half and, independently, the operators' walk."""
    src = shape_from_config(family, config)
    try:
        plan_grow(to, ops, src, bare=bare)
    except GrowError:
        return None
    dst, growth = lower_growth_cli(to, ops, src)
    try:
        final, results = apply_growth(src, dst, growth)
    except GrowthStepError:
        return None
    assert not structural_diff(final, dst)
    results = in_dtype(results, config.get("torch_dtype") or config.get("dtype"))
    return step_verdict([r.verdict for r in results]).kind


def check_case(tmp: Path, family: str, variant: Variant, data: st.DataObject) -> None:
    src_dir, out_dir = tmp / "src", tmp / "out"
    config = tiny_config(family, variant)
    save_checkpoint(src_dir, config, variant, seed=data.draw(st.integers(0, 9), label="seed"))
    config_json = json.loads((src_dir / "config.json").read_text())
    to, ops = data.draw(steps(family, _dims(family, config_json)), label="step")
    verdict = planner(family, config_json, to, ops, variant.bare)
    result = CliRunner().invoke(app, ["grow", str(src_dir), str(out_dir), "--to", to,
                                      "--ops", ops])
    if verdict is None:
        assert result.exit_code == 1 and "error" in result.output, (to, ops, result.output)
        return
    assert result.exit_code == 0, (to, ops, verdict, result.output)
    if (out_dir / TREATED_WEIGHTS).exists():    # needs growdsl: stock loading refuses it
        assert "stock from_pretrained: refuses" in result.output, result.output
        with pytest.raises(OSError, match="no file named"):
            load_stock(out_dir)
        shutil_rmtree(src_dir, out_dir)
        return
    assert "stock from_pretrained: loads" in result.output, result.output
    batch = padded_batch(config.vocab_size)
    diff = relative_diff(outputs(load_stock(src_dir), batch),
                         outputs(load_stock(out_dir), batch))
    if verdict == EXACT:
        assert diff <= EXACT_REL, (to, ops, verdict, diff)
    elif verdict == NONE:
        assert diff > WITNESS_REL, (to, ops, verdict, diff)
    shutil_rmtree(src_dir, out_dir)


def shutil_rmtree(*paths: Path) -> None:
    import shutil

    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(
    ("family", "variant"),
    [pytest.param(f, v, id=f"{f}-{v.name}") for f, v in CASES])
def test_verdict_equals_stock_measurement(family: str, variant: Variant,
                                          tmp_path: Path) -> None:
    @given(data=st.data())
    @settings(max_examples=2, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    def run(data: st.DataObject) -> None:
        check_case(tmp_path, family, variant, data)

    run()


GQA_PLAN = """
    model llama(layers=2, hidden=32, heads=4, kv_heads=4, head_dim=8, ffn=64, seq=16, vocab=300)
    train {
      batch = 2
      lr = 1e-3
      warmup = 1
      data = "corpus"
    }
    stage 3: heads=2 kv_heads=1 head_dim=8 -> fpi preserve
    stage 3: kv_heads=1 head_dim=8 -> fpi preserve
    stage 3:
"""


@pytest.mark.usefixtures("cache")
def test_run_performs_the_gqa_growth_the_planner_accepts(tmp_path: Path) -> None:
    """Query heads x2 around a single key/value head, then key/value heads 1 -> 4 with the
    query heads fixed: the planner calls both exact, and `run` grows and keeps the logits."""
    make_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    assert run_spec(write_spec(tmp_path / "gqa.grow", GQA_PLAN), out) == 0
    growth = rows(out, "growth")
    assert [g["note"] for g in growth] == ["fpi (exact)", "fpi (exact)"]
    assert all(float(g["max_abs_diff"]) < 1e-5 for g in growth)
