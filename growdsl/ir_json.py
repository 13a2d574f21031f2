"""IR <-> JSON. Every document written or read is validated against the checked-in,
versioned schema `growdsl/schema/plan.schema.json`. Paths are written as the spec wrote
them (relative to its folder); reading resolves them against the folder of the document's
`source`, as lowering did."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from growdsl import reference
from growdsl.ir import (
    IR_VERSION,
    Growth,
    Limit,
    Model,
    OpCall,
    Plan,
    Scratch,
    SpecPath,
    Stage,
    Train,
)
from growdsl.shapes import Shape
from growdsl.source import NO_SPAN, Source, Span

SCHEMA_NAME = "plan.schema.json"
SCHEMA_ID = "urn:growdsl:schema:plan:v1"


def schema_path() -> Path:
    """The schema file shipped in the package: the one `SCHEMA_ID` names."""
    return Path(str(resources.files("growdsl") / "schema" / SCHEMA_NAME))


def registry() -> Any:
    """A `referencing.Registry` resolving `SCHEMA_ID` to the shipped schema, so a document's
    `$schema` can be followed offline (`registry().get_or_retrieve(SCHEMA_ID)`)."""
    from referencing import Registry, Resource

    return Registry().with_resource(SCHEMA_ID, Resource.from_contents(schema()))


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the IR (draft 2020-12)."""
    text = (resources.files("growdsl") / "schema" / SCHEMA_NAME).read_text(encoding="utf-8")
    return dict(json.loads(text))


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    return cls(schema())


def validate(document: dict[str, Any]) -> None:
    """Raise `jsonschema.ValidationError` if `document` is not a valid IR document."""
    _validator().validate(document)


def to_json(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict, validated."""
    document = {
        "$schema": SCHEMA_ID,
        "version": plan.version,
        "source": plan.source,
        "model": {"family": plan.model.family, "preset": plan.model.preset,
                  "config": _written(plan.model.config), "shape": plan.model.shape.to_json(),
                  "span": plan.model.span.to_json()},
        "init": _written(plan.init),
        "init_span": plan.init_span.to_json(),
        "train": _train(plan.train),
        "stages": [_stage(s) for s in plan.stages],
        "limits": [{**{f.name: getattr(lim, f.name) for f in dataclasses.fields(lim)
                       if f.name != "span"}, "span": lim.span.to_json()} for lim in plan.limits],
        "scratch": {"steps": reference.steps(plan), "tokens": reference.tokens(plan),
                    "stated": reference.stated(plan),
                    "span": (plan.scratch.span if plan.scratch else NO_SPAN).to_json()},
    }
    validate(document)
    return document


def dumps(plan: Plan) -> str:
    """The plan as indented JSON text."""
    return json.dumps(to_json(plan), indent=2) + "\n"


def _written(path: SpecPath | None) -> str | None:
    return None if path is None else path.written


def _train(train: Train) -> dict[str, Any]:
    out = {f.name: getattr(train, f.name) for f in dataclasses.fields(train)}
    out["betas"] = list(train.betas)
    out["data"], out["tokenizer"] = _written(train.data), _written(train.tokenizer)
    out["report_to"] = list(train.report_to) if train.report_to is not None else None
    return out


def _stage(stage: Stage) -> dict[str, Any]:
    growth = None
    if stage.growth is not None:
        growth = {"ops": [{"name": op.name, "args": dict(op.args), "span": op.span.to_json()}
                          for op in stage.growth.ops],
                  "seed": stage.growth.seed, "preserve": stage.growth.preserve,
                  "span": stage.growth.span.to_json()}
    return {"index": stage.index, "name": stage.name, "steps": stage.steps,
            "tokens": stage.tokens, "shape": stage.shape.to_json(), "train": _train(stage.train),
            "growth": growth, "span": stage.span.to_json()}


def from_json(document: dict[str, Any]) -> Plan:
    """A plan from its JSON form, after validating it."""
    validate(document)
    document = {k: v for k, v in document.items() if k != "$schema"}
    if document["version"] != IR_VERSION:
        raise ValueError(f"IR version {document['version']} is not {IR_VERSION}")
    m = document["model"]
    directory = Source(path=document["source"], text="").directory

    def path(written: str | None) -> SpecPath | None:
        return None if written is None else SpecPath.resolve(written, directory)

    model = Model(family=m["family"], preset=m["preset"], config=path(m["config"]),
                  shape=Shape.from_json(m["shape"]), span=Span.from_json(m["span"]))
    return Plan(
        version=document["version"], source=document["source"], model=model,
        init=path(document["init"]), init_span=Span.from_json(document["init_span"]),
        train=_train_from(document["train"], path),
        stages=tuple(_stage_from(s, path) for s in document["stages"]),
        limits=tuple(Limit(**{**lim, "span": Span.from_json(lim["span"])})
                     for lim in document["limits"]),
        scratch=_scratch_from(document.get("scratch")),
    )


def _scratch_from(data: dict[str, Any] | None) -> Scratch | None:
    """A stated reference run; the default one (`stated` false, or absent) is None."""
    if data is None or not data["stated"]:
        return None
    return Scratch(steps=data["steps"], tokens=data["tokens"], span=Span.from_json(data["span"]))


def loads(text: str) -> Plan:
    return from_json(json.loads(text))


def _train_from(data: dict[str, Any], path: Callable[[str | None], SpecPath | None]) -> Train:
    trackers = data.get("report_to")
    return Train(**{**data, "betas": tuple(data["betas"]), "data": path(data["data"]),
                    "tokenizer": path(data["tokenizer"]),
                    "report_to": tuple(trackers) if trackers is not None else None})


def _stage_from(data: dict[str, Any], path: Callable[[str | None], SpecPath | None]) -> Stage:
    g = data["growth"]
    growth = None
    if g is not None:
        ops = tuple(OpCall(name=o["name"], args=dict(o["args"]), span=Span.from_json(o["span"]))
                    for o in g["ops"])
        growth = Growth(ops=ops, seed=g["seed"], preserve=g["preserve"],
                        span=Span.from_json(g["span"]))
    return Stage(index=data["index"], name=data["name"], steps=data["steps"],
                 tokens=data["tokens"], shape=Shape.from_json(data["shape"]),
                 train=_train_from(data["train"], path), growth=growth,
                 span=Span.from_json(data["span"]))
