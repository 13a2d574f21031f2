"""Absurd or mismatched sizes are refused before anything is allocated, by the check
`growdsl check` uses (`hf_config.config_problem`), in `grow`, in `run`'s `init from` and on
`--resume`: located errors, never a traceback or a hang."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from growdsl.errors import GrowError
from growdsl.shapes import Shape
from tests.faults.util import tiny_plan
from tests.test_run_e2e import run_spec, write_spec

pytestmark = pytest.mark.torch

SMALL = Shape(family="gpt2", layers=2, hidden=16, heads=2, kv_heads=2, head_dim=8, ffn=32,
              vocab=300, seq=16, positions=16)


def saved_small(path: Path, layers: int = 2, **config: object) -> Path:
    from growdsl.backend.models import build_model

    build_model(SMALL.replace(layers=layers)).save_pretrained(str(path))
    raw = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**raw, **config}))
    return path


def grow(src: Path, out: Path, *extra: str) -> tuple[int, str]:
    from growdsl.cli import app

    result = CliRunner().invoke(app, ["grow", str(src), str(out), "--to", "depth=2*L", "--ops",
                                      "stack", *extra])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


GROW_SIZES = {
    "n_layer=-3": ({"n_layer": -3}, "E730", "config.json: n_layer is -3, not a positive whole "
                                            "number"),
    "n_layer=1e9": ({"n_layer": 10**9}, "E730", "config.json: n_layer is 1000000000, not a "
                                                "positive whole number"),
    "n_layer=1e7": ({"n_layer": 10**7}, "E735", "config.json implies at least 20,480,004,800 "
                                                "weights, but the weight files hold 40,704 bytes"),
    "vocab=1e12": ({"vocab_size": 10**12}, "E730", "config.json: vocab_size is 1000000000000, "
                                                   "not a positive whole number"),
    "n_embd=1.5": ({"n_embd": 1.5}, "E730", "config.json: n_embd is 1.5, not a positive whole "
                                            "number"),
}


@pytest.mark.parametrize("case", sorted(GROW_SIZES))
def test_grow_refuses_absurd_sizes_at_once(tmp_path: Path, case: str) -> None:
    config, code, message = GROW_SIZES[case]
    src = saved_small(tmp_path / "src", **config)
    start = time.perf_counter()
    exit_code, output = grow(src, tmp_path / "out")
    assert exit_code == 1 and f"{src}: error[{code}]: {message}" in output, output
    assert time.perf_counter() - start < 60          # no hang (1e7 layers took minutes)
    assert not (tmp_path / "out").exists()


def init_spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "init.grow",
                      'init from "small"\n' + tiny_plan(tmp_path).read_text())


def init_error(tmp_path: Path) -> str:
    with pytest.raises(GrowError) as info:
        run_spec(init_spec(tmp_path), tmp_path / "out", allow_unverified=True)
    assert [d.code for d in info.value.diagnostics][-1] == "E714", info.value.render()
    return info.value.render()


def test_init_from_a_config_of_absurd_size(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWDSL_CACHE", str(tmp_path / "cache"))
    saved_small(tmp_path / "small", vocab_size=10**12)
    text = init_error(tmp_path)
    assert ("error[E714]: starting checkpoint small: config.json: vocab_size is 1000000000000, "
            "not a positive whole number") in text
    assert "init.grow:1:" in text


def test_init_from_weights_that_disagree_with_their_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("GROWDSL_CACHE", str(tmp_path / "cache"))
    src = saved_small(tmp_path / "small", layers=1)      # the first stage's depth
    weights = load_file(str(src / "model.safetensors"))
    weights["transformer.wpe.weight"] = weights["transformer.wpe.weight"][:8].clone()
    save_file(weights, str(src / "model.safetensors"), metadata={"format": "pt"})
    text = init_error(tmp_path)
    assert ("error[E714]: starting checkpoint small: tensor shapes disagree with config.json: "
            "transformer.wpe.weight is [8, 16], config.json implies [16, 16]") in text


def test_resume_skips_a_checkpoint_whose_model_is_not_the_plans(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A complete checkpoint (manifest rehashed) whose config was edited is not loaded."""
    from growdsl.backend.run_dir import plan_key, resumable
    from growdsl.driver import load
    from tests.faults.test_hostile_checkpoint import rehash

    monkeypatch.setenv("GROWDSL_CACHE", str(tmp_path / "cache"))
    spec = tiny_plan(tmp_path)
    out = tmp_path / "out"
    assert run_spec(spec, out) == 0
    newest = sorted((out / "checkpoints").iterdir())[-1]
    raw = json.loads((newest / "config.json").read_text())
    (newest / "config.json").write_text(json.dumps({**raw, "n_embd": 32}))
    rehash(newest)
    _source, plan = load(spec)
    found = resumable(plan, out, plan_key(plan))
    assert found is not None and found.name == "step-00000006"
    assert f"skipping checkpoint {newest}: its model differs from stage 1's in hidden" in caplog.text
    (newest / "config.json").write_text(json.dumps({**raw, "n_layer": -3}))
    rehash(newest)
    assert resumable(plan, out, plan_key(plan)) == found
    assert "config.json: n_layer is -3, not a positive whole number" in caplog.text
