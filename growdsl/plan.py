"""The stage graph of a plan: a node per stage and an edge per growth step, its totals
against the reference run (`scratch`, growdsl.reference), and its exports (JSON, DOT,
Mermaid, a schedule plot). Its networkx DiGraph (`StageGraph.graph`) is built, and
networkx imported, on first use: by the exports, not by `growdsl check`, whose passes read
the nodes and edges directly.

Nodes are stage indices, each carrying one frozen `StageNode` (the stage, its parameter
count, FLOPs, tokens and steps, each also cumulative); edges carry one `GrowthResult`
(each operator's `OpResult`: shapes and verdict, from `growdsl.operators.apply_growth`),
or None for stages joined without growth. Read them through `StageGraph.node` and
`StageGraph.edge`, never by attribute name. Building never raises on a wrong plan: a
growth step that does not apply records its error on the edge, for `growdsl.checks`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from growdsl import flops, reference
from growdsl.ir import Plan, Stage
from growdsl.keys import format_count
from growdsl.operators import GrowthStepError, OpResult, apply_growth, step_verdict
from growdsl.operators.base import Verdict
from growdsl.shapes import Shape

if TYPE_CHECKING:
    import networkx as nx

ARCH_FIELDS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "ffn_share",
               "ffn_rank", "vocab", "seq", "positions", "pool", "pool_mode", "submodels")


@dataclass(frozen=True, kw_only=True, slots=True)
class GrowthResult:
    """What a growth step does: each operator's shapes and verdict, the step's verdict, the
    shape it reaches, or the error of the operator that could not apply."""

    ops: tuple[OpResult, ...]
    verdict: Verdict | None
    final: Shape | None
    error: GrowthStepError | None = None


def grow_step(src: Stage, dst: Stage) -> GrowthResult:
    """Apply `src.growth` from `src`'s shape towards `dst`'s."""
    assert src.growth is not None
    try:
        final, results = apply_growth(src.shape, dst.shape, src.growth)
    except GrowthStepError as err:
        return GrowthResult(ops=(), verdict=None, final=None, error=err)
    return GrowthResult(ops=tuple(results), verdict=step_verdict([r.verdict for r in results]),
                        final=final)


@dataclass(frozen=True, kw_only=True, slots=True)
class StageNode:
    """A node of the stage graph: a stage with its costs, own and cumulative up to it."""

    stage: Stage
    params: int
    flops: float
    tokens: int
    steps: int
    cum_flops: float
    cum_tokens: int
    cum_steps: int

    def cumulative(self, metric: str) -> float:
        """The cumulative cost in a limit's metric (`flops`, `tokens` or `steps`)."""
        return {"flops": self.cum_flops, "tokens": self.cum_tokens,
                "steps": self.cum_steps}[metric]


# The one attribute each networkx node / edge carries (read only by StageGraph).
_NODE = "node"
_EDGE = "result"


@dataclass(frozen=True, kw_only=True, slots=True)
class StageGraph:
    """A plan's stage graph and its totals: `stages` by index, `steps` by (from, to)."""

    plan: Plan
    stages: dict[int, StageNode]
    steps: dict[tuple[int, int], GrowthResult | None]
    _built: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def graph(self) -> nx.DiGraph:
        """The networkx DiGraph: a node per stage carrying its `StageNode`, an edge per
        growth step carrying its `GrowthResult` (built on first use)."""
        if "graph" not in self._built:
            import networkx as nx

            graph = nx.DiGraph(source=self.plan.source)
            for index, node in self.stages.items():
                graph.add_node(index, **{_NODE: node})
            for (src, dst), result in self.steps.items():
                graph.add_edge(src, dst, **{_EDGE: result})
            self._built["graph"] = graph
        return self._built["graph"]

    def order(self) -> list[int]:
        """Stage indices in plan order: the graph's one topological order (each edge joins
        a stage to the next)."""
        return list(self.stages)

    def node(self, index: int) -> StageNode:
        """Stage `index` with its costs."""
        return self.stages[index]

    def nodes(self) -> list[StageNode]:
        """Every stage with its costs, in `order()`."""
        return [self.node(i) for i in self.order()]

    def edges(self) -> list[tuple[int, int]]:
        """The (from, to) stage indices of every edge, sorted."""
        return sorted(self.steps)

    def edge(self, src: int, dst: int) -> GrowthResult | None:
        """What the growth step from stage `src` to `dst` does (None: no growth step)."""
        return self.steps[src, dst]

    def preceding(self, index: int) -> int | None:
        """The stage before stage `index` (None for the first)."""
        if "preceding" not in self._built:
            self._built["preceding"] = {dst: src for src, dst in self.steps}
        before: int | None = self._built["preceding"].get(index)
        return before

    def growth_into(self, index: int) -> GrowthResult | None:
        """The growth step into stage `index` (None for the first stage, or no growth)."""
        prev = self.preceding(index)
        return self.edge(prev, index) if prev is not None else None

    @property
    def total_flops(self) -> float:
        return sum(node.flops for node in self.stages.values())

    @property
    def total_tokens(self) -> int:
        return sum(node.tokens for node in self.stages.values())

    @property
    def total_steps(self) -> int:
        return flops.total_steps(self.plan)

    @property
    def scratch_flops(self) -> float:
        """FLOPs of the reference run (growdsl.reference)."""
        return reference.flops(self.plan)

    @property
    def scratch_tokens(self) -> int:
        return reference.tokens(self.plan)

    @property
    def scratch_steps(self) -> int:
        return reference.steps(self.plan)

    @property
    def scratch(self) -> str:
        """The reference run in words (growdsl.reference.describe)."""
        return reference.describe(self.plan)

    @property
    def speedup(self) -> float:
        return self.scratch_flops / self.total_flops if self.total_flops else float("inf")

    @property
    def saving(self) -> float:
        """FLOPs saved against scratch, in percent."""
        return 100.0 * (1 - self.total_flops / self.scratch_flops) if self.scratch_flops else 0.0


def build(plan: Plan) -> StageGraph:
    """The stage graph of `plan` (never raises for a wrong plan)."""
    nodes: dict[int, StageNode] = {}
    cum_flops, cum_tokens, cum_steps = 0.0, 0, 0
    for stage in plan.stages:
        own = flops.stage_flops(stage)
        cum_flops, cum_tokens, cum_steps = (cum_flops + own, cum_tokens + stage.tokens,
                                            cum_steps + stage.steps)
        nodes[stage.index] = StageNode(stage=stage, params=flops.param_count(stage.shape),
                                       flops=own, tokens=stage.tokens, steps=stage.steps,
                                       cum_flops=cum_flops, cum_tokens=cum_tokens,
                                       cum_steps=cum_steps)
    steps = {(src.index, dst.index): grow_step(src, dst) if src.growth is not None else None
             for src, dst in zip(plan.stages, plan.stages[1:], strict=False)}
    return StageGraph(plan=plan, stages=nodes, steps=steps)


def topological(g: StageGraph) -> list[int]:
    """Stage indices in networkx's lexicographical topological order of the graph (the
    exports' order; equal to `g.order()`)."""
    import networkx as nx

    return list(nx.lexicographical_topological_sort(g.graph))


# ---- exports ----

def _verdict_json(v: Verdict | None) -> dict[str, str] | None:
    return None if v is None else {"kind": v.kind, "reason": v.reason}


def _growth_json(result: GrowthResult | None, stage: Stage) -> dict[str, Any] | None:
    if stage.growth is None:
        return None
    out: dict[str, Any] = {"preserve": stage.growth.preserve, "seed": stage.growth.seed,
                           "ops": [{"name": r.call.name, "args": _plain(r.call.args),
                                    "verdict": _verdict_json(r.verdict)}
                                   for r in (result.ops if result else ())]}
    out["verdict"] = _verdict_json(result.verdict if result else None)
    if result and result.error:
        out["error"] = result.error.message
    return out


def _plain(args: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}


def stage_json(g: StageGraph, index: int) -> dict[str, Any]:
    """One stage as the JSON export writes it."""
    node = g.node(index)
    stage = node.stage
    t = stage.train
    prev = g.preceding(index)
    into = None
    if prev is not None:
        into = _growth_json(g.growth_into(index), g.node(prev).stage)
    return {
        "index": index, "name": stage.name, "steps": stage.steps, "tokens": stage.tokens,
        **{f: getattr(stage.shape, f) for f in ARCH_FIELDS}, "family": stage.shape.family,
        "ffn_stored": stage.shape.ffn_stored, "params": node.params,
        "flops": node.flops, "cum_flops": node.cum_flops,
        "cum_tokens": node.cum_tokens, "cum_steps": node.cum_steps,
        "train": {"batch": t.batch, "lr": t.lr, "warmup": t.warmup, "decay": t.decay,
                  "schedule": t.schedule, "optimizer": t.optimizer,
                  "optimizer_state": t.optimizer_state},
        "growth_in": into,
    }


def to_dict(g: StageGraph) -> dict[str, Any]:
    """The whole plan: stages, growth steps and totals (`growdsl plan --format json`)."""
    stages = [stage_json(g, i) for i in topological(g)]
    growth = []
    for a, b in g.edges():
        step = _growth_json(g.edge(a, b), g.node(a).stage)
        growth.append({"from": a, "to": b, **(step or {"ops": [], "verdict": None})})
    return {
        "source": g.plan.source, "stages": stages, "growth": growth,
        "total_steps": g.total_steps, "total_tokens": g.total_tokens,
        "total_flops": g.total_flops, "scratch_flops": g.scratch_flops,
        "scratch_tokens": g.scratch_tokens, "scratch_steps": g.scratch_steps,
        "scratch_stated": reference.stated(g.plan), "scratch": g.scratch,
        "speedup": g.speedup, "saving_percent": g.saving,
    }


def to_json(g: StageGraph) -> str:
    return json.dumps(to_dict(g), indent=2) + "\n"


def _label(g: StageGraph, index: int) -> str:
    stage = g.node(index).stage
    s = stage.shape
    extra = "".join([f" share={s.ffn_share}" if s.ffn_share > 1 else "",
                     f" rank={s.ffn_rank}" if s.ffn_rank else "",
                     f" pool={s.pool}" if s.pool > 1 else "",
                     f" submodels={s.submodels}" if s.submodels > 1 else ""])
    return (f"{stage.name}: {stage.steps} steps\\nL={s.layers} D={s.hidden} H={s.heads} "
            f"F={s.ffn} T={s.seq}{extra}")


def _edge_label(g: StageGraph, a: int, b: int) -> str:
    result = g.edge(a, b)
    if result is None:
        return "(no growth)"
    if result.error is not None:
        return f"error: {result.error.call.name}"
    names = ", ".join(r.call.name for r in result.ops)
    return f"{names} [{result.verdict.kind if result.verdict else '?'}]"


def to_dot(g: StageGraph) -> str:
    """Graphviz DOT text of the stage graph."""
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box];"]
    lines += [f'  s{i} [label="{_label(g, i)}"];' for i in topological(g)]
    lines += [f'  s{a} -> s{b} [label="{_edge_label(g, a, b)}"];' for a, b in g.edges()]
    return "\n".join([*lines, "}"]) + "\n"


def to_mermaid(g: StageGraph) -> str:
    """Mermaid flowchart text of the stage graph."""
    lines = ["flowchart LR"]
    lines += [f'  s{i}["{_label(g, i).replace(chr(92) + "n", "<br/>")}"]'
              for i in topological(g)]
    lines += [f'  s{a} -->|"{_edge_label(g, a, b)}"| s{b}' for a, b in g.edges()]
    return "\n".join(lines) + "\n"


def _mark_stages(g: StageGraph, top: Any, bottom: Any, steps: list[int],
                 params: list[float]) -> None:
    """Each stage's name over its step, and each growth step's operators on a dotted line."""
    for k, i in enumerate(g.order()):
        top.annotate(g.node(i).stage.name, ((steps[k] + steps[k + 1]) / 2, params[k]),
                     xytext=(0, 4), textcoords="offset points", ha="center", va="bottom",
                     fontsize=8)
        prev = g.preceding(i)
        label = _edge_label(g, prev, i) if prev is not None else ""
        if label and label != "(no growth)":
            for ax in (top, bottom):
                ax.axvline(steps[k], linestyle=":", color="tab:red", linewidth=1)
            bottom.annotate(label, (steps[k], 0), xytext=(3, 3), textcoords="offset points",
                            rotation=90, fontsize=7, va="bottom", color="tab:red")


def plot_schedule(g: StageGraph, path: str) -> None:
    """Draw model size and cumulative FLOPs over training steps, scratch beside, to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, params, cum = [0], [], [0.0]
    for node in g.nodes():
        steps.append(steps[-1] + node.steps)
        params.append(node.params / 1e6)
        cum.append(node.cum_flops)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6))
    if params:
        top.stairs(params, steps, baseline=None, label="plan")
    top.axhline(flops.param_count(g.plan.target) / 1e6, linestyle="--", color="grey",
                label="target")
    top.set_ylabel("parameters (M)")
    _mark_stages(g, top, bottom, steps, params)
    top.legend()
    bottom.plot(steps, cum, marker="o", label=f"plan ({g.speedup:.2f}x)")
    bottom.plot([0, g.scratch_steps], [0, g.scratch_flops], linestyle="--", color="grey",
                label=f"scratch ({format_count(g.scratch_steps)} steps)")
    bottom.set_xlabel("training steps")
    bottom.set_ylabel("cumulative training FLOPs")
    bottom.legend()
    fig.suptitle(PurePath(g.plan.source).name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
