"""The front end's doctests (sqlglot's habit: examples in the docstrings, run as tests).

Run per module with `doctest`, not `pytest --doctest-modules`, so that collecting them
imports only these torch-free modules; and every public function of them has one.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import subprocess
import sys

import pytest

FRONT_END = ("growdsl.source", "growdsl.errors", "growdsl.evaluate", "growdsl.transformer",
             "growdsl.parser", "growdsl.printer", "growdsl.lower_common", "growdsl.lower_model",
             "growdsl.lower_train", "growdsl.lower_stages", "growdsl.lower_ops", "growdsl.lower",
             "growdsl.driver")


@pytest.mark.parametrize("name", FRONT_END)
def test_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result


@pytest.mark.parametrize("name", FRONT_END)
def test_every_public_function_has_an_example(name: str) -> None:
    module = importlib.import_module(name)
    bare = [n for n, f in vars(module).items() if inspect.isfunction(f)
            and f.__module__ == name and not n.startswith("_") and ">>>" not in (f.__doc__ or "")]
    assert not bare, f"{name}: add a doctest to {bare}"


def test_running_them_imports_no_torch() -> None:
    code = ("import doctest, importlib, sys\n"
            f"for name in {FRONT_END!r}:\n"
            "    doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout[-2000:]
