"""The stages a study's tasks run, one module per part of the pipeline; importing this package registers
them in :data:`cortexscale.study.tasks.STAGES`."""

from . import ceiling, collect, features, fit, training  # noqa: F401
