"""`growdsl grow` writes only what it knows (config, weights, tokenizer files, generation
config), never copies through a link out of the source folder, and refuses a non-empty
output folder unless `--replace`, which swaps the folder whole (no stale shard or index)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.test_disk_full import grow, leftovers, small_model

pytestmark = pytest.mark.torch


def test_only_known_files_and_no_link_out_of_the_source(tmp_path: Path) -> None:
    src = small_model(tmp_path / "src")
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0")
    (src / "tokenizer.json").symlink_to(secret)                 # a link out: not followed
    (src / "vocab.json").write_text('{"a": 0}')                 # known: copied
    (src / "notes.txt").write_text("private")                   # unknown: not copied
    (src / "generation_config.json").write_text('{"max_length": 5}')
    (src / "merges.txt").symlink_to(src / "notes.txt")          # a link inside: copied
    code, output = grow(src, tmp_path / "out")
    assert code == 0, output
    got = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert got == ["config.json", "generation_config.json", "merges.txt", "model.safetensors",
                   "vocab.json"]
    assert not any(p.is_symlink() for p in (tmp_path / "out").iterdir())
    assert (tmp_path / "out" / "merges.txt").read_text() == "private"
    assert "root:x" not in "".join(p.read_text(errors="replace")
                                   for p in (tmp_path / "out").iterdir())


def test_non_empty_output_refused_unless_replace(tmp_path: Path) -> None:
    src = small_model(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "model-00001-of-00002.safetensors").write_bytes(b"stale")
    (out / "model.safetensors.index.json").write_text("{}")
    code, output = grow(src, out)
    assert code == 1 and (f"{out}: error[E738]: the output directory is not empty "
                          "(model-00001-of-00002.safetensors, model.safetensors.index.json)"
                          in output), output
    assert "pass --replace to replace it" in output
    assert sorted(p.name for p in out.iterdir()) == ["model-00001-of-00002.safetensors",
                                                     "model.safetensors.index.json"]
    code, output = grow(src, out, "--replace")
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "generation_config.json",
                                                     "model.safetensors"]
    assert json.loads((out / "config.json").read_text())["n_layer"] == 4
    assert leftovers(tmp_path) == []


def test_output_inside_the_source_is_refused(tmp_path: Path) -> None:
    src = small_model(tmp_path / "src")
    code, output = grow(src, src / "grown")
    assert code == 1 and (f"{src / 'grown'}: error[E738]: the output directory is inside the "
                          "source checkpoint") in output
    assert not (src / "grown").exists()


def test_bare_checkpoint_cannot_take_a_masked_gate(tmp_path: Path) -> None:
    from tests.test_backend_grow_layouts import save_bare

    save_bare(tmp_path / "src", "bert")                 # post-LN: the gate cannot be folded
    code, output = grow(tmp_path / "src", tmp_path / "out", "--ops", "masked(ramp=5)")
    assert code == 1 and ("--ops:1:1: error[E737]: a bare bert checkpoint cannot carry the gate "
                          "`masked` puts on new layers of a post-LN model") in output, output
    assert not (tmp_path / "out").exists()
