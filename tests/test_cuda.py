"""CUDA code paths (marked `cuda`; skipped without a GPU, run by `make gpu-check`): bf16
autocast by default, the fused AdamW kernel, accumulation on the device, and the memory plan
against `torch.cuda.max_memory_allocated`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.torch, pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_cuda_defaults_to_bf16_and_fused_adamw() -> None:
    from growdsl.backend.models import build_model
    from growdsl.backend.testing import tiny_shape
    from growdsl.backend.train import make_optimizer, pick_device
    from growdsl.ir import Train

    dev = pick_device("auto")
    assert dev.device.type == "cuda" and dev.autocast is torch.bfloat16
    model = build_model(tiny_shape("gpt2"), seed=0).to(dev.device)
    assert make_optimizer(model, Train()).defaults["fused"] is True


def test_accumulation_on_the_gpu() -> None:
    from growdsl.backend.train import pick_device
    from tests.test_scale import loop_for, stage, train

    dev = pick_device("fp32")
    whole = loop_for(stage("gpt2"), dev=dev)
    halves = loop_for(stage("gpt2", micro_batch=2), dev=dev)
    assert np.allclose(train(whole), train(halves), rtol=1e-4)


def test_memory_plan_against_max_memory_allocated() -> None:
    from bench.gpu_check import stages
    from bench.memory_plan import measure
    from growdsl.memory import stage_memory

    for _, st in stages(dry=False):
        got = measure(st, st.train.micro(1), "cuda")["cuda_max_allocated"]
        est = stage_memory(st, 1, True, flash=True).peak
        assert abs(est / got - 1) < 0.15, (st.name, est, got)
