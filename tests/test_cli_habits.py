"""The command line as a developer's tools expect it: --version, shell completion, `fmt -`
and `fmt --diff`, `check --strict`, `run --set` overrides, pre-commit hooks, counts in the
language's units, verdicts that read right, a plot that names its stages, `emit` with
`$schema`, and did-you-mean for names other tools use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from growdsl import __version__
from growdsl.cli import app
from growdsl.errors import GrowError
from growdsl.ir_json import SCHEMA_ID, registry, schema, schema_path
from growdsl.keys import TRAIN_KEYS
from growdsl.overrides import load_with_overrides

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
MESSY = "model bert-base\nstage 10k:   depth=L/2->stack  # keep me\nstage 10k:\n"
CANON = "model bert-base\nstage 10k: depth=L/2 -> stack  # keep me\nstage 10k:\n"
TINY = ("model bert(layers=4, hidden=64, heads=4, ffn=256, seq=32, vocab=100)\n"
        "{init}train {{\n  batch = 4\n  lr = 1e-3\n{extra}}}\n"
        "stage {first}: depth=L/2 -> stack\nstage 10:\n")


def test_version_and_shell_completion() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"growdsl {__version__}\n"
    script = subprocess.run([sys.executable, "-m", "growdsl", "--show-completion", "bash"],
                            capture_output=True, text=True, check=True).stdout
    assert "complete -o nosort -F _growdsl_completion growdsl" in script
    assert "_GROWDSL_COMPLETE=bash_complete" in script
    # what the script asks when the user types `growdsl pl<TAB>` and `growdsl plan --f<TAB>`
    env = {**os.environ, "_GROWDSL_COMPLETE": "bash_complete", "COMP_WORDS": "growdsl pl",
           "COMP_CWORD": "1"}
    answer = subprocess.run([sys.executable, "-m", "growdsl"], env=env, capture_output=True,
                            text=True).stdout
    assert answer.splitlines() == ["plain,plan"]
    env.update(COMP_WORDS="growdsl plan x.grow --f", COMP_CWORD="3")
    answer = subprocess.run([sys.executable, "-m", "growdsl"], env=env, capture_output=True,
                            text=True).stdout
    assert answer.splitlines() == ["plain,--format"]


def test_fmt_stdin_to_stdout_keeps_comments() -> None:
    result = runner.invoke(app, ["fmt", "-"], input=MESSY)
    assert result.exit_code == 0 and result.stdout == CANON


def test_fmt_stdin_reports_a_syntax_error_against_stdin() -> None:
    result = runner.invoke(app, ["fmt", "-"], input="model bert-base\nstage 10k: ->\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("<stdin>:2:14: error[E103]: unexpected end of file")


def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "p.grow"
    spec.write_text(MESSY)
    result = runner.invoke(app, ["fmt", "--diff", str(spec)])
    assert result.exit_code == 1
    assert result.stdout == (f"--- {spec}\n+++ {spec}\n@@ -1,3 +1,3 @@\n model bert-base\n"
                             "-stage 10k:   depth=L/2->stack  # keep me\n"
                             "+stage 10k: depth=L/2 -> stack  # keep me\n stage 10k:\n")
    assert spec.read_text() == MESSY
    spec.chmod(0o644)
    assert runner.invoke(app, ["fmt", str(spec)]).exit_code == 0
    assert spec.read_text() == CANON and spec.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["p.grow"]      # no temporary file left
    assert runner.invoke(app, ["fmt", "--diff", str(spec)]).stdout == ""


def test_emit_names_its_schema_and_writes_relative_paths(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["emit", str(REPO / "specs/papers/bert2bert-bert-base.grow")])
    document = json.loads(result.stdout)
    assert document["$schema"] == SCHEMA_ID == schema()["$id"]
    assert document["source"] == "specs/papers/bert2bert-bert-base.grow"
    assert document["init"] == "checkpoints/bert-L6-D512"
    assert {k: v for k, v in document["scratch"].items() if k != "span"} == {
        "steps": 1_000_000, "tokens": 1_000_000 * 256 * 512, "stated": True}
    assert registry().get_or_retrieve(SCHEMA_ID).value.contents == schema()
    printed = runner.invoke(app, ["schema", "--path"]).stdout.strip()
    assert Path(printed) == schema_path() and json.loads(Path(printed).read_text()) == schema()


def test_plan_counts_in_the_languages_units_and_verdict_words() -> None:
    result = runner.invoke(app, ["plan", str(REPO / "specs/papers/bert2bert-bert-base.grow")])
    out = result.stdout
    for text in ("35.1M", "13.1B", "100k", "3.99e19", "aki, stack: not preserving",
                 "aki: not preserving (AKI"):
        assert text in out, text
    # the paper's comparison: against BERT-base from scratch for 1M steps, stated by the plan
    assert "scratch 7.71e19 FLOPs; speedup 1.931x (saving 48.2%)" in out
    assert ("scratch: the target trained from scratch for 1M steps of 256 x 512 tokens "
            "(stated by the plan, line") in out
    assert ": none" not in out and "G " not in out


def test_plot_names_the_stages_and_the_operators(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"       # text as <text>, to be read back
    plot = tmp_path / "s.svg"
    result = runner.invoke(app, ["plan", str(REPO / "growdsl/specs/demo.grow"), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    svg = plot.read_text()
    from growdsl.driver import validate_graph
    from growdsl.plan import _edge_label

    label = _edge_label(validate_graph(REPO / "growdsl/specs/demo.grow")[1], 0, 1)
    assert label.startswith("stack")
    for text in (">stage1<", ">stage2<", f">{label}<", ">demo.grow<"):
        assert text in svg, text
    assert str(REPO) not in svg


@pytest.mark.parametrize(("text", "expected"), [
    ("model gpt2-small\nstage 1k:\n",
     "1:7: error[E202]: unknown model preset `gpt2-small`\n   1 | model gpt2-small\n"
     "     |       ^^^^^^^^^^\n  help: did you mean `gpt2`?"),
    ("model gpt2\ntrain { grad_accum = 4 }\nstage 1k:\n",
     "2:9: error[E204]: unknown training key `grad_accum`\n   2 | train { grad_accum = 4 }\n"
     "     |         ^^^^^^^^^^\n  help: " + (
         "did you mean `micro_batch`?" if "micro_batch" in TRAIN_KEYS else
         "growdsl has no gradient-accumulation setting: `batch` is the global batch of one "
         "optimizer step")),
    ("model gpt2\ntrain { learning_rate = 4 }\nstage 1k:\n",
     "2:9: error[E204]: unknown training key `learning_rate`\n   2 | train { learning_rate = 4 }\n"
     "     |         ^^^^^^^^^^^^^\n  help: did you mean `lr`?"),
])
def test_did_you_mean_knows_other_tools_names(tmp_path: Path, text: str, expected: str) -> None:
    spec = tmp_path / "p.grow"
    spec.write_text(text)
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 1
    assert result.stderr == f"{spec}:{expected}\n"


def _strict(tmp_path: Path, init: str = "", extra: str = "", first: str = "10") -> str:
    spec = tmp_path / "p.grow"
    spec.write_text(TINY.format(init=init, extra=extra, first=first))
    result = runner.invoke(app, ["check", "--strict", str(spec)])
    assert runner.invoke(app, ["check", str(spec)]).exit_code == 0
    return result.stderr if result.exit_code else ""


def test_check_strict_corpus(tmp_path: Path) -> None:
    assert _strict(tmp_path, extra='  data = "corpus.txt"\n') == (
        f"{tmp_path}/p.grow:5:10: error[E710]: corpus {tmp_path}/corpus.txt does not exist\n"
        '   5 |   data = "corpus.txt"\n     |          ^^^^^^^^^^^^\n  help: check the `data` path\n')
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("text")
    (tmp_path / "corpus" / "b.parquet").write_bytes(b"PAR1")
    assert "error[E712]: corpus" in _strict(tmp_path, extra='  data = "corpus"\n')
    (tmp_path / "corpus" / "b.parquet").unlink()
    assert _strict(tmp_path, extra='  data = "corpus"\n') == ""


def test_check_strict_tokenizer_vocabulary(tmp_path: Path) -> None:
    tok = tmp_path / "tok"
    tok.mkdir()
    vocab = {f"t{i}": i for i in range(98)}
    (tok / "tokenizer.json").write_text(json.dumps({
        "model": {"vocab": vocab}, "added_tokens": [{"id": 98, "content": "[X]"},
                                                     {"id": 0, "content": "t0"}]}))
    assert "tokenizer" in _strict(tmp_path, extra='  tokenizer = "tok"\n').split("error[E713]: ")[1]
    assert "has 99 tokens but the model's vocabulary is 100" in _strict(
        tmp_path, extra='  tokenizer = "tok"\n')
    vocab["t98"] = 99
    (tok / "tokenizer.json").write_text(json.dumps({
        "model": {"vocab": vocab}, "added_tokens": [{"id": 98, "content": "[X]"}]}))
    assert _strict(tmp_path, extra='  tokenizer = "tok"\n') == ""


def test_check_strict_init_from_the_first_stages_shape(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    config = {"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 64,
              "num_attention_heads": 4, "intermediate_size": 256, "vocab_size": 100,
              "max_position_embeddings": 32}
    (ckpt / "config.json").write_text(json.dumps(config))
    init = 'init from "ckpt"\n'
    assert _strict(tmp_path, init=init, first="0") == ""
    (ckpt / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    assert ("2:1: error[E714]: starting checkpoint ckpt does not match the first stage: "
            "layers 3 (stage wants 2)") in _strict(tmp_path, init=init, first="0")
    (ckpt / "config.json").unlink()
    assert "cannot read config.json" in _strict(tmp_path, init=init, first="0")


def test_check_strict_needs_no_torch(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("hello")
    spec = tmp_path / "p.grow"
    spec.write_text(TINY.format(init="", extra='  data = "c.txt"\n', first="10"))
    code = ("import sys; from growdsl.cli import app\n"
            "try: app(['check', '--strict', sys.argv[1]])\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(spec)], check=True)


def test_run_set_overrides_train_and_stage_settings(tmp_path: Path) -> None:
    spec = tmp_path / "p.grow"
    spec.write_text(TINY.format(init="", extra="", first="10"))
    _, plan = load_with_overrides(spec, ["train.lr=3e-4", "stage2.batch=8", "warmup=2"])
    assert [s.train.lr for s in plan.stages] == [3e-4, 3e-4]
    assert [s.train.batch for s in plan.stages] == [4, 8]
    assert plan.train.warmup == 2


@pytest.mark.parametrize(("override", "expected"), [
    ("train.lr=fast", "--set train.lr=fast:1:10: error[E201]: unknown symbol `fast`\n"
                      "   1 | train.lr=fast\n     |          ^^^^"),
    ("stage9.lr=1", "--set stage9.lr=1:1:1: error[E213]: no stage named `stage9`"),
    ("train.lrr=1", "--set train.lrr=1:1:7: error[E204]: unknown training key `lrr`"),
    ("train.lr", "--set train.lr:1:"),
])
def test_run_set_mistakes_point_at_the_override(tmp_path: Path, override: str,
                                                expected: str) -> None:
    spec = tmp_path / "p.grow"
    spec.write_text(TINY.format(init="", extra="", first="10"))
    with pytest.raises(GrowError) as info:
        load_with_overrides(spec, [override])
    assert info.value.render().startswith(expected), info.value.render()


def test_run_json_records_the_overrides_and_drops(tmp_path: Path) -> None:
    from growdsl.backend.run_dir import claim
    from growdsl.source import Source

    claim(tmp_path / "out", "key", False, Source(path="p.grow", text=""), ("train.lr=3e-4",),
          drop=("model.*.bias",))
    recorded = json.loads((tmp_path / "out" / "run.json").read_text())
    assert recorded == {"plan_key": "key", "source": "p.grow", "overrides": ["train.lr=3e-4"],
                        "drop": ["model.*.bias"],
                        "report_to": {"spec": None, "command_line": None}}


def test_run_cli_takes_set(tmp_path: Path) -> None:
    spec = tmp_path / "p.grow"
    spec.write_text(TINY.format(init="", extra="", first="10"))
    result = runner.invoke(app, ["run", str(spec), "--set", "train.lr=-1"])
    assert result.exit_code == 1
    assert "--set train.lr=-1:1:10: error[E304]" in result.stderr


def test_pre_commit_hooks_run_fmt_check_and_check() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["growdsl-fmt"]["entry"] == "growdsl fmt --check"
    assert hooks["growdsl-check"]["entry"] == "growdsl check"
    assert all(h["files"] == r"\.grow$" and h["language"] == "python" for h in hooks.values())


def test_check_imports_neither_networkx_nor_the_plot_nor_the_server() -> None:
    """Start-up: `check` loads only what checking needs (bench/check_speed times it);
    the stage graph's networkx DiGraph is built by the exports."""
    code = ("import sys, glob; from growdsl.cli import app\n"
            "try: app(['check', *glob.glob('specs/*/*.grow')])\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "heavy = {'networkx', 'matplotlib', 'rich.console', 'pygls', 'pygments', 'torch',\n"
            "         'jsonschema', 'typer', 'pydantic', 'importlib.metadata', 'growdsl.cli.run',\n"
            "         'growdsl.cli.plan', 'growdsl.cli.grow', 'growdsl.cli.sweep'} & set(sys.modules)\n"
            "assert not heavy, heavy\n"
            "from growdsl.driver import validate_graph\n"
            "from growdsl.plan import to_dot\n"
            "to_dot(validate_graph('growdsl/specs/demo.grow')[1])\n"
            "assert 'networkx' in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_every_command_is_listed_where_the_cli_finds_it() -> None:
    """The lazy group's table (`growdsl.cli.COMMANDS`) names every command the modules
    define, each in the module that defines it."""
    import importlib

    import click

    from growdsl.cli import COMMANDS

    defined = {}
    for module in sorted(set(COMMANDS.values()) | {p.stem for p in
                                                    (REPO / "growdsl" / "cli").glob("*.py")}):
        found = importlib.import_module(f"growdsl.cli.{module}")
        defined.update({name: module for name, value in vars(found).items()
                        if isinstance(value, click.Command) and value.name == name})
    assert defined == COMMANDS
