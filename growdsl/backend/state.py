"""`RunState`: where a run stands (stage, steps, data position, FLOPs, tokens, wall time).

The executor advances it, the training loop returns it step by step, and a checkpoint
records it as `state.json` (`checkpoint.read_state` reads it back, checked).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class RunState:
    """Where a run stands: what `state.json` holds."""

    stage: int                  # index of the stage being trained
    step: int                   # optimizer steps done in that stage
    global_step: int            # optimizer steps done in the whole run
    data_offset: int            # global sample offset: samples consumed so far
    flops: float                # cumulative training FLOPs
    tokens: int                 # cumulative training tokens
    wall: float                 # seconds spent training so far
    stage_done: bool = False    # the stage finished (growth into the next one comes next)
    log_rows: int = 0           # metrics rows written so far (a resumed log is cut there)
    plan_key: str = ""

    @classmethod
    def fresh(cls, plan_key: str) -> RunState:
        """A run before its first step."""
        return cls(stage=0, step=0, global_step=0, data_offset=0, flops=0.0, tokens=0,
                   wall=0.0, plan_key=plan_key)
