"""`unpool`: CompoundGrow's embedding pooling removed (Gu et al., NAACL 2021, sec. 4.3).
Every parameter moves over unchanged; only the model treatment (config) changes, and with
it the function: not preserving.
"""

from __future__ import annotations

from growdsl.backend.surgery.core import Ctx, LazyState
from growdsl.ir import ArgValue
from growdsl.shapes import Shape


def grow(state: LazyState, src: Shape, dst: Shape, args: dict[str, ArgValue],
         ctx: Ctx) -> LazyState:
    return dict(state)
