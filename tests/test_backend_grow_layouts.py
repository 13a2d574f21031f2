"""`growdsl grow` on bare checkpoints (`BertModel`, `GPT2Model`, `LlamaModel`: no LM head,
keys without the base prefix) and on checkpoints it cannot read (errors, not tracebacks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers as hf
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from growdsl import families
from growdsl.backend.families import family
from growdsl.backend.models import config_for
from growdsl.backend.streaming import grow_checkpoint
from growdsl.backend.surgery import TENSOR_OPS
from growdsl.backend.testing import batch_for, growth, tiny_shape
from growdsl.backend.verify import verify_steps
from growdsl.cli import app
from growdsl.shapes import Shape

pytestmark = pytest.mark.torch
torch.set_num_threads(1)
FAMILIES = list(families.BUILTIN)


def save_bare(path: Path, family_name: str, seed: int = 0) -> tuple[Shape, hf.PreTrainedModel]:
    """A tiny bare model of `family_name` saved with save_pretrained (its own layout)."""
    shape = tiny_shape(family_name, tied=not family(family_name).grouped_query)
    torch.manual_seed(seed)
    model = getattr(hf, family(family_name).bare_class)(config_for(shape)).eval()
    model.save_pretrained(str(path))
    return shape, model


def hidden(model: hf.PreTrainedModel, shape: Shape) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = model.eval()(**batch_for(shape, 2, 6, 3)).last_hidden_state
    return out


def grow_cli(src: Path, out: Path, to: str, ops: str, *extra: str) -> tuple[int, str, object]:
    result = CliRunner().invoke(app, ["grow", str(src), str(out), "--to", to, "--ops", ops,
                                      *extra])
    return result.exit_code, result.output, result.exception


@pytest.mark.parametrize("family_name", FAMILIES)
def test_bare_checkpoint_grows_wide_and_deep_in_its_own_layout(tmp_path: Path,
                                                               family_name: str) -> None:
    shape, _ = save_bare(tmp_path / "src", family_name)
    code, output, _ = grow_cli(tmp_path / "src", tmp_path / "out",
                               "depth=2*L hidden=2*D ffn=2*F", "fpi, stack", "--verify")
    assert code == 0, output
    assert "verify fpi: exact, last hidden states" in output and "BROKEN" not in output
    fam = family(family_name)
    cls = getattr(hf, fam.bare_class)
    grown, info = cls.from_pretrained(str(tmp_path / "out"), local_files_only=True,
                                      output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    config = grown.config
    assert config.architectures == [fam.bare_class]
    assert (config.num_hidden_layers, config.hidden_size) == (2 * shape.layers, 2 * shape.hidden)
    assert getattr(config, fam.hf_fields["ffn"]) == 2 * shape.ffn
    with safe_open(str(tmp_path / "out" / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    assert not any(k.startswith((fam.base_prefix, *fam.head_prefixes)) for k in keys)
    assert bool(fam.optional) == any(k.startswith("pooler.") for k in keys)   # BERT's pooler


@pytest.mark.parametrize("family_name", FAMILIES)
@pytest.mark.parametrize("op", ["fpi", "clone"])
def test_bare_width_growth_keeps_every_hidden_unit(tmp_path: Path, family_name: str,
                                                   op: str) -> None:
    """Checked without the probe: the grown unit j is the source unit j mod D."""
    shape, model = save_bare(tmp_path / "src", family_name, seed=1)
    dst = shape.replace(hidden=2 * shape.hidden, heads=2 * shape.heads,
                        kv_heads=2 * shape.kv_heads, ffn=2 * shape.ffn)
    _final, steps, _c, _ = grow_checkpoint(tmp_path / "src", tmp_path / "out", dst,
                                           growth(op))
    (check,) = verify_steps(tmp_path / "src", steps, 0)
    assert check.verdict == "exact" and not check.broken and check.diff.max_abs <= 1e-5
    assert "tied" not in check.reason      # a bare model has no output head to tie
    grown = getattr(hf, family(family_name).bare_class).from_pretrained(
        str(tmp_path / "out"), local_files_only=True)
    assert grown.config.tie_word_embeddings == shape.tied     # the source config's setting
    h_src, h_grown = hidden(model, shape), hidden(grown, shape)
    assert h_grown.shape[-1] == 2 * shape.hidden
    torch.testing.assert_close(h_grown, h_src.repeat(1, 1, 2), atol=1e-5, rtol=1e-5)


def test_bare_verify_catches_a_wrong_width_operator(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    shape, _ = save_bare(tmp_path / "src", "bert")
    dst = shape.replace(hidden=2 * shape.hidden, heads=2 * shape.heads,
                        kv_heads=2 * shape.kv_heads)
    _f, steps, _c, _ = grow_checkpoint(tmp_path / "src", tmp_path / "out", dst, growth("fpi"))
    monkeypatch.setitem(TENSOR_OPS, "fpi", TENSOR_OPS["aki"])  # not function-preserving
    (check,) = verify_steps(tmp_path / "src", steps, 0)
    assert check.verdict == "exact" and check.broken


def _bin_only(src: Path) -> None:
    state = load_file(str(src / "model.safetensors"))
    (src / "model.safetensors").unlink()
    torch.save(state, src / "pytorch_model.bin")


def _missing_tensor(src: Path) -> None:
    state = load_file(str(src / "model.safetensors"))
    del state["encoder.layer.0.attention.self.query.weight"]
    save_file(state, str(src / "model.safetensors"), metadata={"format": "pt"})


def _edit_config(**changes: object) -> object:
    def edit(src: Path) -> None:
        config = json.loads((src / "config.json").read_text())
        config.update(changes)
        (src / "config.json").write_text(json.dumps(config))
    return edit


def _garbage(name: str) -> object:
    def edit(src: Path) -> None:
        (src / name).write_text("{ not what it should be")
    return edit


UNREADABLE = {
    "E733": _bin_only,
    "E734": _missing_tensor,
    "E731": _edit_config(model_type="t5"),
    "E732": _edit_config(architectures=["BertForSequenceClassification"]),
    "E735": _edit_config(vocab_size=50),
    "E736": _garbage("model.safetensors"),
    "E730": _garbage("config.json"),
}


@pytest.mark.parametrize("code", sorted(UNREADABLE))
def test_unreadable_checkpoint_is_a_located_error(tmp_path: Path, code: str) -> None:
    save_bare(tmp_path / "src", "bert")
    UNREADABLE[code](tmp_path / "src")  # type: ignore[operator]
    exit_code, output, exception = grow_cli(tmp_path / "src", tmp_path / "out",
                                            "depth=2*L", "stack", "--verify")
    assert exit_code == 1 and isinstance(exception, SystemExit), output
    assert f"{tmp_path / 'src'}: error[{code}]" in output


@pytest.mark.parametrize("out", ["src", "src/config.json"])
def test_output_path_that_is_the_source_or_a_file_is_a_located_error(tmp_path: Path,
                                                                    out: str) -> None:
    save_bare(tmp_path / "src", "bert")
    before = (tmp_path / "src" / "model.safetensors").read_bytes()
    exit_code, output, exception = grow_cli(tmp_path / "src", tmp_path / out,
                                            "depth=2*L", "stack")
    assert exit_code == 1 and isinstance(exception, SystemExit), output
    assert f"{tmp_path / out}: error[E738]" in output
    assert (tmp_path / "src" / "model.safetensors").read_bytes() == before


def test_unreadable_checkpoint_prints_no_traceback(tmp_path: Path) -> None:
    """The installed command, in its own process: a message, exit 1, no traceback."""
    save_bare(tmp_path / "src", "gpt2")
    _missing_tensor_gpt2(tmp_path / "src")
    proc = subprocess.run([sys.executable, "-m", "growdsl", "grow", str(tmp_path / "src"),
                           str(tmp_path / "out"), "--to", "depth=2*L", "--ops", "stack"],
                          capture_output=True, text=True, check=False,
                          env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                               "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "error[E734]" in proc.stderr and "h.0.ln_1.weight" in proc.stderr


def _missing_tensor_gpt2(src: Path) -> None:
    state = load_file(str(src / "model.safetensors"))
    del state["h.0.ln_1.weight"]
    save_file(state, str(src / "model.safetensors"), metadata={"format": "pt"})
