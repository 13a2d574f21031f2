"""The user's config, whole, through `growdsl run` and `growdsl grow`: a LLaMA checkpoint
with its own rope base, norm epsilon, grouped-query attention and tied head (issue 10's
first case) keeps its function at a `preserve` growth step, every saved stage carries its
config, the run reads its tokenizer, and `grow` of the same step gives the same weights
bit for bit; Qwen2 (q/k/v biases) and Mistral (sliding window) run a demo-style plan."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from tests.test_run_e2e import WORDS, make_corpus, rows, run_spec, write_spec

pytestmark = [pytest.mark.torch, pytest.mark.slow]

LLAMA = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 32,
         "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
         "vocab_size": 64, "max_position_embeddings": 64, "tie_word_embeddings": True,
         "rope_theta": 100000.0, "rms_norm_eps": 1e-5, "hidden_act": "silu",
         "initializer_range": 0.2}


@pytest.fixture()
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path_factory.getbasetemp() / "growdsl-cache"
    monkeypatch.setenv("GROWDSL_CACHE", str(where))
    return where


def save_checkpoint(where: Path, config: dict) -> Path:
    """A tiny pretrained-looking checkpoint: stock `save_pretrained` of a model built from
    `config`, with a word-level tokenizer of the corpus's words."""
    import transformers as hf
    from tokenizers import Tokenizer, models, pre_tokenizers

    cfg = hf.AutoConfig.for_model(**config)
    torch.manual_seed(0)
    hf.AutoModelForCausalLM.from_config(cfg).save_pretrained(str(where))
    vocab = {"<|endoftext|>": 0, "<|pad|>": 1, "[UNK]": 2,
             **{w: i + 3 for i, w in enumerate(sorted(set(WORDS)))}}
    vocab.update({f"w{i}": i for i in range(len(vocab), config["vocab_size"])})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                               pad_token="<|pad|>", unk_token="[UNK]").save_pretrained(str(where))
    return where


TRAIN = """
    train {
      batch = 4
      lr = 1e-3
      warmup = 2
      data = "corpus"
      eval_every = 2
    }
"""


def test_init_from_a_llama_with_its_own_config_preserves_and_carries_it(
        tmp_path: Path, cache: Path) -> None:
    """Issue 10, first case: rope_theta 1e5, RMS eps 1e-5, GQA, tied head, `init from` and
    `depth=L/2 -> identity preserve`: the run keeps the logits (no E718), every stage's
    saved config is the checkpoint's with only the depth changed, and the tokenizer is the
    checkpoint's."""
    make_corpus(tmp_path / "corpus")
    ckpt = save_checkpoint(tmp_path / "ckpt", LLAMA)
    spec = write_spec(tmp_path / "plan.grow", 'model llama(layers=4, seq=16) from "ckpt"\n'
                      'init from "ckpt"\n' + textwrap.dedent(TRAIN)
                      + "stage 2: depth=L/2 -> identity preserve\nstage 2: lr = 0\n")
    out = tmp_path / "out"
    assert run_spec(spec, out) == 0
    growth = rows(out, "growth")
    assert len(growth) == 1 and float(growth[0]["max_abs_diff"]) < 1e-5
    for folder, layers in (("0-stage1", 2), ("1-stage2", 4)):
        config = json.loads((out / "stages" / folder / "config.json").read_text())
        assert config["num_hidden_layers"] == layers
        assert config["rope_parameters"]["rope_theta"] == 100000.0
        assert (config["rms_norm_eps"], config["num_key_value_heads"]) == (1e-5, 2)
        assert config["tie_word_embeddings"] is True
        assert config["max_position_embeddings"] == 64       # `seq=16` is not a table size
        saved = json.loads((out / "stages" / folder / "tokenizer.json").read_text())
        assert saved["model"]["vocab"] == json.loads(
            (ckpt / "tokenizer.json").read_text())["model"]["vocab"]

    # `grow` of the first stage's folder, same step and seed: the second stage's weights
    # (it trains at learning rate 0), bit for bit.
    from safetensors.torch import load_file

    from growdsl.backend.streaming import grow_checkpoint
    from growdsl.backend.testing import growth as make_growth
    from growdsl.lower import lower_growth_cli

    stage1 = out / "stages" / "0-stage1"
    from growdsl.backend.models import load_model, shape_of

    dst, step = lower_growth_cli("depth=2*L", "identity", shape_of(load_model(stage1).config))
    grown = tmp_path / "grown"
    grow_checkpoint(stage1, grown, dst, make_growth("identity"))
    a = load_file(str(grown / "model.safetensors"))
    b = load_file(str(out / "stages" / "1-stage2" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((grown / "config.json").read_text())["rope_parameters"] == \
        json.loads((out / "stages" / "1-stage2" / "config.json").read_text())["rope_parameters"]
    del step


FAMILY_PLANS = {
    "qwen2": 'model qwen2(layers=4, hidden=32, heads=4, kv_heads=2, head_dim=8, ffn=64, '
             'seq=16, vocab=300)',
    "mistral": 'model mistral(layers=4, seq=16, vocab=300) from "ckpt"',
}


@pytest.mark.parametrize("family", ["qwen2", "mistral"])
def test_new_family_runs_the_demo_style_plan(tmp_path: Path, cache: Path, family: str) -> None:
    """Widened by fpi and deepened by identity, `preserve`d: trains, grows exactly,
    trains on; Mistral from a checkpoint whose sliding window (8) is shorter than `seq`."""
    make_corpus(tmp_path / "corpus")
    if family == "mistral":
        save_checkpoint(tmp_path / "ckpt", {**LLAMA, "model_type": "mistral", "sliding_window": 8,
                                            "head_dim": 8, "num_hidden_layers": 4})
    spec = write_spec(tmp_path / "plan.grow", FAMILY_PLANS[family] + "\n"
                      + textwrap.dedent(TRAIN)
                      + "stage 4: depth=L/2 ffn=F/2 -> fpi, identity preserve\nstage 4:\n")
    out = tmp_path / "out"
    assert run_spec(spec, out) == 0
    growth = rows(out, "growth")
    assert len(growth) == 1 and float(growth[0]["max_abs_diff"]) < 1e-5
    config = json.loads((out / "stages" / "1-stage2" / "config.json").read_text())
    assert config["model_type"] == family and config["num_hidden_layers"] == 4
    if family == "mistral":
        assert config["sliding_window"] == 8
    else:
        import transformers as hf

        model = hf.AutoModelForCausalLM.from_pretrained(str(out / "stages" / "1-stage2"))
        assert model.model.layers[0].self_attn.q_proj.bias is not None


@pytest.mark.parametrize(("extra", "message"), [
    ({"fancy_gate": 1.0}, "config.json: `fancy_gate`: a field growdsl does not know for llama"),
    ({"rms_norm_eps": 1e-3}, "has another config than the plan's model: rms_norm_eps 0.001 "
                             "(the plan's model has 1e-05)"),
])
def test_an_init_checkpoint_the_plan_cannot_carry_is_e714(tmp_path: Path, extra: dict,
                                                          message: str) -> None:
    from growdsl.backend.start import initial_model
    from growdsl.driver import load_text
    from growdsl.errors import GrowError

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(LLAMA))
    save_checkpoint(tmp_path / "ckpt", LLAMA)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({**config, **extra}))
    source, plan = load_text('model llama from "m"\ninit from "ckpt"\nstage 0: -> extend\n'
                             "stage 2: positions=128\n", str(tmp_path / "p.grow"))
    with pytest.raises(GrowError) as caught:
        initial_model(plan, source)
    text = caught.value.render()
    assert "error[E714]" in text and message in text, text
