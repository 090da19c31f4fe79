"""train stage: one flat training loop (AdamW, warmup + cosine, precision, checkpoints) and transfer.

Checkpoints are read with :mod:`cortexscale.models` (``load_pretrained``, ``load_weights``,
``list_checkpoints``), which owns the folder format; this package writes them.
"""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "augment": ["AugReg"],
    "levels": ["AUGREG_LEVELS", "AugRegLevel"],
    "checkpoint": ["save_checkpoint"],
    "config": ["TrainConfig", "resolve_steps"],
    "loop": ["TensorDictDataset", "TrainResult", "evaluate", "param_groups", "train"],
    "schedule": ["lr_factor"],
    "transfer": ["finetune", "from_scratch", "load_for_transfer", "select_best_checkpoint"],
})
