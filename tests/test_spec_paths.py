"""Every path a spec names is resolved once, while lowering, against the spec's folder
(`ir.SpecPath`): the backend opens `.path` and never needs the spec's `Source` for it;
`emit` writes the paths as the spec wrote them, and reading the JSON resolves them again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from growdsl import ir_json
from growdsl.driver import load

SPEC = """\
model gpt2 from "models/base"
init from "../ckpt/start"
train { batch = 8  data = "a corpus"  tokenizer = "/abs/tok" }
stage 10:
"""
CONFIG = {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64,
          "vocab_size": 300}


def test_paths_are_resolved_while_lowering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    specs = tmp_path / "specs"
    (specs / "models" / "base").mkdir(parents=True)
    (specs / "models" / "base" / "config.json").write_text(json.dumps(CONFIG))
    (specs / "plan.grow").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    _source, plan = load("specs/plan.grow")            # a path relative to the cwd
    os.chdir(tmp_path / "specs" / "models")             # the cwd changes: nothing moves
    here = specs.resolve()
    assert plan.model.config is not None and plan.init is not None
    assert plan.model.config.path == here / "models" / "base"
    assert plan.init.path == here / "../ckpt/start"
    assert plan.train.data is not None and plan.train.data.path == here / "a corpus"
    assert plan.stages[0].train.data == plan.train.data
    assert plan.train.tokenizer is not None and plan.train.tokenizer.path == Path("/abs/tok")
    assert f"starting checkpoint {plan.init}" == "starting checkpoint ../ckpt/start"
    document = ir_json.to_json(plan)            # emit: as written
    assert (document["init"], document["model"]["config"]) == ("../ckpt/start", "models/base")
    assert (document["train"]["data"], document["train"]["tokenizer"]) == ("a corpus", "/abs/tok")
    os.chdir(tmp_path)
    assert ir_json.from_json(document) == plan        # resolved again against its source
