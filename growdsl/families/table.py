"""The table of supported config fields by family and operator, and the table of stored
tensors each family knows to be inert (docs/operators.md), made from the family records so
that the docs cannot drift from them:

    python -m growdsl.families.table          # the fields
    python -m growdsl.families.table inert    # the inert tensors
"""

from __future__ import annotations

from growdsl import families
from growdsl.families.base import CARRIED, INERT, PER_LAYER, REFUSED, TENSORS, Field

_EFFECT = {
    CARRIED: "kept as given",
    TENSORS: "switches tensors on; grown with them",
    PER_LAYER: "one value per layer",
    REFUSED: "refused at any other value",
}


def _kept(spec: Field) -> str:
    """Which operators keep the field (all but those that refuse it)."""
    if spec.effect == REFUSED:
        return "none (the model is refused by `check` and `grow`)"
    if spec.effect == PER_LAYER:
        return "all; depth operators only when every layer has the same value"
    if spec.refused_by:
        refused = ", ".join(f"`{op}`" for op in sorted(spec.refused_by))
        return f"all but {refused}"
    return "all"


def _ok(spec: Field) -> str:
    """The values at which every operator keeps the field, in words."""
    if spec.ok is None:
        return ""
    shown = spec.ok_doc or ("" if callable(spec.ok) else " or ".join(f"`{v!r}`" for v in spec.ok))
    if spec.effect == REFUSED:
        return f" (only {shown})"
    return f"; at {shown}, every operator keeps it" if shown else ""


def markdown() -> str:
    """One row per family and function-relevant field; inert fields listed after."""
    rows = ["| family | config field | what it does | operators that keep it |",
            "|---|---|---|---|"]
    inert: set[str] = set()
    for name in families.names():
        fam = families.get(name)
        shape_keys = ", ".join(f"`{k}`" for k in fam.shape_keys())
        rows.append(f"| {name} | {shape_keys} | shape dimensions | set by the plan |")
        for key, spec in sorted(fam.fields.items()):
            if spec.effect == INERT:
                inert.add(key)
                continue
            what = f"{spec.doc}: {_EFFECT[spec.effect]}{_ok(spec)}"
            rows.append(f"| {name} | `{key}` | {what} | {_kept(spec)} |")
    common = sorted(k for k, s in families.COMMON_FIELDS.items() if s.effect == INERT)
    tail = ", ".join(f"`{k}`" for k in sorted(inert | set(common)))
    return "\n".join(rows) + ("\n\nInert fields (carried as given, in the families that have "
                              f"them; no effect on the function in eval mode): {tail}.\n")


def inert_markdown() -> str:
    """One row per family and kind of stored tensor it knows to be inert."""
    rows = ["| family | stored tensors (weight-map names) | left out | why |",
            "|---|---|---|---|"]
    where = {"any": "always", "head": "from the full model (`grow` of a full checkpoint, `run`)",
             "bare": "from the bare model"}
    for name in families.names():
        for inert in families.get(name).inert:
            rows.append(f"| {name} | `{inert.pattern}` | {where[inert.layout]} | {inert.why} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys

    print(inert_markdown() if sys.argv[1:] == ["inert"] else markdown(), end="")
