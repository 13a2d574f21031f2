"""The torch side of growdsl: Hugging Face models built from a `Shape`, the tensor half of
every growth operator, optimizer-state transforms, runtime equivalence checks and
streaming checkpoint growth.

Only this package imports torch and transformers; the front end and planner never import
it (the CLI imports it lazily, inside the commands that need it).
"""
