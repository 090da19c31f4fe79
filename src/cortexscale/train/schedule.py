"""Learning-rate schedules: linear warmup, then cosine decay to ``min_lr_ratio`` (or a constant rate)."""

from __future__ import annotations

import math

import torch

__all__ = ["lr_factor", "make_scheduler"]


def lr_factor(step: int, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0,
              schedule: str = "cosine") -> float:
    """Multiplier of the peak learning rate for optimizer step ``step`` (0-based).

    Warmup: ``(step + 1) / warmup_steps`` while ``step < warmup_steps``, so the first step already moves.
    Then, with ``p = (step - warmup_steps) / (total_steps - warmup_steps)``, cosine gives
    ``min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * p)) / 2``; "constant" gives 1.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`lr_factor` for the fields of a ``TrainConfig``."""

    def factor(step: int) -> float:
        return lr_factor(step, total_steps, cfg.warmup_steps, cfg.min_lr_ratio, cfg.schedule)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
