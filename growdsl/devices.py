"""Accelerators growdsl knows: memory and dense peak FLOP/s, for the memory plan
(`growdsl plan --memory`) and model FLOPs utilization (MFU) in `growdsl run`. No torch.

A device is named (`device = "h100-80gb"` in `train { }`, or `--device h100-80gb`) or given
as a memory size (`"80GiB"`, `"24GB"`: no peak FLOP/s, so no MFU). Peaks are the vendors'
dense (no sparsity) tensor-core figures for bf16, and plain fp32 (non-tensor-core) figures:
NVIDIA H100 SXM5 / H200 / A100 / L4 data sheets, GeForce RTX 4090 whitepaper (bf16 with
fp32 accumulation). `cpu` has no fixed memory or peak: MFU is not reported on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from growdsl.errors import did_you_mean

GIB = 2**30
HEADROOM = 0.9      # of a device's memory the plan may fill (allocator, CUDA context)


@dataclass(frozen=True, kw_only=True, slots=True)
class Device:
    """An accelerator: its memory in bytes and dense peak FLOP/s (0.0: unknown)."""

    name: str
    memory: int
    bf16_flops: float = 0.0
    fp32_flops: float = 0.0
    flash: bool = True           # attention kernels that never hold the T x T scores

    def peak(self, bf16: bool) -> float:
        return self.bf16_flops if bf16 else self.fp32_flops

    @property
    def usable(self) -> float:
        return self.memory * HEADROOM


DEVICES: dict[str, Device] = {d.name: d for d in (
    Device(name="h100-80gb", memory=80 * GIB, bf16_flops=989.4e12, fp32_flops=66.9e12),
    Device(name="h200-141gb", memory=141 * GIB, bf16_flops=989.4e12, fp32_flops=66.9e12),
    Device(name="a100-80gb", memory=80 * GIB, bf16_flops=312e12, fp32_flops=19.5e12),
    Device(name="a100-40gb", memory=40 * GIB, bf16_flops=312e12, fp32_flops=19.5e12),
    Device(name="l4-24gb", memory=24 * GIB, bf16_flops=121e12, fp32_flops=30.3e12),
    Device(name="rtx4090-24gb", memory=24 * GIB, bf16_flops=165.2e12, fp32_flops=82.6e12),
)}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(GiB|GB|G)\s*$", re.IGNORECASE)


def problem(text: str) -> tuple[str, str] | None:
    """(message, help) when `text` names no device, else None."""
    if text in DEVICES or text == "cpu" or _SIZE.match(text):
        return None
    return (f"unknown device `{text}`",
            did_you_mean(text, [*DEVICES, "cpu"]) or
            f"one of {', '.join(DEVICES)}, or a memory size such as \"80GiB\"")


def resolve(text: str, memory: int | None = None) -> Device:
    """The device `text` names (checked by `problem` first); `cpu` gets `memory` bytes."""
    if text in DEVICES:
        return DEVICES[text]
    if text == "cpu":
        return Device(name="cpu", memory=memory or 0, flash=False)
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"unknown device {text!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    size = number * (GIB if unit in ("gib", "g") else 1e9)
    return Device(name=text.strip(), memory=int(size))


def from_cuda_name(name: str, memory: int) -> Device | None:
    """The table's device for what `torch.cuda.get_device_name()` and the total memory say
    (None when it is not in the table: no MFU is reported)."""
    upper = name.upper()
    for key, models in (("h200-141gb", ("H200",)), ("h100-80gb", ("H100",)),
                        ("l4-24gb", (" L4",)), ("rtx4090-24gb", ("4090",))):
        if any(m in f" {upper}" for m in models):
            return DEVICES[key]
    if "A100" in upper:
        return DEVICES["a100-80gb" if memory > 48 * GIB else "a100-40gb"]
    return None
