"""The memory plan (growdsl.memory, no torch): its parts scale as the formula says, the
largest micro batch that fits is the largest, and `growdsl plan --memory` prints each
stage or refuses a device it does not know. Measured peaks: bench/memory_plan.py."""

from __future__ import annotations

from dataclasses import replace

from click.testing import CliRunner

from growdsl.cli import app
from growdsl.devices import resolve
from growdsl.driver import load
from growdsl.ir import Stage
from growdsl.memory import kind_of, largest_micro, stage_memory

GPT2 = "specs/papers/bert2bert-gpt-base.grow"


def _stage(path: str = GPT2, index: int = -1) -> Stage:
    return load(path)[1].stages[index]


def test_family_kinds_come_from_the_registry() -> None:
    assert [kind_of(f) for f in ("bert", "gpt2", "llama", "qwen2", "mistral")] == [
        "mlm", "clm", "gated", "gated", "gated"]


def test_sharding_divides_the_state_and_checkpointing_cuts_activations() -> None:
    st = _stage()
    one, eight = stage_memory(st, 1, True, True), stage_memory(st, 8, True, True)
    assert eight.weights * 8 == one.weights and eight.optimizer * 8 == one.optimizer
    assert one.optimizer == 2 * one.weights and one.gathered == 0 < eight.gathered
    ckpt = stage_memory(replace(st, train=replace(st.train, checkpointing=True)), 8, True, True)
    assert ckpt.activations < 0.75 * eight.activations    # the head (B T V logits) stays
    half = stage_memory(st, 8, True, True, micro=32)
    assert half.activations < eight.activations


def test_largest_micro_batch_is_the_largest_that_fits() -> None:
    st, device = _stage(), resolve("h100-80gb")
    best = largest_micro(st, device, 1)
    assert best == 64
    assert stage_memory(st, 1, True, True, micro=best).peak <= device.usable
    assert stage_memory(st, 1, True, True, micro=2 * best).peak > device.usable


def test_plan_memory_prints_every_stage() -> None:
    out = CliRunner().invoke(app, ["plan", "specs/papers/stacking-bert-base.grow", "--memory",
                                   "--device", "h100-80gb", "--world", "8"])
    assert out.exit_code == 0, out.output
    assert "on 8 x h100-80gb (72.0 GiB usable each)" in out.output
    rows = [line for line in out.output.splitlines() if line.startswith("│ stage")]
    assert [r.split("│")[1].strip() for r in rows] == ["stage1", "stage2", "stage3"]
    assert rows[-1].split("│")[12].strip() == "5.6" and rows[-1].split("│")[13].strip() == "yes"


def test_plan_memory_on_one_device_is_a_located_error() -> None:
    out = CliRunner().invoke(app, ["plan", GPT2, "--memory", "--device", "h100-80gb"])
    assert out.exit_code == 1
    assert "error[E802]: stage stage2 needs 559.5 GiB per device at micro_batch 512" in out.output
    assert "help: the largest micro batch that fits is micro_batch = 64" in out.output


def test_unknown_device_and_no_device() -> None:
    out = CliRunner().invoke(app, ["plan", GPT2, "--memory", "--device", "h100"])
    assert out.exit_code == 1 and "error[E803]: --device: unknown device `h100`" in out.output
    assert "did you mean `h100-80gb`?" in out.output
    out = CliRunner().invoke(app, ["plan", GPT2, "--memory"])
    assert out.exit_code == 1 and "error[E803]: `--memory` needs a device" in out.output
    assert resolve("24GB").memory == 24 * 10**9 and resolve("80GiB").memory == 80 * 2**30


def test_peak_is_the_backward_s_or_the_optimizer_step_s() -> None:
    st = _stage()
    cpu = stage_memory(st, 1, False, False)                 # one micro batch per step
    assert cpu.step == cpu.grads and 0 < cpu.grads_live < cpu.grads
    state = cpu.weights + cpu.optimizer + cpu.gathered
    assert cpu.peak == max(state + cpu.grads_live + cpu.activations,
                           state + cpu.grads + cpu.step)
    accumulating = stage_memory(st, 1, False, False, micro=st.train.batch // 2)
    assert accumulating.grads_live == accumulating.grads
    assert stage_memory(st, 8, True, True).step == 0       # a GPU's fused AdamW
    # bf16 autocast on one device keeps bf16 copies of the weights: 2 bytes per parameter
    one, two = stage_memory(st, 1, True, True, micro=64), stage_memory(st, 2, True, True, micro=64)
    assert one.activations - two.activations == one.weights / 2


def test_every_shipped_paper_plan_fits_on_8_h100s_and_says_so() -> None:
    """The shipped paper plans run as written on 8 x 80 GB, and their headers say how."""
    from pathlib import Path

    specs = sorted(Path("specs/papers").glob("*.grow"))
    assert len(specs) >= 10
    for spec in specs:
        out = CliRunner().invoke(app, ["plan", str(spec), "--memory", "--device", "h100-80gb",
                                       "--world", "8"])
        assert out.exit_code == 0, f"{spec}: {out.output}"
        assert "# Memory on 8 x 80 GB" in spec.read_text(), spec
