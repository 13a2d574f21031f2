"""The library's front door (`growdsl.api`, re-exported from `growdsl`), the one place that
decides whether a plan may run (`growdsl.gate`), and the import rules between the layers."""

from __future__ import annotations

import ast
import doctest
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import growdsl
from growdsl import api, gate
from growdsl.errors import GrowError

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "growdsl"
# The layers above the front end and the backend: they may import both (lazily for torch).
# (`sweep.py` runs plans: it sits on the API.)
TOP = ("api.py", "cli", "integrations", "sweep.py", "__main__.py", "__init__.py")
GOOD = textwrap.dedent("""\
    model gpt2(layers=4, hidden=64, heads=2, seq=32, vocab=256)
    train { batch = 8 }
    stage 100: depth=L/2 -> stack
    stage 100:
    """)


def test_the_doctests_pass() -> None:
    result = doctest.testmod(api)
    assert result.attempted >= 10 and result.failed == 0


def test_load_takes_a_path_or_text(tmp_path: Path) -> None:
    spec_file = tmp_path / "two.grow"
    spec_file.write_text(GOOD)
    by_path = growdsl.load(spec_file)
    by_text = growdsl.load(text=GOOD, name=str(spec_file))
    assert by_path.plan == by_text.plan and by_path.name == "two"
    with pytest.raises(TypeError, match="a path or text"):
        growdsl.load(spec_file, text=GOOD)
    with pytest.raises(GrowError) as err:
        growdsl.load(tmp_path / "missing.grow")
    assert err.value.diagnostics[0].code.startswith("E7")


def test_run_applies_set_overrides_to_a_spec_by_path_only(tmp_path: Path) -> None:
    spec_file = tmp_path / "two.grow"
    spec_file.write_text(GOOD)
    with pytest.raises(GrowError) as err:      # checked like the spec's own, before training
        growdsl.run(spec_file, out=tmp_path / "out", overrides=("train.lr=-1",))
    assert "--set train.lr=-1:1:10: error[E304]" in err.value.render()
    assert not (tmp_path / "out").exists()
    with pytest.raises(TypeError, match="overrides need a spec given by path"):
        growdsl.run(growdsl.load(spec_file), overrides=("train.lr=3e-4",))


def test_analyse_refuses_what_check_reports() -> None:
    bad = growdsl.load(text=GOOD.replace(" -> stack", ""), name="bad.grow")
    found = growdsl.check(bad)
    assert [d.code for d in found] == ["E411"] and found[0].source is not None
    with pytest.raises(GrowError) as err:
        growdsl.analyse(bad)
    assert err.value.render().startswith("bad.grow:3:1: error[E411]: stage1 -> stage2 changes "
                                         "layers 2 -> 4, but stage1 has no growth step")


def test_the_gate_admits_a_good_plan_and_refuses_a_bad_one_with_E719(
        caplog: pytest.LogCaptureFixture) -> None:
    good = growdsl.load(text=GOOD)
    assert gate.admit(good.plan, good.source).total_steps == 200
    bad = growdsl.load(text=GOOD.replace(" -> stack", ""))
    with pytest.raises(GrowError) as err:
        gate.admit(bad.plan, bad.source)
    assert [d.code for d in err.value.diagnostics] == ["E411", "E719"]
    assert err.value.diagnostics[-1].message == ("the plan does not pass the planner's checks; "
                                                 "not running it")
    gate.admit(bad.plan, bad.source, allow_unverified=True)
    assert "RUNNING AN UNVERIFIED PLAN" in caplog.text


def test_the_cli_check_and_plan_go_through_the_gate(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """`check`, `plan` and `run` decide through `gate.blocking`: replacing it changes them."""
    from click.testing import CliRunner

    from growdsl.cli import app

    spec_file = tmp_path / "two.grow"
    spec_file.write_text(GOOD)
    calls: list[str] = []
    real = gate.blocking

    def spy(plan, source):  # type: ignore[no-untyped-def]
        calls.append(source.path)
        return real(plan, source)

    monkeypatch.setattr(gate, "blocking", spy)
    for args in (["check", str(spec_file)], ["plan", str(spec_file)]):
        assert CliRunner().invoke(app, args).exit_code == 0
    assert calls == [str(spec_file)] * 2


def _imports(path: Path) -> list[str]:
    """Every module a file imports, anywhere in it (function-level imports too)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE).as_posix()
    if rel.startswith("backend/"):
        return "backend"
    return "top" if rel.split("/")[0] in TOP else "front"


def test_imports_run_one_way() -> None:
    """The front end (language, planner) imports neither the backend, nor the CLI, nor the
    API; the backend imports neither the CLI nor the API."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(path)
        for name in _imports(path):
            hit = (name.startswith(("growdsl.backend", "torch", "transformers"))
                   and layer == "front") or (
                name.startswith(("growdsl.cli", "growdsl.api", "growdsl.integrations"))
                and layer in ("front", "backend"))
            if hit:
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong


# Function-level imports of growdsl modules that stay, each for a reason:
# - the layers above (API, CLI, integrations, sweep) import the backend when called: torch
#   stays out of the front end;
# - the planner's passes (gate, memory, grow_step: about 70 ms, a tenth of `import growdsl`)
#   load when a plan is checked, not for `load`, `fmt` or `emit`;
# - `shapes` and `families` import each other (each family's presets are Shapes);
# - the CLI loads each command's modules when that command runs (`growdsl --help` start-up).
ON_DEMAND = {
    "driver.py": ("growdsl.gate", "growdsl.memory"),
    "api.py": ("growdsl.gate", "growdsl.grow_step"),
    "shapes.py": ("growdsl.families", "growdsl.hf_config"),
}


def _inner_imports(path: Path) -> list[str]:
    """The growdsl modules a file imports inside its functions."""
    names: list[str] = []
    for fn in ast.walk(ast.parse(path.read_text())):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.module:
                    names.append(node.module if node.module != "growdsl" else
                                 f"growdsl.{node.names[0].name}")
                elif isinstance(node, ast.Import):
                    names += [a.name for a in node.names]
    return sorted({n for n in names if n.startswith("growdsl")})


def test_imports_sit_at_the_top() -> None:
    """No module imports a growdsl module inside a function but for the reasons above: in
    particular the backend has none (its one-way imports at the top show its structure)."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/"):
            continue
        for name in _inner_imports(path):
            torch_kept_out = _layer(path) == "top" and name.startswith("growdsl.backend")
            if not torch_kept_out and not name.startswith(ON_DEMAND.get(rel, ("-",))):
                wrong.append(f"{rel} imports {name} inside a function")
    assert wrong == []


def test_the_import_rules_can_fail(tmp_path: Path) -> None:
    """The checks above see a function-level import and a backend import."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from growdsl.backend import models\n    import growdsl.gate\n")
    assert _inner_imports(bad) == ["growdsl.backend", "growdsl.gate"]
    assert "growdsl.backend.models" in _imports(bad)


def test_loading_checking_and_planning_need_no_torch(tmp_path: Path) -> None:
    """`import growdsl; growdsl.load(...)` with torch and transformers made unimportable."""
    spec_file = tmp_path / "two.grow"
    spec_file.write_text(GOOD)
    code = textwrap.dedent(f"""\
        import sys
        sys.modules['torch'] = sys.modules['transformers'] = None   # importing them fails
        import growdsl
        spec = growdsl.load({str(spec_file)!r})
        assert growdsl.check(spec) == []
        print(growdsl.analyse(spec).total_steps)
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"


@pytest.mark.torch
def test_grow_an_in_memory_model_keeps_the_function() -> None:
    import torch

    from growdsl.backend.models import build_model
    from growdsl.backend.testing import tiny_shape

    model = build_model(tiny_shape("gpt2", layers=2), seed=0).eval()
    grown = growdsl.grow(model, to="hidden=2*D", ops="fpi")
    assert grown.config.n_embd == 2 * model.config.n_embd
    assert model.config.n_embd == grown.config.n_embd // 2       # the original is kept
    ids = torch.randint(0, model.config.vocab_size, (2, 8))
    with torch.no_grad():
        diff = (model(ids).logits - grown.eval()(ids).logits).abs().max().item()
    assert diff < 1e-4
    with pytest.raises(GrowError):
        growdsl.grow(model, to="depth=L/2", ops="stack")
