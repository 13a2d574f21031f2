"""The family registry (growdsl/families/): one torch-free file per family, found through
the `growdsl.families` entry-point group; every config field a family understands and what
each operator does with it; no family named outside the registry."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from growdsl import families
from growdsl.driver import load_text as lower_text
from growdsl.errors import GrowError
from growdsl.hf_config import field_problem, shape_from_config

REPO = Path(__file__).resolve().parents[1]


def test_every_family_is_registered_with_its_presets() -> None:
    assert set(families.names()) >= {"bert", "gpt2", "llama", "qwen2", "mistral"}
    for name in families.names():
        fam = families.get(name)
        assert fam.default_preset in fam.presets, name
    with pytest.raises(KeyError, match="no model family `nope`"):
        families.get("nope")


def test_the_families_and_the_planner_import_no_torch() -> None:
    code = ("import sys, growdsl.families, growdsl.lower, growdsl.checks; "
            "[growdsl.families.get(n) for n in growdsl.families.names()]; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_no_family_is_named_outside_the_registry() -> None:
    """Family knowledge lives in growdsl/families/: nothing else compares a family name."""
    pattern = re.compile(r"family(_name)?\s*(==|!=|\bin\s*\(|\bnot in\s*\()|"
                         r"(==|!=)\s*\"(bert|gpt2|llama|qwen2|mistral)\"")
    hits = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
            for path in (REPO / "growdsl").rglob("*.py")
            if "families" not in path.relative_to(REPO / "growdsl").parts[:1]
            for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_a_package_adds_a_family_through_the_entry_point_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's installed package names its family in `growdsl.families`; growdsl finds it,
    its presets and its weight map, and plans with it."""
    (tmp_path / "myfam_pkg.py").write_text(textwrap.dedent("""
        import dataclasses
        from growdsl.families import llama
        FAMILY = dataclasses.replace(
            llama.FAMILY, name="myllama", presets={"myllama-tiny": {
                "num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
                "intermediate_size": 64, "vocab_size": 100, "max_position_embeddings": 64}},
            default_preset="myllama-tiny")
    """))
    info = tmp_path / "myfam_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myfam-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[growdsl.families]\nmyllama = myfam_pkg:FAMILY\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(families, "_REGISTRY", {})
    monkeypatch.setattr(families, "_builtin_loaded", False)
    monkeypatch.setattr(families, "_plugins_loaded", False)
    assert "myllama" in families.names()
    _, plan = lower_text("model myllama\nstage 5: depth=L/2 -> identity preserve\nstage 5:\n")
    assert plan.target.layers == 2 and plan.stages[0].shape.layers == 1
    assert "model.layers.1.mlp.up_proj.weight" in families.weight_map(plan.target)


def test_register_refuses_a_second_family_of_the_same_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        families.register(__import__("dataclasses").replace(families.get("gpt2")))


# ---- config fields ----

def _check(tmp_path: Path, config: dict, body: str, family: str = "llama") -> list[str]:
    """`growdsl check`'s diagnostics on a plan over a model read from `config`, one
    rendered text each."""
    import json

    from growdsl.driver import validate

    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    (tmp_path / "plan.grow").write_text(f'model {family} from "m"\n{body}')
    try:
        validate(tmp_path / "plan.grow")
    except GrowError as error:
        return [part for part in re.split(r"\n(?=\S)", error.render()) if "error[" in part]
    return []


LLAMA = {"model_type": "llama", "num_hidden_layers": 4, "hidden_size": 32,
         "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
         "vocab_size": 100, "max_position_embeddings": 64, "tie_word_embeddings": True}


def test_an_unknown_config_field_is_a_located_error(tmp_path: Path) -> None:
    got = _check(tmp_path, {**LLAMA, "fancy_gate": True}, "stage 5:\n")
    assert len(got) == 1 and "error[E703]" in got[0] and ":1:18:" in got[0]
    assert ("m/config.json: `fancy_gate`: a field growdsl does not know for llama, so it "
            "cannot tell whether growth keeps it") in got[0]
    assert got[0].endswith("help: docs/operators.md lists the fields each family carries; "
                           "docs/families.md how to add one")


def test_a_field_no_operator_keeps_is_refused(tmp_path: Path) -> None:
    bert = {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 32,
            "num_attention_heads": 2, "vocab_size": 100, "position_embedding_type": "relative_key"}
    got = _check(tmp_path, bert, "stage 5:\n", family="bert")
    assert "position_embedding_type is 'relative_key': only absolute position tables" in got[0]


def test_rope_scaling_that_reads_the_limit_is_refused_under_extend(tmp_path: Path) -> None:
    config = {**LLAMA, "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}
    got = _check(tmp_path, config, "stage 5: positions=32 seq=32 -> extend\nstage 5:\n")
    assert len(got) == 1
    assert got[0].splitlines()[0].endswith(
        "error[E420]: `extend` cannot keep `rope_scaling` = {'rope_type': 'dynamic', "
        "'factor': 2.0}: this rope scaling reads max_position_embeddings, so moving the limit "
        "changes every position's frequencies")
    assert got[0].splitlines()[0].split("error")[0].endswith(":2:33: ")
    linear = {**LLAMA, "rope_scaling": {"rope_type": "linear", "factor": 2.0}}
    assert _check(tmp_path, linear, "stage 5: positions=32 seq=32 -> extend\nstage 5:\n") == []


def test_mixed_layer_types_refuse_depth_growth(tmp_path: Path) -> None:
    qwen = {**LLAMA, "model_type": "qwen2", "use_sliding_window": True, "sliding_window": 8,
            "layer_types": ["full_attention", "full_attention", "sliding_attention",
                            "sliding_attention"]}
    got = _check(tmp_path, qwen, "stage 5: depth=L/2 -> stack\nstage 5:\n", family="qwen2")
    assert len(got) == 1 and "error[E420]: `stack` adds layers, but `layer_types` differs" \
        in got[0]
    uniform = {**qwen, "layer_types": ["sliding_attention"] * 4}
    assert _check(tmp_path, uniform, "stage 5: depth=L/2 -> stack\nstage 5:\n",
                  family="qwen2") == []


def test_gpt2_layer_index_scaling_refuses_depth_operators(tmp_path: Path) -> None:
    gpt2 = {"model_type": "gpt2", "n_layer": 4, "n_embd": 32, "n_head": 2, "vocab_size": 100,
            "n_positions": 64, "scale_attn_by_inverse_layer_idx": True}
    got = _check(tmp_path, gpt2, "stage 5: depth=L/2 -> identity\nstage 5:\n", family="gpt2")
    assert len(got) == 1 and "`identity` cannot keep `scale_attn_by_inverse_layer_idx`" in got[0]
    assert _check(tmp_path, gpt2, "stage 5: ffn=F/2 -> fpi\nstage 5:\n", family="gpt2") == []


def test_settings_are_carried_into_every_stage(tmp_path: Path) -> None:
    import json

    config = {**LLAMA, "rope_theta": 100000.0, "rms_norm_eps": 1e-5, "attention_bias": True}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    _, plan = lower_text('model llama from "m"\nstage 5: depth=L/2 -> identity\nstage 5:\n',
                         str(tmp_path / "p.grow"))
    for stage in plan.stages:
        assert dict(stage.shape.settings) == {"rope_theta": 100000.0, "rms_norm_eps": 1e-5,
                                              "attention_bias": True}
    assert "model.layers.0.self_attn.o_proj.bias" in families.weight_map(plan.target)


def test_seq_leaves_a_configs_positions_alone(tmp_path: Path) -> None:
    """`model llama(seq=16) from DIR`: a rotary model has no position table to shrink."""
    import json

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(LLAMA))
    _, plan = lower_text('model llama(seq=16) from "m"\nstage 5:\n', str(tmp_path / "p.grow"))
    assert (plan.target.seq, plan.target.positions) == (16, 64)
    _, plan = lower_text("model gpt2(seq=16)\nstage 5:\n")
    assert (plan.target.seq, plan.target.positions) == (16, 16)   # a preset's table follows


def test_field_problem_reads_presets_cleanly() -> None:
    for name in families.names():
        for preset, config in families.get(name).presets.items():
            assert field_problem(name, dict(config)) is None, preset
            assert shape_from_config(name, dict(config), preset=True).family == name


@pytest.mark.torch
@pytest.mark.parametrize("name", families.BUILTIN)
def test_every_field_of_the_stock_config_is_known(name: str) -> None:
    """The config class's own fields (what `save_pretrained` writes) are all understood."""
    import transformers as hf

    fam = families.get(name)
    config = getattr(hf, fam.config_class)()
    assert field_problem(name, config.to_dict()) is None


def test_the_docs_table_of_fields_is_the_families() -> None:
    from growdsl.families.table import markdown

    text = (REPO / "docs" / "operators.md").read_text()
    start, end = text.index("<!-- fields-table -->\n"), text.index("<!-- /fields-table -->")
    assert text[start + len("<!-- fields-table -->\n"):end] == markdown()


def test_the_docs_table_of_inert_tensors_is_the_families() -> None:
    from growdsl.families.table import inert_markdown

    text = (REPO / "docs" / "operators.md").read_text()
    start = text.index("<!-- inert-tensors-table -->\n")
    end = text.index("<!-- /inert-tensors-table -->")
    assert text[start + len("<!-- inert-tensors-table -->\n"):end] == inert_markdown()


def test_a_config_without_tie_word_embeddings_has_its_class_default() -> None:
    minimal = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
               "vocab_size": 10}
    assert shape_from_config("qwen2", minimal).tied is False       # Qwen2Config: False
    assert shape_from_config("mistral", minimal).tied is False
    gpt2 = {"n_layer": 2, "n_embd": 32, "n_head": 4, "vocab_size": 10}
    assert shape_from_config("gpt2", gpt2).tied is True
