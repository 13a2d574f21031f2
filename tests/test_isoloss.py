"""Iso-loss accounting (growdsl.isoloss): the ladder of loss levels, interpolated reach
costs, speedups, the markdown table and the plot."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from growdsl import isoloss
from growdsl.isoloss import Point


def _curve(losses: list[float], flops_per_eval: float, wall_per_eval: float = 1.0) -> list[Point]:
    return [Point(flops=flops_per_eval * (i + 1), tokens=100.0 * (i + 1),
                  wall=wall_per_eval * (i + 1), loss=x) for i, x in enumerate(losses)]


SCRATCH = _curve([6.0, 5.5, 5.0, 4.5, 4.0], 10.0)


def test_doctests() -> None:
    assert doctest.testmod(isoloss).failed == 0


def test_levels_run_from_below_the_start_to_scratchs_final() -> None:
    lv = isoloss.levels(SCRATCH, 10)
    assert len(lv) == 10 and lv[-1] == pytest.approx(4.0) and lv[0] == pytest.approx(5.8)
    assert lv == sorted(lv, reverse=True)
    flat = _curve([6.0, 6.0, 6.1], 1.0)
    assert isoloss.levels(flat) == [6.1]        # no learning: only its final loss


def test_reach_interpolates_between_evaluations() -> None:
    hit = isoloss.reach(SCRATCH, 5.25)
    assert hit is not None
    assert hit.flops == pytest.approx(25.0) and hit.tokens == pytest.approx(250.0)
    assert isoloss.reach(SCRATCH, 3.9) is None
    assert isoloss.reach(SCRATCH, 6.5) == SCRATCH[0]


def test_a_plan_twice_as_cheap_per_level_has_speedup_two() -> None:
    plan = _curve([6.0, 5.5, 5.0, 4.5, 4.0], 5.0, 0.25)
    rungs = isoloss.ladder(SCRATCH, plan, 4)
    assert [r.speedup("flops") for r in rungs] == pytest.approx([2.0] * 4)
    assert [r.speedup("wall") for r in rungs] == pytest.approx([4.0] * 4)
    assert [r.speedup("tokens") for r in rungs] == pytest.approx([1.0] * 4)


def test_a_plan_that_stalls_has_no_speedup_at_the_hard_levels() -> None:
    plan = _curve([5.8, 5.2, 4.9, 4.8, 4.8], 5.0)
    rungs = isoloss.ladder(SCRATCH, plan, 5)
    assert rungs[0].speedup("flops") is not None and rungs[0].speedup("flops") > 1
    assert rungs[-1].other is None and rungs[-1].speedup("flops") is None
    table = isoloss.markdown(rungs)
    assert table[0].startswith("| val loss | scratch FLOPs | plan FLOPs | FLOP speedup |")
    assert table[-1].startswith("| 4.000 | 50 | not reached | - |")


def test_read_curve_and_plot(tmp_path: Path) -> None:
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("event,stage,step,global_step,tokens,flops,wall,lr,loss,val_loss\n"
                        "train,0,1,1,64,1e9,0.1,0.001,6.5,\n"
                        "val,0,2,2,128,2e9,0.2,,,6.25\n"
                        "val,0,4,4,256,4e9,0.4,,,5.5\n")
    curve = isoloss.read_curve(csv_path)
    assert curve == [Point(flops=2e9, tokens=128, wall=0.2, loss=6.25),
                     Point(flops=4e9, tokens=256, wall=0.4, loss=5.5)]
    isoloss.plot(isoloss.ladder(curve, curve), tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0
