"""AugReg's seven augmentation levels (Steiner et al. 2021) as data; :mod:`.augment` applies them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AUGREG_LEVELS", "AugRegLevel"]


@dataclass(frozen=True)
class AugRegLevel:
    """RandAugment (layers, magnitude), or None when off, and the Mixup alpha (0 = off)."""

    randaugment: tuple[int, float] | None
    mixup: float


AUGREG_LEVELS = {
    "none": AugRegLevel(None, 0.0),
    "light1": AugRegLevel((2, 0), 0.0),
    "light2": AugRegLevel((2, 10), 0.2),
    "medium1": AugRegLevel((2, 15), 0.2),
    "medium2": AugRegLevel((2, 15), 0.5),
    "strong1": AugRegLevel((2, 20), 0.5),
    "strong2": AugRegLevel((2, 20), 0.8),
}
