"""growdsl: a declarative growth-spec language for growth-based pretraining of Transformers.

The pipeline, in order (strung together by `growdsl.driver`, which also reads the files):
parse (`growdsl.parser`) -> lower to the IR (`growdsl.lower`) -> plan and check (`growdsl.plan`,
`growdsl.checks`) -> run (`growdsl.backend`, torch).
Importing this package never imports torch.
"""

__version__ = "0.1.0"
