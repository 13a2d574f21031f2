"""Every RNG a training step may draw from (python, numpy, torch, CUDA), saved per rank as
safetensors with a checkpoint: tensors plus a few scalars as JSON metadata, so that reading
one back unpickles nothing; `read_rng` refuses a file that is not such a record.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file


def rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_rng(path: Path) -> None:
    """This process's RNG states as safetensors: tensors, plus the few scalars as JSON."""
    state = rng_state()
    version, keys, gauss = state["python"]
    name, mt, pos, has_gauss, cached = state["numpy"]
    tensors = {"python": torch.tensor(keys, dtype=torch.int64),
               "numpy": torch.from_numpy(mt.astype(np.int64)), "torch": state["torch"],
               **{f"cuda.{i}": t for i, t in enumerate(state["cuda"])}}
    meta = {"python": json.dumps([version, gauss]),
            "numpy": json.dumps([name, int(pos), int(has_gauss), float(cached)])}
    save_file(tensors, str(path), metadata=meta)


def read_rng(path: Path) -> dict[str, Any]:
    """The RNG states `save_rng` wrote; ValueError when the file is not such a record."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        version, gauss = json.loads(meta["python"])
        name, pos, has_gauss, cached = json.loads(meta["numpy"])
        py, mt, cpu = tensors["python"], tensors["numpy"], tensors["torch"]
        ok = (py.dtype == torch.int64 and py.shape == (625,) and mt.dtype == torch.int64
              and mt.shape == (624,) and cpu.dtype == torch.uint8 and name == "MT19937"
              and isinstance(version, int) and (gauss is None or isinstance(gauss, float)))
    except Exception as exc:            # safetensors, JSON, keys: a damaged record
        raise ValueError(f"{path.name} is not an RNG record ({exc})") from None
    if not ok:
        raise ValueError(f"{path.name} is not an RNG record (wrong tensor shapes or types)")
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    return {"python": (version, tuple(int(v) for v in py.tolist()), gauss),
            "numpy": (name, mt.numpy().astype(np.uint32), int(pos), int(has_gauss),
                      float(cached)),
            "torch": cpu, "cuda": cuda}
