"""Transfer: pick the best pretrained checkpoint, fine-tune it with a new head, or train the same model afresh."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from cortexscale.models.checkpoint import SUMMARY, load_pretrained, read_config, read_json, resolve_checkpoint
from cortexscale.runtime import resolve_device

from .config import TrainConfig
from .loop import TrainResult, train

__all__ = ["finetune", "from_scratch", "load_for_transfer", "select_best_checkpoint"]


def _score(folder: Path, metric: str) -> float:
    summary_path = folder / SUMMARY
    value = (read_json(summary_path).get("val") or {}).get(metric)
    if value is None:
        raise ValueError(f"{summary_path} records no {metric!r} for this checkpoint (was the run trained with "
                         "val_data?)")
    return float(value)


def select_best_checkpoint(folders, metric: str = "val_loss", mode: str = "min") -> Path:
    """The checkpoint among ``folders`` (training checkpoints or run folders) with the best validation score.

    Each run folder stands for the checkpoint :func:`cortexscale.models.load_pretrained` loads from it: its
    marked best (lowest val_loss), else its latest. Each checkpoint is scored by its own validation
    ``metric`` in its summary.json. ``mode`` is "min" or "max"; ties go to the first folder.
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
                      seed: int | None = None, device="auto") -> nn.Module:
    """A model for downstream training, on ``device``, built from ``source``: an nn.Module, or a model,
    checkpoint or run folder (a run gives its marked best checkpoint, else its latest).

    pretrained=True keeps the source's weights (a copy; the source is not changed); False builds the same
    config freshly initialised. With ``n_classes``, the head is replaced through ``model.reset_head(n_classes)``;
    a model without ``reset_head`` raises ValueError. ``seed`` seeds torch before any new initialisation.
    ``builder(name, config_dict)`` rebuilds models from checkpoints (default ``cortexscale.models.build_model``).
    """
    if seed is not None:
        torch.manual_seed(seed)
    if isinstance(source, nn.Module):
        model = copy.deepcopy(source) if pretrained else type(source)(source.config)
    elif pretrained:
        model = load_pretrained(source, device="cpu", builder=builder)
    else:
        meta = read_config(resolve_checkpoint(source))
        if builder is None:
            from cortexscale.models import build_model as builder
        model = builder(meta["model"], meta["config"])
    if n_classes is not None:
        if not hasattr(model, "reset_head"):
            raise ValueError(f"n_classes={n_classes} given but {type(model).__name__} has no reset_head()")
        model.reset_head(n_classes)
    return model.to(resolve_device(device))


def finetune(source, n_classes: int | None, train_data, cfg: TrainConfig, out_dir, builder=None,
             **train_kwargs) -> TrainResult:
    """Fine-tune the pretrained ``source`` with a new ``n_classes`` head; :func:`train` arguments pass through."""
    model = load_for_transfer(source, n_classes, pretrained=True, builder=builder, seed=cfg.seed, device=cfg.device)
    return train(model, train_data, cfg, out_dir, **train_kwargs)


def from_scratch(source, n_classes: int | None, train_data, cfg: TrainConfig, out_dir, builder=None,
                 **train_kwargs) -> TrainResult:
    """Train the same model as ``source`` freshly initialised (the baseline for :func:`finetune`)."""
    model = load_for_transfer(source, n_classes, pretrained=False, builder=builder, seed=cfg.seed,
                              device=cfg.device)
    return train(model, train_data, cfg, out_dir, **train_kwargs)
