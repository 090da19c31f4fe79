"""Nested, deterministic training subsets of a frame sequence, with a disjoint validation set.

The frames are cut into contiguous blocks of ``unit`` frames (a clip), so temporally autocorrelated frames
stay together. One seeded permutation orders the blocks: validation takes the first blocks, and every
training subset is the next ``ceil(size / unit)`` blocks, so a smaller subset is a prefix of every larger
one and no training block is ever a validation block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NestedSubsets", "held_out_blocks", "nested_subsets", "trainable_frames"]

DEFAULT_SIZES = (10_000, 100_000, 1_000_000, 6_000_000)
VAL_FRACTION = 0.1
"""Share of a training video's blocks held out for validation (at least 1, at most ``MAX_VAL_BLOCKS``)."""
MAX_VAL_BLOCKS = 64


@dataclass(frozen=True)
class NestedSubsets:
    """Start frames of the blocks of each split, in permutation order.

    unit: block length in frames; val: (n_val_blocks,) start frames; train: {size in frames: (n_blocks,)
    start frames}, each a prefix of the next larger.
    """

    unit: int
    val: np.ndarray
    train: dict

    def frames(self, size=None) -> np.ndarray:
        """Frame indices (n_blocks * unit,) of the training subset ``size`` (None: validation), block-ordered."""
        starts = self.val if size is None else self.train[size]
        return (starts[:, None] + np.arange(self.unit)[None, :]).ravel()


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def nested_subsets(n_total: int, sizes=DEFAULT_SIZES, val_size: int = 0, seed: int = 0, unit: int = 16) -> NestedSubsets:
    """Split frames ``0 .. n_total - 1`` into a validation set and nested training subsets.

    sizes: training subset sizes in frames (each rounded up to whole blocks); val_size: validation size in
    frames (rounded up to whole blocks); unit: block length in frames. The trailing ``n_total % unit``
    frames are never used. Raises ValueError naming the size that does not fit.
    """
    n_total, unit = _check_count(n_total, "n_total", 0), _check_count(unit, "unit", 1)
    val_size, seed = _check_count(val_size, "val_size", 0), _check_count(seed, "seed", 0)
    sizes = [_check_count(s, f"sizes[{i}]", 1) for i, s in enumerate(sizes)]
    n_blocks = n_total // unit
    n_val = -(-val_size // unit)
    if n_val > n_blocks:
        raise ValueError(f"val_size={val_size} frames needs {n_val} blocks of {unit} frames, "
                         f"but n_total={n_total} holds only {n_blocks}")
    order = np.random.default_rng(seed).permutation(n_blocks) * unit
    train = {}
    for i, size in enumerate(sizes):
        need = -(-size // unit)
        if n_val + need > n_blocks:
            raise ValueError(f"sizes[{i}]={size} frames needs {need} blocks of {unit} frames, but only "
                             f"{n_blocks - n_val} remain after validation (n_total={n_total}, val_size={val_size})")
        train[size] = order[n_val : n_val + need]
    return NestedSubsets(unit=unit, val=order[:n_val], train=train)


def held_out_blocks(n_blocks: int) -> int:
    """Validation blocks of a video of ``n_blocks`` blocks: ``VAL_FRACTION`` of them, 1 to ``MAX_VAL_BLOCKS``."""
    return min(MAX_VAL_BLOCKS, max(1, int(VAL_FRACTION * n_blocks)))


def trainable_frames(n_frames: int, unit: int) -> int:
    """Frames left to train on when ``n_frames`` are cut into blocks of ``unit`` and ``held_out_blocks`` of
    them are held out: the largest training size that fits."""
    n_blocks = n_frames // unit
    return max(0, n_blocks - held_out_blocks(n_blocks)) * unit
