"""Scores of contiguous blocks of test samples, kept as sufficient statistics.

A block bootstrap over test TRs redraws whole blocks of time, so that the stimulus' own variability (one test
story is one draw of language) enters an interval. Pearson r and R^2 of any multiset of blocks follow from six
sums per block and target, so a fit keeps those (:func:`block_statistics`) rather than its predictions, and a
resample is a weighted sum of them (:func:`statistics_score`). Summed over every block once, the statistics
give the fit's own score.
"""

from __future__ import annotations

import numpy as np

from .metrics import _check_pair

__all__ = ["STATISTICS", "block_statistics", "statistics_score", "time_blocks"]

STATISTICS = ("n", "sum_true", "sum_pred", "sum_true2", "sum_pred2", "sum_cross")
"""The sums kept per block and target, in the order of axis 1 of :func:`block_statistics`."""


def time_blocks(lengths, length: int) -> np.ndarray:
    """Blocks (K, 2) of [start, stop) rows over segments of ``lengths`` (runs, folds) laid end to end.

    Each segment is cut into blocks of ``length`` rows; the remainder joins the segment's last block, and a
    segment shorter than ``length`` is one block, so no block crosses a segment and every row is in one.
    """
    if not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"block length must be a positive integer, got {length!r}")
    blocks, start = [], 0
    for n in lengths:
        n = int(n)
        if n < 0:
            raise ValueError(f"segment lengths must be non-negative, got {list(lengths)}")
        cuts = list(range(start, start + n, length))[: max(1, n // length)] + [start + n]
        blocks.extend(zip(cuts[:-1], cuts[1:]))
        start += n
    return np.array([b for b in blocks if b[1] > b[0]], dtype=int).reshape(-1, 2)


def block_statistics(y_true, y_pred, blocks) -> np.ndarray:
    """The :data:`STATISTICS` (K, 6, n_targets), float64, of each block (K, 2) of rows of (n, n_targets)
    arrays (or (n,): then (K, 6, 1))."""
    y_true, y_pred, _ = _check_pair(y_true, y_pred)
    blocks = np.asarray(blocks, dtype=int).reshape(-1, 2)
    if len(blocks) and (blocks.min() < 0 or blocks.max() > len(y_true) or (blocks[:, 1] <= blocks[:, 0]).any()):
        raise ValueError(f"blocks must be non-empty [start, stop) ranges within the {len(y_true)} rows")
    out = np.empty((len(blocks), len(STATISTICS), y_true.shape[1]))
    for k, (a, b) in enumerate(blocks):
        t, p = y_true[a:b].astype(np.float64), y_pred[a:b].astype(np.float64)
        out[k] = (np.full(t.shape[1], float(b - a)), t.sum(0), p.sum(0), np.einsum("ij,ij->j", t, t),
                  np.einsum("ij,ij->j", p, p), np.einsum("ij,ij->j", t, p))
    return out


def statistics_score(stats: np.ndarray, metric: str = "correlation") -> np.ndarray:
    """Pearson r (``"correlation"``) or R^2 (``"r2"``) from summed statistics (6, ...): (...), NaN where a side
    is constant (R^2: where the truth is)."""
    n, st, sp, stt, spp, stp = np.asarray(stats, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_t = stt - st * st / n
        if metric == "r2":
            residual = stt - 2.0 * stp + spp
            return np.where(var_t > 1e-12 * np.maximum(stt, 1e-300), 1.0 - residual / var_t, np.nan)
        if metric != "correlation":
            raise ValueError(f"metric must be 'correlation' or 'r2', got {metric!r}")
        var_p = spp - sp * sp / n
        denom = np.sqrt(var_t * var_p)
        ok = (var_t > 1e-12 * np.maximum(stt, 1e-300)) & (var_p > 1e-12 * np.maximum(spp, 1e-300))
        return np.where(ok, np.clip((stp - st * sp / n) / denom, -1.0, 1.0), np.nan)
