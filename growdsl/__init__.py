"""growdsl: a declarative growth-spec language for growth-based pretraining of Transformers.

The pipeline, in order (strung together by `growdsl.driver`, which also reads the files):
parse (`growdsl.parser`) -> lower to the IR (`growdsl.lower`) -> plan and check (`growdsl.plan`,
`growdsl.checks`, `growdsl.gate`) -> run (`growdsl.backend`, torch). The library's front door
is `growdsl.api`, re-exported here: `load`, `check`, `analyse`, `grow`, `grow_checkpoint`,
`run`. Importing this package never imports torch.
"""

from growdsl.api import (
    Grown,
    RunResult,
    Spec,
    analyse,
    check,
    grow,
    grow_checkpoint,
    growth_step,
    load,
    run,
)

__version__ = "0.1.0"

__all__ = ["Grown", "RunResult", "Spec", "__version__", "analyse", "check", "grow",
           "grow_checkpoint", "growth_step", "load", "run"]
