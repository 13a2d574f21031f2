"""Streaming checkpoint growth, `--verify`, the `growdsl grow` command and the bench smoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from growdsl import families
from growdsl.backend.equivalence import compare
from growdsl.backend.models import build_model, load_model, save_model, shape_of, weights_name
from growdsl.backend.streaming import grow_checkpoint
from growdsl.backend.surgery import grow_model
from growdsl.backend.testing import batch_for, growth, tiny_shape
from growdsl.backend.verify import verify_steps, verify_written

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


@pytest.mark.parametrize("family", families.BUILTIN)
@pytest.mark.parametrize("ops", [("fpi", "stack"), ("clone", ("identity", {}))])
def test_streamed_growth_equals_in_memory_growth(tmp_path: Path, family: str,
                                                 ops: tuple) -> None:
    if not families.get(family).pre_ln and "identity" in str(ops):
        ops = ("clone", ("masked", {"ramp": 5}))
    src = tiny_shape(family, tied=not families.get(family).grouped_query)
    model = build_model(src, seed=2)
    save_model(model, tmp_path / "src")
    (tmp_path / "src" / "vocab.txt").write_text("a\nb\n")
    dst = src.replace(layers=4, hidden=16, heads=4, kv_heads=4, ffn=32)
    final, _steps, config, written = grow_checkpoint(tmp_path / "src", tmp_path / "out", dst,
                                                     growth(*ops, seed=7))
    # BERT's masked layers keep their gate: weights under the name stock loading refuses
    weights = tmp_path / "out" / ("growdsl-model.safetensors" if family == "bert" and
                                  "masked" in str(ops) else "model.safetensors")
    assert weights_name(config) == weights.name
    assert written == weights.stat().st_size
    assert (tmp_path / "out" / "vocab.txt").read_text() == "a\nb\n"
    with safe_open(str(weights), framework="pt") as f:
        assert len(list(f.keys())) > 0
    streamed = load_model(tmp_path / "out")
    assert shape_of(streamed.config) == final
    in_memory, _ = grow_model(model, dst, growth(*ops, seed=7))
    assert compare(streamed, in_memory, batch_for(dst, 2, 6, 0)).max_abs == 0.0


def test_verify_reports_exact_width_step_and_changed_depth_step(tmp_path: Path) -> None:
    src = tiny_shape("bert", layers=2)
    save_model(build_model(src), tmp_path / "src")
    dst = src.replace(layers=4, hidden=16, heads=4, kv_heads=4, ffn=32)
    _final, steps, _config, _ = grow_checkpoint(tmp_path / "src", tmp_path / "out", dst,
                                                growth("fpi", "stack"))
    fpi, stack = verify_steps(tmp_path / "src", steps, 0)
    assert fpi.verdict == "exact" and not fpi.broken and fpi.diff.max_abs <= 1e-5
    assert stack.verdict == "none" and not stack.broken and stack.diff.max_abs > 0
    assert verify_written(tmp_path / "src", tmp_path / "out", steps, 0).max_abs == 0.0


def test_broken_exact_operator_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the tensor half of an exact operator were wrong, verify would say so."""
    from growdsl.backend import surgery

    src = tiny_shape("gpt2")
    save_model(build_model(src), tmp_path / "src")
    dst = src.replace(hidden=16, heads=4, kv_heads=4, ffn=32)
    _f, steps, _c, _ = grow_checkpoint(tmp_path / "src", tmp_path / "out", dst, growth("fpi"))
    wrong = surgery.TENSOR_OPS["aki"]                          # not function-preserving
    monkeypatch.setitem(surgery.TENSOR_OPS, "fpi", wrong)
    (check,) = verify_steps(tmp_path / "src", steps, 0)
    assert check.verdict == "exact" and check.broken


def test_grow_command_verifies_fpi_width_and_stack_depth(tmp_path: Path) -> None:
    from growdsl.cli import app

    src = tiny_shape("bert", layers=2)
    save_model(build_model(src), tmp_path / "src")
    result = CliRunner().invoke(app, ["grow", str(tmp_path / "src"), str(tmp_path / "out"),
                                      "--to", "depth=2*L hidden=2*D", "--ops", "fpi, stack",
                                      "--verify"])
    assert result.exit_code == 0, result.output
    assert "verify fpi: exact" in result.output
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["num_hidden_layers"] == 4 and config["hidden_size"] == 16


def test_grow_command_rejects_a_directory_without_a_model(tmp_path: Path) -> None:
    from growdsl.cli import app

    result = CliRunner().invoke(app, ["grow", str(tmp_path), str(tmp_path / "out"),
                                      "--to", "depth=2*L", "--ops", "stack"])
    assert result.exit_code == 1
    assert "no config.json" in result.output


def test_bench_smoke(tmp_path: Path) -> None:
    import importlib.util

    path = Path(__file__).parents[1] / "bench" / "grow_stream.py"
    spec = importlib.util.spec_from_file_location("grow_stream", path)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "grow_stream.json"
    (result,) = bench.main(["--layers", "2", "--hidden", "64", "--vocab", "500", "--out",
                            str(out)])
    assert json.loads(out.read_text())["results"] == [result]
    assert result["mode"] == "streaming" and result["bytes_written"] > result["source_mb"] * 1e6
    assert result["mb_per_s"] > 0 and result["peak_extra_mb"] >= 0
