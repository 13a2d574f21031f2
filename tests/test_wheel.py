"""growdsl as users install it: a wheel built from a clean copy of the sources, installed
with --no-deps into a fresh virtualenv (its dependencies seen through a `.pth` file naming
this environment's site-packages), used from a folder outside the checkout. The demo's
spec ships inside the package, so `growdsl demo` finds it there."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_spec_loads_from_an_installed_wheel(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copytree(REPO / "growdsl", src / "growdsl",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", str(src), "-w", str(wheels)], check=True,
                   capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies (lark, click, ...) from this environment, appended after the venv's own
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("growdsl-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    code = ("import growdsl, growdsl.cli.run as r; print(growdsl.__file__); "
            "print(growdsl.analyse(growdsl.load(r.DEMO_SPEC)).plan.target.layers)")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where, layers = done.stdout.split()
    assert Path(where).is_relative_to(venv) and layers == "4"
    cli = subprocess.run([str(venv / "bin" / "growdsl"), "demo", "--help"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 0 and "demo" in cli.stdout
