"""Bad input to `growdsl run` gets a located error (GrowError, code E71x) and loses nothing:
missing / empty corpus, mismatched tokenizer, wrong-shape starting checkpoint, an output
directory holding another run, a full disk, a non-finite loss, an unverified plan, a
`preserve` growth step that does not preserve."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from click.testing import CliRunner

from growdsl.backend import checkpoint as ckpt
from growdsl.errors import GrowError
from tests.test_run_e2e import make_corpus, rows, run_spec, write_spec

pytestmark = pytest.mark.torch

TINY = """
    model gpt2(layers=2, hidden=16, heads=2, ffn=32, seq=16, vocab=300)
    train {{
      batch = 2
      lr = {lr}
      warmup = 1
      grad_clip = {clip}
      data = "{data}"
      checkpoint_every = 2
    }}
    stage {steps}:
"""


def tiny(tmp_path: Path, name: str = "plan.grow", data: str = "corpus", lr: str = "1e-3",
         clip: str = "1.0", steps: int = 4) -> Path:
    if data == "corpus" and not (tmp_path / "corpus").exists():
        make_corpus(tmp_path / "corpus", docs=4, words=300)
    return write_spec(tmp_path / name, TINY.format(data=data, lr=lr, clip=clip, steps=steps))


def error_of(spec: Path, out: Path, **kw: object) -> GrowError:
    with pytest.raises(GrowError) as info:
        run_spec(spec, out, **kw)
    return info.value


def codes(error: GrowError) -> list[str]:
    return [d.code for d in error.diagnostics]


def test_missing_corpus(tmp_path: Path, cache: Path) -> None:
    err = error_of(tiny(tmp_path, data="nowhere"), tmp_path / "out")
    assert codes(err) == ["E710"] and "nowhere does not exist" in err.render()
    assert err.render().startswith(str(tmp_path / "plan.grow"))


def test_no_corpus_named(tmp_path: Path, cache: Path) -> None:
    spec = write_spec(tmp_path / "p.grow", "model gpt2(layers=2, hidden=16, heads=2, ffn=32, "
                      "seq=16, vocab=300)\nstage 2:\n")
    err = error_of(spec, tmp_path / "out")
    assert codes(err) == ["E710"] and "--data" in err.render()


@pytest.mark.parametrize("content", ["", "   \n\n"])
def test_empty_corpus(tmp_path: Path, cache: Path, content: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text(content)
    err = error_of(tiny(tmp_path, data="empty"), tmp_path / "out")
    assert codes(err) == ["E711"] and "empty" in err.render()


def test_corpus_too_small(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "a.txt").write_text("a few words only")
    err = error_of(tiny(tmp_path, data="small"), tmp_path / "out")
    assert codes(err) == ["E711"] and "too small" in err.render()


def test_tokenizer_vocabulary_mismatch(tmp_path: Path, cache: Path) -> None:
    from growdsl.backend.data import train_tokenizer

    corpus = make_corpus(tmp_path / "corpus", docs=4, words=300)
    train_tokenizer(corpus, "gpt2", 280).save_pretrained(str(tmp_path / "tok"))
    text = (tmp_path / tiny(tmp_path)).read_text().replace("warmup = 1",
                                                           'warmup = 1\n  tokenizer = "tok"')
    spec = write_spec(tmp_path / "tok.grow", text)
    err = error_of(spec, tmp_path / "out")
    assert codes(err) == ["E713"] and "vocabulary is 300" in err.render()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_vocabulary_too_small_for_the_trained_tokenizer(tmp_path: Path, cache: Path,
                                                        family: str) -> None:
    # byte-level BPE starts from 256 byte tokens plus 2 specials: vocab=160 cannot hold it
    make_corpus(tmp_path / "corpus", docs=4, words=300)
    model = ("gpt2(layers=2, hidden=16, heads=2, ffn=32, seq=16, vocab=160)" if family == "gpt2"
             else "llama(layers=2, hidden=16, heads=2, kv_heads=2, ffn=32, seq=16, vocab=160)")
    text = tiny(tmp_path).read_text().replace(
        "gpt2(layers=2, hidden=16, heads=2, ffn=32, seq=16, vocab=300)", model)
    err = error_of(write_spec(tmp_path / "v.grow", text), tmp_path / "out")
    assert codes(err) == ["E713"], err.render()
    assert "vocab=258" in err.render() and "160" in err.render()
    assert err.render().startswith(str(tmp_path / "v.grow"))
    assert not list((cache / "tokenizers").glob(f"{family}-160-*"))  # nothing bad cached


def test_starting_checkpoint_of_the_wrong_shape(tmp_path: Path, cache: Path) -> None:
    from growdsl.backend.models import build_model
    from growdsl.shapes import Shape

    small = Shape(family="gpt2", layers=1, hidden=16, heads=2, kv_heads=2, head_dim=8, ffn=32,
                  vocab=300, seq=16, positions=16)
    build_model(small).save_pretrained(str(tmp_path / "small"))
    text = 'init from "small"\n' + tiny(tmp_path).read_text()
    err = error_of(write_spec(tmp_path / "init.grow", text), tmp_path / "out",
                   allow_unverified=True)
    assert "E714" in codes(err) and "layers 1 (stage wants 2)" in err.render()
    assert "init.grow:1:" in err.render()


def test_output_directory_of_another_run_is_left_alone(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "out"
    assert run_spec(tiny(tmp_path), out) == 0
    before = (out / "metrics.csv").read_text()
    err = error_of(tiny(tmp_path, name="other.grow", steps=6), out)
    assert codes(err) == ["E715"] and "holds another run" in err.render()
    err = error_of(tiny(tmp_path), out)                 # the same plan, without --resume
    assert codes(err) == ["E715"] and "--resume" in err.render()
    assert (out / "metrics.csv").read_text() == before
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("mine")
    assert codes(error_of(tiny(tmp_path), tmp_path / "junk")) == ["E715"]
    (tmp_path / "afile").write_text("mine")
    assert codes(error_of(tiny(tmp_path), tmp_path / "afile")) == ["E715"]
    for damaged in ("{not json", "[]"):                  # a damaged marker: not this run's
        (out / "run.json").write_text(damaged)
        assert codes(error_of(tiny(tmp_path), out, resume=True)) == ["E715"]


def test_disk_full_keeps_the_last_checkpoint(tmp_path: Path, cache: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = ckpt._fsync_file

    def fsync(path: Path) -> None:
        calls.append(path)
        if (tmp_path / "out" / "checkpoints" / "step-00000002").exists():
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path)

    monkeypatch.setattr(ckpt, "_fsync_file", fsync)
    err = error_of(tiny(tmp_path), tmp_path / "out")
    assert codes(err) == ["E716"] and "disk is full" in err.render()
    assert "step 4" in err.render()
    checkpoints = tmp_path / "out" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == ["step-00000002"]
    assert ckpt.latest(checkpoints) == checkpoints / "step-00000002"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path,
                                                                  cache: Path) -> None:
    err = error_of(tiny(tmp_path, lr="1e4", clip="0", steps=12), tmp_path / "out")
    assert codes(err) == ["E717"]
    step = int(err.render().split(" at step ")[1].split()[0])
    assert 2 < step <= 12
    good = ckpt.latest(tmp_path / "out" / "checkpoints")
    assert good is not None and ckpt.read_state(good).global_step < step


UNVERIFIED = """
    model bert(layers=4, hidden=32, heads=2, ffn=64, seq=32, vocab=160)
    train { batch = 2  data = "corpus" }
    budget flops <= 0.1 * scratch
    stage 2: depth=L/2 -> stack
    stage 2:
"""


def test_unverified_plan_refused_unless_allowed(tmp_path: Path, cache: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    make_corpus(tmp_path / "corpus", docs=4, words=300)
    spec = write_spec(tmp_path / "bad.grow", UNVERIFIED)
    err = error_of(spec, tmp_path / "out")
    assert codes(err)[-1] == "E719" and len(codes(err)) >= 2     # the planner's error too
    assert not (tmp_path / "out").exists()
    assert run_spec(spec, tmp_path / "out", allow_unverified=True) == 0
    assert "UNVERIFIED" in caplog.text


def test_preserve_step_that_does_not_preserve_stops(tmp_path: Path, cache: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from growdsl.backend import equivalence

    real = equivalence.compare
    monkeypatch.setattr(equivalence, "compare",
                        lambda a, b, batch: equivalence.Diff(max_abs=0.5, max_rel=0.1))
    make_corpus(tmp_path / "corpus", docs=4, words=300)
    spec = write_spec(tmp_path / "p.grow", """
        model gpt2(layers=4, hidden=16, heads=2, ffn=32, seq=16, vocab=300)
        train { batch = 2  data = "corpus" }
        stage 2: depth=L/2 -> identity preserve
        stage 2:
    """)
    err = error_of(spec, tmp_path / "out")
    assert codes(err) == ["E718"] and "p.grow:3:" in err.render()
    assert real is not equivalence.compare
    assert ckpt.latest(tmp_path / "out" / "checkpoints") is not None
    assert len(rows(tmp_path / "out", "growth")) == 1


def test_cli_prints_the_diagnostic_and_exits_1(tmp_path: Path, cache: Path) -> None:
    from growdsl.cli import app

    result = CliRunner().invoke(app, ["run", str(tiny(tmp_path, data="gone")), "--out",
                                      str(tmp_path / "o"), "-q"])
    assert result.exit_code == 1
    assert "error[E710]" in result.output and "Traceback" not in result.output


@pytest.fixture()
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path_factory.getbasetemp() / "growdsl-cache"
    monkeypatch.setenv("GROWDSL_CACHE", str(where))
    return where


def test_disk_full_anywhere_else_is_the_same_error(tmp_path: Path, cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from growdsl.backend import report

    def log(self: object, event: str, **values: object) -> None:
        if event == "val":
            raise OSError(errno.ENOSPC, "No space left on device", "metrics.csv")

    monkeypatch.setattr(report.Metrics, "log", log)
    err = error_of(tiny(tmp_path), tmp_path / "out")
    assert codes(err) == ["E716"] and "disk is full" in err.render()


def test_batch_that_does_not_split_over_the_ranks(tmp_path: Path, cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from growdsl.backend import distributed

    monkeypatch.setattr(distributed, "current", lambda: distributed.Dist(rank=0, world=3))
    err = error_of(tiny(tmp_path), tmp_path / "out")
    assert codes(err) == ["E720"] and "batch 2 does not split over 3 ranks" in err.render()
    assert err.render().startswith(str(tmp_path / "plan.grow"))


def test_every_run_error_code_is_documented() -> None:
    import re

    from growdsl.backend import run_errors

    root = Path(__file__).resolve().parents[1]
    raised = {m for p in (root / "growdsl").rglob("*.py")
              for m in re.findall(r'(?:fail|run_error)\(\s*"(E7\d\d)"', p.read_text())}
    # raised at run time outside run_errors: E720 by growdsl.gate.split
    raised |= set(re.findall(r'code="(E7\d\d)"', (root / "growdsl/gate.py").read_text()))
    assert {"E710", "E713", "E720"} <= raised
    table = set(re.findall(r"^\| (E7\d\d) \|", (root / "docs/running.md").read_text(), re.M))
    listed = set(re.findall(r"E7\d\d", run_errors.__doc__ or ""))
    assert raised <= table, sorted(raised - table)
    assert raised <= listed, sorted(raised - listed)
