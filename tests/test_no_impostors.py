"""No silent impostors (issue #10 item 5): a checkpoint that needs growdsl to compute its
function (a masked-growth gate mid-ramp, pooled queries, a factorized FFN) is refused by
stock `from_pretrained`; one that stock loading can compute (FFN sharing, a gate at 0 on
a pre-LN model or on FFN units, a finished ramp) loads and computes it. `grow` says which,
and can remove every treatment (`--to "width=none"`, `rank=none`, `pool=none`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from growdsl.backend.equivalence import compare
from growdsl.backend.models import TREATED_WEIGHTS, build_model, load_model, save_model
from growdsl.backend.surgery import grow_model
from growdsl.backend.testing import batch_for, growth, tiny_shape
from growdsl.backend.treatments import set_mask
from growdsl.cli import app
from tests.stock import load_stock

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


def _masked(family: str, c: float, layers: bool = True):  # type: ignore[no-untyped-def]
    src = tiny_shape(family)
    dst = src.replace(layers=3) if layers else src.replace(ffn=24)
    grown, _ = grow_model(build_model(src, seed=1), dst, growth(("masked", {"ramp": 10})))
    set_mask(grown, c)
    return grown


TREATED = {
    "masked-mid-ramp": lambda: _masked("gpt2", 0.5),
    "masked-bert-at-0": lambda: _masked("bert", 0.0),
    "pooled": lambda: build_model(tiny_shape("bert", pool=2)),
    "factorized": lambda: build_model(tiny_shape("llama", ffn_rank=2)),
}


@pytest.mark.parametrize("name", sorted(TREATED))
def test_stock_loading_refuses_what_needs_growdsl(tmp_path: Path, name: str) -> None:
    model = TREATED[name]()
    save_model(model, tmp_path)
    assert (tmp_path / TREATED_WEIGHTS).exists() and not (tmp_path / "model.safetensors").exists()
    with pytest.raises(OSError, match="no file named"):
        load_stock(tmp_path)
    batch = batch_for(tiny_shape("bert"), 2, 8, 0)
    if name == "pooled":
        batch["mlm_positions"] = torch.tensor([[1, 3], [2, 5]])
    assert compare(model, load_model(tmp_path), batch).max_abs == 0.0   # growdsl reads it


@pytest.mark.parametrize("name", ["shared", "masked-finished"])
def test_stock_loading_computes_what_it_can(tmp_path: Path, name: str) -> None:
    model = build_model(tiny_shape("gpt2", ffn=16, ffn_share=2)) if name == "shared" \
        else _masked("gpt2", 1.0)
    save_model(model, tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    stock = load_stock(tmp_path)
    assert compare(model, stock, batch_for(tiny_shape("gpt2"), 2, 8, 0)).max_abs <= 1e-6


@pytest.mark.parametrize(("family", "to", "stock"), [
    ("gpt2", "depth=3", "loads"),               # pre-LN: the gate at 0 folds into zeroed outputs
    ("llama", "ffn=24", "loads"),               # FFN units: the gate scales the down projection
    ("bert", "depth=3", "refuses"),             # post-LN layers: the gate must stay
])
def test_grow_masked_says_what_stock_loading_does(tmp_path: Path, family: str, to: str,
                                                  stock: str) -> None:
    src = tiny_shape(family)
    model = build_model(src, seed=4)
    save_model(model, tmp_path / "src")
    result = CliRunner().invoke(app, ["grow", str(tmp_path / "src"), str(tmp_path / "out"),
                                      "--to", to, "--ops", "masked(ramp=10)"])
    assert result.exit_code == 0, result.output
    assert f"stock from_pretrained: {stock}" in result.output
    batch = batch_for(src, 2, 8, 0)
    if stock == "loads":
        assert "gate, at 0, folded into the weights" in result.output
        assert compare(model, load_stock(tmp_path / "out"), batch).max_abs <= 1e-5
    else:
        with pytest.raises(OSError):
            load_stock(tmp_path / "out")
        assert compare(model, load_model(tmp_path / "out"), batch).max_abs <= 1e-5


@pytest.mark.parametrize(("shape", "to", "ops", "verdict"), [
    (tiny_shape("gpt2", ffn=16, ffn_share=2), "width=none", "unshare", "exact"),
    (tiny_shape("gpt2", ffn=16, ffn_share=4), "width=ffn/2", "unshare", "exact"),
    (tiny_shape("llama", ffn=16, ffn_rank=2), "rank=none", "unfactor", "exact"),
    (tiny_shape("bert", pool=2), "pool=none", "unpool", "none"),
    (tiny_shape("gpt2", ffn=16, ffn_share=2), "width=none depth=4", "unshare, stack", "none"),
])
def test_grow_removes_treatments(tmp_path: Path, shape, to: str, ops: str,  # type: ignore[no-untyped-def]
                                 verdict: str) -> None:
    model = build_model(shape, seed=5)
    save_model(model, tmp_path / "src")
    result = CliRunner().invoke(app, ["grow", str(tmp_path / "src"), str(tmp_path / "out"),
                                      "--to", to, "--ops", ops])
    assert result.exit_code == 0, result.output
    assert f"{ops.split(',')[0]}: " in result.output and f": {verdict} (" in result.output
    treated = "width=ffn/2" in to      # still shared: stock computes it all the same
    assert "stock from_pretrained: loads" in result.output
    grown = load_stock(tmp_path / "out") if not treated else load_model(tmp_path / "out")
    if verdict == "exact":
        batch = batch_for(shape, 2, 8, 0)
        assert compare(model, grown, batch).max_abs <= 1e-5


def test_a_treatment_the_checkpoint_lacks_is_a_located_error(tmp_path: Path) -> None:
    save_model(build_model(tiny_shape("gpt2")), tmp_path / "src")
    result = CliRunner().invoke(app, ["grow", str(tmp_path / "src"), str(tmp_path / "out"),
                                      "--to", "width=none", "--ops", "unshare"])
    assert result.exit_code == 1
    assert "--ops:1:1: error[E410]: `unshare` needs a checkpoint with FFN sharing" in \
        result.output, result.output
