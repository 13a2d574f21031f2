"""Never drop a tensor silently: stored tensors outside a family's weight map are left out
only when the family knows them to be inert (`Family.inert`) or the user drops them by name
(`--drop GLOB`); any other is E742, a glob matching none of them E743 -- in `grow` and in
`run`'s `init from`. A bare checkpoint given to `init from` gets a fresh, seeded LM head.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import growdsl
from growdsl.errors import GrowError
from tests.stock import Variant, load_stock, save_checkpoint, tiny_config

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def add_tensors(folder: Path, extra: dict[str, torch.Tensor]) -> None:
    """Store `extra` beside the checkpoint's own tensors (as older or other savers did)."""
    path = folder / "model.safetensors"
    save_file({**load_file(str(path)), **extra}, str(path), metadata={"format": "pt"})


@pytest.fixture()
def llama_with_stray_biases(tmp_path: Path) -> Path:
    """A LLaMA checkpoint whose attention biases are stored but whose config.json says
    `attention_bias: false` (issue 10's silently dropped biases)."""
    src = tmp_path / "src"
    variant = Variant(name="attention-bias", overrides={"attention_bias": True})
    save_checkpoint(src, tiny_config("llama", variant, layers=2), variant)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "attention_bias": False}))
    return src


E742 = ("{src}: error[E742]: the checkpoint stores 8 tensors outside the `llama` weight map, "
        "not known to be inert: model.layers.0.self_attn.k_proj.bias, "
        "model.layers.0.self_attn.o_proj.bias, model.layers.0.self_attn.q_proj.bias, "
        "model.layers.0.self_attn.v_proj.bias and 4 more; growdsl does not drop them silently\n"
        "  help: if the model computes the same without them, leave them out on purpose: "
        "{option} 'model.layers.*.self_attn.k_proj.bias' {option} "
        "'model.layers.*.self_attn.o_proj.bias' {option} 'model.layers.*.self_attn.q_proj.bias' "
        "{option} 'model.layers.*.self_attn.v_proj.bias' (docs/operators.md lists the tensors "
        "each family knows to be inert)")


def test_grow_refuses_tensors_it_would_not_carry(llama_with_stray_biases: Path,
                                                 tmp_path: Path) -> None:
    src = llama_with_stray_biases
    with pytest.raises(GrowError) as caught:
        growdsl.grow_checkpoint(src, tmp_path / "out", to="depth=L+1", ops="identity")
    assert caught.value.render() == E742.format(src=src, option="--drop")
    assert not (tmp_path / "out").exists()


def test_grow_drops_by_name_and_says_so(llama_with_stray_biases: Path, tmp_path: Path) -> None:
    grown = growdsl.grow_checkpoint(llama_with_stray_biases, tmp_path / "out", to="depth=L+1",
                                    ops="identity", drop=("model.layers.*.self_attn.*.bias",))
    assert len(grown.dropped) == 8 and all(k.endswith("_proj.bias") for k in grown.dropped)
    stored = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert not [k for k in stored if k.endswith(".bias")]


def test_a_drop_glob_that_matches_nothing_left_out_is_e743(llama_with_stray_biases: Path,
                                                            tmp_path: Path) -> None:
    src = llama_with_stray_biases
    with pytest.raises(GrowError) as caught:
        growdsl.grow_checkpoint(src, tmp_path / "out", to="depth=L+1", ops="identity",
                                drop=("model.layers.*.bias", "model.layers.*.q_proj.weight"))
    assert caught.value.render() == (
        "--drop:1:1: error[E743]: `model.layers.*.q_proj.weight` matches no tensor of "
        f"{src} that would be left out\n"
        "   1 | model.layers.*.q_proj.weight\n"
        "     | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "  help: --drop names stored tensors outside the model's weight map (E742 lists "
        "them); the tensors of the map are always carried")


# Tensors real checkpoints store that the classes never read, by family and layout.
INERT = [
    ("bert", False, {"bert.embeddings.position_ids": torch.arange(16)[None],
                     "bert.pooler.dense.weight": torch.zeros(8, 8),
                     "bert.pooler.dense.bias": torch.zeros(8),
                     "cls.seq_relationship.weight": torch.zeros(2, 8),
                     "cls.seq_relationship.bias": torch.zeros(2)}),
    ("bert", True, {"embeddings.position_ids": torch.arange(16)[None]}),
    ("gpt2", False, {f"transformer.h.{i}.attn.{name}": torch.ones(1, 1, 16, 16)
                     for i in range(2) for name in ("bias", "masked_bias")}),
    ("llama", False, {f"model.layers.{i}.self_attn.rotary_emb.inv_freq": torch.ones(2)
                      for i in range(2)}),
    ("mistral", True, {"layers.0.self_attn.rotary_emb.inv_freq": torch.ones(2)}),
]


@pytest.mark.parametrize(("family", "bare", "extra"), INERT,
                         ids=[f"{f}-{'bare' if b else 'full'}" for f, b, _ in INERT])
def test_known_inert_tensors_are_left_out_and_named(tmp_path: Path, family: str, bare: bool,
                                                    extra: dict[str, torch.Tensor]) -> None:
    variant = Variant(name="bare" if bare else "base", bare=bare, pooler=False)
    src = tmp_path / "src"
    save_checkpoint(src, tiny_config(family, variant), variant)
    add_tensors(src, extra)
    grown = growdsl.grow_checkpoint(src, tmp_path / "out", to="depth=2*L", ops="stack")
    assert sorted(grown.dropped) == sorted(extra)
    load_stock(tmp_path / "out")       # and the output is a stock checkpoint


def test_bert_pooler_of_a_bare_checkpoint_is_carried(tmp_path: Path) -> None:
    """BertModel has a pooler: growing the bare checkpoint keeps it (in its map)."""
    variant = Variant(name="bare", bare=True)
    save_checkpoint(tmp_path / "src", tiny_config("bert", variant), variant)
    grown = growdsl.grow_checkpoint(tmp_path / "src", tmp_path / "out", to="depth=2*L",
                                    ops="stack")
    assert grown.dropped == []
    assert "pooler.dense.weight" in load_file(str(tmp_path / "out" / "model.safetensors"))


SPEC = 'model llama from "src"\ninit from "src"\nstage 0: -> identity\nstage 1: depth=L+1\n'


def test_run_init_from_refuses_tensors_it_would_not_carry(llama_with_stray_biases: Path,
                                                          tmp_path: Path) -> None:
    from growdsl.backend.start import initial_model
    from growdsl.driver import load_text

    spec = str(tmp_path / "p.grow")
    source, plan = load_text(SPEC, spec)
    with pytest.raises(GrowError) as caught:
        initial_model(plan, source)
    text = caught.value.render()
    head, _, rest = E742.format(src=llama_with_stray_biases, option="growdsl run --drop"
                                ).partition("\n")
    assert text.startswith(f"{spec}:2:1: error[E742]: {head.split('error[E742]: ')[1]}\n"
                           '   2 | init from "src"\n'), text
    assert text.endswith(rest), text
    model = initial_model(plan, source, drop=("model.layers.*.self_attn.*.bias",))
    assert model.config.num_hidden_layers == 2


def test_run_init_from_a_bare_checkpoint_gets_a_fresh_seeded_head(tmp_path: Path) -> None:
    """A bare BertModel (with its pooler, which BertForMaskedLM has not: inert) starts the
    run's BertForMaskedLM: the base weights are the checkpoint's, the MLM head is fresh and
    the same for the same seed."""
    from growdsl.backend.start import initial_model
    from growdsl.driver import load_text

    variant = Variant(name="bare", bare=True)
    src = tmp_path / "src"
    save_checkpoint(src, tiny_config("bert", variant), variant)
    add_tensors(src, {"embeddings.position_ids": torch.arange(16)[None]})
    source, plan = load_text('model bert from "src"\ninit from "src"\nstage 0: -> fpi\n'
                             "stage 1: ffn=2*F\n", str(tmp_path / "p.grow"))
    first, again = initial_model(plan, source), initial_model(plan, source)
    assert type(first).__name__ == "BertForMaskedLM"
    stored = load_file(str(src / "model.safetensors"))
    state = first.state_dict()
    assert all(torch.equal(state[f"bert.{k}"], v) for k, v in stored.items()
               if not k.startswith(("pooler.", "embeddings.position_ids")))
    head = "cls.predictions.transform.dense.weight"
    assert torch.equal(state[head], again.state_dict()[head])
    assert state[head].std() > 0


def test_grow_command_drops_names_and_refuses(llama_with_stray_biases: Path,
                                              tmp_path: Path) -> None:
    from click.testing import CliRunner

    from growdsl.cli import app

    src = llama_with_stray_biases
    args = ["grow", str(src), str(tmp_path / "out"), "--to", "depth=L+1", "--ops", "identity"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1
    assert refused.output.strip() == E742.format(src=src, option="--drop")
    done = CliRunner().invoke(app, [*args, "--drop", "model.layers.*.self_attn.*.bias",
                                    "--verify"])
    assert done.exit_code == 0, done.output
    assert ("  left out, as --drop asks: model.layers.0.self_attn.k_proj.bias, "
            "model.layers.0.self_attn.o_proj.bias, model.layers.0.self_attn.q_proj.bias, "
            "model.layers.0.self_attn.v_proj.bias and 4 more\n") in done.output
    assert "verify identity: exact" in done.output
