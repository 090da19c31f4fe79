"""Transfer: pick the best pretrained checkpoint, fine-tune it with a new head, or train the same model afresh."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .checkpoint import list_checkpoints, load_model, read_json
from .config import TrainConfig
from .loop import TrainResult, train

__all__ = ["finetune", "from_scratch", "load_for_transfer", "resolve_checkpoint", "select_best_checkpoint"]


def resolve_checkpoint(path) -> Path:
    """A checkpoint folder itself, or the newest complete checkpoint of a run folder (``run/checkpoints``)."""
    path = Path(path)
    if (path / "model.safetensors").is_file():
        return path
    found = list_checkpoints(path / "checkpoints")
    if not found:
        raise ValueError(f"{path} is neither a checkpoint folder nor a run folder with checkpoints")
    return found[-1]


def _score(folder: Path, metric: str) -> float:
    summary_path = folder / "summary.json"
    summary = read_json(summary_path)
    for section in ("best_val", "val"):
        value = (summary.get(section) or {}).get(metric)
        if value is not None:
            return float(value)
    raise ValueError(f"{summary_path} records no {metric!r} (was the run trained with val_data?)")


def select_best_checkpoint(folders, metric: str = "val_loss", mode: str = "min") -> Path:
    """The checkpoint among ``folders`` (checkpoint or run folders) with the best recorded upstream score.

    The score is the run's best validation ``metric`` recorded in the checkpoint's summary.json (the latest
    one when no best is recorded). ``mode`` is "min" or "max"; ties go to the first folder.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    checkpoints = [resolve_checkpoint(folder) for folder in folders]
    if not checkpoints:
        raise ValueError("folders is empty")
    scores = [_score(folder, metric) for folder in checkpoints]
    pick = min if mode == "min" else max
    return checkpoints[scores.index(pick(scores))]


def load_for_transfer(source, n_classes: int | None = None, pretrained: bool = True, builder=None,
                      seed: int | None = None) -> nn.Module:
    """A model for downstream training, built from ``source`` (an nn.Module or a checkpoint/run folder).

    pretrained=True keeps the source's weights (a copy; the source is not changed); False builds the same
    config freshly initialised. With ``n_classes``, the head is replaced through ``model.reset_head(n_classes)``;
    a model without ``reset_head`` raises ValueError. ``seed`` seeds torch before any new initialisation.
    ``builder(name, config_dict)`` rebuilds models from checkpoints (default ``cortexscale.models.build_model``).
    """
    if seed is not None:
        torch.manual_seed(seed)
    if isinstance(source, nn.Module):
        model = copy.deepcopy(source) if pretrained else type(source)(source.config)
    else:
        folder = resolve_checkpoint(source)
        if pretrained:
            model = load_model(folder, builder=builder)
        else:
            config = read_json(folder / "config.json")
            if builder is None:
                from cortexscale.models import build_model as builder
            model = builder(config["model"], config["config"])
    if n_classes is not None:
        if not hasattr(model, "reset_head"):
            raise ValueError(f"n_classes={n_classes} given but {type(model).__name__} has no reset_head()")
        model.reset_head(n_classes)
    return model


def finetune(source, n_classes: int | None, train_data, cfg: TrainConfig, out_dir, builder=None,
             **train_kwargs) -> TrainResult:
    """Fine-tune the pretrained ``source`` with a new ``n_classes`` head; :func:`train` arguments pass through."""
    model = load_for_transfer(source, n_classes, pretrained=True, builder=builder, seed=cfg.seed)
    return train(model, train_data, cfg, out_dir, **train_kwargs)


def from_scratch(source, n_classes: int | None, train_data, cfg: TrainConfig, out_dir, builder=None,
                 **train_kwargs) -> TrainResult:
    """Train the same model as ``source`` freshly initialised (the baseline for :func:`finetune`)."""
    model = load_for_transfer(source, n_classes, pretrained=False, builder=builder, seed=cfg.seed)
    return train(model, train_data, cfg, out_dir, **train_kwargs)
