"""Growth in the user's loop: a tiny GPT-2 trained by Hugging Face's Trainer through a
2-stage plan (`GrowthTrainer`) ends with the same per-step training losses as `growdsl run`
on the same plan and data (tolerance: 1e-4 relative, float reordering only), and the
plain-PyTorch example of the hook API (`examples/custom_loop.py`) runs."""

from __future__ import annotations

import csv
import runpy
import sys
from pathlib import Path

import pytest

import growdsl
from tests.test_run_e2e import make_corpus, write_spec

pytestmark = pytest.mark.torch
REPO = Path(__file__).resolve().parents[1]

PLAN = """
    model gpt2(layers=2, hidden=32, heads=2, ffn=64, seq=16, vocab=320)
    train {
      batch = 4
      lr = 3e-3
      warmup = 2
      data = "corpus"
      eval_every = 0
      optimizer_state = transfer
    }
    stage 5: depth=L/2 -> stack
    stage 5:
"""
TOLERANCE = 1e-4


def losses(out: Path) -> list[float]:
    with open(out / "metrics.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["event"] == "train"]


@pytest.mark.slow
def test_hf_trainer_through_a_plan_matches_growdsl_run(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import TrainingArguments

    from growdsl.backend.corpus import cache_dir
    from growdsl.backend.data import prepare_corpus
    from growdsl.integrations.hf_trainer import CorpusSamples, GrowthTrainer

    monkeypatch.setenv("GROWDSL_CACHE", str(tmp_path / "cache"))
    make_corpus(tmp_path / "corpus")
    spec_file = write_spec(tmp_path / "plan.grow", PLAN)
    assert not growdsl.run(spec_file, out=tmp_path / "run", quiet=True).interrupted
    expected = losses(tmp_path / "run")
    assert len(expected) == 10

    spec = growdsl.load(spec_file)
    plan = spec.plan
    corpus, _tok = prepare_corpus(tmp_path / "corpus", None, "gpt2", plan.target.vocab,
                                  plan.target.seq, 0, cache_dir())
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), logging_steps=1,
                             save_strategy="no", report_to=[], use_cpu=True,
                             disable_tqdm=True, dataloader_num_workers=0)
    trainer = GrowthTrainer(plan=spec, args=args, train_dataset=CorpusSamples(corpus, 16))
    trainer.train()
    got = [e["loss"] for e in trainer.history if "loss" in e]
    assert [e["stage"] for e in trainer.history if "loss" in e] == [0] * 5 + [1] * 5
    assert got == pytest.approx(expected, rel=TOLERANCE)
    assert trainer.model.config.n_layer == 2 and len(trainer.growth_log) == 1
    assert trainer.growth_log[0]["ops"] == "stack (none)"


@pytest.mark.slow
def test_the_plain_pytorch_loop_example_runs(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["custom_loop.py"])
    runpy.run_path(str(REPO / "examples" / "custom_loop.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "grew stage1 -> stage2: stack (none)" in out
    assert "final model: 2 layers" in out


def test_the_trainer_refuses_sub_models_with_E721(tmp_path: Path) -> None:
    from transformers import TrainingArguments

    from growdsl.errors import GrowError
    from growdsl.integrations.hf_trainer import GrowthTrainer

    spec = growdsl.load(text="model gpt2(layers=4, hidden=32, heads=2, vocab=320)\n"
                             "stage 4: submodels=2\nstage 4:\n", name="sub.grow")
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    with pytest.raises(GrowError) as err:
        GrowthTrainer(plan=spec, args=args, train_dataset=[])  # type: ignore[arg-type]
    assert err.value.render().startswith(
        "sub.grow:2:1: error[E721]: stage stage1 trains sub-models, which the Trainer "
        "integration does not run")


# Dropout off (in the model's own config.json, which the plan carries) so that two processes,
# whose dropout RNGs are seeded apart, compute what one does.
CONFIG = {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2, "n_inner": 64,
          "n_positions": 16, "vocab_size": 320, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
          "attn_pdrop": 0.0, "bos_token_id": 0, "eos_token_id": 0}
DDP_PLAN = PLAN.replace("model gpt2(layers=2, hidden=32, heads=2, ffn=64, seq=16, vocab=320)",
                        'model gpt2 from "model"')
# Two processes reduce the gradient in another order than one: float rounding only.
DDP_TOLERANCE = 1e-5


@pytest.mark.slow
def test_hf_trainer_under_accelerate_launch_on_two_processes_matches_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os
    import subprocess

    from tests.test_distributed import free_port
    from tests.trainer_worker import train

    monkeypatch.setenv("GROWDSL_CACHE", str(tmp_path / "cache"))
    make_corpus(tmp_path / "corpus", docs=6, words=300)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps(CONFIG))
    spec = write_spec(tmp_path / "plan.grow", DDP_PLAN)
    one = train(spec, tmp_path / "one")                 # in this process (and the cache warm)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
              "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
              "--main_process_port", str(free_port())]
    done = subprocess.run([*launch, str(REPO / "tests" / "trainer_worker.py"), str(spec),
                           str(tmp_path / "two"), str(tmp_path / "two.json")],
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    two = json.loads((tmp_path / "two.json").read_text())
    assert (one["world"], two["world"]) == (1, 2)       # two gloo processes, each a half batch
    assert two["stages"] == one["stages"] == [0] * 5 + [1] * 5
    assert two["losses"] == pytest.approx(one["losses"], rel=DDP_TOLERANCE)
    assert [g["ops"] for g in two["growth"]] == ["stack (none)"] and two["layers"] == 2
