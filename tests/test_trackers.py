"""Trackers through accelerate's integrations: the metrics and growth annotations reach
TensorBoard (default) and Weights & Biases (offline); unknown or missing trackers are E722."""

from __future__ import annotations

from pathlib import Path

import pytest

import growdsl
from growdsl.errors import GrowError

pytestmark = pytest.mark.torch

SPEC = "model gpt2(layers=2, hidden=32, heads=2, vocab=320)\nstage 2:\n"


def _rows(metrics) -> None:  # type: ignore[no-untyped-def]
    for step in (1, 2):
        metrics.log("train", stage=0, step=step, global_step=step, tokens=8 * step,
                    flops=1.0 * step, wall=0.1, lr=1e-3, loss=5.0 - step)
    metrics.log("growth", stage=1, step=0, global_step=2, tokens=16, flops=2.0, wall=0.2,
                max_abs_diff=0.25, max_rel_diff=0.1, note="stack (none)")
    metrics.close()


def test_tensorboard_gets_the_metrics_and_the_growth_note(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from growdsl.backend.report import Metrics

    _rows(Metrics(tmp_path))                        # the default: TensorBoard
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 4.0), (2, 3.0)]
    assert [e.value for e in events.Scalars("growth/max_abs_diff")] == [0.25]
    (text,) = events.Tensors("growth/text_summary")
    assert text.step == 2 and b"stack (none)" in text.tensor_proto.string_val[0]
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 4      # the CSV stays


@pytest.mark.slow
def test_wandb_offline_gets_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason="wandb is not installed (pip install wandb)")
    from growdsl.backend.report import Metrics

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _rows(Metrics(tmp_path, report_to=("wandb",)))
    runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0
    assert not (tmp_path / "tb").exists()           # only the trackers asked for


def test_unknown_or_missing_trackers_are_E722(tmp_path: Path) -> None:
    spec = growdsl.load(text=SPEC, name="t.grow")
    with pytest.raises(GrowError) as err:
        growdsl.run(spec, out=tmp_path / "o", report_to=("tensorbored",))
    assert err.value.render().splitlines()[0] == "t.grow: error[E722]: unknown tracker `tensorbored`"
    from growdsl.backend.trackers import available

    if available("mlflow"):
        pytest.skip("mlflow is installed here: the missing-library message is not reachable")
    with pytest.raises(GrowError) as err:
        growdsl.run(spec, out=tmp_path / "o", report_to=("mlflow",))
    assert "tracker `mlflow` needs the `mlflow` package, which is not installed" in str(err.value)
    assert not (tmp_path / "o").exists()            # refused before anything was written


def test_the_spec_names_its_trackers_and_the_command_line_overrides_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tests.test_run_e2e import make_corpus

    monkeypatch.setenv("GROWDSL_CACHE", str(tmp_path / "cache"))
    make_corpus(tmp_path / "corpus", docs=4, words=200)
    spec = tmp_path / "t.grow"
    spec.write_text('model gpt2(layers=2, hidden=32, heads=2, seq=16, vocab=320)\n'
                    'train {\n  batch = 2\n  data = "corpus"\n  report_to = none\n}\nstage 2:\n')
    assert growdsl.load(spec).plan.train.report_to == ()
    quiet, loud = tmp_path / "quiet", tmp_path / "loud"
    growdsl.run(spec, out=quiet, quiet=True)                    # the spec's: no tracker
    growdsl.run(spec, out=loud, quiet=True, report_to=("tensorboard",))    # the command line's
    assert not (quiet / "tb").exists() and (quiet / "metrics.csv").exists()
    assert list((loud / "tb").glob("events.out.tfevents.*"))
    record = [json.loads((d / "run.json").read_text())["report_to"] for d in (quiet, loud)]
    assert record == [{"spec": [], "command_line": None},
                      {"spec": [], "command_line": ["tensorboard"]}]
    # the trackers change what a run reports, not what it computes: the same run, resumable
    spec.write_text(spec.read_text().replace("report_to = none", "report_to = tensorboard"))
    assert growdsl.run(spec, out=quiet, quiet=True, resume=True).report is not None
    record = json.loads((quiet / "run.json").read_text())    # the latest resume's trackers
    assert record["report_to"] == {"spec": ["tensorboard"], "command_line": None}


def test_an_unknown_tracker_in_the_spec_is_E722_at_its_name() -> None:
    with pytest.raises(GrowError) as err:
        growdsl.load(text="model gpt2\ntrain { report_to = (wandb, tensorbored) }\nstage 2:\n",
                     name="t.grow")
    assert err.value.render().splitlines()[:4] == [
        "t.grow:2:29: error[E722]: unknown tracker `tensorbored`",
        "   2 | train { report_to = (wandb, tensorbored) }",
        "     |                             ^^^^^^^^^^^",
        "  help: did you mean `tensorboard`?"]


def test_trackers_and_the_reference_run_leave_the_run_key_as_it_was() -> None:
    from growdsl.backend.run_dir import plan_key

    base = "model gpt2(layers=2, hidden=32, heads=2)\ntrain { batch = 2 }\nstage 2:\n"
    keys = {plan_key(growdsl.load(text=text).plan) for text in (
        base, base.replace("batch = 2", "batch = 2 report_to = wandb"),
        base + "scratch 1M steps\n")}
    assert len(keys) == 1
    assert plan_key(growdsl.load(text=base.replace("batch = 2", "batch = 4")).plan) not in keys
