"""One process of `GrowthTrainer` through a plan, for tests/test_integrations.py: run alone
(one process) or under `accelerate launch --multi_gpu --num_processes N` (N CPU processes,
gloo: `TrainingArguments(use_cpu=True)`). The plan's corpus is the folder `corpus` beside the
spec. Rank 0 writes what it saw (per-step losses and stages, growth steps, process count)
as JSON.

    python tests/trainer_worker.py SPEC OUT_DIR RESULT.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch


def train(spec_file: Path, out: Path) -> dict[str, Any]:
    """GrowthTrainer through the plan in `spec_file`: what its log and growth steps say."""
    from transformers import TrainingArguments

    import growdsl
    from growdsl.backend.corpus import cache_dir
    from growdsl.backend.data import prepare_corpus
    from growdsl.integrations.hf_trainer import CorpusSamples, GrowthTrainer

    spec = growdsl.load(spec_file)
    target = spec.plan.target
    corpus, _tok = prepare_corpus(spec_file.parent / "corpus", None, target.family,
                                  target.vocab, target.seq, 0, cache_dir())
    args = TrainingArguments(output_dir=str(out), logging_steps=1, save_strategy="no",
                             report_to=[], use_cpu=True, disable_tqdm=True,
                             dataloader_num_workers=0)
    trainer = GrowthTrainer(plan=spec, args=args,
                            train_dataset=CorpusSamples(corpus, target.seq))
    trainer.train()
    logged = [e for e in trainer.history if "loss" in e]
    return {"world": args.world_size, "losses": [e["loss"] for e in logged],
            "stages": [e["stage"] for e in logged],
            "growth": [{"ops": g["ops"], "max_abs_diff": g["growth/max_abs_diff"]}
                       for g in trainer.growth_log],
            "layers": trainer._model().config.num_hidden_layers}


def main() -> None:
    torch.set_num_threads(1)
    spec, out, result = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    seen = train(spec, out)
    if int(os.environ.get("RANK", "0")) == 0:
        result.write_text(json.dumps(seen))


if __name__ == "__main__":
    main()
