"""Diagnostics of a whole file and of `growdsl grow`'s options (issue #10 item 6): every
mistake of a file at once, one diagnostic per malformed thing, `--to` / `--ops` errors
located with a caret and worded for checkpoints. Golden texts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from growdsl.driver import validate
from growdsl.errors import GrowError
from growdsl.grow_step import for_checkpoints, plan_grow
from growdsl.hf_config import shape_from_config
from growdsl.operators import REGISTRY
from growdsl.shapes import PRESETS
from tests.golden_util import GOLDEN, REPO, check_golden, relative

CHECK = sorted((GOLDEN / "check").glob("*.grow"))


@pytest.fixture(autouse=True)
def _at_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("path", CHECK, ids=lambda p: p.stem)
def test_check_reports_the_whole_file(path: Path) -> None:
    with pytest.raises(GrowError) as info:
        validate(Path(relative(path)))
    check_golden(path.with_suffix(".err"), info.value.render() + "\n")


def test_a_name_error_does_not_hide_the_planner() -> None:
    with pytest.raises(GrowError) as info:
        validate(Path(relative(GOLDEN / "check" / "all-at-once.grow")))
    codes = [d.code for d in info.value.diagnostics]
    assert "E204" in codes and "E203" in codes     # the naming mistakes
    assert "E601" in codes                          # and the budget the plan overruns


def test_malformed_stage_is_reported_once() -> None:
    with pytest.raises(GrowError) as info:
        validate(Path(relative(GOLDEN / "check" / "malformed-once.grow")))
    assert [d.code for d in info.value.diagnostics] == ["E404"]


TINY_LLAMA = PRESETS["tinyllama-1.1b"].replace(layers=2, hidden=64, heads=4, kv_heads=2,
                                               head_dim=16, ffn=128, vocab=100)

GROW_CASES = {
    "unknown-operator": ("depth=2*L", "stack, fpii", PRESETS["bert-tiny"]),
    "identity-post-ln": ("depth=2*L", "identity", PRESETS["bert-tiny"]),
    "shrinks": ("depth=1", "stack", PRESETS["bert-tiny"]),
    "no-operator": ("depth=2*L hidden=2*D", "stack", PRESETS["gpt2"]),
    "bad-target": ("heads=3", "fpi", PRESETS["bert-tiny"]),
    "unknown-key": ("depht=2*L", "stack", PRESETS["bert-tiny"]),
    "gqa-groups": ("heads=6 kv_heads=3 hidden=96", "fpi",
                   TINY_LLAMA.replace(heads=3, kv_heads=1, hidden=48)),
    "masked-no-ramp": ("depth=2*L", "masked", PRESETS["gpt2"]),
    "field-not-kept": ("depth=2*L", "stack", shape_from_config("gpt2", {
        "n_layer": 2, "n_embd": 8, "n_head": 2, "vocab_size": 20,
        "scale_attn_by_inverse_layer_idx": True})),
}


@pytest.mark.parametrize("name", sorted(GROW_CASES))
def test_grow_options_errors_are_located(name: str) -> None:
    to, ops, src = GROW_CASES[name]
    with pytest.raises(GrowError) as info:
        plan_grow(to, ops, src)
    text = info.value.render() + "\n"
    check_golden(GOLDEN / "grow" / f"{name}.err", text)
    assert re.match(r"--(to|ops):1:\d+: error\[E\d{3}\]", text), text
    assert "stage" not in text.lower(), text


def test_operator_messages_reworded_for_checkpoints() -> None:
    """Every operator's refusal, met through `grow`, speaks of the checkpoint and the
    target: each operator asked to do something it refuses."""
    src = PRESETS["bert-tiny"].replace(ffn_share=2, ffn_rank=0)
    for name in REGISTRY:
        for to in ("depth=1", "hidden=2*D heads=3", "ffn=2*F", "positions=8", "depth=2*L"):
            try:
                plan_grow(to, name, src)
            except GrowError as error:
                assert "stage" not in error.render().lower(), (name, to, error.render())


def test_for_checkpoints_rewords() -> None:
    assert for_checkpoints("give this stage heads=4") == "grow a checkpoint with heads=4"
    assert for_checkpoints("drop `x` from this growth step") == "drop `x` from --ops"


def test_half_precision_verdicts() -> None:
    """fp16/bf16 weights: copies divided by 3 round, by 2 do not (grow's verdict says so)."""
    from growdsl.grow_step import in_dtype

    src = PRESETS["bert-tiny"]
    for to, half in (("hidden=3*D", "approximate"), ("hidden=2*D", "exact")):
        *_, results = plan_grow(to, "fpi", src)
        assert in_dtype(results, "float32")[0].verdict.kind == "exact"
        assert in_dtype(results, "bfloat16")[0].verdict.kind == half
        assert in_dtype(results, "float16")[0].verdict.kind == half
