"""The resolved, typed IR of a growth plan: what the planner checks and the executor runs.

Every name is looked up, every default filled, every unit converted: stage lengths are
steps (and tokens), shapes are whole numbers. Nodes keep the span of the source
construct they come from, so later passes report located errors. `ir_json` turns a
`Plan` into JSON validated against `schema/plan.schema.json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from growdsl.shapes import Shape
from growdsl.source import NO_SPAN, Span

IR_VERSION = 1

Scalar = int | float | str | bool
ArgValue = Scalar | tuple[Scalar, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class SpecPath:
    """A file or folder the spec names (`model ... from`, `init from`, `data`, `tokenizer`),
    resolved once, while lowering: `written` as the spec writes it (what messages show and
    `emit` writes), `path` against the spec's folder (what the backend opens).

    >>> p = SpecPath.resolve("corpus", Path("/runs/specs"))
    >>> str(p), p.path
    ('corpus', PosixPath('/runs/specs/corpus'))
    """

    written: str
    path: Path

    @classmethod
    def resolve(cls, written: str, directory: Path) -> SpecPath:
        """`written` taken relative to `directory` (the spec's folder; an absolute path
        stays as it is)."""
        return cls(written=written, path=directory / written)

    def __str__(self) -> str:
        return self.written


@dataclass(frozen=True, kw_only=True, slots=True)
class Train:
    """Training settings of one stage (the `train` block, then the stage's overrides)."""

    batch: int = 32                     # the global batch: micro_batch x accumulation x world
    micro_batch: int = 0                # per device per forward/backward; 0: batch / world
    checkpointing: bool = False         # activation checkpointing of every layer
    optimizer: str = "adamw"            # adamw | adam | sgd
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    warmup: int = 0                     # steps
    decay: str = "linear"               # linear | cosine | constant
    min_lr: float = 0.0
    schedule: str = "restart"           # restart: each stage warms up and decays anew; continue
    optimizer_state: str = "reset"      # at growth: reset | transfer | transform
    precision: str = "auto"             # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    mlm_probability: float = 0.15
    seed: int = 0
    data: SpecPath | None = None        # corpus path
    tokenizer: SpecPath | None = None   # tokenizer directory; None: trained on the corpus
    eval_every: int = 0                 # steps; 0: only at stage ends
    checkpoint_every: int = 0           # steps; 0: only at stage ends
    keep_checkpoints: int = 2
    device: str | None = None           # memory plan: device name or "NGiB" (growdsl.devices)
    world: int = 1                      # memory plan: devices the run is sharded over
    report_to: tuple[str, ...] | None = None    # trackers (keys.TRACKERS); None: the default

    def micro(self, world: int | None = None) -> int:
        """Samples per device per forward/backward over `world` devices (the spec's world
        when not given)."""
        per_device = self.batch // (world or self.world)
        return self.micro_batch or per_device

    def accumulation(self, world: int | None = None) -> int:
        """Forward/backward passes per optimizer step on each device."""
        return max(1, self.batch // ((world or self.world) * self.micro(world)))


@dataclass(frozen=True, kw_only=True, slots=True)
class OpCall:
    """One growth operator with its arguments (names checked against the registry)."""

    name: str
    args: dict[str, ArgValue] = field(default_factory=dict)
    span: Span = NO_SPAN


@dataclass(frozen=True, kw_only=True, slots=True)
class Growth:
    """The growth step out of a stage into the next: operators applied in order."""

    ops: tuple[OpCall, ...]
    seed: int = 0
    preserve: bool = False
    span: Span = NO_SPAN


@dataclass(frozen=True, kw_only=True, slots=True)
class Stage:
    """One training stage: a model shape trained for `steps` steps."""

    index: int
    name: str
    steps: int
    tokens: int
    shape: Shape
    train: Train
    growth: Growth | None = None
    span: Span = NO_SPAN


@dataclass(frozen=True, kw_only=True, slots=True)
class Model:
    """The target model: the shape the last stage must reach."""

    family: str
    shape: Shape
    preset: str | None = None
    config: SpecPath | None = None      # a local HF directory whose config.json gave the shape
    span: Span = NO_SPAN


@dataclass(frozen=True, kw_only=True, slots=True)
class Limit:
    """`budget` or `expect`: metric CMP value, the value absolute or relative to scratch."""

    kind: str                           # budget | expect
    metric: str                         # budget: flops | tokens | steps; expect: speedup | saving
    cmp: str                            # <= | < | >= | > | ==
    value: float
    relative: bool = False              # value is a fraction of the scratch baseline
    span: Span = NO_SPAN


@dataclass(frozen=True, kw_only=True, slots=True)
class Scratch:
    """A plan's stated reference run, `scratch 1M steps`: the target trained from scratch
    for `steps` steps. A plan without the statement has none, and `scratch` is the default
    reference (growdsl.reference defines the term: the target for the plan's own steps)."""

    steps: int
    tokens: int
    span: Span = NO_SPAN


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """A whole `.grow` file, resolved."""

    source: str
    model: Model
    train: Train
    stages: tuple[Stage, ...]
    init: SpecPath | None = None        # starting checkpoint (bert2BERT reuse)
    init_span: Span = NO_SPAN
    limits: tuple[Limit, ...] = ()
    scratch: Scratch | None = None      # the stated reference run; None: the default
    version: int = IR_VERSION

    @property
    def target(self) -> Shape:
        return self.model.shape
