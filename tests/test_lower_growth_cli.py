"""`growdsl grow --to ... --ops ...`: the target and the step, symbols meaning the source."""

from __future__ import annotations

import pytest

from growdsl.errors import GrowError
from growdsl.lower import lower_growth_cli
from growdsl.shapes import PRESETS

MINI = PRESETS["bert-mini"]   # 4 layers, hidden 256, 4 heads of 64, FFN 1024


def test_symbols_are_the_source_dimensions_and_head_size_is_kept() -> None:
    dst, growth = lower_growth_cli("depth=2*L hidden=2*D ffn=2*F", "-> fpi, stack seed=3", MINI)
    assert (dst.layers, dst.hidden, dst.heads, dst.head_dim, dst.ffn) == (8, 512, 8, 64, 2048)
    assert [op.name for op in growth.ops] == ["fpi", "stack"] and growth.seed == 3


def test_the_arrow_is_optional_and_preserve_is_read() -> None:
    _, growth = lower_growth_cli("hidden=2*D", "clone preserve", MINI)
    assert growth.preserve and growth.ops[0].name == "clone"


def test_to_removes_or_lowers_a_treatment() -> None:
    shared = MINI.replace(ffn_share=4, pool=2, ffn_rank=0)
    dst, _ = lower_growth_cli("width=none pool=none", "unshare, unpool", shared)
    assert (dst.ffn_share, dst.pool, dst.ffn) == (1, 1, MINI.ffn)
    dst, _ = lower_growth_cli("width=ffn/2", "unshare", shared)
    assert (dst.ffn_share, dst.pool) == (2, 2)      # the pooling the --to leaves is kept


@pytest.mark.parametrize(("to", "ops", "expected"), [
    ("submodels=2", "stack",
     "--to:1:1: error[E204]: `submodels` is not a target dimension or treatment"),
    ("depth=2*Q", "stack", "--to:1:9: error[E201]: unknown symbol `Q`"),
    ("depth=2*L", "stakc", "--ops:1:1: error[E203]: unknown operator `stakc`"),
    ("depth=L/0", "stack", "--to:1:9: error[E301]: division by zero"),
])
def test_mistakes_are_located_in_the_option_they_come_from(to: str, ops: str, expected: str) -> None:
    with pytest.raises(GrowError) as info:
        lower_growth_cli(to, ops, MINI)
    assert info.value.render().splitlines()[0] == expected
