"""Bootstrap draws over a :class:`~cortexscale.scaling._tables.Panel`, percentile intervals, sign-flip tests.

A resample is a pair of arrays over the panel's rows (:func:`~cortexscale.scaling._tables.panel_rows` order):
each row's score recomputed from targets drawn with replacement within its unit, and its weight, the number of
times its unit was drawn. Drawing every row with replacement (``by="rows"``) is the plain case bootstrap.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from itertools import product

import numpy as np

from ._tables import Panel, block_means

__all__ = ["percentile_interval", "resampled_rows", "sign_flip_pvalue"]

_CHUNK_FLOATS = 1 << 22


def _counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """Multiplicities (n_boot, n) of ``n`` items drawn ``n`` times with replacement, per resample."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def resampled_rows(panel: Panel, n_boot: int, rng: np.random.Generator, by: str = "units"
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Bootstrap resamples in chunks: scores (R, b) and weights (R, b), the b of all chunks summing to n_boot.

    ``by="units"`` draws units, and targets within each unit; ``by="rows"`` draws rows, scores unchanged.
    """
    if by not in ("units", "rows"):
        raise ValueError(f"by must be 'units' or 'rows', got {by!r}")
    if n_boot == 0:
        return
    rows = sum(len(b.points) for b in panel.blocks)
    if by == "rows":
        scores = np.concatenate([block_means(b.values) for b in panel.blocks])
        weights = _counts(rng, rows, n_boot).T
        yield np.repeat(scores[:, None], n_boot, axis=1), weights
        return
    unit_weights = _counts(rng, len(panel.blocks), n_boot)
    row_unit = np.concatenate([np.full(len(b.points), u) for u, b in enumerate(panel.blocks)])
    widest = max(b.values.shape[1] for b in panel.blocks)
    chunk = int(np.clip(_CHUNK_FLOATS // widest, 1, n_boot))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        scores = np.concatenate([block_means(block.values, _counts(rng, block.values.shape[1], b).T)
                                 for block in panel.blocks])
        yield scores, unit_weights[start : start + b, row_unit].T


def percentile_interval(draws: np.ndarray, level: float, estimate=None) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval at ``level`` of draws (B, …) over axis 0, ignoring NaN; NaN where all are NaN.

    ``estimate`` (…), the statistic on the data itself, is always inside the interval: where the draws are
    degenerate (a constant effect, every resample alike) their percentiles can miss it by a rounding error,
    so the bounds are widened to reach it.
    """
    tail = 50.0 * (1.0 - level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [tail, 100.0 - tail], axis=0)
    if estimate is not None:  # np.minimum keeps a NaN bound NaN (no draws), and a NaN estimate moves nothing
        estimate = np.asarray(estimate, dtype=float)
        low = np.where(np.isnan(estimate), low, np.minimum(low, estimate))
        high = np.where(np.isnan(estimate), high, np.maximum(high, estimate))
    return low, high


def sign_flip_pvalue(stats: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of a zero mean for paired per-unit statistics (U,), by flipping their signs.

    Every one of the ``2^U`` sign patterns is used when there are at most ``n_perm``; otherwise ``n_perm``
    random patterns, with the observed one counted, ``(1 + hits) / (1 + n_perm)``; NaN for ``n_perm=0``.
    """
    if n_perm == 0:
        return float("nan")
    stats = np.asarray(stats, dtype=float)
    observed = abs(stats.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(stats).max()))
    if 2 ** len(stats) <= n_perm:
        signs = np.array(list(product((1.0, -1.0), repeat=len(stats))))
        return float(np.mean(np.abs(signs @ stats) / len(stats) >= observed - tolerance))
    signs = rng.choice((1.0, -1.0), size=(n_perm, len(stats)))
    hits = int(np.sum(np.abs(signs @ stats) / len(stats) >= observed - tolerance))
    return (1 + hits) / (1 + n_perm)
