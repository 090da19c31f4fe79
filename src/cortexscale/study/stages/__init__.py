"""The stages a study's tasks run, one module per part of the pipeline; importing this package registers
them in :data:`cortexscale.study.tasks.STAGES` (the model families register their own training stages)."""

from .. import families  # noqa: F401  (registers the families' stages: video, tokenizer, tokens)
from . import ceiling, collect, features, fit, training  # noqa: F401
