"""train stage: one flat training loop (AdamW, warmup + cosine, precision, checkpoints) and transfer.

Checkpoints are read with :mod:`cortexscale.models` (``load_pretrained``, ``load_weights``,
``list_checkpoints``), which owns the folder format; this package writes them.
"""

from .augment import AUGREG_LEVELS, AugReg
from .checkpoint import save_checkpoint
from .config import TrainConfig, resolve_steps
from .loop import TensorDictDataset, TrainResult, evaluate, param_groups, train
from .schedule import lr_factor
from .transfer import finetune, from_scratch, load_for_transfer, select_best_checkpoint

__all__ = [
    "AUGREG_LEVELS",
    "AugReg",
    "TensorDictDataset",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "finetune",
    "from_scratch",
    "load_for_transfer",
    "lr_factor",
    "param_groups",
    "resolve_steps",
    "save_checkpoint",
    "select_best_checkpoint",
    "train",
]
